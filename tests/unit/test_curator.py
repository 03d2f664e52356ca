"""The curator: features and labels on signals whose class is known (silence, white noise, a steady tone, a
click train, a speech-like babble), rejection of silence, noise and stuck output, and the most-different choice."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from support import REPO

from dawexport.audio.features import local_flatness, mel_profile_db, texture_features
from dawexport.render.curator import curate, is_stuck, judge, label_of, noise_distance_db

SR = 16000


def _make_sources():
    spec = importlib.util.spec_from_file_location("make_sources", REPO / "instruments" / "make_sources.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------- curator labels

def known_signals() -> dict[str, np.ndarray]:
    """Signals whose class is known, 4 s at 16 kHz."""
    n = 4 * SR
    t = np.arange(n) / SR
    rng = np.random.default_rng(0)
    clicks = np.zeros(n)
    clicks[::SR // 4] = 0.9                                          # 4 clicks a second
    from scipy.signal import resample_poly
    babble = resample_poly(_make_sources().make_babble()[0].astype(np.float64), 160, 441)
    return {"silence": np.zeros(n),
            "noise": 0.3 * rng.standard_normal(n),
            "tonal": 0.5 * np.sin(2 * np.pi * 330 * t + 2.0 * np.sin(2 * np.pi * 5 * t))
                     * (1 + 0.3 * np.sin(2 * np.pi * 0.7 * t)),             # a held tone with vibrato, swelling
            "rhythmic": clicks,
            "gnarly": np.tile(babble, 2)[:n]}


@pytest.mark.parametrize("label", ["silence", "noise", "tonal", "rhythmic", "gnarly"])
def test_curator_labels_signals_of_known_class(label):
    assert label_of(texture_features(known_signals()[label], SR)) == label


def test_curator_rejects_silence_noise_and_stuck_output():
    signals = known_signals()
    assert judge(texture_features(signals["silence"], SR)).rejected == "silence"
    assert judge(texture_features(signals["noise"], SR)).rejected == "noise"
    frozen = 0.5 * np.sin(2 * np.pi * 330 * np.arange(4 * SR) / SR)       # a cycle held forever
    assert is_stuck(texture_features(frozen, SR))
    died = signals["gnarly"].copy()
    died[len(died) // 3:] = 0.0                                              # went silent early
    assert judge(texture_features(died, SR)).rejected == "stuck"
    assert judge(texture_features(signals["gnarly"], SR)).rejected is None


def test_curator_keeps_the_count_as_different_as_possible():
    signals = known_signals()
    rng = np.random.default_rng(1)
    babble = signals["gnarly"]
    near_copies = [np.roll(babble, int(rng.integers(SR))) * rng.uniform(0.8, 1.0) for _ in range(4)]
    candidates = near_copies + [signals["rhythmic"], signals["tonal"], signals["noise"], signals["silence"]]
    curation = curate(candidates, SR, count=3)          # no sources to be near to (or far from): labels only
    kept = {c.index for c in curation.kept}
    assert len(kept) == 3 and {4, 5} <= kept                  # the click train and the tone, and one babble
    assert not kept & {6, 7}                                  # never the noise or the silence
    assert curation.filled == 0
    assert [c.label for c in curation.kept] == ["rhythmic", "gnarly", "tonal"]      # grouped in key order


def test_curator_rejects_what_lies_farther_from_the_sources_than_white_noise():
    signals = known_signals()
    babble = mel_profile_db(signals["gnarly"], SR)
    noise_distance = noise_distance_db(babble, SR)
    tone = texture_features(signals["tonal"], SR, babble)            # a tone, when the sources are speech
    assert tone.source_distance > noise_distance and judge(tone, noise_distance).rejected == "far"
    assert judge(texture_features(signals["gnarly"], SR, babble), noise_distance).rejected is None
    curation = curate([signals["tonal"], signals["gnarly"]], SR, count=2, reference=babble)
    assert [c.rejected for c in curation.candidates] == ["far", None]
    assert [c.index for c in curation.kept] == [1, 0] and curation.filled == 1   # far fills in, last


def test_from_a_hissy_source_hiss_like_the_source_is_kept_but_hiss_beyond_it_is_noise():
    """A field recording of wind, a cricket and a bird is itself noise by the flatness measure: against its
    own hiss (`sources_flatness`) the field is not noise, while white noise, and noise shaped to the field's
    spectrum (as near to it in spectrum as can be), still are."""
    from scipy.signal import resample_poly
    from dawexport.audio.features import sources_flatness
    from dawexport.audio.match_eq import equalise, texture_curve
    field = [resample_poly(side.astype(np.float64), 160, 441) for side in _make_sources().make_field()]
    hiss = sources_flatness(field, SR)
    assert 0.45 < hiss < 0.6
    assert [label_of(texture_features(side, SR)) for side in field] == ["noise", "noise"]     # on its own
    assert all(label_of(texture_features(side, SR), hiss) != "noise" for side in field)
    reference = mel_profile_db(field, SR)
    rng = np.random.default_rng(3)
    white = [rng.standard_normal(4 * SR) for _ in range(2)]
    shaped = equalise(white[0], SR, texture_curve(reference, white, SR, max_db=40, width=1))
    for x in (white[0], shaped):
        assert judge(texture_features(x, SR, reference), noise_distance_db(reference, SR), hiss).rejected == "noise"
    assert texture_features(shaped, SR, reference).source_distance < 1.0         # its spectrum is the field's
    babble = known_signals()["gnarly"]                                            # a voice: noise as before
    assert label_of(texture_features(white[0], SR), sources_flatness([babble], SR)) == "noise"


def test_local_flatness_ignores_the_colour_of_noise():
    rng = np.random.default_rng(2)
    white = np.abs(np.fft.rfft(rng.standard_normal((20, 1024)), axis=1)) ** 2
    coloured = white / (1 + np.arange(white.shape[1])) ** 1.5              # steep, "windy"
    assert local_flatness(white) == pytest.approx(local_flatness(coloured), abs=0.05)
    assert local_flatness(white) > 0.5
