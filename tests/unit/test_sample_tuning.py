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


def gliding_held_part(f0=196.0, seconds=1.4, rise_cents=300.0):
    """A sung note whose pitch rises `rise_cents` through its whole held part, with a 5.5 Hz vibrato."""
    t = np.arange(int(seconds * SR)) / SR
    cents = rise_cents * t / seconds + 25 * np.sin(2 * np.pi * 5.5 * t)
    phase = 2 * np.pi * np.cumsum(f0 * 2 ** (cents / 1200)) / SR
    return (0.3 * np.minimum(t / 0.02, 1.0) * sum(np.sin(k * phase) / k for k in range(1, 8))).astype(np.float32)


def test_a_gliding_held_note_is_in_tune_as_the_sampler_plays_it_on_its_key(tmp_path):
    """A sampler plays a take shifted by its fine tune (and by a key when its root is the next one): in the
    same time it goes through more or less of it and of its loop, and on a glide that moves the held pitch
    by cents. The tune is read from the take played as the sampler plays it on the key it was made for."""
    import soundfile as sf

    from dawexport.audio.loops import find_sustain_loop
    from dawexport.render.samples import Loop, _held_pitch
    from support.players import render_sfizz, sfizz_synth

    x = gliding_held_part(f0=196.0 * 2 ** (40 / 1200))
    held = int(1.4 * SR)
    start, end = find_sustain_loop(x, SR, 240.0, region=(0.45, 0.65))
    pitch = _held_pitch(x, Loop(start, end, 0), held, SR, 56)
    root, tune = int(round(pitch.midi)), -100 * (pitch.midi - round(pitch.midi))
    assert root == 57                                    # near a quarter tone: the root is the next key
    sf.write(tmp_path / "s.wav", x, SR)
    (tmp_path / "t.sfz").write_text(f"<region> sample=s.wav pitch_keycenter={root} tune={round(tune)} "
                                    f"loop_mode=loop_sustain loop_start={start} loop_end={end}\n")
    note = render_sfizz(sfizz_synth(tmp_path / "t.sfz", SR), 56, 127, 1.4, 1.6).mean(axis=0)
    heard = 100 * (estimate_pitch(note[:held], SR).midi - 56) + (tune - round(tune))
    assert abs(heard) < 1.0, (root, tune, heard)         # 6.0 cents off read unshifted
