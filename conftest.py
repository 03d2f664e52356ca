"""Docstring examples (`pytest --doctest-modules dawexport`) run in a fresh folder holding a few small files
and with a few sounds already made, so that an example can show one call without building its inputs:

- files: ``a.wav`` (1 s of C4, 24-bit) and ``table.wav`` (8192 samples, float), ``instruments/`` (the
  repository's example specs), ``cat_flute_blend.wav`` and ``.wt`` (a 16-frame wavetable), ``wavetables/``;
- names: ``np``; ``table`` (that wavetable: (16, 2048) float32); ``x``, ``take`` (1 s of a bright C4,
  44.1 kHz); ``tone`` (1 s at 441.3 Hz); ``takes`` (four C4 renders from dark to bright); ``note`` (a 1.2 s
  C4 note released at 1.0 s).
"""
from __future__ import annotations

import numpy as np
import pytest

SR = 44100
REPO = __import__("pathlib").Path(__file__).resolve().parent


def _harmonic_tone(freq: float, seconds: float, bright: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = sum(bright ** (k - 1) * np.sin(2 * np.pi * k * freq * t) / k for k in range(1, 8))
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


@pytest.fixture(autouse=True)
def _doctest_folder(request, tmp_path, monkeypatch):
    """Only for doctests: run in a temporary folder with the example files and names (see above)."""
    if not isinstance(request.node, pytest.DoctestItem):
        yield
        return
    import soundfile as sf
    monkeypatch.chdir(tmp_path)
    (tmp_path / "instruments").symlink_to(REPO / "instruments")
    c4 = _harmonic_tone(261.63, 1.0)
    sf.write(tmp_path / "a.wav", c4, SR, subtype="PCM_24")
    sf.write(tmp_path / "table.wav", c4[:2048 * 4], SR, subtype="FLOAT")
    from dawexport.export.wavetables import write_serum_wav, write_surge_wt
    phase = 2 * np.pi * np.arange(2048) / 2048
    table = np.stack([np.sin(phase) + k / 16 * np.sin(2 * phase) for k in range(16)]).astype(np.float32) / 2
    write_serum_wav("cat_flute_blend.wav", table)
    write_surge_wt("cat_flute_blend.wt", table)
    (tmp_path / "wavetables").mkdir()
    note = _harmonic_tone(261.63, 1.2)
    note[SR:] *= np.exp(-np.arange(len(note) - SR) / (0.03 * SR)).astype(np.float32)
    request.getfixturevalue("doctest_namespace").update(
        np=np, table=table, x=c4, take=c4, tone=_harmonic_tone(441.3, 1.0), note=note,
        takes=[_harmonic_tone(261.63, 0.5, b) for b in (0.2, 0.4, 0.6, 0.8)])
    yield
