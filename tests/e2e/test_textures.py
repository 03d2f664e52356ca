"""Texture instruments built end to end with both texture engines (a few hundred steps of a tiny lstm_vae,
a few dozen of a tiny samplernn) from one tiny spec, exported to every format and played in sfizz. The two
builds (~45 s on a busy 2-core machine) serve the module."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from support import copy_example_sounds
from support.players import render_sfizz, rms_db, sfizz_synth, sfzlint_errors

from dawexport.audio.features import texture_features
from dawexport.audio.io import read_wav_metadata
from dawexport.audio.loops import loop_click_db
from dawexport.export.wavetables import read_serum_wav
from dawexport.pipeline import build
from dawexport.render.curator import label_of

SR = 16000


# ------------------------------------------------------------------------------------- builds

TINY = {
    "lstm_vae": {"domain": "fft", "max_steps": 300, "lstm_size": 64, "latent_size": 8, "seq_frames": 16,
                 "batch_size": 8, "temperature": 0.5, "preview_every": 150, "preview_seconds": 0.3,
                 "validate_every": 150},
    "samplernn": {"max_steps": 16, "dim": 24, "mlp_dim": 24, "embed": 4, "seq_len": 128, "batch_size": 4,
                  "frame_size": 8, "sub_frame_size": 2, "preview_every": 8, "preview_seconds": 0.2,
                  "validate_every": 8, "temperature": 0.7, "prime_seconds": 0.02,
                  "match_eq": 0},          # its fit (16 takes of 4 s) would double this build; see test_match_eq
}


def tiny_spec(tmp_path: Path, engine: str) -> Path:
    copy_example_sounds(tmp_path)
    spec = {"name": f"tex_{engine}", "sources": {"cat": "cat_meow.flac", "flute": "flute.wav"},
            "engine": {"name": engine, "settings": TINY[engine]},
            "texture": {"low": 48, "count": 2, "length": 0.8, "crossfade": 0.1,
                        **({"candidates": 8} if engine == "lstm_vae" else {"candidates": 4, "rounds": 1})},
            "velocity_layers": 2,
            "output": {"dir": f"out/tex_{engine}"}}
    if engine == "lstm_vae":
        spec["wavetables"] = [{"name": "tones", "along": "texture", "frames": 8}]
    path = tmp_path / f"{engine}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("textures")
    return {engine: build(tiny_spec(tmp_path, engine), quiet=True).folder for engine in ("lstm_vae", "samplernn")}


@pytest.mark.parametrize("engine", ["lstm_vae", "samplernn"])
def test_both_engines_build_a_texture_kit_in_every_format(built, engine):
    folder = built[engine]
    name = folder.name
    files = {p.name for p in folder.iterdir()}
    assert {f"{name}.sfz", f"{name}.adg", f"{name}.adv", f"{name}.dspreset", f"{name}.multisample",
            f"{name}.sf2", f"{name}_preview.mid"} <= files
    samples = sorted((folder / "samples").iterdir())
    assert len(samples) == 2 * 2                                        # 2 pads × 2 velocity layers
    labels = {"rhythmic", "gnarly", "tonal", "drone", "noise"}
    assert all(any(f"_{label}_" in p.name for label in labels) for p in samples)     # labels in names
    sfz = (folder / f"{name}.sfz").read_text()
    assert "texture kit" in sfz and sfz.count("// key ") == 2
    assert sfzlint_errors(folder / f"{name}.sfz") == []
    previews = folder.parent / ".dawexport-cache" / "previews"
    assert any(previews.rglob("step_*.wav")), "training wrote preview clips"


def test_every_pad_sounds_in_sfizz_and_loops_seamlessly(built):
    folder = built["lstm_vae"]
    synth = sfizz_synth(folder / f"{folder.name}.sfz")
    for key in (48, 49):
        held = render_sfizz(synth, key, 127, hold_s=2.0, total_s=2.0)   # 2.5 × the texture: it loops
        mono = held.mean(axis=0)
        assert rms_db(held) > -40.0, f"pad {key} is silent"
        assert rms_db(held[:, -SR:]) > rms_db(held) - 12.0, f"pad {key} stops instead of looping"
        features = texture_features(mono, 44100)
        assert label_of(features) not in ("noise", "silence"), (key, features.summary())
        soft = render_sfizz(synth, key, 40, hold_s=0.5, total_s=0.5)
        assert rms_db(soft) < rms_db(held[:, :len(soft[0])]) - 1.0        # velocity layers in order
    sample = next((folder / "samples").glob("*_v127_*.wav"))
    [(start, end)] = read_wav_metadata(sample)["smpl"]["loops"]
    audio = sf.read(sample, always_2d=True)[0].mean(axis=1)
    assert end == len(audio) - 1 and start > 0                          # the whole texture loops
    assert loop_click_db(audio, start, end) < 6.0


def test_texture_wavetable_comes_from_tonal_textures(built):
    folder = built["lstm_vae"]
    table, _ = read_serum_wav(folder / "wavetables" / f"{folder.name}_tones.wav")
    assert table.shape == (8, 2048)
    assert np.all(np.abs(table).max(axis=1) > 0.1)


def test_a_cached_texture_model_that_generates_nan_is_discarded_and_trained_again(tmp_path, capsys, monkeypatch):
    """A model that loads (its checksum holds: it diverged before it was saved, say) but generates NaN."""
    from dawexport.cli import main
    from dawexport.engines.samplernn import SampleRNNEngine
    spec = tiny_spec(tmp_path, "samplernn")
    build(spec, quiet=True)
    for cache in (tmp_path / "out" / ".dawexport-cache" / "renders").glob("textures-*"):
        cache.unlink()
    real_generate, real_fit, calls = SampleRNNEngine._generate, SampleRNNEngine.fit, []

    def generate(self, model, keys, n, reprime=True):
        audio = real_generate(self, model, keys, n, reprime)
        return [np.full_like(a, np.nan) for a in audio] if not calls else audio

    def fit(self, corpus, workdir, progress):
        calls.append(workdir)
        return real_fit(self, corpus, workdir, progress)

    monkeypatch.setattr(SampleRNNEngine, "_generate", generate)
    monkeypatch.setattr(SampleRNNEngine, "fit", fit)
    assert main(["build", str(spec), "--force"]) == 0
    err = capsys.readouterr().err
    assert "generated NaN" in err and "discarding it" in err and len(calls) == 1
    for wav in (tmp_path / "out" / "tex_samplernn" / "samples").glob("*.wav"):
        assert np.all(np.isfinite(sf.read(wav)[0]))
