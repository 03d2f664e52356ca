"""The preview MIDI file: its events, its file format, and what sfizz_render makes of it."""
from __future__ import annotations

from dataclasses import replace

import mido
import numpy as np
import pytest
from support.players import make_grid_instrument, render_midi_sfizz, rms_db, spectral_centroid

from dawexport.export import midi_preview, sfz

SR = 44100


@pytest.fixture(scope="module")
def line3(test_instrument):
    inst, folder = test_instrument("preview_line3", keys=(60, 63), zone_width=3, layers=2, blend_points=3)
    return inst, folder


@pytest.fixture(scope="module")
def wide(test_instrument):
    """Five zones of an octave each: 61 keys, too many to play chromatically."""
    inst, folder = test_instrument("preview_wide", name="wide", keys=(36, 48, 60, 72, 84), zone_width=13,
                                   layers=3, blend_points=1, seconds=0.2, channels=1, loop=False)
    return inst, folder


def notes_on(events):
    return [(t, m) for t, m in events if m.type == "note_on" and m.velocity > 0]


def cc_values(events, number):
    return [(t, m.value) for t, m in events if m.type == "control_change" and m.control == number]


def test_runs_cover_every_layer_and_key(line3):
    inst, _ = line3
    events = midi_preview.preview_events(inst)
    assert [t for t, _ in events] == sorted(t for t, _ in events)
    lo, hi = inst.key_range
    assert hi - lo + 1 <= midi_preview.MAX_CHROMATIC_KEYS
    ons = notes_on(events)
    rendered = sorted({z.velocity for g in inst.groups for z in g.zones})
    assert sorted({m.velocity for _, m in ons}) == rendered == [64, 127]
    for velocity in rendered:                                   # a chromatic run at each layer
        keys = [m.note for _, m in ons if m.velocity == velocity]
        assert set(range(lo, hi + 1)) <= set(keys)
    roots = {z.root_key for g in inst.groups for z in g.zones}
    assert roots <= {m.note for _, m in ons}


def test_notes_are_short_with_gaps_and_balanced(line3):
    inst, _ = line3
    events = midi_preview.preview_events(inst)
    open_notes, lengths = {}, []
    for t, m in events:
        if m.type == "note_on" and m.velocity > 0:
            assert m.note not in open_notes
            open_notes[m.note] = t
        elif m.type in ("note_off", "note_on"):
            lengths.append(t - open_notes.pop(m.note))
    assert not open_notes
    run = [length for length in lengths if length < 1.0]
    assert run and all(length == pytest.approx(0.25, abs=0.01) for length in run)
    run_starts = [t for t, m in notes_on(events)][:5]
    assert all(b - a > 0.25 for a, b in zip(run_starts, run_starts[1:]))      # a gap between notes


def test_wide_range_steps_by_zone(wide):
    inst, _ = wide
    lo, hi = inst.key_range
    assert hi - lo + 1 > midi_preview.MAX_CHROMATIC_KEYS
    events = midi_preview.preview_events(inst)
    ons = notes_on(events)
    assert len({m.velocity for _, m in ons}) == len(inst.velocity_layers) == 3
    for velocity in {m.velocity for _, m in ons}:
        keys = {m.note for _, m in ons if m.velocity == velocity}
        assert keys == {lo, hi, 36, 48, 60, 72, 84}
    assert not [m for _, m in events if m.type == "control_change"]           # no blend axis
    assert events[-1][0] < 15.0                                                # stays short


def test_cc_sweep_reaches_127_and_ends_at_zero(line3):
    inst, _ = line3
    events = midi_preview.preview_events(inst)
    sweep = cc_values(events, 1)
    values = [v for _, v in sweep]
    assert max(values) == 127 and values[0] == 0 and values[-1] == 0
    peak = values.index(127)
    assert values[:peak + 1] == sorted(values[:peak + 1])                    # up...
    assert values[peak:] == sorted(values[peak:], reverse=True)              # ...and down
    duration = sweep[-2][0] - sweep[1][0]
    assert 2.0 <= duration <= 6.0                                              # "a few seconds"
    # a chord is held through the whole sweep, in the middle of the key range
    sweep_start, sweep_end = sweep[1][0], sweep[-2][0]
    held = []
    for t_on, m in notes_on(events):
        t_off = min(t for t, o in events if o.type == "note_off" and o.note == m.note and t > t_on)
        if t_on < sweep_start and t_off >= sweep_end:
            held.append(m.note)
    assert held == midi_preview.sweep_chord(inst)
    lo, hi = inst.key_range
    assert abs(held[0] - (lo + hi) / 2) <= 1


def test_two_axes_each_get_a_sweep(tmp_path):
    inst = make_grid_instrument(tmp_path, keys=(60,), layers=1, seconds=0.2, channels=1)
    events = midi_preview.preview_events(inst)
    for cc in (1, 2):
        values = [v for _, v in cc_values(events, cc)]
        assert max(values) == 127 and values[-1] == 0
    up1 = next(t for t, v in cc_values(events, 1) if v == 127)
    up2 = next(t for t, v in cc_values(events, 2) if v == 127)
    assert up1 < up2


def test_file_format(line3):
    inst, folder = line3
    written = midi_preview.write(inst, folder)
    assert written == ["tiny_preview.mid"]
    midi = mido.MidiFile(str(folder / written[0]))
    assert midi.type == 1 and midi.ticks_per_beat == 480
    tempos = [m.tempo for track in midi.tracks for m in track if m.type == "set_tempo"]
    assert tempos == [500000]                                                  # 120 BPM
    names = [m.name for track in midi.tracks for m in track if m.type == "track_name"]
    assert names and all(name == inst.name for name in names)
    notes = [m for m in midi.tracks[1] if m.type in ("note_on", "note_off")]
    assert len(notes) == 2 * len(notes_on(midi_preview.preview_events(inst)))
    last_event = midi_preview.preview_events(inst)[-1][0]
    assert last_event <= midi.length <= last_event + midi_preview.TAIL_S + 0.01


def test_non_latin_names_still_write(line3, tmp_path):
    inst, _ = line3
    written = midi_preview.write(replace(inst, name="Katzenflöte 猫"), tmp_path)
    assert written == ["Katzenflöte 猫_preview.mid"]
    names = {m.name for t in mido.MidiFile(str(tmp_path / written[0])).tracks for m in t if m.type == "track_name"}
    assert names == {"Katzenflote"}


def test_sfizz_render_plays_the_preview(line3, tmp_path):
    inst, folder = line3
    sfz.write(inst, folder)
    midi_preview.write(inst, folder)
    events = midi_preview.preview_events(inst)
    audio, sr = render_midi_sfizz(folder / "tiny.sfz", folder / "tiny_preview.mid", tmp_path / "out.wav", SR)
    assert sr == SR and audio.shape[0] == 2
    seconds = audio.shape[1] / sr
    midi_length = mido.MidiFile(str(folder / "tiny_preview.mid")).length
    assert events[-1][0] - 0.1 <= seconds <= midi_length + 0.5
    assert rms_db(audio) > -45
    # every note of the runs sounds
    for t, m in notes_on(events):
        if t + 0.2 < events[-1][0]:
            assert rms_db(audio[:, int((t + 0.03) * sr):int((t + 0.15) * sr)]) > -50, (t, m)
    # the blend sweep is audible: brighter at CC 127 than at CC 0 under the same held chord
    sweep = cc_values(events, 1)
    t_top = next(t for t, v in sweep if v == 127)
    t_start = sweep[1][0]
    dark = spectral_centroid(audio[:, int((t_start - 0.4) * sr):int((t_start - 0.1) * sr)], sr)
    bright = spectral_centroid(audio[:, int((t_top - 0.15) * sr):int((t_top + 0.15) * sr)], sr)
    assert bright > 1.5 * dark
    assert np.all(np.isfinite(audio))
