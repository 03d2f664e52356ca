import pytest

from dawexport.notes import midi_to_note, note_to_midi


@pytest.mark.parametrize("name, midi", [("C4", 60), ("C#3", 49), ("Db3", 49), ("Eb2", 39), ("A4", 69),
                                        ("B#3", 60), ("Cb4", 59), ("C-1", 0), ("G9", 127), ("f#2", 42),
                                        (61, 61), ("61", 61), ("E♭2", 39), ("C##4", 62)])
def test_note_names(name, midi):
    assert note_to_midi(name) == midi


@pytest.mark.parametrize("bad", ["H4", "C", "4C", "", "C#", 128, -1, "G#9", True, 1.5])
def test_bad_notes_are_rejected(bad):
    with pytest.raises(ValueError):
        note_to_midi(bad)


def test_round_trip():
    assert all(note_to_midi(midi_to_note(m)) == m for m in range(128))
