"""Texture engines (samplernn, lstm_vae), the curator, and texture instruments built end to end and played
in sfizz. One tiny spec is built with each engine (a few hundred steps of a tiny lstm_vae, a few dozen of a
tiny samplernn), once per module."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from support import SOUNDS, copy_example_sounds
from support.players import render_sfizz, rms_db, sfizz_synth, sfzlint_errors

from dawexport.audio.features import local_flatness, mel_profile_db, texture_features
from dawexport.audio.io import read_wav_metadata
from dawexport.audio.loops import loop_click_db
from dawexport.engines.lstm_vae.frames import BlockCodec
from dawexport.engines.samplernn.model import SampleRNN, SampleRNNConfig
from dawexport.errors import SpecError
from dawexport.export.wavetables import read_serum_wav
from dawexport.pipeline import build
from dawexport.render.curator import curate, is_stuck, judge, label_of
from dawexport.spec import parse_spec

REPO = SOUNDS.parents[1]
SR = 16000


def _make_sources():
    spec = importlib.util.spec_from_file_location("make_sources", REPO / "instruments" / "make_sources.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------- curator labels

def known_signals() -> dict[str, np.ndarray]:
    """Signals whose class is known, 4 s at 16 kHz."""
    n = 4 * SR
    t = np.arange(n) / SR
    rng = np.random.default_rng(0)
    clicks = np.zeros(n)
    clicks[::SR // 4] = 0.9                                          # 4 clicks a second
    from scipy.signal import resample_poly
    babble = resample_poly(_make_sources().make_babble()[0].astype(np.float64), 160, 441)
    return {"silence": np.zeros(n),
            "noise": 0.3 * rng.standard_normal(n),
            "tonal": 0.5 * np.sin(2 * np.pi * 330 * t + 2.0 * np.sin(2 * np.pi * 5 * t))
                     * (1 + 0.3 * np.sin(2 * np.pi * 0.7 * t)),             # a held tone with vibrato, swelling
            "rhythmic": clicks,
            "gnarly": np.tile(babble, 2)[:n]}


@pytest.mark.parametrize("label", ["silence", "noise", "tonal", "rhythmic", "gnarly"])
def test_curator_labels_signals_of_known_class(label):
    assert label_of(texture_features(known_signals()[label], SR)) == label


def test_curator_rejects_silence_noise_and_stuck_output():
    signals = known_signals()
    assert judge(texture_features(signals["silence"], SR)).rejected == "silence"
    assert judge(texture_features(signals["noise"], SR)).rejected == "noise"
    frozen = 0.5 * np.sin(2 * np.pi * 330 * np.arange(4 * SR) / SR)       # a cycle held forever
    assert is_stuck(texture_features(frozen, SR))
    died = signals["gnarly"].copy()
    died[len(died) // 3:] = 0.0                                              # went silent early
    assert judge(texture_features(died, SR)).rejected == "stuck"
    assert judge(texture_features(signals["gnarly"], SR)).rejected is None


def test_curator_keeps_the_count_as_different_as_possible():
    signals = known_signals()
    rng = np.random.default_rng(1)
    babble = signals["gnarly"]
    near_copies = [np.roll(babble, int(rng.integers(SR))) * rng.uniform(0.8, 1.0) for _ in range(4)]
    candidates = near_copies + [signals["rhythmic"], signals["tonal"], signals["noise"], signals["silence"]]
    curation = curate(candidates, SR, count=3, reference=mel_profile_db(babble, SR))
    kept = {c.index for c in curation.kept}
    assert len(kept) == 3 and {4, 5} <= kept                  # the click train and the tone, and one babble
    assert not kept & {6, 7}                                  # never the noise or the silence
    assert curation.filled == 0
    assert [c.label for c in curation.kept] == ["rhythmic", "gnarly", "tonal"]      # grouped in key order


def test_local_flatness_ignores_the_colour_of_noise():
    rng = np.random.default_rng(2)
    white = np.abs(np.fft.rfft(rng.standard_normal((20, 1024)), axis=1)) ** 2
    coloured = white / (1 + np.arange(white.shape[1])) ** 1.5              # steep, "windy"
    assert local_flatness(white) == pytest.approx(local_flatness(coloured), abs=0.05)
    assert local_flatness(white) > 0.5


# ------------------------------------------------------------------------------------- model pieces

@pytest.mark.parametrize("frames", [(16, 4), (8,)])
def test_samplernn_generation_matches_the_trained_forward_pass(frames):
    """The sample-by-sample generator (lookup tables, stepped GRUs) computes what training computes."""
    torch.manual_seed(0)
    model = SampleRNN(SampleRNNConfig(frame_sizes=frames, dim=24, mlp_dim=24, embed=4)).eval()
    prime = torch.randint(0, 256, (3, frames[0]))
    generated = model.generate(prime, 48, None, 0.0)
    logits, _ = model(torch.cat([prime, generated], 1))
    assert torch.equal(logits.argmax(-1), generated)


def test_block_codec_dct_is_exact_and_fft_phases_do_not_smear():
    t = np.arange(SR) / SR
    x = 0.4 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 661 * t)
    dct = BlockCodec("dct", 256)
    assert np.max(np.abs(dct.decode(dct.encode(x), len(x)) - x)) < 1e-5
    fft = BlockCodec("fft", 512, griffin_lim_iters=2)
    y = fft.decode(fft.encode(x), len(x))
    m, my = np.abs(np.fft.rfft(x)), np.abs(np.fft.rfft(y))
    top = np.argsort(my)[-2:] * SR / len(x)                   # the two partials come back where they were
    assert sorted(top) == pytest.approx([220, 661], abs=2)
    ref = np.exp(fft.encode(x))
    again = np.exp(fft.encode(y))
    assert np.linalg.norm(again - ref) / np.linalg.norm(ref) < 0.2          # a consistent spectrogram
    random_phase = fft.overlap_add(np.fft.ifftshift(np.fft.irfft(ref * np.exp(2j * np.pi * np.random.default_rng(0)
                                   .random(ref.shape)), n=512, axis=1), axes=1) * fft.window, len(x))
    worse = np.exp(fft.encode(random_phase))
    assert np.linalg.norm(again - ref) < 0.5 * np.linalg.norm(worse - ref)
    assert m.max() > 0


# ------------------------------------------------------------------------------------- spec errors

def _spec(**changes) -> dict:
    data = {"name": "tex", "sources": {"drum": "drum_hits.flac"},
            "engine": {"name": "lstm_vae"}, "texture": {"low": 48, "count": 2, "length": 0.8}}
    data.update(changes)
    return data


@pytest.mark.parametrize("changes, key", [
    ({"engine": {"name": "sampler"}}, "engine.name"),
    ({"keys": {"low": 40, "high": 50}}, "keys"),
    ({"round_robins": 2}, "round_robins"),
    ({"kit": {"low": 36, "grains": 2}}, "kit"),
    ({"wavetables": [{"name": "w", "along": "blend"}]}, "wavetables[0].along"),
    ({"texture": {"low": 126, "count": 4}}, "texture"),
    ({"texture": {"count": 8, "candidates": 4}}, "texture"),
])
def test_texture_spec_errors_name_the_key(changes, key):
    with pytest.raises(SpecError) as error:
        parse_spec(_spec(**changes))
    assert (error.value.key or "").startswith(key) or f"{key}" in str(error.value)


def test_texture_wavetable_needs_a_texture_section():
    data = _spec(wavetables=[{"name": "w", "along": "texture"}])
    del data["texture"]
    data["engine"] = {"name": "sampler"}
    with pytest.raises(SpecError) as error:
        parse_spec(data)
    assert error.value.key == "wavetables[0].along"


# ------------------------------------------------------------------------------------- builds

TINY = {
    "lstm_vae": {"domain": "fft", "max_steps": 300, "lstm_size": 64, "latent_size": 8, "seq_frames": 16,
                 "batch_size": 8, "temperature": 0.5, "preview_every": 150, "preview_seconds": 0.3,
                 "validate_every": 150},
    "samplernn": {"max_steps": 16, "dim": 24, "mlp_dim": 24, "embed": 4, "seq_len": 128, "batch_size": 4,
                  "frame_size": 8, "sub_frame_size": 2, "preview_every": 8, "preview_seconds": 0.2,
                  "validate_every": 8, "temperature": 0.7},
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
