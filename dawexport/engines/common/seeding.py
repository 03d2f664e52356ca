"""Seeds that do not depend on Python's hash randomisation: the same parts give the same seed in every run.

    >>> stable_seed("ddsp-noise", 0, 60) == stable_seed("ddsp-noise", 0, 60)
    True
"""
from __future__ import annotations

import hashlib

SILENT_PEAK = 10.0 ** (-90.0 / 20.0)     # a clip whose peak is under -90 dBFS counts as silence


def stable_seed(*parts) -> int:
    """A 63-bit seed from the repr of `parts`."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") & (2 ** 63 - 1)
