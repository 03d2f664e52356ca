"""The `wavenet` engine: mu-law, the encoder's latent rate, fast generation against teacher forcing, overfitting
a periodic note, blending corners, save/load, and an end-to-end build played in sfizz.

Every model here is tiny (width 16-32, one stack of 6 layers) and trains for at most a few hundred steps on one
torch thread, so the file runs in well under a minute on a busy 2-core machine.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from dawexport.audio.analysis import PitchEstimate, estimate_pitch
from dawexport.audio.resample import resample
from dawexport.engines import ENGINES, engine_class
from dawexport.engines.base import Clip, Corpus, RenderRequest
from dawexport.engines.wavenet import WaveNetEngine, WaveNetSettings
from dawexport.engines.wavenet.data import shifts_for
from dawexport.engines.wavenet.generator import FastGenerator, naive_generate
from dawexport.engines.wavenet.latents import attack_and_sustain, held_latents, release_mix
from dawexport.engines.wavenet.model import (
    SILENCE_CLASS,
    WaveNetAutoencoder,
    WaveNetConfig,
    mu_law_compand,
    mu_law_decode,
    mu_law_encode,
    shift_right,
    to_audio,
    to_classes,
)
from dawexport.errors import EngineError

REPO = Path(__file__).resolve().parents[2]
SR = 16000
TINY_NET = dict(width=24, stacks=1, layers=6, encoder_width=16, encoder_layers=3, encoder_cycle=3, hop=128,
                guide="none")
TINY_GUIDE = dict(guide="ddsp", guide_steps=60, guide_settings=dict(
    latent_size=4, hidden_size=24, n_harmonics=16, noise_bands=9, n_mels=16, table_size=256, batch_size=4,
    crop_s=0.2, augment_copies=2, checkpoint_every=1000, validate_every=1000, lr=5e-3))


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and lose a lot to them on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def periodic(period: int, seconds: float, amp: float = 0.45, phase: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR))
    x = amp * np.sin(2 * np.pi * t / period) + 0.4 * amp * np.sin(4 * np.pi * t / period + phase)
    x[:80] *= np.linspace(0.0, 1.0, 80)
    return x.astype(np.float32)


def corpus_of(**tones: tuple[np.ndarray, float]) -> Corpus:
    clips = tuple(Clip(name, "mono", 0, audio, PitchEstimate(440 * 2 ** ((midi - 69) / 12), midi, 1.0, 1.0))
                  for name, (audio, midi) in tones.items())
    return Corpus(SR, ("mono",), clips)


def random_model(seed: int = 0, **changes) -> WaveNetAutoencoder:
    """A tiny untrained model with weights large enough that every path matters."""
    torch.manual_seed(seed)
    cfg = dict(width=16, skip=24, stacks=2, layers=5, enc_width=8, enc_layers=3, enc_cycle=3, hop=64)
    cfg.update(changes)
    model = WaveNetAutoencoder(WaveNetConfig(**cfg)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


# --------------------------------------------------------------------------- mu-law and the encoder

def test_mu_law_round_trip():
    q = np.arange(256)
    assert np.array_equal(mu_law_encode(mu_law_decode(q)), q)                  # exact at the bin centres
    assert torch.equal(mu_law_encode(mu_law_decode(torch.arange(256))), torch.arange(256))
    assert mu_law_encode(0.0) == SILENCE_CLASS and abs(float(mu_law_decode(SILENCE_CLASS))) < 1e-4
    assert mu_law_encode(-1.0) == 0 and mu_law_encode(1.0) == 255 and mu_law_encode(3.0) == 255
    x = np.random.default_rng(0).uniform(-1, 1, 10000)
    y = mu_law_decode(mu_law_encode(x))
    # the error is at most half a bin in the companded domain; bins are finest near zero (mu-law's point)
    assert np.max(np.abs(mu_law_compand(y) - mu_law_compand(x))) <= 1 / 255 + 1e-6
    edges = mu_law_decode(np.arange(256))
    assert np.max(np.abs(y - x)) <= np.max(np.diff(edges))
    small = np.abs(x) < 0.01
    assert np.max(np.abs(y - x)[small]) < 3e-4
    assert np.array_equal(mu_law_encode(torch.from_numpy(x)).numpy(), mu_law_encode(x))
    assert np.all(np.diff(edges) > 0)


def test_encoder_latent_rate_is_sample_rate_over_hop():
    model = WaveNetAutoencoder(WaveNetConfig(width=8, skip=8, stacks=1, layers=2, enc_width=8, enc_layers=2))
    with torch.no_grad():
        z = model.encoder(torch.zeros(2, 2 * SR))                # 2 s at 16 kHz, hop 512
    assert z.shape == (2, 2 * SR // 512 + 1, 16)                # ceil(32000 / 512) = 63 frames
    with torch.no_grad():
        z = model.encoder(torch.zeros(1, 512 * 40))
    assert z.shape[1] / (512 * 40 / SR) == SR / 512 == 31.25     # latents per second
    small = random_model()
    with torch.no_grad():
        assert small.encoder(torch.zeros(1, 64 * 10)).shape == (1, 10, 16)
        assert small.encoder(torch.zeros(1, 64 * 10 + 1)).shape == (1, 11, 16)


# --------------------------------------------------------------------------- fast generation

GUIDES = {"latent only": {}, "guided": dict(guide_features=3),
          "guided, prior": dict(guide_features=3, guide_prior=True),
          "guided, prior, residual": dict(guide_features=3, guide_prior=True, residual_scale=0.25)}


@pytest.mark.parametrize("guide", sorted(GUIDES))
def test_fast_generation_equals_teacher_forced_logits(guide):
    model = random_model(**GUIDES[guide])
    b, t = 3, 700                                              # 11 latent frames, several receptive fields
    hop = model.config.hop
    q = torch.randint(0, 256, (b, t), generator=torch.Generator().manual_seed(1))
    z = torch.randn(b, -(-t // hop), 16)
    cond = model.conditioning(z, torch.tensor([48.0, 60.5, 77.0]))
    wave = 0.5 * torch.randn(t, b, generator=torch.Generator().manual_seed(5)) if GUIDES[guide] else None
    ahead = torch.nn.functional.pad(wave.t(), (0, 1)) if wave is not None else None     # (B, T + 1)
    with torch.no_grad():
        teacher = model.decoder(shift_right(q), cond, ahead)   # (B, 256, T)
    gen = FastGenerator(model.decoder, batch=b)
    _, fast = gen.generate(cond, t, guide=wave, forced=q.t(), return_logits=True)
    fast = fast.permute(2, 1, 0)
    scale = float(teacher.abs().max())
    assert scale > 1.0
    assert torch.allclose(fast, teacher, atol=1e-4 * scale, rtol=1e-4)

    # sampled generation: teacher-forcing its own output gives back the logits it sampled from
    uniforms = torch.rand(t, b, generator=torch.Generator().manual_seed(2))
    sampled = gen.generate(cond, t, uniforms, guide=wave)
    with torch.no_grad():
        again = model.decoder(shift_right(sampled.t()), cond, ahead)
    _, fast_again = gen.generate(cond, t, guide=wave, forced=sampled, return_logits=True)
    assert torch.allclose(fast_again.permute(2, 1, 0), again, atol=1e-4 * scale, rtol=1e-4)
    cdf = torch.softmax(again.double(), dim=1).cumsum(1)                      # (B, 256, T)
    redraw = (cdf < uniforms.t()[:, None, :].double()).sum(1).clamp(max=255)
    assert (redraw == sampled.t()).float().mean() > 0.99
    assert len(torch.unique(sampled)) > 10                                    # it really sampled


@pytest.mark.parametrize("guide", sorted(GUIDES))
def test_fast_generation_matches_the_full_convolution_sampler(guide):
    model = random_model(3, stacks=1, layers=4, hop=32, **GUIDES[guide])
    cond = model.conditioning(torch.randn(2, 8, 16), torch.tensor([60.0, 64.0]))
    wave = 0.3 * torch.randn(200, 2, generator=torch.Generator().manual_seed(6)) if GUIDES[guide] else None
    uniforms = torch.rand(200, 2, generator=torch.Generator().manual_seed(4))
    fast = FastGenerator(model.decoder, batch=2).generate(cond, 200, uniforms, guide=wave)
    slow = naive_generate(model.decoder, cond, 200, uniforms, guide=wave)
    assert torch.equal(fast, slow)
    greedy = FastGenerator(model.decoder, batch=2, temperature=0).generate(
        cond, 100, guide=wave[:100] if wave is not None else None)
    assert torch.equal(greedy, naive_generate(model.decoder, cond, 100, temperature=0,
                                              guide=wave[:100] if wave is not None else None))


def test_residual_coding_puts_the_quantisation_floor_under_the_difference():
    t = np.arange(SR) / SR
    guide = 0.3 * np.sin(2 * np.pi * 220 * t)
    note = guide + 0.003 * np.sin(2 * np.pi * 3000 * t)            # a quiet partial the guide misses
    rms = lambda x: float(np.sqrt(np.mean(np.square(x))))           # noqa: E731
    waveform_error = rms(note - mu_law_decode(mu_law_encode(note)))
    residual_error = rms(note - to_audio(to_classes(note, guide, 0.25), guide, 0.25))
    assert waveform_error > 0.003 / 3                               # 8-bit mu-law of the note buries the partial
    assert residual_error < waveform_error / 30                     # coding the difference keeps it clear
    model = random_model(guide_features=3, guide_prior=True, residual_scale=0.25)
    assert model.config.residual
    audio = torch.from_numpy(note[:512].astype(np.float32))[None]
    wave = torch.from_numpy(guide[:513].astype(np.float32))[None]
    assert torch.equal(model.targets(audio, wave), to_classes(audio, wave[:, :512], 0.25))


def test_queue_memory_per_voice():
    cfg = WaveNetConfig(width=64)
    assert cfg.queue_floats_per_voice() == 64 * sum(2 * 2 ** i + 1 for i in range(10)) * 2
    gen = FastGenerator(WaveNetAutoencoder(WaveNetConfig(width=16, skip=16, stacks=1, layers=3)).decoder, batch=5)
    assert sum(q.numel() for q in gen.queues) == 5 * gen.config.queue_floats_per_voice()


# --------------------------------------------------------------------------- the engine

def tiny_settings(**changes) -> WaveNetSettings:
    values = dict(TINY_NET, max_steps=300, max_minutes=2, batch_size=4, crop_samples=512, lr=3e-3,
                  validate_every=100, checkpoint_every=1000, gain_augment_db=0.0, threads=1,
                  augment_low=67, augment_high=67, attack_s=0.0, crossfade_s=0.0)
    values.update(changes)
    return WaveNetSettings(**values)


def test_registry_and_settings():
    assert ENGINES["wavenet"] == "dawexport.engines.wavenet:WaveNetEngine"
    cls = engine_class("wavenet")
    assert cls.capabilities.default_rate == 16000 and cls.capabilities.blendable
    with pytest.raises(ValueError):
        WaveNetSettings(pitch_conditioning=False, pitch_mode="conditioning")
    with pytest.raises(ValueError):
        WaveNetSettings(nonsense=1)
    with pytest.raises(ValueError, match="guide_settings"):
        WaveNetSettings(guide_settings={"hiden": 3})              # the guide's settings are the ddsp engine's
    assert WaveNetSettings().guide == "ddsp" and WaveNetSettings().max_steps < 1500
    shifts = shifts_for(66.9, WaveNetSettings(augment_low=60, augment_high=70))
    assert shifts == [float(k) for k in range(-6, 4)]            # 60.9 … 69.9, and the source itself
    assert shifts_for(66.9, WaveNetSettings(augment_low=20, augment_high=100, max_shift=12)) == \
        [float(k) for k in range(-12, 13)]


def test_latent_sequence_helpers():
    loud = np.array([-60.0, -20.0, -1.0, 0.0, -2.0, -5.0, -30.0, -50.0])
    a, e = attack_and_sustain(loud, attack_frames=10, sustain_db=12)
    assert (a, e) == (2, 6)
    lat = np.arange(8, dtype=np.float64)[:, None] * np.ones((1, 3))
    seq = held_latents(lat, loud, 12, attack_frames=10, sustain_db=12, crossfade_frames=0)
    assert np.allclose(seq[:2], lat[:2]) and np.allclose(seq[2:], lat[2:6].mean(axis=0))
    mix = release_mix(10, 100, 1000, duration_s=0.5, release_s=0.3)
    assert np.all(mix[:4] == 0) and mix[-1] == 1 and np.all(np.diff(mix) >= 0)


def test_tiny_model_overfits_a_periodic_note_and_generation_keeps_its_period(tmp_path):
    period = 40                                                 # 400 Hz at 16 kHz
    engine = WaveNetEngine(tiny_settings(), sample_rate=SR, seed=0, device="cpu")
    engine.fit(corpus_of(tone=(periodic(period, 0.3), 67.0)), tmp_path / "work", None)
    assert engine.train_result.best_val < 0.5                   # nats per sample (log 256 = 5.5 untrained)
    [take] = engine.render([RenderRequest((("tone", 1.0),), "mono", 67, 127, 0.3, 0.05)])
    assert take.shape == (int(0.35 * SR),) and np.all(np.isfinite(take))
    y = take[1000:4000].astype(np.float64)
    y -= y.mean()
    assert np.sqrt(np.mean(y ** 2)) > 0.1                       # it plays, not silence
    ac = np.correlate(y, y, "full")[len(y) - 1:]
    ac /= ac[0]
    lag = 20 + int(np.argmax(ac[20:200]))
    assert abs(lag - period) <= 1 and ac[lag] > 0.8
    assert np.max(np.abs(take[-40:])) < 1e-3                    # the release ends in silence


@pytest.fixture(scope="module")
def blend_engine(tmp_path_factory):
    """Two sources, briefly trained (the blend's algebra does not depend on how well)."""
    work = tmp_path_factory.mktemp("wavenet-blend")
    engine = WaveNetEngine(tiny_settings(max_steps=10, attack_s=0.05, crossfade_s=0.03), sample_rate=SR,
                           seed=3, device="cpu")
    engine.fit(corpus_of(a=(periodic(40, 0.3), 67.0), b=(periodic(27, 0.25, amp=0.3, phase=2.0), 74.0)),
               work / "train", None)
    return engine, work


def test_blend_weights_one_and_zero_reproduce_the_corners(blend_engine):
    engine, _ = blend_engine
    n_frames = 30

    def req(weights, note=70, velocity=100):
        return RenderRequest(weights, "mono", note, velocity, 0.2, 0.05)

    za = engine.request_latents(req((("a", 1.0),)), n_frames)
    zb = engine.request_latents(req((("b", 1.0),)), n_frames)
    assert np.array_equal(engine.request_latents(req((("a", 1.0), ("b", 0.0))), n_frames), za)
    assert np.array_equal(engine.request_latents(req((("a", 0.0), ("b", 1.0))), n_frames), zb)
    assert np.allclose(engine.request_latents(req((("a", 0.5), ("b", 0.5))), n_frames), (za + zb) / 2)
    assert not np.allclose(za, zb)

    corners = engine.render([req((("a", 1.0), ("b", 0.0))), req((("a", 0.0), ("b", 1.0)))])
    alone = engine.render([req((("a", 1.0),)), req((("b", 1.0),))])
    assert np.array_equal(corners[0], alone[0]) and np.array_equal(corners[1], alone[1])
    assert not np.array_equal(alone[0], alone[1])
    # round robins sample differently; the same request is reproducible
    rr = engine.render([RenderRequest((("a", 1.0),), "mono", 70, 100, 0.2, 0.05, variation=1),
                        req((("a", 1.0),))])
    assert not np.array_equal(rr[0], rr[1]) and np.array_equal(rr[1], alone[0])


def test_save_load_renders_identically_and_refuses_foreign_files(blend_engine):
    engine, work = blend_engine
    engine.save(work / "model")
    again = WaveNetEngine(engine.settings, sample_rate=SR, seed=3, device="cpu")
    again.load(work / "model")
    request = RenderRequest((("a", 0.3), ("b", 0.7)), "mono", 62, 64, 0.15, 0.05)
    assert np.array_equal(engine.render([request])[0], again.render([request])[0])
    with pytest.raises(EngineError):
        WaveNetEngine(engine.settings, sample_rate=22050, seed=3).load(work / "model")
    with pytest.raises(EngineError):
        WaveNetEngine(engine.settings, sample_rate=SR).render([request])


def test_pitch_conditioning_mode_renders(blend_engine):
    engine, work = blend_engine
    other = WaveNetEngine(engine.settings.model_copy(update={"pitch_mode": "conditioning"}), sample_rate=SR,
                          seed=3, device="cpu")
    engine.save(work / "model-cond")
    other.load(work / "model-cond")
    [take] = other.render([RenderRequest((("a", 1.0),), "mono", 60, 127, 0.1, 0.05)])
    assert take.shape == (int(0.15 * SR),) and np.all(np.isfinite(take))


# --------------------------------------------------------------------------- the guide (issue 16)

class FixedGuide:
    """Stands in for the ddsp guide: plays one given waveform (at `rate`) for every request."""

    def __init__(self, wave: np.ndarray, rate: int = SR):
        self.wave, self.rate = wave, rate

    def render(self, requests, progress=None):
        return [self.wave[:int(round((r.duration_s + r.release_s) * self.rate))] for r in requests]


@pytest.fixture(scope="module")
def guided_engine(tmp_path_factory):
    """A tiny WaveNet refining a tiny ddsp guide, both trained briefly on one pitched tone."""
    work = tmp_path_factory.mktemp("wavenet-guided")
    engine = WaveNetEngine(tiny_settings(**TINY_GUIDE, max_steps=150, crop_samples=1024, gain_augment_db=18.0),
                           sample_rate=SR,
                           seed=0, device="cpu")
    engine.fit(corpus_of(tone=(periodic(40, 0.8), 67.0)), work / "train", None)
    return engine, work


def test_a_guided_model_follows_its_guide_and_the_guide_steers_it(guided_engine):
    engine, _ = guided_engine
    assert engine.model.config.guide_features == 3 and engine.training["guide"]["steps"] == 60
    assert engine.model.config.residual               # by default it codes the difference from the guide
    request = RenderRequest((("tone", 1.0),), "mono", 64, 127, 0.5, 0.1)
    [take] = engine.render([request])
    [guide] = engine.guide.render([request])
    assert take.shape == guide.shape == (int(0.6 * SR),) and np.all(np.isfinite(take))
    held = slice(1000, 7000)
    assert np.sqrt(np.mean(take[held] ** 2)) > 0.1 * np.sqrt(np.mean(guide[held] ** 2))   # it plays
    assert np.max(np.abs(take[-40:])) < 1e-3                                # the release ends in silence

    # the guide drives it: tones at MIDI 64 and 71 (never trained on) play 64 and 71, silence plays silence
    t = np.arange(SR) / SR
    trained, heard = engine.guide, {}
    try:
        for midi in (64, 71):
            engine.guide = FixedGuide((0.2 * np.sin(2 * np.pi * 440 * 2 ** ((midi - 69) / 12) * t)).astype(np.float32))
            [heard[midi]] = engine.render([request])
        engine.guide = FixedGuide(np.zeros(SR, np.float32))
        [hushed] = engine.render([request])
    finally:
        engine.guide = trained
    for midi, steered in heard.items():
        assert abs(estimate_pitch(steered, SR).midi - midi) < 0.25, midi
    assert np.sqrt(np.mean(hushed[held] ** 2)) < 0.1 * np.sqrt(np.mean(heard[64][held] ** 2))


def band_db(x: np.ndarray, rate: int, lo: float, hi: float) -> float:
    """Power of x between lo and hi Hz, in dB (Hann-windowed spectrum; comparable between signals of one length)."""
    spectrum = np.abs(np.fft.rfft(np.asarray(x, np.float64) * np.hanning(len(x)))) ** 2
    hz = np.fft.rfftfreq(len(x), 1 / rate)
    return 10 * np.log10(spectrum[(hz >= lo) & (hz < hi)].sum() + 1e-30)


def test_the_high_band_comes_from_the_guide_and_none_leaves_it_empty(guided_engine):
    """high_band: guide — the guide renders at the output rate and plays above the crossover, the WaveNet (fed the
    guide at 16 kHz) below it; high_band: none — 16 kHz takes, which the resampler takes to 44.1 kHz with nothing
    above 8 kHz."""
    engine, _ = guided_engine
    out = 44100
    hot = engine.settings.model_copy(update={"temperature": 1.0})     # it strays from its guide: tell them apart
    wide = WaveNetEngine(hot, sample_rate=SR, seed=0, device="cpu", output_rate=out)
    narrow = WaveNetEngine(hot.model_copy(update={"high_band": "none"}), sample_rate=SR, seed=0, device="cpu",
                           output_rate=out)
    assert wide.high_band and (wide.corpus_rate, wide.take_rate, wide.guide_engine().sample_rate) == (out,) * 3
    assert not narrow.high_band and (narrow.corpus_rate, narrow.take_rate) == (SR, SR)
    assert narrow.guide_engine().sample_rate == SR
    assert wide.cache_key(corpus_of(tone=(periodic(40, 0.3), 67.0))) != \
        narrow.cache_key(corpus_of(tone=(periodic(40, 0.3), 67.0)))
    for other in (wide, narrow):                                   # the trained WaveNet, a stand-in guide
        other.model, other.clips = engine.model, engine.clips
        other.silence_latent, other.velocity_direction = engine.silence_latent, engine.velocity_direction
    t = np.arange(out) / out
    full = 0.2 * np.sin(2 * np.pi * 440 * t) + 0.02 * np.random.default_rng(1).standard_normal(out)
    full = full.astype(np.float32)                                  # a tone over a full-band noise floor
    wide.guide = FixedGuide(full, out)
    narrow.guide = FixedGuide(resample(full, out, SR))
    request = RenderRequest((("tone", 1.0),), "mono", 69, 127, 0.5, 0.1)
    [take] = wide.render([request])
    [low] = narrow.render([request])
    assert take.shape == (int(0.6 * out),) and low.shape == (int(0.6 * SR),)
    # none: the resampler alone adds nothing above the WaveNet's 8 kHz
    up = resample(low, SR, out)[:len(take)]
    assert band_db(up, out, 8500, 20000) < band_db(up, out, 40, 8000) - 80
    # guide: above the crossover (7.2 kHz) the take is the guide's band, as loud as in the guide
    held = slice(int(0.05 * out), int(0.45 * out))
    assert abs(band_db(take[held], out, 8500, 20000) - band_db(full[held], out, 8500, 20000)) < 0.5
    assert band_db(take[held] - full[held], out, 7300, 20000) < band_db(full[held], out, 7300, 20000) - 60
    # below it (6.4 kHz) the take is the WaveNet's: the 16 kHz take resampled, not the guide
    assert band_db(take[held] - up[held], out, 40, 6300) < band_db(up[held], out, 40, 6300) - 60
    assert band_db(take[held] - full[held], out, 40, 6300) > band_db(full[held], out, 40, 6300) - 45


def test_a_guided_model_saves_its_guide_beside_it(guided_engine):
    engine, work = guided_engine
    engine.save(work / "model")
    assert (work / "model" / "ddsp.safetensors").exists()
    again = WaveNetEngine(engine.settings, sample_rate=SR, seed=0, device="cpu")
    again.load(work / "model")
    request = RenderRequest((("tone", 1.0),), "mono", 70, 90, 0.2, 0.05)
    assert np.array_equal(engine.render([request])[0], again.render([request])[0])
    (work / "model" / "ddsp.safetensors").unlink()
    with pytest.raises(EngineError):
        WaveNetEngine(engine.settings, sample_rate=SR, seed=0, device="cpu").load(work / "model")
    engine.save(work / "model")


# --------------------------------------------------------------------------- end to end

def test_build_plays_in_sfizz_with_the_guides_high_band_at_44_1_khz(tmp_path):
    """A guided model built into an instrument (high_band: guide, the default): 44.1 kHz samples, the WaveNet's
    16 kHz takes resampled below the crossover and the guide's band above it, at the pitch of their keys."""
    import soundfile as sf
    from support.players import render_sfizz, rms_db, sfizz_synth, sfzlint_errors

    from dawexport.pipeline import build

    shutil.copy(REPO / "instruments" / "sounds" / "flute.wav", tmp_path / "flute.wav")
    settings = dict(TINY_NET, **TINY_GUIDE, width=16, max_steps=40, batch_size=2, crop_samples=512, threads=1,
                    augment_low=66, augment_high=68, validate_every=40, gain_augment_db=18.0)
    spec = {"name": "wn", "sources": {"flute": "flute.wav"},
            "engine": {"name": "wavenet", "settings": settings},
            "blend": {"corners": ["flute"]},
            "keys": {"low": "G4", "high": "A#4", "every": 3}, "velocity_layers": 1,
            "note": {"length": 0.5, "release": 0.1}, "loop": "none",
            "output": {"formats": ["sfz"], "dir": "out/wn", "sample_rate": 44100}}
    path = tmp_path / "wn.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = build(path, quiet=True)
    sfz = result.folder / "wn.sfz"
    text = sfz.read_text()
    assert text.count("sample=") == 2                           # 1 blend point × 2 zones × 1 layer
    assert sfzlint_errors(sfz) == []
    samples = sorted((result.folder / "samples").glob("*.wav"))
    assert len(samples) == 2
    for wav in samples:
        audio, rate = sf.read(str(wav), always_2d=True)
        assert rate == 44100
        x = audio.mean(axis=1)
        power = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
        hz = np.fft.rfftfreq(len(x), 1 / rate)
        above = power[hz > 8500].sum() / power.sum()
        # the guide's high band is there, at about the flute's own share (8e-5 above 8.5 kHz); the WaveNet's
        # 16 kHz take through the resampler alone has < 1e-8 there (see the test above)
        assert 2e-5 < above < 1e-3, (wav.name, above)
    synth = sfizz_synth(sfz)
    for note in (67, 70):
        audio = render_sfizz(synth, note, 127, hold_s=0.4, total_s=0.6)
        assert audio.shape[0] == 2 and np.all(np.isfinite(audio))
        assert rms_db(audio) > -60.0                            # it sounds
        assert abs(estimate_pitch(audio.mean(axis=0), 44100).midi - note) < 0.5, note     # at its key
    assert rms_db(render_sfizz(synth, 90, 127, hold_s=0.3, total_s=0.5)) < -100   # outside the key range
