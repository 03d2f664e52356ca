"""Fixtures shared by the unit and end-to-end tests. Helpers that are not fixtures live in `support/`
(this folder is on sys.path, so tests import `support.players`, `support.helpers`, `support.data`)."""
from __future__ import annotations

import dataclasses

import pytest

# The engines package sets torch's OpenMP wait policy; conftest loads before any test module imports torch.
import dawexport.engines  # noqa: F401
from dawexport.instrument import BlendAxis, BlendGroup
from support.helpers import make_test_instrument
from support.traceback_guard import no_traceback_from_the_cli, pytest_runtest_makereport  # noqa: F401 - suite-wide


@pytest.fixture(scope="session")
def test_instrument(tmp_path_factory):
    """Factory: ``test_instrument(label, **kwargs) -> (instrument, folder)``, a `make_test_instrument` in a
    fresh temporary folder named after `label`."""
    def make(label: str, **kwargs):
        folder = tmp_path_factory.mktemp(label)
        return make_test_instrument(folder, **kwargs), folder
    return make


@pytest.fixture(scope="session")
def corner_square(test_instrument):
    """Factory: ``corner_square(label, axes, **kwargs) -> (instrument, folder)``, a 4-corner grid: 2 x 2 blend
    points on the two knobs `axes`, one key (60), one velocity layer."""
    def make(label: str, axes: tuple[BlendAxis, BlendAxis], **kwargs):
        base, folder = test_instrument(label, blend_points=4, keys=(60,), layers=1, **kwargs)
        groups = tuple(BlendGroup(index=g.index, label=f"corner {g.index}", position=(g.index % 2, g.index // 2),
                                  grid_index=(g.index % 2, g.index // 2), weights={}, zones=g.zones)
                       for g in base.groups)
        return dataclasses.replace(base, groups=groups, axes=axes), folder
    return make
