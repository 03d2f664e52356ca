"""Bad specs are rejected before any work, naming the file, the key path and what is allowed."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from dawexport.cli import main
from dawexport.errors import SourceError, SpecError
from dawexport.spec import load_spec
from support import REPO



def good_spec(tmp_path: Path) -> dict:
    sr = 22050
    t = np.arange(sr) / sr
    sf.write(tmp_path / "a.wav", 0.5 * np.sin(2 * np.pi * 220 * t), sr)
    sf.write(tmp_path / "b.flac", np.stack([0.3 * np.sin(2 * np.pi * 330 * t)] * 2, axis=1), sr)
    return {"name": "test", "sources": {"a": "a.wav", "b": "b.flac"},
            "blend": {"corners": ["a", "b"], "points_per_side": 2},
            "keys": {"low": "C3", "high": "Eb3", "every": 2}, "velocity_layers": 2,
            "output": {"formats": ["sfz"], "bit_depth": 16}}


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def error_for(tmp_path: Path, data: dict) -> str:
    with pytest.raises((SpecError, SourceError)) as info:
        load_spec(write(tmp_path, data))
    message = str(info.value)
    assert "spec.yaml" in message or "a.wav" in message or "b.flac" in message or "missing" in message
    return message


def test_good_spec_loads(tmp_path):
    spec = load_spec(write(tmp_path, good_spec(tmp_path)))
    assert spec.keys.low == 48 and spec.keys.high == 51
    assert spec.output.bit_depth == "16"
    assert [r.file.name for r in spec.sources["a"]] == ["a.wav"]
    assert spec.source_path(spec.sources["a"][0]) == tmp_path / "a.wav"


def test_example_spec_is_valid():
    spec = load_spec(REPO / "instruments" / "cat_flute.yaml")
    assert spec.name == "cat_flute" and set(spec.sources) == {"cat", "flute"}


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d.update(colour="red"), "colour: unknown key"),
    (lambda d: d["keys"].update(lo="C2"), "did you mean 'low'"),
    (lambda d: d["keys"].update(low="H2"), "keys.low"),
    (lambda d: d["keys"].update(low="C5", high="C3"), "must not be above"),
    (lambda d: d.update(velocity_layers="many"), "velocity_layers"),
    (lambda d: d.update(velocity_layers=0), "velocity_layers"),
    (lambda d: d["output"].update(sample_rate=22050), "44100, 48000"),
    (lambda d: d["output"].update(bit_depth=8), "16, 24 or 32f"),
    (lambda d: d["output"].update(formats=["mp3"]), "unknown format 'mp3'"),
    (lambda d: d["blend"].update(corners=["a", "zebra"]), "'zebra' is not a source"),
    (lambda d: d["blend"].update(corners=["a", "b", "a"]), "blend.corners"),
    (lambda d: d.update(stereo="wide"), "stereo"),
    (lambda d: d.update(name="my instrument!"), "name"),
    (lambda d: d.update(engine={"name": "magic"}), "unknown engine 'magic'"),
    (lambda d: d.update(engine={"name": "sampler", "settings": {"velocity_curve_db": -3}}),
     "engine.settings.velocity_curve_db"),
    (lambda d: d.update(engine={"name": "sampler", "settings": {"volume": 3}}), "engine.settings.volume"),
    (lambda d: d.pop("sources"), "sources: is required"),
])
def test_bad_keys_name_the_key(tmp_path, mutate, expected):
    data = good_spec(tmp_path)
    mutate(data)
    message = error_for(tmp_path, data)
    assert expected in message
    assert "fix:" in message


def test_several_problems_are_listed_together(tmp_path):
    data = good_spec(tmp_path)
    data["velocity_layers"] = 99
    data["round_robins"] = 0
    message = error_for(tmp_path, data)
    assert "velocity_layers" in message and "round_robins" in message and "2 problems" in message


@pytest.mark.parametrize("make_bad, expected", [
    (lambda p: p.unlink(), "not found"),
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_bytes(b"RIFF\x00\x00garbage" * 10), "a.wav"),
    (lambda p: sf.write(p, np.zeros(1000), 22050), "silent"),
    (lambda p: sf.write(p, np.full(1000, np.nan), 22050, subtype="FLOAT"), "NaN"),
])
def test_bad_sources_are_reported_with_file_and_key(tmp_path, make_bad, expected):
    data = good_spec(tmp_path)
    make_bad(tmp_path / "a.wav")
    message = error_for(tmp_path, data)
    assert "a.wav" in message and "sources.a" in message
    assert expected.lower() in message.lower()


def test_yaml_syntax_error_gives_line(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("name: x\nsources:\n  a: [unclosed\n")
    with pytest.raises(SpecError, match="line"):
        load_spec(path)


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "nope.yaml")


def test_cli_validate_exits_nonzero_without_traceback(tmp_path, capsys):
    data = good_spec(tmp_path)
    data["keys"]["every"] = 0
    assert main(["validate", str(write(tmp_path, data))]) == 2
    err = capsys.readouterr().err
    assert "keys.every" in err and "Traceback" not in err


def test_cli_validate_ok(tmp_path, capsys):
    assert main(["validate", str(write(tmp_path, good_spec(tmp_path)))]) == 0
    assert "OK" in capsys.readouterr().out
