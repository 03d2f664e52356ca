"""A sample's root key and fine tune come from its held part: a release that glides away does not pull them."""
import numpy as np

from dawexport.audio.analysis import estimate_pitch, hz_to_midi
from dawexport.render.samples import SampleSettings, process_take

SR = 44100


def gliding_release(f0=220.0, held_s=1.0, release_s=1.5, fall_cents=-300.0):
    """A steady note, then a release whose pitch falls `fall_cents` while it decays (a meow's 'ow')."""
    t = np.arange(int((held_s + release_s) * SR)) / SR
    after = np.clip((t - held_s) / release_s, 0.0, 1.0)
    freq = f0 * 2 ** (fall_cents * after / 1200)
    phase = 2 * np.pi * np.cumsum(freq) / SR
    level = np.minimum(t / 0.02, 1.0) * (1.0 - 0.3 * after)
    return (0.3 * level * sum(np.sin(k * phase) / k for k in range(1, 8))).astype(np.float32)


def test_root_and_fine_tune_come_from_the_held_part_not_the_release():
    x = gliding_release()
    whole = estimate_pitch(x, SR).midi
    assert abs(100 * (whole - hz_to_midi(220.0))) > 10            # the release would pull the measure off
    for loop in ("none", "auto"):
        settings = SampleSettings("t", "mono", SR, "24", "none", loop, held_s=1.0)
        take = process_take({"mono": x}, 57, SR, settings)
        played = take.root_key + take.offset_cents / 100
        assert abs(100 * (played - hz_to_midi(220.0))) < 5.0, (loop, take.root_key, take.offset_cents)


def period_doubled_for_a_while(f0=349.23, seconds=2.4, doubled_from_s=1.5, sub=0.3):
    """A steady note whose last part is period-doubled (a half-frequency series joins it, as a reservoir's
    morph between two corners can do): the pitch tracker reads those frames an octave low."""
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * f0 * t
    x = sum(np.sin(k * phase) / k for k in range(1, 8))
    x = x + (t >= doubled_from_s) * sub * sum(np.sin((k + 0.5) * phase) / (k + 1) for k in range(6))
    return (0.2 * np.minimum(t / 0.02, 1.0) * x).astype(np.float32)


def test_exported_tuning_is_the_note_not_a_mean_across_an_octave_with_the_match_eq_on_or_off():
    from dawexport.engines.conceptor.match import N_MELS, _centres, equalise
    f0 = 349.23
    x = period_doubled_for_a_while(f0)
    # a match EQ's kind of curve: the fundamental cut, the harmonics above lifted (what moved the conceptor's
    # glide+flute takes by tens of cents when the tuning was a mean over octave reads)
    centres = _centres(SR)
    curve = np.where(centres < 1.1 * f0, -12.0, 6.0)
    assert curve.shape == (N_MELS,)
    for label, take in (("EQ off", x), ("EQ on", equalise(x, SR, curve).astype(np.float32))):
        for loop in ("none", "auto"):
            settings = SampleSettings("t", "mono", SR, "24", "none", loop, held_s=2.0)
            done = process_take({"mono": take}, 65, SR, settings)
            played = done.root_key + done.offset_cents / 100
            assert abs(100 * (played - hz_to_midi(f0))) < 5.0, (label, loop, done.root_key, done.offset_cents)
