"""How the ddsp engine plays its keys' trajectories, on hand-made keys and an untrained network (no training
needed): a 4-corner square plays each corner's own z(t) aligned by segment, and an `along: time` wavetable
follows the trajectory rather than its mean."""
import numpy as np
import pytest
import torch

from dawexport.audio.cycles import table_from_note
from dawexport.audio.analysis import midi_to_hz
from dawexport.engines.base import RenderRequest
from dawexport.engines.common.trajectory import find_segments
from dawexport.engines.ddsp import DDSPEngine, DDSPSettings
from dawexport.engines.ddsp.data import KeyInfo
from dawexport.engines.ddsp.model import DDSP

SR = 16000
TINY = dict(latent_size=4, hidden_size=16, n_harmonics=20, noise_bands=9, n_mels=8, table_size=256, threads=1)


def loudness(attack, sustain=60, release=30, lead=5):
    return np.concatenate([np.full(lead, -90.0), np.linspace(-45, 0, attack), np.zeros(sustain),
                           np.linspace(0, -70, release)]).astype(np.float32)


def hand_made(corners, **settings):
    """An engine whose keys (one per corner, channel 'L') have the given loudness and z(t) tracks."""
    engine = DDSPEngine(DDSPSettings(**{**TINY, **settings}), sample_rate=SR, seed=0)
    torch.manual_seed(0)
    engine.model = DDSP(engine._config(len(corners))).eval()
    engine.keys = [KeyInfo(name, "L", False, -12.0, 60.0, np.zeros(len(loud), np.float32),
                           np.zeros((0, 8), np.float32), np.zeros(0), f"audio-{name}", i, loud)
                   for i, (name, loud, _) in enumerate(corners)]
    engine.key_tracks = [torch.tensor(track, dtype=torch.float32) for *_, track in corners]
    return engine


def frames_of(engine, req):
    return int(round((req.duration_s + req.release_s) * SR)) // engine.hop + 2


def test_a_square_plays_each_corners_trajectory_aligned_by_segment():
    corners = []
    for i, attack in enumerate((4, 10, 20, 40)):
        loud = loudness(attack)
        track = np.zeros((len(loud), 4), np.float32)
        track[:, 0] = 1000 * i + np.arange(len(loud))        # z(t) says which corner and which frame it is
        track[:, 1 + i % 3] = 1.0
        corners.append((f"c{i}", loud, track))
    engine = hand_made(corners)
    names = [c[0] for c in corners]
    centre = RenderRequest(tuple((n, 0.25) for n in names), "L", 60, 127, 1.5, 0.3)
    _, _, gw, tracks, audible = engine._controls_for(centre, frames_of(engine, centre))
    assert audible and np.allclose(gw, 0.25)
    maps = engine.note_path(centre, frames_of(engine, centre), [0, 1, 2, 3], [0.25] * 4)
    attack = int(round(np.mean([find_segments(c[1]).attack for c in corners])))
    for i in range(4):
        pos = tracks[i, :, 0] - 1000 * i                      # the source frames corner i played
        np.testing.assert_allclose(pos, maps[i], atol=1e-3)
        seg = find_segments(corners[i][1])
        assert pos[0] == seg.onset and pos[attack] == pytest.approx(seg.attack_end, abs=1.0)
        assert np.all(tracks[i, :, 1 + i % 3] == 1.0)
    takes = engine.render([RenderRequest(((n, 1.0),), "L", 60, 127, 1.5, 0.3) for n in names] + [centre])
    assert all(np.isfinite(t).all() and np.abs(t).max() > 1e-4 for t in takes)
    assert min(np.abs(takes[4] - t).max() for t in takes[:4]) > 1e-3


def harmonic_db(table, k=12):
    spectrum = np.abs(np.fft.rfft(table, axis=1))[:, 1:k + 1]
    db = 20 * np.log10(spectrum + 1e-9)
    return db - db.mean(axis=1, keepdims=True)


def test_an_along_time_wavetable_follows_the_trajectory_not_its_mean():
    loud = loudness(10, sustain=120)
    a, b = np.array([2.5, -2.5, 2.5, -2.5]), np.array([-2.5, 2.5, -2.5, 2.5])
    u = np.clip((np.arange(len(loud)) - 15) / 120, 0, 1)[:, None]
    moving = (1 - u) * a + u * b                               # the timbre travels from a to b
    still = np.repeat(moving.mean(0, keepdims=True), len(loud), axis=0)
    note = RenderRequest((("s", 1.0),), "L", 60, 127, len(loud) * 256 / SR, 0.0)
    tables = {}
    for name, track in (("moving", moving), ("still", still)):
        # one logit per harmonic and f0 among the inputs: the untrained decoder's outputs for a and b then
        # differ clearly (with its smooth spectral envelope, the default, they lie within 2 dB of each other,
        # and without f0 its random weights for this seed put them 2.6 dB apart)
        engine = hand_made([("s", loud, track.astype(np.float32))], envelope_points=0, pitch_free=False)
        take, = engine.render([note])
        tables[name] = harmonic_db(table_from_note(take, SR, frames=16, f0_hz=float(midi_to_hz(60))))
    # what the decoder makes of a and of b (held, at full level): the two ends the table should reach
    ends = []
    for z in (a, b):
        with torch.no_grad():
            c = engine.model.controls(torch.full((1, 40), float(midi_to_hz(60))), torch.full((1, 40), -12.0),
                                      torch.tensor(z, dtype=torch.float32)[None])
        amps = c["harm_amps"][0, -1, :12].numpy()
        ends.append(20 * np.log10(amps + 1e-9) - np.mean(20 * np.log10(amps + 1e-9)))
    far = np.mean(np.abs(ends[0] - ends[1]))
    assert far > 3.0                                           # a and b sound different
    moving, still = tables["moving"], tables["still"]
    assert np.mean(np.abs(moving[0] - ends[0])) < np.mean(np.abs(moving[0] - ends[1]))
    assert np.mean(np.abs(moving[-1] - ends[1])) < np.mean(np.abs(moving[-1] - ends[0]))
    assert np.mean(np.abs(moving[0] - moving[-1])) > 0.5 * far
    # and it is closer to each end of the trajectory than a table made from the trajectory's mean
    assert np.mean(np.abs(moving[0] - ends[0])) < np.mean(np.abs(still[0] - ends[0]))
    assert np.mean(np.abs(moving[-1] - ends[1])) < np.mean(np.abs(still[-1] - ends[1]))


def test_a_plucked_source_keeps_its_first_milliseconds_and_a_slow_one_rises_over_attack_s():
    """The note's rise at note-on is no slower than its source's own attack (3 ms at least, `attack_s` at
    most), and it is the audio's, sample by sample: the decoder's controls are those of a note without a
    rise, so the take is the rise-less take times a linear ramp of that length."""
    pluck = np.concatenate([np.zeros(3), np.linspace(0, -60, 90)]).astype(np.float32)
    slow = loudness(40)
    for name, loud, rise in (("pluck", pluck, 0.003), ("slow", slow, 0.015)):
        track = np.zeros((len(loud), 4), np.float32)
        takes = {}
        for attack_s in (0.0, 0.015):
            engine = hand_made([(name, loud, track)], attack_s=attack_s)
            takes[attack_s] = engine.render([RenderRequest(((name, 1.0),), "L", 60, 127, 0.4, 0.2)])[0]
        n = int(round(rise * SR))
        ramp = np.concatenate([np.arange(n) / n, np.ones(len(takes[0.0]) - n)]).astype(np.float32)
        np.testing.assert_allclose(takes[0.015], takes[0.0] * ramp, atol=1e-6, err_msg=name)
        assert np.abs(takes[0.0][n:n + SR // 100]).max() > 1e-4          # the ramp multiplies something
