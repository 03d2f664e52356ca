"""Preview MIDI: a short Standard MIDI File that plays every zone at every velocity layer and sweeps
each blend knob, so a musician hears the whole instrument by dropping one file on its track.

Type 1, 480 ticks per quarter, 120 BPM (so 960 ticks per second): a conductor track (name, tempo, 4/4)
and one note track named after the instrument, on MIDI channel 1.

    write(instrument, Path("build/cat_flute"))   # -> ['cat_flute_preview.mid']
    [(round(t, 2), m.type) for t, m in preview_events(instrument)][:2]
    # -> [(0.0, 'control_change'), (0.0, 'note_on')]
"""
from __future__ import annotations

import unicodedata
from pathlib import Path

import mido

from dawexport.errors import ExportError
from dawexport.export.common import file_stem
from dawexport.instrument import Instrument

TICKS_PER_BEAT = 480
BPM = 120
TEMPO = mido.bpm2tempo(BPM)                     # microseconds per quarter note
TICKS_PER_SECOND = TICKS_PER_BEAT * BPM / 60    # 960
CHANNEL = 0

MAX_CHROMATIC_KEYS = 25   # wider ranges step from zone to zone instead of playing every key
NOTE_S = 0.25             # length of each note of a run
GAP_S = 0.05              # silence between notes of a run
LAYER_PAUSE_S = 0.5       # after each run, so the release tail does not overlap the next run
SWEEP_LEAD_S = 0.75       # chord held at CC 0 before the sweep starts
SWEEP_HALF_S = 2.0        # 0 -> 127 and again 127 -> 0
SWEEP_TAIL_S = 0.5        # chord held at CC 0 after the sweep
SWEEP_PAUSE_S = 0.5
TAIL_S = 1.0              # silence at the end for release tails


def write(instrument: Instrument, folder: Path) -> list[str]:
    """Write ``<name>_preview.mid`` into ``folder`` and return its relative path."""
    name = f"{file_stem(instrument.name)}_preview.mid"
    preview_file(instrument).save(str(Path(folder) / name))
    return [name]


def preview_file(instrument: Instrument) -> mido.MidiFile:
    """The preview as a mido.MidiFile (type 1, 480 ppq, 120 BPM)."""
    events = preview_events(instrument)
    title = track_name(instrument.name)
    conductor = mido.MidiTrack([
        mido.MetaMessage("track_name", name=title, time=0),
        mido.MetaMessage("set_tempo", tempo=TEMPO, time=0),
        mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
    ])
    notes = mido.MidiTrack([mido.MetaMessage("track_name", name=title, time=0)])
    last_tick = 0
    for seconds, message in events:
        tick = int(round(seconds * TICKS_PER_SECOND))
        notes.append(message.copy(time=tick - last_tick))
        last_tick = tick
    last_off = max((t for t, m in events if m.type == "note_off"), default=0.0)
    end_tick = max(last_tick, int(round((last_off + TAIL_S) * TICKS_PER_SECOND)))
    notes.append(mido.MetaMessage("end_of_track", time=end_tick - last_tick))
    conductor.append(mido.MetaMessage("end_of_track", time=end_tick))
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks += [conductor, notes]
    return midi


def track_name(name: str) -> str:
    """The instrument name as MIDI text (Latin-1, as DAWs read it): accents folded, other characters dropped."""
    try:
        name.encode("latin-1")
        return name
    except UnicodeEncodeError:
        folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").strip()
        return folded or "dawexport instrument"


def preview_keys(instrument: Instrument) -> list[int]:
    """The keys each velocity run plays: every key of a narrow range, else both ends and every zone's root."""
    lo, hi = instrument.key_range
    if hi - lo + 1 <= MAX_CHROMATIC_KEYS:
        return list(range(lo, hi + 1))
    roots = {z.root_key for g in instrument.groups for z in g.zones if lo <= z.root_key <= hi}
    return sorted(roots | {lo, hi})


def layer_velocities(instrument: Instrument) -> list[int]:
    """One velocity per layer, soft to loud: the velocity the layer's samples were rendered at."""
    zones = [z for g in instrument.groups for z in g.zones]
    out = []
    for lo, hi in sorted(instrument.velocity_layers):
        rendered = [z.velocity for z in zones if (z.lovel, z.hivel) == (lo, hi) and lo <= z.velocity <= hi]
        out.append(max(1, min(127, max(set(rendered), key=rendered.count) if rendered else hi)))
    return out


def preview_events(instrument: Instrument) -> list[tuple[float, mido.Message]]:
    """Time-ordered (seconds, message) pairs of the preview (pure: no file access).

    1. all blend CCs at 0; 2. for each velocity layer, a run over ``preview_keys`` at that layer's
    rendered velocity; 3. for each blend axis, a chord held in the middle of the range while its CC
    sweeps 0 -> 127 -> 0; 4. every blend CC reset to 0 once the last release tail has died away.
    """
    lo, hi = instrument.key_range
    if not (0 <= lo <= hi <= 127):
        raise ExportError(f"key range {lo}..{hi} is not inside MIDI 0..127", key="key_range",
                          fix="check the spec's keys")
    ccs = sorted({a.cc for a in instrument.axes})
    events: list[tuple[float, mido.Message]] = []

    def cc(t: float, number: int, value: int) -> None:
        events.append((t, mido.Message("control_change", channel=CHANNEL, control=number, value=value)))

    def note(t: float, key: int, velocity: int, length: float) -> None:
        events.append((t, mido.Message("note_on", channel=CHANNEL, note=key, velocity=velocity)))
        events.append((t + length, mido.Message("note_off", channel=CHANNEL, note=key, velocity=0)))

    t = 0.0
    for number in ccs:
        cc(t, number, 0)
    keys = preview_keys(instrument)
    for velocity in layer_velocities(instrument):
        for key in keys:
            note(t, key, velocity, NOTE_S)
            t += NOTE_S + GAP_S
        t += LAYER_PAUSE_S

    if instrument.axes:
        chord = sweep_chord(instrument)
        velocities = layer_velocities(instrument)
        velocity = velocities[len(velocities) // 2]
        for axis in instrument.axes:
            hold = SWEEP_LEAD_S + 2 * SWEEP_HALF_S + SWEEP_TAIL_S
            for key in chord:
                note(t, key, velocity, hold)
            start = t + SWEEP_LEAD_S
            for value in range(1, 128):                        # up: 1..127
                cc(start + SWEEP_HALF_S * value / 127, axis.cc, value)
            for value in range(126, -1, -1):                   # down: 126..0
                cc(start + SWEEP_HALF_S * (2 - value / 127), axis.cc, value)
            t += hold + SWEEP_PAUSE_S
        # the sweeps end at 0 already; the explicit reset after the last release tail leaves any player
        # that loops or chases controllers in the default state (and keeps the tail in offline renders)
        for number in ccs:
            cc(t - SWEEP_PAUSE_S + TAIL_S, number, 0)

    # stable sort by time; at equal times note-offs and CC resets go before note-ons
    order = {"note_off": 0, "control_change": 1, "note_on": 2}
    events.sort(key=lambda e: (round(e[0] * TICKS_PER_SECOND), order[e[1].type]))
    return events


def sweep_chord(instrument: Instrument) -> list[int]:
    """The mapped key nearest the middle of the key range, plus its fifth when that is mapped too."""
    lo, hi = instrument.key_range
    mapped = sorted({k for g in instrument.groups for z in g.zones
                     for k in range(max(lo, z.lokey), min(hi, z.hikey) + 1)})
    if not mapped:
        raise ExportError("the instrument maps no keys inside its key range", key="key_range",
                          fix="render at least one zone inside the key range")
    middle = (lo + hi) / 2
    root = min(mapped, key=lambda k: (abs(k - middle), k))
    return [root, root + 7] if root + 7 in mapped else [root]
