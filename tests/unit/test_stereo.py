import numpy as np
import pytest

from dawexport.audio.stereo import STEREO_MODES, channel_names, join_channels, split_channels
from dawexport.errors import SourceError

SR = 44100


def _tone_left_only(frames=4410):
    t = np.arange(frames) / SR
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    return np.stack([left, np.zeros(frames)]).astype(np.float32)


def test_channel_names():
    assert STEREO_MODES == ("split", "mono", "mid_side")
    assert channel_names("split", 1) == ("mono",)
    assert channel_names("split", 2) == ("L", "R")
    assert channel_names("mono", 2) == ("mono",)
    assert channel_names("mid_side", 1) == ("mono",)
    assert channel_names("mid_side", 2) == ("M", "S")


@pytest.mark.parametrize("mode", ["split", "mid_side"])
def test_left_stays_left(mode):
    audio = _tone_left_only()
    parts = split_channels(audio, mode)
    assert list(parts) == list(channel_names(mode, 2))
    assert all(p.dtype == np.float32 and p.ndim == 1 for p in parts.values())
    joined = join_channels(parts, mode)
    assert joined.shape == audio.shape and joined.dtype == np.float32
    assert np.max(np.abs(joined[1])) == 0.0
    np.testing.assert_array_equal(joined[0], audio[0])


def test_mid_side_round_trip_exact():
    rng = np.random.default_rng(0)
    # Values decoded from 24-bit PCM: M and S hold them without rounding, so L/R come back bit-exact.
    audio = (np.round(rng.uniform(-1, 1, (2, 1000)) * 2 ** 23) / 2 ** 23).astype(np.float32)
    parts = split_channels(audio, "mid_side")
    np.testing.assert_array_equal(parts["M"], (audio[0] + audio[1]) / 2)
    np.testing.assert_array_equal(parts["S"], (audio[0] - audio[1]) / 2)
    np.testing.assert_array_equal(join_channels(parts, "mid_side"), audio)
    # Arbitrary float32 input: within float32 rounding.
    noise = rng.uniform(-1, 1, (2, 1000)).astype(np.float32)
    np.testing.assert_allclose(join_channels(split_channels(noise, "mid_side"), "mid_side"),
                               noise, atol=2e-7, rtol=0)


def test_mono_downmix_and_mono_source():
    audio = np.array([[1.0, 0.5, -1.0], [0.0, 0.5, 1.0]], dtype=np.float32)
    parts = split_channels(audio, "mono")
    np.testing.assert_array_equal(parts["mono"], [0.5, 0.5, 0.0])
    assert join_channels(parts, "mono").shape == (1, 3)
    # A mono source stays untouched in every mode.
    for mode in STEREO_MODES:
        parts = split_channels(audio[0], mode)
        assert list(parts) == ["mono"]
        np.testing.assert_array_equal(join_channels(parts, mode), audio[:1])


def test_unequal_lengths_are_zero_padded():
    joined = join_channels({"L": np.ones(5), "R": np.ones(3)}, "split")
    np.testing.assert_array_equal(joined, [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    joined = join_channels({"M": np.ones(2), "S": np.ones(4)}, "mid_side")
    np.testing.assert_array_equal(joined, [[2, 2, 1, 1], [0, 0, -1, -1]])


def test_three_channels_raise_source_error():
    with pytest.raises(SourceError, match="stereo or mono") as info:
        split_channels(np.zeros((3, 10), np.float32), "split", file="surround.wav")
    assert "surround.wav" in str(info.value)


def test_bad_mode_and_mismatched_names():
    with pytest.raises(ValueError):
        split_channels(np.zeros((2, 4)), "wide")
    with pytest.raises(ValueError):
        join_channels({"L": np.zeros(4), "R": np.zeros(4)}, "mid_side")
