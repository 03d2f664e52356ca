"""End to end: a tiny spec built with the sampler engine, then played in a real SFZ player (sfizz)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from support import copy_example_sounds

from dawexport.audio.io import read_wav_metadata
from dawexport.cli import main
from dawexport.errors import ExportError
from dawexport.pipeline import build
from support.players import (measure_pitch_cents, render_sfizz, rms_db, sfizz_synth, sfzlint_errors)



def tiny_spec(tmp_path: Path, **changes) -> Path:
    copy_example_sounds(tmp_path)
    spec = {"name": "tiny", "sources": {"cat": "cat_meow.flac", "flute": "flute.wav"},
            "blend": {"corners": ["cat", "flute"], "points_per_side": 3},
            "keys": {"low": "G3", "high": "D4", "every": 3}, "velocity_layers": 2,
            "note": {"length": 1.2, "release": 0.2}, "output": {"dir": "out/tiny"}}  # every format, the default
    for key, value in changes.items():
        spec[key] = value
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("build")
    result = build(tiny_spec(tmp_path), quiet=True)
    return tmp_path, result


def spectrum_db(audio: np.ndarray, sr: int) -> np.ndarray:
    """A smoothed log spectrum (1/3-octave-ish bands) for comparing timbres."""
    x = audio.mean(axis=0) if audio.ndim == 2 else audio
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / sr)
    edges = 100 * 2 ** np.arange(0, 7.5, 1 / 3)
    bands = [mag[(freqs >= lo) & (freqs < hi)].sum() + 1e-12 for lo, hi in zip(edges, edges[1:])]
    db = 10 * np.log10(np.array(bands))
    return db - db.max()


def test_folder_is_complete_and_every_referenced_file_exists(built):
    tmp_path, result = built
    folder = result.folder
    assert folder == tmp_path / "out" / "tiny"
    sfz = (folder / "tiny.sfz").read_text()
    samples = [line.split("sample=")[1].split()[0] for line in sfz.splitlines() if "sample=" in line]
    assert len(samples) == 3 * 3 * 2  # blend points × zones × layers
    assert all((folder / s).is_file() for s in samples)
    assert "default_path" not in sfz and "\\" not in sfz
    manifest = json.loads((folder / ".dawexport-manifest.json").read_text())
    assert set(manifest["files"]) == {p.relative_to(folder).as_posix() for p in folder.rglob("*")
                                      if p.is_file() and p.name != ".dawexport-manifest.json"}
    assert not list(folder.parent.glob(".tiny.*"))  # no staging left behind
    assert sfzlint_errors(folder / "tiny.sfz") == []


def test_every_format_is_written_by_default(built):
    _, result = built
    names = {p.name for p in result.folder.iterdir()}
    assert {"tiny.sfz", "tiny_preview.mid", "tiny.adg", "tiny.adv", "tiny.dspreset", "tiny.multisample",
            "tiny.sf2"} <= names


def test_samples_are_stereo_at_the_output_rate_with_smpl_and_inst(built):
    _, result = built
    wavs = sorted((result.folder / "samples").glob("*.wav"))
    for wav in wavs:
        info = sf.info(str(wav))
        assert info.samplerate == 44100 and info.channels == 2 and info.subtype == "PCM_24"
        meta = read_wav_metadata(wav)
        assert meta["smpl"] is not None and meta["inst"] is not None and meta["clm"] is None
    flute = [w for w in wavs if "_flute_" in w.name]
    assert all(read_wav_metadata(w)["smpl"]["loops"] for w in flute), "the sustained flute must loop"


def test_stereo_image_survives(built):
    """The cat is panned left in its source: its samples are louder on the left, not collapsed to mono."""
    _, result = built
    for wav in (result.folder / "samples").glob("*_cat_*.wav"):
        audio, _ = sf.read(str(wav), always_2d=True)
        left, right = rms_db(audio[:, 0]), rms_db(audio[:, 1])
        assert left - right > 1.5
        assert np.corrcoef(audio[:, 0], audio[:, 1])[0, 1] < 0.99
    for wav in (result.folder / "samples").glob("*_flute_*.wav"):  # a mono source stays centred
        audio, _ = sf.read(str(wav), always_2d=True)
        assert np.allclose(audio[:, 0], audio[:, 1], atol=1e-4)


def test_every_key_plays_in_tune_in_sfizz(built):
    """The flute source is 12 cents flat; the instrument plays every key in tune anyway."""
    _, result = built
    synth = sfizz_synth(result.folder / "tiny.sfz")
    assert synth.playable_keys == list(range(55, 63))
    errors = []
    for key in synth.playable_keys:
        audio = render_sfizz(synth, key, 127, hold_s=0.8, total_s=0.8, cc={1: 127})
        errors.append(measure_pitch_cents(audio[:, 4000:], 44100, key))
    assert np.median(np.abs(errors)) <= 5.0, errors
    assert np.max(np.abs(errors)) <= 10.0, errors


def test_cat_corner_plays_at_its_measured_pitch(built):
    """The meow glides; its keys still land on their notes (median over the keys), as the samples were mapped
    by the pitch measured from each sample."""
    _, result = built
    synth = sfizz_synth(result.folder / "tiny.sfz")
    errors = [measure_pitch_cents(render_sfizz(synth, key, 127, hold_s=1.2, total_s=1.2, cc={1: 0}), 44100, key)
              for key in synth.playable_keys]
    assert np.median(np.abs(errors)) <= 5.0, errors


def test_louder_velocity_layers_are_louder(built):
    _, result = built
    synth = sfizz_synth(result.folder / "tiny.sfz")
    for cc in (0, 127):
        levels = [rms_db(render_sfizz(synth, 58, v, hold_s=0.5, total_s=0.5, cc={1: cc})) for v in (20, 64, 100, 127)]
        assert all(b > a + 0.5 for a, b in zip(levels, levels[1:])), (cc, levels)


def test_cc1_moves_the_timbre_from_cat_to_flute(built):
    _, result = built
    folder = result.folder
    synth = sfizz_synth(folder / "tiny.sfz")
    cat, _ = sf.read(str(next((folder / "samples").glob("tiny_cat_Gs3_v127*.wav"))), always_2d=True)
    flute, _ = sf.read(str(next((folder / "samples").glob("tiny_flute_Gs3_v127*.wav"))), always_2d=True)
    cat_db, flute_db = spectrum_db(cat.T[:, :30000], 44100), spectrum_db(flute.T[:, :30000], 44100)
    distances = []
    for cc in (0, 32, 64, 96, 127):
        played = spectrum_db(render_sfizz(synth, 56, 127, hold_s=0.68, total_s=0.68, cc={1: cc}), 44100)
        distances.append((np.mean(np.abs(played - cat_db)), np.mean(np.abs(played - flute_db))))
    to_cat = [d[0] for d in distances]
    to_flute = [d[1] for d in distances]
    assert to_cat[0] < to_flute[0] and to_flute[-1] < to_cat[-1]
    assert to_cat[-1] > to_cat[0] + 3 and to_flute[0] > to_flute[-1] + 3


def test_held_notes_sustain_through_the_loop_without_a_click(built):
    _, result = built
    synth = sfizz_synth(result.folder / "tiny.sfz")
    audio = render_sfizz(synth, 61, 127, hold_s=4.0, total_s=4.0, cc={1: 127})[0]
    sr = 44100
    early, late = audio[int(0.5 * sr):int(1.0 * sr)], audio[int(3.4 * sr):int(3.9 * sr)]
    assert abs(rms_db(late) - rms_db(early)) < 3.0
    steps = np.abs(np.diff(audio[int(0.3 * sr):int(3.9 * sr)]))
    assert steps.max() < 4.0 * np.percentile(steps, 99.9)


def test_second_build_is_up_to_date_and_reuses_caches(built, capsys):
    tmp_path, result = built
    before = {p: p.stat().st_mtime_ns for p in result.folder.rglob("*")}
    again = build(tmp_path / "tiny.yaml", quiet=True)
    assert again.reused and {p: p.stat().st_mtime_ns for p in result.folder.rglob("*")} == before
    assert main(["build", str(tmp_path / "tiny.yaml"), "--force"]) == 0
    err = capsys.readouterr().err
    assert "cached sampler model" in err and "cached" in err.split("render:")[1].splitlines()[0]


def test_a_user_file_in_the_output_stops_the_build_before_any_work(tmp_path):
    spec = tiny_spec(tmp_path)
    target = tmp_path / "out" / "tiny"
    target.mkdir(parents=True)
    (target / "song.als").write_text("my project")
    with pytest.raises(ExportError, match="not made by dawexport"):
        build(spec, quiet=True)
    assert (target / "song.als").read_text() == "my project"
    assert not (tmp_path / "out" / ".dawexport-cache").exists()


def test_failure_during_export_leaves_no_half_written_instrument(tmp_path, monkeypatch):
    import dawexport.export as export
    spec = tiny_spec(tmp_path, keys={"low": "C4", "high": "C4", "every": 1}, velocity_layers=1)

    def broken(instrument, folder):
        (folder / "half.sfz").write_text("<region>")
        raise RuntimeError("injected exporter crash")

    monkeypatch.setitem(export.EXPORTERS, "sfz", "tests_broken:write")
    import sys, types
    monkeypatch.setitem(sys.modules, "tests_broken", types.SimpleNamespace(write=broken))
    with pytest.raises(RuntimeError):
        build(spec, quiet=True)
    out = tmp_path / "out"
    assert not (out / "tiny").exists()
    assert [p.name for p in out.iterdir()] == [".dawexport-cache"]


def test_mid_side_and_mono_modes(tmp_path):
    spec = tiny_spec(tmp_path, keys={"low": "C4", "high": "C4", "every": 1}, velocity_layers=1,
                     blend={"corners": ["cat"], "points_per_side": 2}, stereo="mid_side")
    folder = build(spec, quiet=True).folder
    [wav] = (folder / "samples").glob("*.wav")
    audio, _ = sf.read(str(wav), always_2d=True)
    assert audio.shape[1] == 2 and rms_db(audio[:, 0]) - rms_db(audio[:, 1]) > 1.5

    spec = tiny_spec(tmp_path, name="mono", keys={"low": "C4", "high": "C4", "every": 1}, velocity_layers=1,
                     blend={"corners": ["cat"], "points_per_side": 2}, stereo="mono",
                     output={"formats": ["sfz"], "dir": "out/mono", "bit_depth": "32f", "sample_rate": 48000})
    folder = build(spec, quiet=True).folder
    [wav] = (folder / "samples").glob("*.wav")
    info = sf.info(str(wav))
    assert info.channels == 1 and info.samplerate == 48000 and info.subtype == "FLOAT"


def test_wavetables_along_the_blend_and_along_a_note(tmp_path):
    from dawexport.export.wavetables import read_serum_wav, read_surge_wt
    spec = tiny_spec(tmp_path, keys={"low": "C4", "high": "C4", "every": 1}, velocity_layers=1,
                     wavetables=[{"name": "morph", "along": "blend", "note": "C4", "frames": 8},
                                 {"name": "breath", "along": "time", "note": "G4", "frames": 16,
                                  "corners": ["flute"]}])
    result = build(spec, quiet=True)
    morph, text = read_serum_wav(result.folder / "wavetables" / "tiny_morph.wav")
    assert morph.shape == (8, 2048) and text == "<!>2048 10000000 wavetable (made with dawexport)"
    assert read_surge_wt(result.folder / "wavetables" / "tiny_breath.wt").shape == (16, 2048)
    assert "wavetables/tiny_breath.wav" in result.files and "wavetables/tiny_morph.wt" in result.files
    for frame in morph:  # one period per frame: the fundamental sits in bin 1
        spectrum = np.abs(np.fft.rfft(frame))
        assert spectrum[1] > 0.2 * spectrum.max()


def test_render_only_settings_do_not_change_the_model_key():
    from dawexport.engines.base import Corpus, Engine

    class Toy(Engine):
        name = "toy"
        render_only = ("loudness",)

        class Settings(Engine.Settings):
            size: int = 4
            loudness: float = 0.0

        def fit(self, corpus, workdir, progress): ...
        def save(self, directory): ...
        def load(self, directory): ...
        def render(self, requests, progress=None): ...

    corpus = Corpus(16000, ("mono",), ())
    a = Toy(Toy.Settings(), sample_rate=16000)
    louder = Toy(Toy.Settings(loudness=3.0), sample_rate=16000)
    bigger = Toy(Toy.Settings(size=8), sample_rate=16000)
    assert a.cache_key(corpus) == louder.cache_key(corpus) != bigger.cache_key(corpus)
    assert a.render_key(corpus) != louder.render_key(corpus)
