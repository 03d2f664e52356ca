"""Hostile or broken input is refused quickly, in bounded memory, with a message naming the file, the key
and the fix (issue 13): YAML bombs and oddities, bad sources, spec values that used to slip through; and the
suite-wide guard against tracebacks."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dawexport.audio.io import read_audio
from dawexport.errors import SourceError, SpecError
from dawexport.spec import load_spec

from support.faults import ALIAS_BOMB, SR, one_hertz_wav, sine, tiny


LIMITED = """\
import resource, sys
limit = 768 << 20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from dawexport.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("hostile", ["alias bomb", "1 Hz header"])
def test_memory_stays_bounded_on_hostile_input(tmp_path, hostile):
    """Under a 768 MiB address-space limit and a 60 s timeout, a clear error (exit 2), never a traceback."""
    if hostile == "alias bomb":
        spec = tmp_path / "bomb.yaml"
        spec.write_text(ALIAS_BOMB)
    else:
        one_hertz_wav(tmp_path / "tone.wav")
        spec = tmp_path / "hz.yaml"
        spec.write_text("name: hz\nsources: {tone: tone.wav}\nengine: {name: sampler}\n")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", LIMITED, "build", str(spec)], capture_output=True, text=True,
                          timeout=60, env=env, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr
    assert ("aliases" if hostile == "alias bomb" else "1 Hz") in proc.stderr
    assert str(spec if hostile == "alias bomb" else tmp_path / "tone.wav") in proc.stderr


@pytest.mark.parametrize("text, says", [
    (ALIAS_BOMB, "aliases (*name) are not allowed"),
    ("name: x\n" + "sources: " + "[" * 20000 + "]" * 20000 + "\n", "nested more than"),
    ("name: a\nname: b\nsources: {a: a.wav}\n", "'name' is written twice"),
    ("name: a\nsources: {a: a.wav}\n# " + "x" * (2 << 20) + "\n", "larger than"),
])
def test_hostile_yaml_is_refused_quickly_with_the_line(tmp_path, text, says):
    spec = tmp_path / "s.yaml"
    spec.write_text(text)
    with pytest.raises(SpecError) as error:
        load_spec(spec)
    assert says in str(error.value) and str(spec) in str(error.value) and error.value.fix


def test_a_spec_that_is_a_folder_says_so(tmp_path):
    with pytest.raises(SpecError, match="is a folder"):
        load_spec(tmp_path)


@pytest.mark.parametrize("make, says", [
    (lambda p: sine(p, channels=8), "8 channels; sources must be mono or stereo"),
    (lambda p: sine(p, seconds=1 / SR), "only 1 samples"),
    (lambda p: sine(p, seconds=10 / SR), "only 10 samples"),
    (one_hertz_wav, "sample rate is 1 Hz"),
    (lambda p: p.mkdir(), "is a folder, not a sound file"),
    (lambda p: os.mkfifo(p), "not a regular file"),
])
def test_bad_sources_name_the_file_and_the_problem(tmp_path, make, says):
    path = tmp_path / "x.wav"
    make(path)
    with pytest.raises(SourceError) as error:
        read_audio(path, key="sources.x")
    assert says in str(error.value) and str(path) in str(error.value) and "sources.x" in str(error.value)


def test_a_device_as_a_source_is_not_a_regular_file():
    with pytest.raises(SourceError, match="not a regular file"):
        read_audio("/dev/zero", key="sources.x")


def test_an_hour_long_source_is_refused_from_its_header_before_decoding(tmp_path, monkeypatch):
    import dawexport.audio.io as io
    path = sine(tmp_path / "long.wav", seconds=2.0)
    monkeypatch.setattr(io, "MAX_SOURCE_SECONDS", 1)         # 2 s stands in for an hour
    monkeypatch.setattr(io.sf, "read", lambda *a, **k: pytest.fail("decoded before checking the length"))
    with pytest.raises(SourceError, match="minutes long; a source may be at most"):
        read_audio(path, key="sources.long")


def test_the_suite_wide_guard_fails_a_test_whose_cli_prints_a_traceback(tmp_path):
    (tmp_path / "test_leak.py").write_text(
        "import sys, traceback\n"
        "def test_leaks(capsys):\n"
        "    try:\n        1 / 0\n    except ZeroDivisionError:\n        traceback.print_exc()\n"
        "    capsys.readouterr()\n"
        "def test_leaks_uncaptured():\n"
        "    print('Traceback (most recent call last):', file=sys.stderr)\n"
        "def test_clean(capsys):\n    print('dawexport: error: x')\n    capsys.readouterr()\n")
    tests = Path(__file__).parents[1]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "support.traceback_guard",
                           str(tmp_path / "test_leak.py")], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tests)})
    assert "2 failed, 1 passed" in proc.stdout, proc.stdout[-2000:]


def test_a_short_note_from_a_long_recording_repitches_only_what_it_plays():
    from dawexport.audio.repitch import repitch
    x = np.random.default_rng(0).standard_normal(40_000)
    for ratio in (0.5, 1.0, 1.37, 3.0):
        part = repitch(x, ratio, frames=5000)
        assert len(part) == 5000 and np.array_equal(part, repitch(x, ratio)[:5000])
    assert len(repitch(x[:100], 0.5, frames=5000)) == 199      # a recording shorter than the note


def test_the_sampler_reads_only_the_start_of_a_long_recording(monkeypatch):
    import dawexport.engines.sampler as sampler
    from dawexport.audio.analysis import PitchEstimate
    from dawexport.engines.base import Clip, Corpus, RenderRequest
    long = np.sin(np.arange(SR * 60) * 0.05).astype(np.float32)      # a minute of sound, a 0.4 s note
    corpus = Corpus(SR, ("mono",), (Clip("x", "mono", 0, long, PitchEstimate(262.0, 60.0, 1.0, 1.0)),))
    engine = sampler.SamplerEngine(sampler.SamplerEngine.Settings(), sample_rate=SR)
    engine.fit(corpus, None, None)
    read = []
    real = sampler.repitch
    monkeypatch.setattr(sampler, "repitch", lambda x, r, frames=None: read.append(frames) or real(x, r, frames=frames))
    [take] = engine.render([RenderRequest((("x", 1.0),), "mono", 67, 127, 0.3, 0.1)])
    assert read == [len(take)] and len(take) == round(0.4 * SR)


@pytest.mark.parametrize("changes, key, says", [
    ({"engine": {"name": "sampler", "sample_rate": 100000000}}, "engine.sample_rate", "less than or equal"),
    ({"engine": {"name": "sampler", "sample_rate": 1}}, "engine.sample_rate", "greater than or equal"),
    ({"engine": {"name": "sampler", "sample_rate": -44100}}, "engine.sample_rate", "greater than or equal"),
    ({"engine": {"name": "sampler", "sample_rate": 0}}, "engine.sample_rate", "greater than or equal"),
    ({"engine": {"name": "sampler", "seed": 10**27}}, "engine.seed", "less than or equal"),
    ({"engine": {"name": "sampler", "seed": -5}}, "engine.seed", "greater than or equal"),
    ({"wavetables": [{"name": "../escape"}]}, "wavetables[0].name", "letters, digits"),
    ({"wavetables": [{"name": "a/b"}]}, "wavetables[0].name", "letters, digits"),
    ({"wavetables": [{"name": "a\0b"}]}, "wavetables[0].name", "letters, digits"),
    ({"wavetables": [{"name": "pad"}, {"name": "pad"}]}, "wavetables", "named 'pad' twice"),
    ({"output": {"formats": []}}, "output.formats", "at least one format"),
    ({"description": "evil\x1b[2J\x07"}, "description", "control character"),
])
def test_spec_values_that_used_to_slip_through_are_refused(tmp_path, changes, key, says):
    spec = tiny(tmp_path, **changes)
    with pytest.raises(SpecError) as error:
        load_spec(spec)
    assert key in str(error.value) and says in str(error.value), str(error.value)


def test_line_breaks_in_a_description_become_spaces(tmp_path):
    spec = load_spec(tiny(tmp_path, description="a cat\nand a\tflute\n"))
    assert spec.description == "a cat and a flute"
