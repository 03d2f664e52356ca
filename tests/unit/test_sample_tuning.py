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
