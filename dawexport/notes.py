"""Note names and MIDI numbers, the way musicians write them.

Middle C is C4 = MIDI 60 (scientific pitch, as in SFZ and General MIDI).

    >>> note_to_midi("C#3"), note_to_midi("Eb2"), note_to_midi(61)
    (49, 39, 61)
    >>> midi_to_note(61)
    'C#4'
"""
from __future__ import annotations

import re

_STEPS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_PATTERN = re.compile(r"^\s*([A-Ga-g])([#♯b♭]{0,2})(-?\d+)\s*$")


def note_to_midi(note: str | int) -> int:
    """MIDI number of a note name ("C#3", "Eb2", "A4") or of a MIDI number (0..127).

    Raises ValueError with the reason; callers turn it into a SpecError with the key.
    """
    if isinstance(note, bool):
        raise ValueError(f"{note!r} is not a note")
    if isinstance(note, int):
        midi = note
    elif isinstance(note, str) and note.strip().lstrip("-").isdigit():
        midi = int(note)
    else:
        match = _PATTERN.match(str(note))
        if not match:
            raise ValueError(f"{note!r} is not a note name (write e.g. C4, F#2, Eb3) or a MIDI number 0..127")
        letter, accidentals, octave = match.groups()
        shift = sum(1 if a in "#♯" else -1 for a in accidentals)
        midi = (int(octave) + 1) * 12 + _STEPS[letter.upper()] + shift
    if not 0 <= midi <= 127:
        raise ValueError(f"{note!r} is outside the MIDI range 0..127 (C-1..G9)")
    return midi


def midi_to_note(midi: int) -> str:
    """Sharp-spelled note name of a MIDI number: 60 -> 'C4'."""
    return f"{_NAMES[midi % 12]}{midi // 12 - 1}"
