"""Texture engines' pieces: SampleRNN's generator against its training forward pass, the LSTM-VAE's block
codec (exact DCT, FFT phases rebuilt without smearing), and the texture section's spec errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dawexport.engines.lstm_vae.frames import BlockCodec
from dawexport.engines.samplernn.model import SampleRNN, SampleRNNConfig
from dawexport.errors import SpecError
from dawexport.spec import parse_spec

SR = 16000


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


def test_samplernn_generation_after_a_long_prime_matches_the_trained_forward_pass():
    """A prime longer than the top frame: the tiers step through it, then the draws continue it as training
    reads the whole sequence."""
    torch.manual_seed(0)
    model = SampleRNN(SampleRNNConfig(frame_sizes=(8, 2), dim=24, mlp_dim=24, embed=4)).eval()
    prime = torch.randint(0, 256, (3, 8 * 5))
    generated = model.generate(prime, 40, None, 0.0)
    logits, _ = model(torch.cat([prime, generated], 1))
    assert torch.equal(logits[:, 8 * 4:].argmax(-1), generated)
    assert not torch.equal(model.generate(prime[:, -8:], 40, None, 0.0), generated)


def test_samplernn_sampling_draws_from_the_trained_softmax_the_same_on_any_number_of_cores():
    """Each sample is the inverse-CDF draw of its own uniform from the training pass's softmax (at the
    temperature), and splitting the streams between cores changes no sample."""
    from dawexport.engines.samplernn.model import generate_on_cores
    torch.manual_seed(1)
    model = SampleRNN(SampleRNNConfig(frame_sizes=(8, 2), dim=16, mlp_dim=16, embed=4)).eval()
    prime = torch.randint(0, 256, (5, 8))
    uniforms = torch.rand(40, 5, generator=torch.Generator().manual_seed(2))
    drawn = model.generate(prime, 40, uniforms, 0.7)
    logits, _ = model(torch.cat([prime, drawn], 1))
    cdf = torch.softmax(logits.double() / 0.7, -1).cumsum(-1)
    redraw = (cdf <= uniforms.t()[:, :, None].double()).sum(-1).clamp(max=255)
    assert (redraw == drawn).float().mean() > 0.99 and len(set(drawn.flatten().tolist())) > 20
    assert torch.equal(generate_on_cores(model, prime, 40, uniforms, 0.7, cores=2), drawn)
    assert torch.equal(generate_on_cores(model, prime, 40, uniforms, 0.7, cores=3), drawn)


def test_samplernn_loop_runs_as_torchscript_and_draws_what_the_python_loop_draws(monkeypatch):
    """The per-sample loop is one TorchScript call (no Python lock between threads), and compiling it
    changes no draw: the same classes as the loop run op by op in Python, with and without a long prime."""
    from dawexport.engines.samplernn import model as samplernn
    assert isinstance(samplernn._sample_loop_compiled(), torch.jit.ScriptFunction)
    torch.manual_seed(3)
    model = SampleRNN(SampleRNNConfig(frame_sizes=(8, 2), dim=16, mlp_dim=16, embed=4)).eval()
    prime = torch.randint(0, 256, (4, 8 * 3))
    uniforms = torch.rand(60, 4, generator=torch.Generator().manual_seed(4))
    scripted = [model.generate(prime, 60, uniforms, 0.8), model.generate(prime[:, -8:], 60, None, 0.0)]
    monkeypatch.setattr(samplernn, "_sample_loop_compiled", lambda: samplernn._sample_loop)
    python = [model.generate(prime, 60, uniforms, 0.8), model.generate(prime[:, -8:], 60, None, 0.0)]
    assert all(torch.equal(a, b) for a, b in zip(scripted, python))
    assert len(set(scripted[0].flatten().tolist())) > 20


@pytest.mark.parametrize("layers", [1, 2])
def test_lstm_vae_generation_in_the_hidden_size_matches_feeding_frames_back(layers):
    """The generator never forms a frame inside its loop (inp ∘ out folded); it must compute what feeding
    each predicted frame (plus its frame noise) back through the model computes."""
    from dawexport.engines.lstm_vae.model import LSTMVAE, LSTMVAEConfig
    torch.manual_seed(0)
    model = LSTMVAE(LSTMVAEConfig(features=33, hidden=16, latent=4, layers=layers)).eval()
    prime, noise, extra = torch.randn(3, 5, 33), torch.randn(12, 3, 4), 0.3 * torch.randn(3, 12, 33)
    with torch.no_grad():
        mu, logvar, state = model.step(prime)
        mu, logvar, frames = mu[:, -1], logvar[:, -1], []
        for t in range(12):
            frame = model.decode(mu + 0.8 * noise[t] * torch.exp(0.5 * logvar)) + extra[:, t]
            frames.append(frame)
            mu, logvar, state = model.step(frame[:, None], state)
            mu, logvar = mu[:, 0], logvar[:, 0]
    fast = model.generate(prime, 12, noise, 0.8, extra)
    torch.testing.assert_close(fast, torch.stack(frames, 1), atol=1e-5, rtol=1e-4)
    spread = model.residual_spread([torch.randn(2, 9, 33)])
    assert spread.shape == (33,) and bool((spread > 0).all())


def test_lstm_vae_reprimes_from_the_sources_onsets_the_same_in_any_batch():
    """Re-priming finds the onsets of a click train in the encoded sources and starts each segment there; a
    texture does not depend on the other textures generated with it."""
    from dawexport.engines.lstm_vae import LSTMVAEEngine, LSTMVAESettings
    from dawexport.engines.lstm_vae.model import LSTMVAE, LSTMVAEConfig
    sr, every = 22050, 0.25
    x = np.zeros(2 * sr)
    clicks = np.arange(0.1, 1.9, every)
    for c in clicks:
        k = int(c * sr)
        x[k:k + 800] = np.exp(-np.arange(800) / 150) * np.sin(np.arange(800) * 0.3)
    engine = LSTMVAEEngine(LSTMVAESettings(reprime_every=0.3, prime_frames=4, latent_size=4, lstm_size=16),
                           sample_rate=sr, seed=0, device="cpu")
    codec = engine.codec
    feats = codec.encode(x)
    engine.mean, engine.std = feats.mean(0), feats.std(0) + 1e-3
    engine.prime_pool = ((feats - engine.mean) / engine.std).astype(np.float32)
    engine.spread = np.ones(codec.size, np.float32)
    ends = engine._prime_ends(4)
    expected = (clicks * sr + codec.block) / codec.hop          # frames start a block before the audio
    assert len(ends) == len(clicks)
    assert np.all(np.abs(ends - 1 - expected) <= 4)             # the block the click enters
    torch.manual_seed(0)
    engine.model = LSTMVAE(LSTMVAEConfig(codec.size, 16, 1, 4)).eval()
    keys = [("L", k) for k in range(3)]
    together = engine._generate(engine.model, keys, sr)
    alone = engine._generate(engine.model, keys[1:2], sr)
    np.testing.assert_allclose(together[1], alone[0], atol=1e-5)
    engine.settings = LSTMVAESettings(reprime_every=0, prime_frames=4, latent_size=4, lstm_size=16)
    once = engine._generate(engine.model, keys[1:2], sr)[0]
    assert np.max(np.abs(once - alone[0])) > 0.1 * np.max(np.abs(alone[0]))


@pytest.mark.parametrize("prime_seconds", [0.0, 0.03])
def test_samplernn_reprimes_inside_the_sources_attacks_the_same_in_any_batch(prime_seconds):
    from dawexport.engines.samplernn import SampleRNNEngine, SampleRNNSettings
    from dawexport.engines.samplernn.data import quantise
    x = np.zeros(SR)
    clicks = np.arange(0.1, 0.9, 0.2)
    for c in clicks:
        k = int(c * SR)
        x[k:k + 400] = 0.8 * np.exp(-np.arange(400) / 80) * np.sin(np.arange(400) * 0.5)
    settings = SampleRNNSettings(reprime_every=0.1, frame_size=8, sub_frame_size=2, dim=16, mlp_dim=16, embed=4,
                                 prime_seconds=prime_seconds)
    engine = SampleRNNEngine(settings, sample_rate=SR, seed=0, device="cpu")
    engine.prime_pool = quantise([x.astype(np.float32)])[0]
    ends = engine._prime_ends(8)
    assert len(ends) == len(clicks) and np.all(np.abs(ends - clicks * SR) <= 2 * 256)
    torch.manual_seed(0)
    engine.model = SampleRNN(engine.model_config()).eval()
    keys = [("L", k) for k in range(3)]
    together = engine._generate(engine.model, keys, 4000)
    np.testing.assert_array_equal(together[2], engine._generate(engine.model, keys[2:], 4000)[0])


def test_samplernn_draws_every_segment_of_every_texture_at_once_as_segment_by_segment(monkeypatch):
    """A re-primed texture is one stream per segment, and `_generate` draws all segments of all textures in
    one batch (rows = textures × segments, split between the cores and into calls of at most ROWS_PER_CORE a
    core): the same classes as drawing each segment's streams alone, as the generator did before, on the
    default model's sizes."""
    from dawexport.engines.samplernn import SampleRNNEngine, SampleRNNSettings
    from dawexport.engines.samplernn import engine as samplernn_engine
    from dawexport.engines.samplernn.model import generate_on_cores
    from dawexport.engines.wavenet.model import mu_law_decode
    settings = SampleRNNSettings(reprime_every=0.02, prime_seconds=0.01, temperature=0.8)
    engine = SampleRNNEngine(settings, sample_rate=SR, seed=0, device="cpu")
    engine.prime_pool = np.random.default_rng(5).integers(0, 256, SR).astype(np.uint8)
    torch.manual_seed(0)
    engine.model = SampleRNN(engine.model_config()).eval()
    keys, n = [("L", k) for k in range(5)], 1200
    segments, primes, uniforms = engine._segments(engine.model.config.top, keys, n)
    assert [length for _, length in segments] == [320, 320, 320, 240] and primes.shape[:2] == (4, 5)
    alone = torch.cat([generate_on_cores(engine.model, torch.from_numpy(primes[k]), length,
                                         torch.from_numpy(uniforms[t:t + length]), 0.8, cores=2)
                       for k, (t, length) in enumerate(segments)], 1)
    expected = mu_law_decode(alone.numpy())
    assert len(set(alone.flatten().tolist())) > 20
    np.testing.assert_array_equal(np.stack(engine._generate(engine.model, keys, n)), expected)
    monkeypatch.setattr(samplernn_engine, "ROWS_PER_CORE", 4)     # 15 rows of 320 samples: calls of 8 and 7
    np.testing.assert_array_equal(np.stack(engine._generate(engine.model, keys, n)), expected)


def test_primed_once_textures_are_left_to_run_among_re_primed_ones():
    """With `primed_once`, every n-th texture (by variation) skips re-priming: those are the model's own
    long runs (hums for a wavetable), the others are re-primed, each the same as when generated alone."""
    from dawexport.engines.base import TextureRequest
    from dawexport.engines.samplernn import SampleRNNEngine, SampleRNNSettings
    from dawexport.engines.samplernn.data import quantise
    x = np.zeros(SR)
    for c in np.arange(0.1, 0.9, 0.2):
        k = int(c * SR)
        x[k:k + 400] = 0.8 * np.exp(-np.arange(400) / 80) * np.sin(np.arange(400) * 0.5)
    settings = SampleRNNSettings(reprime_every=0.05, primed_once=0.5, frame_size=8, sub_frame_size=2, dim=16,
                                 mlp_dim=16, embed=4, temperature=0.8, render_batch=3, prime_seconds=0)
    engine = SampleRNNEngine(settings, sample_rate=SR, seed=0, device="cpu")
    engine.prime_pool = quantise([x.astype(np.float32)])[0]
    torch.manual_seed(0)
    engine.model = SampleRNN(engine.model_config()).eval()
    textures = engine.render_textures([TextureRequest("L", 0.2, k) for k in range(4)])
    for k, texture in enumerate(textures):
        reprimed = engine._generate(engine.model, [("L", k)], 3200, reprime=True)[0]
        once = engine._generate(engine.model, [("L", k)], 3200, reprime=False)[0]
        assert not np.array_equal(reprimed, once)
        np.testing.assert_array_equal(texture, once if k % 2 else reprimed)


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


def test_a_texture_engine_needs_a_texture_section():
    data = _spec()
    del data["texture"]
    with pytest.raises(SpecError) as error:
        parse_spec(data)
    assert error.value.key == "texture" and "texture:" in error.value.fix


def test_texture_wavetable_needs_a_texture_section():
    data = _spec(wavetables=[{"name": "w", "along": "texture"}])
    del data["texture"]
    data["engine"] = {"name": "sampler"}
    with pytest.raises(SpecError) as error:
        parse_spec(data)
    assert error.value.key == "wavetables[0].along"
