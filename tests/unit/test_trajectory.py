"""Re-timing a source's frame tracks to a note: segments, time maps, segment-aligned blends."""
import numpy as np
import pytest

from dawexport.engines.common.trajectory import (Segments, early_release, find_segments, sample_track, smooth,
                                                 time_map)


def meow_loudness():
    """A swell and a fall: 20 frames of silence, a 30-frame attack, 80 frames held (with a dip), 60 of decay."""
    return np.concatenate([np.full(20, -90.0), np.linspace(-60, 0, 30), np.zeros(40), np.full(5, -7.0),
                           np.zeros(35), np.linspace(0, -70, 60)])


def test_segments_follow_the_loudness():
    seg = find_segments(meow_loudness())
    assert seg.onset == 20 + 10                      # the first frame within 40 dB of the top
    assert 45 <= seg.attack_end <= 50
    assert seg.release_start >= 20 + 30 + 80 - 1     # the dip does not end the sustain
    assert seg.end > seg.release_start and seg.release > 30


@pytest.mark.parametrize("held", [1, 7, 60, 200, 3000])
def test_attack_is_kept_the_sustain_has_no_jump_and_the_release_follows(held):
    seg = find_segments(meow_loudness())
    total = held + 80
    pos = time_map([seg], [1.0], held, total, np.random.default_rng(1))[0]
    attack = min(seg.attack, held)
    early = early_release(seg.attack, seg.sustain, seg.frames, held)
    assert early == (0 if held != 200 else 200 - (seg.attack + seg.sustain + 1) - 2 * (200 - seg.frames))
    np.testing.assert_allclose(pos[:attack], seg.onset + np.arange(attack))       # as recorded
    if held > seg.attack + seg.sustain:
        assert np.abs(np.diff(pos[:held])).max() <= 1.0 + 1e-9                      # never faster than recorded
        inside = pos[attack:held - early]
        assert inside.min() >= seg.attack_end - 1e-9 and inside.max() <= seg.release_start + 1e-9
    elif held > 1:                                  # a shorter note plays its sustain faster, still smoothly
        assert np.abs(np.diff(pos[:held])).max() <= max(1.0, seg.sustain / max(1, held - seg.attack - 1)) + 1e-9
    if held > seg.attack:
        # note-off at the release (a note about as long as the source has played some of it already)
        assert pos[held - 1 - early] == pytest.approx(seg.release_start)
        after = pos[held - early:]
        np.testing.assert_allclose(after[:10], seg.release_start + np.arange(1, 11))
        assert after[-1] == pytest.approx(seg.frames - 1)                           # and it decays to the end


def test_a_note_held_for_the_source_length_replays_it_frame_for_frame():
    loud = meow_loudness()
    seg = find_segments(loud)
    for held in (len(loud) - seg.onset, len(loud) - 5, len(loud)):    # from its onset .. with the lead-in
        pos = time_map([seg], [1.0], held, held + 40, np.random.default_rng(3))[0]
        n = len(loud) - seg.onset
        np.testing.assert_array_equal(pos[:n], seg.onset + np.arange(n))
        assert np.all(pos[n:] == len(loud) - 1)
    # around that length the map changes smoothly: one frame more of holding moves no frame by more than 2
    # (up to where the sustain is long enough to start turning back and forth)
    maps = [time_map([seg], [1.0], h, 400, np.random.default_rng(3))[0] for h in range(100, 215)]
    steps = [np.abs(b[:len(a)] - a).max() for a, b in zip(maps[:-1], maps[1:])]
    assert max(steps) <= 2.0 + 1e-9


def test_a_long_sustain_does_not_repeat_itself():
    seg = find_segments(meow_loudness())
    pos = time_map([seg], [1.0], 4000, 4000, np.random.default_rng(0))[0][seg.attack:]
    # the path turns at irregular points: no stretch of it comes back shifted by a whole period
    turns = np.flatnonzero(np.diff(np.sign(np.diff(pos))) != 0)
    tops = np.round(pos[turns + 1], 1)
    assert len(turns) >= 10 and len(set(tops.tolist())) > len(tops) * 0.8
    for lag in range(20, 1000):
        assert np.abs(pos[lag:] - pos[:-lag]).max() > 1.0


def test_round_robins_take_different_paths_and_a_seed_repeats_its_path():
    seg = find_segments(meow_loudness())
    a = time_map([seg], [1.0], 600, 650, np.random.default_rng(1))[0]
    b = time_map([seg], [1.0], 600, 650, np.random.default_rng(2))[0]
    again = time_map([seg], [1.0], 600, 650, np.random.default_rng(1))[0]
    np.testing.assert_array_equal(a, again)
    assert np.abs(a - b).max() > 5.0
    np.testing.assert_array_equal(a[:seg.attack], b[:seg.attack])     # the same attack


def test_a_blend_aligns_its_corners_by_segment():
    short = Segments(onset=5, attack_end=15, release_start=60, end=80)     # a 10-frame attack
    slow = Segments(onset=0, attack_end=40, release_start=100, end=150)    # a 40-frame attack
    a, b = time_map([short, slow], [0.75, 0.25], 300, 360, np.random.default_rng(0))
    note_attack = round(0.75 * 10 + 0.25 * 40)
    # both corners reach the end of their own attack together, at the note's (weight-mean) attack length
    assert a[note_attack] == pytest.approx(short.attack_end, abs=1.0)
    assert b[note_attack] == pytest.approx(slow.attack_end, abs=1.0)
    assert a[0] == short.onset and b[0] == slow.onset
    # both are at their own release at note-off and then each decays at its own pace
    assert a[299] == pytest.approx(short.release_start) and b[299] == pytest.approx(slow.release_start)
    np.testing.assert_allclose(b[300:340], slow.release_start + np.arange(1, 41))
    assert a[-1] == pytest.approx(short.frames - 1) and b[-1] == pytest.approx(slow.frames - 1)
    # both corners take the same path, in their own segment's coordinates
    ua = (a[note_attack:300] - short.attack_end) / short.sustain
    ub = (b[note_attack:300] - slow.attack_end) / slow.sustain
    np.testing.assert_allclose(ua, ub, atol=1e-9)


def test_track_helpers():
    z = np.stack([np.arange(5.0), 10 * np.arange(5.0)], axis=1)
    np.testing.assert_allclose(sample_track(z, np.array([0.5, 3.75, 9.0])), [[0.5, 5.0], [3.75, 37.5], [4, 40]])
    assert sample_track(np.array([3.0]), np.array([0.0, 2.0])).tolist() == [3.0, 3.0]
    wobble = np.sin(np.arange(200) * 2 * np.pi / 10) + np.linspace(0, 5, 200)
    fine = wobble - smooth(wobble, 10)
    assert abs(fine[20:-20].mean()) < 0.05 and np.abs(fine[20:-20]).max() > 0.8
