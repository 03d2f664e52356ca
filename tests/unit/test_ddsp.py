"""The `ddsp` engine: its DSP, a tiny model that trains in seconds, rendering, safe files and real resume."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import torch

from dawexport.audio.analysis import PitchEstimate, estimate_pitch, f0_track, hz_to_midi, midi_to_hz, rms_db
from dawexport.engines import engine_class
from dawexport.engines.base import Clip, Corpus, RenderRequest
from dawexport.audio.resample import resample
from dawexport.audio.spectral import pitch_shift, restore_envelope, time_stretch
from dawexport.engines.common.envelopes import note_envelope
from dawexport.engines.common.persistence import load_tensors
from dawexport.engines.common.training import CHECKPOINT
from dawexport.engines.common.velocity import velocity_db
from dawexport.engines.ddsp import DDSPEngine, DDSPSettings
from dawexport.engines.ddsp.model import (additive_reference, exp_sigmoid, fft_convolve, fft_sizes,
                                          filtered_noise, harmonic_amplitudes, harmonic_synth, hz_to_mel,
                                          multi_resolution_stft_loss, oscillator_phase)
from dawexport.errors import EngineError
from dawexport.progress import SILENT

REPO = Path(__file__).resolve().parents[2]

# A model small enough to learn a note in a few seconds on two CPU cores.
TINY = dict(latent_size=4, hidden_size=32, n_harmonics=20, noise_bands=17, n_mels=24, table_size=256,
            max_steps=150, max_minutes=None, batch_size=4, crop_s=0.4, lr=4e-3, checkpoint_every=50,
            validate_every=25, augment_copies=2, pitch_shift_semitones=3.0, threads=1)
SR = 16000


def tone(f0: float, seconds: float, sr: int, *, bright: float = 0.5, amp: float = 0.5, vibrato: float = 0.0,
         top_hz: float | None = None, breath: float = 0.01, seed: int = 0) -> np.ndarray:
    """A harmonic note with an attack and a decay; harmonics k have amplitude bright**(k-1) (or 1/k if
    bright is None) up to top_hz; `vibrato` cents at 5 Hz."""
    t = np.arange(int(seconds * sr)) / sr
    freq = f0 * 2 ** (vibrato * np.sin(2 * np.pi * 5 * t) / 1200)
    phase = 2 * np.pi * np.cumsum(freq) / sr
    top = top_hz or 0.45 * sr
    x = np.zeros_like(t)
    k = 1
    while k * f0 * 2 ** (abs(vibrato) / 1200) < top:
        x += (1.0 / k if bright is None else bright ** (k - 1)) * np.sin(k * phase)
        k += 1
    env = np.minimum(t / 0.04, 1.0) * np.exp(-0.6 * t)
    x = amp * env * x / np.max(np.abs(x))
    x += breath * env * np.random.default_rng(seed).standard_normal(len(t))
    return x.astype(np.float32)


def clip(source, channel, audio, sr, take=0):
    return Clip(source, channel, take, audio, estimate_pitch(audio, sr))


def tiny_corpus() -> Corpus:
    """'dark' at 220 Hz panned left (R is 6 dB down with its own breath); 'bright' at 330 Hz with vibrato,
    mono, feeding both sides (as the pipeline does for a mono source in a stereo instrument)."""
    dark_l = tone(220.0, 1.0, SR, bright=0.3)
    dark_r = (0.5 * tone(220.0, 1.0, SR, bright=0.3, seed=1)).astype(np.float32)
    bright = tone(330.0, 1.0, SR, bright=0.8, vibrato=30.0, seed=2)
    return Corpus(SR, ("L", "R"), (clip("dark", "L", dark_l, SR), clip("dark", "R", dark_r, SR),
                                   clip("bright", "L", bright, SR), clip("bright", "R", bright, SR)))


def request(weights, channel="L", note=60, velocity=127, duration=0.6, release=0.2, variation=0):
    return RenderRequest(tuple(weights.items()), channel, note, velocity, duration, release, variation)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny model shared by the rendering tests (trains in a few seconds), saved and reloaded."""
    folder = tmp_path_factory.mktemp("ddsp")
    engine = DDSPEngine(DDSPSettings(**TINY), sample_rate=SR, seed=0, device="cpu")
    corpus = tiny_corpus()
    engine.fit(corpus, folder / "work", SILENT)
    engine.save(folder / "model")
    return engine, corpus, folder


def cents_off(audio, sr, note):
    est = estimate_pitch(audio, sr)
    return 100 * (est.midi - note)


def hf_db(x, sr, cutoff=8000.0):
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / sr)
    return 10 * np.log10(spec[freqs > cutoff].sum() / spec.sum())


# --------------------------------------------------------------------------- the engine's declaration

def test_registered_with_its_capabilities():
    cls = engine_class("ddsp")
    assert cls is DDSPEngine and cls.name == "ddsp"
    caps = cls.capabilities
    assert caps.pitched and caps.blendable and caps.trainable
    assert caps.native_rates == (16000, 22050, 32000, 44100, 48000) and caps.default_rate == 44100
    assert caps.batch_invariant      # render_blocks: a cluster may shard its renders (test_reproducible proves it)


def test_settings_have_small_defaults_and_refuse_nonsense():
    s = DDSPSettings()
    assert s.latent_size == 16 and 128 <= s.hidden_size <= 256 and 64 <= s.n_harmonics <= 100
    assert s.noise_bands == 65 and s.contour == "source" and s.reverb is False
    assert s.max_steps == 1200 and s.max_minutes is None and s.threads == 2     # a step stop: reproducible
    with pytest.raises(ValueError):
        DDSPSettings(hidden=12)                            # unknown key
    with pytest.raises(ValueError, match="table_size"):
        DDSPSettings(n_harmonics=200, table_size=256)
    with pytest.raises(EngineError, match="11025"):
        DDSPEngine(DDSPSettings(), sample_rate=11025)


def test_cache_key_follows_settings_and_corpus():
    corpus = tiny_corpus()
    a = DDSPEngine(DDSPSettings(**TINY), sample_rate=SR)
    b = DDSPEngine(DDSPSettings(**{**TINY, "hidden_size": 40}), sample_rate=SR)
    assert a.cache_key(corpus) == DDSPEngine(DDSPSettings(**TINY), sample_rate=SR, device="cpu").cache_key(corpus)
    assert a.cache_key(corpus) != b.cache_key(corpus)


REMOVED = {"envelope_read": "band", "top_weight": 0.0, "top_hz": 4000.0, "top_peaks": False, "noise_pitch_law": 0.0}


def test_removed_settings_are_dropped_at_the_value_that_remains_and_refused_otherwise():
    """`envelope_read`, the top term's three settings and `noise_pitch_law` were removed: named at the value
    every model had unless asked otherwise they change nothing; any other value is refused, naming the key and why."""
    assert DDSPSettings(**{**TINY, **REMOVED, "top_hz": 4000}) == DDSPSettings(**TINY)
    for key, value in (("envelope_read", "point"), ("top_weight", 2.0), ("top_hz", 6000.0), ("top_peaks", True),
                       ("noise_pitch_law", 6.0)):
        with pytest.raises(ValueError, match=f"{key}: .* is no longer available: .*removed"):
            DDSPSettings(**{key: value})
    assert not set(REMOVED) & set(DDSPSettings.model_fields)


def test_models_cached_before_the_removal_keep_their_cache_key():
    """The settings as they were (the removed ones declared, at their defaults) and as they are give one cache
    and one render key, so a default model cached before the removal is not trained again."""
    from typing import Literal

    class Before(DDSPSettings):
        removed = {}
        envelope_read: Literal["band", "point"] = "band"
        top_weight: float = 0.0
        top_hz: float = 4000.0
        top_peaks: bool = False
        noise_pitch_law: float = 0.0

    corpus = tiny_corpus()
    for changes in ({}, {"hidden_size": 40}, {"transposed_levels": "learned"}):
        before = DDSPEngine(Before(**{**TINY, **changes}), sample_rate=SR)
        now = DDSPEngine(DDSPSettings(**{**TINY, **changes}), sample_rate=SR)
        assert before.cache_key(corpus) == now.cache_key(corpus)
        assert before.render_key(corpus) == now.render_key(corpus)
    asked = DDSPEngine(Before(**{**TINY, "top_weight": 2.0}), sample_rate=SR)
    assert asked.cache_key(corpus) != DDSPEngine(DDSPSettings(**TINY), sample_rate=SR).cache_key(corpus)


def test_a_spec_naming_a_removed_setting_builds_at_its_remaining_value_and_fails_clearly_otherwise(tmp_path,
                                                                                                  capsys):
    """The CLI: `envelope_read: band` validates; `top_weight: 2` exits 2 naming file, key and fix, no
    traceback."""
    from support.faults import cli, tiny
    kept = tiny(tmp_path, "kept", engine={"name": "ddsp", "settings": {"envelope_read": "band", "top_peaks": False}})
    asked = tiny(tmp_path, "asked", engine={"name": "ddsp", "settings": {"max_steps": 5, "top_weight": 2}})
    assert cli("validate", kept) == 0
    capsys.readouterr()
    assert cli("validate", asked) == 2 and cli("build", asked, "-q") == 2
    err = capsys.readouterr().err
    assert "asked.yaml" in err and "engine.settings.top_weight" in err and "no longer available" in err
    assert "fix: delete 'top_weight'" in err and "Traceback" not in err


def test_a_model_file_saved_with_a_removed_setting_loads_at_its_remaining_value_and_is_refused_otherwise(
        trained, tmp_path):
    from dawexport.engines.common.persistence import load_state, save_state
    _, _, folder = trained
    tensors, meta = load_state(folder / "model", "ddsp")
    for read in ("band", "point"):
        save_state(tmp_path / read, "ddsp", tensors, {**meta, "config": {**meta["config"], "envelope_read": read}})
    engine = DDSPEngine(DDSPSettings(**TINY), sample_rate=SR)
    engine.load(tmp_path / "band")
    with pytest.raises(EngineError) as info:
        DDSPEngine(DDSPSettings(**TINY), sample_rate=SR).load(tmp_path / "point")
    message = str(info.value)
    assert str(tmp_path / "point" / "ddsp.safetensors") in message and "envelope_read" in message
    assert "'point' is no longer available" in message and "fix: delete that folder" in message


# --------------------------------------------------------------------------- DSP

def test_wavetable_oscillators_equal_a_sum_of_sines():
    torch.manual_seed(0)
    f0 = torch.stack([torch.linspace(110, 1500, 40), torch.full((40,), 440.0)])
    amps = harmonic_amplitudes(torch.rand(2, 40, 1), torch.rand(2, 40, 30), f0, 44100)
    fast = harmonic_synth(amps, f0, 44100, 256, table_size=2048)
    slow = additive_reference(amps, f0, 44100, 256)
    err = (fast - slow).pow(2).mean().sqrt() / slow.pow(2).mean().sqrt()
    assert 20 * math.log10(float(err)) < -55


def test_harmonics_above_nyquist_are_removed():
    """A 3 kHz note at 16 kHz with 20 harmonics keeps only k = 1, 2: nothing aliases back down."""
    f0 = torch.full((1, 63), 3000.0)
    amps = harmonic_amplitudes(torch.ones(1, 63, 1), torch.ones(1, 63, 20), f0, SR)
    assert torch.count_nonzero(amps[0, 10]) == 2
    y = harmonic_synth(amps, f0, SR, 64, table_size=256)[0, 1000:].numpy()
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / SR)
    near = lambda f: np.abs(freqs - f) < 60  # noqa: E731
    others = spec[~(near(3000) | near(6000))].sum() / spec.sum()
    assert 10 * np.log10(others) < -60


@pytest.mark.parametrize("points", [0, 48])
def test_a_spectral_envelope_keeps_the_formants_in_place_an_octave_up(points):
    """The same decoder output played at 200 and 400 Hz: with an envelope on a frequency grid, harmonic k of
    the higher note is as loud (relative to its first) as harmonic 2k of the lower one (the same frequency);
    one logit per harmonic number instead moves the whole spectrum up with the pitch (tape speed)."""
    from dawexport.engines.ddsp.model import DDSP, DDSPConfig
    torch.manual_seed(0)
    config = DDSPConfig(sample_rate=SR, hop=64, n_keys=1, latent=4, hidden=16, n_harmonics=20, noise_bands=9,
                        n_mels=8, table_size=256, envelope_points=points)
    model = DDSP(config)
    # a resonance near 2 kHz: in mel on the envelope's grid, at harmonic 10 on a per-harmonic one
    grid = torch.linspace(0, 1, points) if points else hz_to_mel(200.0 * torch.arange(1, 21)) / hz_to_mel(SR / 2)
    shape = 4.0 * torch.exp(-0.5 * ((grid - float(hz_to_mel(2000.0) / hz_to_mel(SR / 2))) / 0.1) ** 2) - 2.0
    logits = [torch.zeros(1, 1, 1), shape.reshape(1, 1, -1), torch.zeros(1, 1, 9)]
    low = model._controls_from_logits(logits, torch.tensor([[200.0]]), torch.zeros(1, 1))["harm_amps"][0, 0]
    high = model._controls_from_logits(logits, torch.tensor([[400.0]]), torch.zeros(1, 1))["harm_amps"][0, 0]
    db = lambda a: 20 * torch.log10(a / a[0])  # noqa: E731
    same_frequency = (db(high[:10]) - db(low[1::2])).abs().max()       # 400 Hz … 4 kHz, each relative to 400 Hz
    assert (same_frequency < 1.0) == bool(points), float(same_frequency)
    loudest = 400.0 * (1 + int(torch.argmax(high)))
    assert (loudest == 2000.0) == bool(points), loudest


@pytest.mark.parametrize("pitch_free", [True, False])
def test_a_pitch_free_decoder_outputs_the_same_envelope_at_every_pitch(pitch_free):
    """For a fixed z(t) and loudness, a pitch-free decoder's envelope is the same an octave up (only the
    harmonic and noise levels may follow f0); a decoder that reads f0 outputs another colour there."""
    from dawexport.engines.ddsp.model import DDSP, DDSPConfig
    torch.manual_seed(0)
    config = DDSPConfig(sample_rate=SR, hop=64, n_keys=1, latent=4, hidden=16, n_harmonics=20, noise_bands=9,
                        n_mels=8, table_size=256, envelope_points=24, pitch_free=pitch_free)
    model = DDSP(config).eval()
    with torch.no_grad():
        for p in model.decoder.parameters():          # pitch_level starts at zero: give f0 a say in the levels
            p.add_(0.3 * torch.randn_like(p))
        z, loud = torch.randn(1, 6, 4), torch.linspace(-30.0, 0.0, 6)[None]
        low = model.logits(torch.full((1, 6), 200.0), loud, z)
        high = model.logits(torch.full((1, 6), 400.0), loud, z)
    assert torch.equal(low[1], high[1]) == pitch_free
    assert not torch.equal(low[0], high[0])                   # the level still hears f0


def test_old_model_configs_keep_an_f0_input():
    """A model file saved before `pitch_free` has no such key: it builds the decoder it was trained with (f0
    among its inputs) and loads its weights."""
    from dawexport.engines.ddsp.model import DDSP, DDSPConfig
    old = dict(sample_rate=SR, hop=64, n_keys=1, latent=4, hidden=16, n_harmonics=20, noise_bands=9, n_mels=8,
               table_size=256, envelope_points=24)
    config = DDSPConfig(**old)
    assert config.pitch_free is False
    model = DDSP(config)
    assert model.decoder.inp[0].in_features == 2 + 4
    model.load_state_dict(DDSP(DDSPConfig(**old)).state_dict())


def test_oscillator_phase_stays_exact_over_a_long_note():
    """A minute-long note keeps its pitch: the phase after n samples is n * f0 / sr (mod 1) to within float32's
    representation of f0 (drift < 0.002 cycles after a minute, a pitch error below 1e-4 cents)."""
    sr, hop, f0 = 44100, 256, 261.6255653
    frames = 60 * sr // hop
    phase = oscillator_phase(torch.full((1, frames), f0), sr, hop)[0].double().numpy()
    n = np.array([0, 1, 12345, frames * hop - 1])
    expected = np.mod(n * f0 / sr, 1.0)
    diff = np.abs(phase[n] - expected)
    assert np.all(np.minimum(diff, 1 - diff)[:3] < 1e-5) and min(diff[3], 1 - diff[3]) < 2e-3


def test_filtered_noise_has_the_asked_spectrum_and_steady_level():
    hop, frames = 128, 400
    white = torch.randn(1, frames, 2 * hop, generator=torch.Generator().manual_seed(0))
    flat = filtered_noise(torch.ones(1, frames, 9), white, hop)[0, hop:-hop].numpy()
    assert np.std(flat) == pytest.approx(1.0, rel=0.05)
    env = np.array([np.std(b) for b in flat.reshape(-1, hop)])
    assert env.std() / env.mean() < 0.2                    # no frame-rate amplitude ripple
    low = torch.zeros(1, frames, 9)
    low[..., :3] = 1.0                                       # bands up to ~1/4 of Nyquist
    y = filtered_noise(low, white, hop)[0].numpy()
    spec = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(len(y))
    assert spec[freqs > 0.25].sum() / spec.sum() < 0.02


def test_spectral_loss_is_zero_for_a_match_and_grows_with_difference():
    x = torch.randn(1, 8000, generator=torch.Generator().manual_seed(0))
    sizes = fft_sizes(SR)
    assert sizes == (2048, 1024, 512, 256, 128, 64) and fft_sizes(44100)[0] == 4096
    assert float(multi_resolution_stft_loss(x, x, sizes)) == 0.0
    small = float(multi_resolution_stft_loss(x * 1.1, x, sizes))
    big = float(multi_resolution_stft_loss(x * 3.0, x, sizes))
    assert 0 < small < big


def test_small_dsp_helpers():
    assert float(exp_sigmoid(torch.tensor(-50.0))) < 1e-6 and float(exp_sigmoid(torch.tensor(50.0))) == \
        pytest.approx(2.0)
    a, ir = np.random.default_rng(0).standard_normal((2, 300))
    conv = fft_convolve(torch.tensor(a)[None], torch.tensor(ir[:50])[None])[0].numpy()
    assert np.allclose(conv, np.convolve(a, ir[:50])[:300], atol=1e-9)


# --------------------------------------------------------------------------- augmentation and controls

def test_time_stretch_keeps_pitch_and_pitch_shift_keeps_its_ratio():
    x = tone(440.0, 1.0, SR, bright=0.5, breath=0.0)
    y = time_stretch(x, 1.25, 1024)
    assert len(y) == 20000
    assert abs(100 * (estimate_pitch(y, SR).midi - 69)) < 10
    z, ratio = pitch_shift(x, 5.0)
    assert ratio == pytest.approx(2 ** (5 / 12), rel=2e-3)
    assert len(z) == pytest.approx(len(x) / ratio, abs=2)
    assert 100 * (estimate_pitch(z, SR).midi - (69 + 12 * math.log2(ratio))) == pytest.approx(0, abs=5)


def test_formant_keeping_pitch_shift_keeps_the_brightness_and_the_pitch():
    """Tape-speed shifting a note down darkens it (its formant moves down); restoring the envelope keeps the
    source's brightness while the pitch still moves."""
    sr = 44100
    t = np.arange(sr) / sr
    x = sum(np.exp(-((k * 220.0 - 3000.0) / 1500.0) ** 2) * np.sin(2 * np.pi * k * 220.0 * t) for k in range(1, 90))
    x = (0.5 * x / np.abs(x).max()).astype(np.float32)

    def centroid(y):
        spec = np.abs(np.fft.rfft(y)) ** 2
        return float((spec * np.fft.rfftfreq(len(y), 1 / sr)).sum() / spec.sum())

    for semitones in (-7, 7):
        tape, ratio = pitch_shift(x, semitones)
        kept = restore_envelope(tape, x, ratio, 220.0, sr)
        assert len(kept) == len(tape)
        assert abs(centroid(kept) - centroid(x)) < 0.35 * abs(centroid(tape) - centroid(x))
        assert 100 * (estimate_pitch(kept, sr).midi - estimate_pitch(x, sr).midi) == \
            pytest.approx(100 * 12 * math.log2(ratio), abs=5)


def test_velocity_and_envelope_helpers():
    levels = [velocity_db(v, 30.0) for v in (1, 40, 80, 127)]
    assert levels[0] == -30.0 and levels[-1] == 0.0 and all(b > a for a, b in zip(levels, levels[1:]))
    env = note_envelope(np.arange(100) * 0.01, duration_s=0.5, release_s=0.3, attack_s=0.05)
    assert env[0] == 0 and env[10] == 1 and env[49] == 1 and 0 < env[65] < 1 and env[85] == 0


# --------------------------------------------------------------------------- a tiny trained model

def test_tiny_model_overfits_its_notes(trained):
    """Validation spectral loss falls by at least 2.5x in 150 steps (typically 3-4x)."""
    engine, _, _ = trained
    history = engine.train_result.history
    assert history[0]["step"] == 0
    assert engine.train_result.best_val < history[0]["val"] / 2.5, history


def test_a_source_plays_through_its_own_controls(trained):
    """`source_controls`: the model on a recording's own f0 (moved as asked), loudness and z(t); resynthesised,
    the training note comes back at its pitch and level."""
    engine, corpus, _ = trained
    x = corpus.clips[0].audio                                          # 'dark', L: 220 Hz
    own, up = engine.source_controls(x), engine.source_controls(x, 12.0)
    torch.testing.assert_close(up["f0_hz"], 2.0 * own["f0_hz"])
    assert own["harm_amps"].shape[:2] == own["f0_hz"].shape == (1, 1 + len(x) // engine.hop)
    y = engine.resynthesize(x, "dark", "L")
    assert len(y) == len(x) and abs(rms_db(y) - rms_db(x)) < 3.0
    assert abs(cents_off(y, SR, hz_to_midi(220.0))) < 20


def test_renders_are_at_the_requested_pitch(trained):
    engine, _, _ = trained
    notes = [50, 57, 64, 71, 78]
    takes = engine.render([request({"bright": 1.0}, note=n, duration=0.8) for n in notes]
                          + [request({"dark": 0.5, "bright": 0.5}, "R", note=n, duration=0.8) for n in notes])
    for take, note in zip(takes, notes + notes):
        assert take.dtype == np.float32 and len(take) == SR
        # read at 48 kHz: at 16 kHz `estimate_pitch` misreads some 500-750 Hz spectra by up to 6 cents (a
        # blend at note 71 reads +6 cents there, +0.01 by the FFT peaks of its harmonics, -0.1 at 48 kHz)
        assert abs(cents_off(resample(take[: int(0.8 * SR)], SR, 48000), 48000, note)) < 5


def test_louder_velocity_is_louder_and_brighter(trained):
    engine, _, _ = trained
    takes = engine.render([request({"bright": 1.0}, note=64, velocity=v) for v in (30, 70, 110, 127)])
    levels = [rms_db(t[1600:8000]) for t in takes]
    assert all(b > a + 1.0 for a, b in zip(levels, levels[1:])), levels


def test_release_fades_to_silence_and_lengths_follow_the_request(trained):
    engine, _, _ = trained
    take, short = engine.render([request({"dark": 1.0}, duration=0.5, release=0.25),
                                 request({"dark": 1.0}, duration=0.2, release=0.0)])
    assert len(take) == int(0.75 * SR) and len(short) == int(0.2 * SR)
    assert rms_db(take[-200:]) < rms_db(take[2000:6000]) - 40
    assert abs(float(take[-1])) < 1e-4 and abs(float(short[-1])) < 1e-4


def test_stereo_image_is_kept_and_a_mono_source_stays_centred(trained):
    engine, _, _ = trained
    dl, dr, bl, br = engine.render([request({"dark": 1.0}, "L"), request({"dark": 1.0}, "R"),
                                    request({"bright": 1.0}, "L"), request({"bright": 1.0}, "R")])
    assert rms_db(dl) - rms_db(dr) == pytest.approx(6.0, abs=2.5)
    np.testing.assert_allclose(bl, br, atol=1e-4)


def test_blends_mix_latents_and_sit_between_corners(trained):
    engine, _, _ = trained
    r = lambda w: request({"dark": 1 - w, "bright": w}, note=62)  # noqa: E731
    weights = dict(zip((k.source + k.channel for k in engine.keys), engine.key_weights(r(0.25))))
    assert weights == pytest.approx({"darkL": 0.75, "darkR": 0.0, "brightL": 0.25, "brightR": 0.0})
    dist = lambda x, y: float(multi_resolution_stft_loss(torch.tensor(x)[None], torch.tensor(y)[None],  # noqa
                                                         fft_sizes(SR)))
    a, quarter, mid, b = engine.render([r(0.0), r(0.25), r(0.5), r(1.0)])   # default: blend in output space
    assert 0 < dist(a, quarter) < dist(a, mid) < dist(a, b)
    _, _, folder = trained
    nsynth_way = DDSPEngine(DDSPSettings(**{**TINY, "blend": "latent"}), sample_rate=SR)
    nsynth_way.load(folder / "model")
    a2, mid2, b2 = nsynth_way.render([r(0.0), r(0.5), r(1.0)])
    np.testing.assert_allclose(a2, a, atol=1e-5)            # corners are the same either way
    assert dist(a2, mid2) > 0 and dist(b2, mid2) > 0


def test_renders_are_deterministic_and_round_robins_differ(trained):
    engine, _, _ = trained
    reqs = [request({"dark": 1.0}), request({"dark": 1.0}, variation=1)]
    first, rr = engine.render(reqs)
    again, _ = engine.render(reqs[::-1])[::-1]
    np.testing.assert_allclose(first, again, atol=1e-6)     # batch composition may move the last float bit
    diff = rms_db(first - rr) - rms_db(first)
    assert -60 < diff < 0                                 # differs, by the noise only


def test_save_load_round_trip_renders_the_same(trained):
    engine, _, folder = trained
    assert (folder / "model" / "ddsp.safetensors").is_file() and (folder / "model" / "ddsp.json").is_file()
    meta = json.loads((folder / "model" / "ddsp.json").read_text())
    assert meta["sample_rate"] == SR and [k["channel"] for k in meta["keys"]] == ["L", "R", "L", "R"]
    loaded = DDSPEngine(DDSPSettings(**TINY), sample_rate=SR, device="cpu")
    loaded.load(folder / "model")
    reqs = [request({"dark": 0.3, "bright": 0.7}, "R", note=67, velocity=90)]
    np.testing.assert_array_equal(engine.render(reqs)[0], loaded.render(reqs)[0])
    with pytest.raises(EngineError, match="44100"):
        DDSPEngine(DDSPSettings(**TINY), sample_rate=44100).load(folder / "model")


@pytest.mark.parametrize("damage", ["pickle", "truncated", "edited"])
def test_tampered_or_pickled_model_files_are_refused(trained, tmp_path, damage):
    _, _, folder = trained
    import shutil
    shutil.copytree(folder / "model", tmp_path / "model")
    path = tmp_path / "model" / "ddsp.safetensors"
    data = path.read_bytes()
    if damage == "pickle":
        torch.save({"model/decoder.head.weight": torch.zeros(3)}, path)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(data[:-9] + bytes([data[-9] ^ 0x01]) + data[-8:])
    engine = DDSPEngine(DDSPSettings(**TINY), sample_rate=SR)
    with pytest.raises(EngineError) as info:
        engine.load(tmp_path / "model")
    assert str(path) in str(info.value)
    with pytest.raises(EngineError, match="no model"):
        engine.render([request({"dark": 1.0})])


def test_source_contour_brings_the_vibrato(trained):
    _, _, folder = trained
    engine = DDSPEngine(DDSPSettings(**{**TINY, "contour": "source"}), sample_rate=SR)
    engine.load(folder / "model")
    vib, = engine.render([request({"bright": 1.0}, note=64, duration=1.5, release=0.0)])
    flat_engine = DDSPEngine(DDSPSettings(**{**TINY, "contour": "flat"}), sample_rate=SR)
    flat_engine.load(folder / "model")
    flat, = flat_engine.render([request({"bright": 1.0}, note=64, duration=1.5, release=0.0)])

    def wobble(x):
        tr = f0_track(x, SR, fmin=150, fmax=800)
        cents = 100 * hz_to_midi(tr.hz[10:-10])
        return np.nanstd(cents)

    assert wobble(vib) > 10 > wobble(flat)
    assert abs(cents_off(vib, SR, 64)) < 10               # vibrato is centred on the note


def test_a_silent_side_channel_renders_silence(tmp_path):
    """A mono source in a mid/side instrument has an all-zero S channel: no training on it, silence out."""
    x = tone(300.0, 0.6, SR)
    corpus = Corpus(SR, ("M", "S"), (clip("a", "M", x, SR), Clip("a", "S", 0, np.zeros_like(x),
                                                                  PitchEstimate(np.nan, np.nan, 0, 0))))
    engine = DDSPEngine(DDSPSettings(**{**TINY, "max_steps": 3, "augment": False}), sample_rate=SR)
    engine.fit(corpus, tmp_path, SILENT)
    m, s = engine.render([request({"a": 1.0}, "M"), request({"a": 1.0}, "S")])
    assert np.any(m != 0) and not np.any(s)


def test_learned_reverb_option_trains_and_keeps_a_mono_source_centred(tmp_path):
    engine = DDSPEngine(DDSPSettings(**{**TINY, "max_steps": 4, "reverb": True, "reverb_s": 0.1,
                                        "augment": False}), sample_rate=SR)
    engine.fit(tiny_corpus(), tmp_path / "work", SILENT)
    engine.save(tmp_path / "model")
    engine.load(tmp_path / "model")
    left, right = engine.render([request({"bright": 1.0}, "L"), request({"bright": 1.0}, "R")])
    assert np.all(np.isfinite(left)) and np.any(left != 0)
    np.testing.assert_allclose(left, right, atol=1e-4)


def test_44k_model_keeps_content_above_8k_from_a_bright_source(tmp_path):
    """NSynth stops at 8 kHz; trained on a bright 44.1 kHz note, the rendered note carries real energy above it."""
    sr = 44100
    x = tone(440.0, 0.8, sr, bright=None, amp=0.5, breath=0.002)           # 1/k harmonics up to 19.8 kHz
    corpus = Corpus(sr, ("mono",), (clip("saw", "mono", x, sr),))
    settings = DDSPSettings(**{**TINY, "n_harmonics": 48, "table_size": 1024, "noise_bands": 33,
                               "max_steps": 120, "crop_s": 0.3, "augment": False})
    engine = DDSPEngine(settings, sample_rate=sr)
    engine.fit(corpus, tmp_path, SILENT)
    take, = engine.render([request({"saw": 1.0}, "mono", note=69, duration=0.6, release=0.1)])
    src_hf, out_hf = hf_db(x, sr), hf_db(take, sr)
    assert src_hf > -20
    assert out_hf > -30, (src_hf, out_hf)                # a 16 kHz model would have nothing there
    assert abs(cents_off(take, sr, 69)) < 5


# --------------------------------------------------------------------------- resume after a real kill

CHILD = r'''
import json, sys, time
sys.path.insert(0, {repo!r}); sys.path.insert(0, {tests!r})
import numpy as np
from dawexport.engines.ddsp import DDSPEngine, DDSPSettings
from dawexport.progress import Progress
from test_ddsp import TINY, SR, tiny_corpus

class Paced(Progress):
    """Slows each step a little so the parent can kill the process between two checkpoints."""
    def bar(self, iterable=None, **kwargs):
        for item in iterable:
            time.sleep({pace})
            yield item

engine = DDSPEngine(DDSPSettings(**{{**TINY, "max_steps": 120, "checkpoint_every": 20}}), sample_rate=SR,
                    seed=3, device="cpu")
engine.fit(tiny_corpus(), sys.argv[1], Paced(quiet=True))
engine.save(sys.argv[2])
print(json.dumps({{"resumed_from": engine.train_result.resumed_from, "step": engine.train_result.step}}))
'''


def _child(tmp_path: Path, pace: float) -> Path:
    script = tmp_path / f"child_{pace}.py"
    script.write_text(CHILD.format(repo=str(REPO), tests=str(REPO / "tests" / "unit"), pace=pace))
    return script


def _run_child(script: Path, workdir: Path, out: Path) -> dict:
    done = subprocess.run([sys.executable, str(script), str(workdir), str(out)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_training_killed_mid_run_resumes_to_the_uninterrupted_weights(tmp_path):
    """`dawexport train` killed with SIGKILL and started again continues from its last checkpoint and ends with
    bit-identical weights to a run that was never interrupted."""
    straight = subprocess.Popen([sys.executable, str(_child(tmp_path, 0.0)), str(tmp_path / "w1"),
                                 str(tmp_path / "m1")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    script = _child(tmp_path, 0.04)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "w2"), str(tmp_path / "m2")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ckpt = tmp_path / "w2" / CHECKPOINT
    deadline = time.monotonic() + 240
    step = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if ckpt.exists():
            try:
                step = load_tensors(ckpt)[1]["step"]
            except EngineError:
                step = 0
            if step >= 40:
                break
        time.sleep(0.02)
    assert proc.poll() is None, "the child finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = load_tensors(ckpt)[1]["step"]
    assert 40 <= killed_at < 120 and not (tmp_path / "m2").exists()

    out, err = straight.communicate(timeout=300)
    assert straight.returncode == 0, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1]) == {"resumed_from": 0, "step": 120}
    resumed = _run_child(script, tmp_path / "w2", tmp_path / "m2")
    assert resumed["resumed_from"] == killed_at and resumed["step"] == 120
    a, _ = load_tensors(tmp_path / "m1" / "ddsp.safetensors")
    b, _ = load_tensors(tmp_path / "m2" / "ddsp.safetensors")
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different


# --------------------------------------------------------------------------- end to end

def test_build_plays_in_sfizz(tmp_path):
    """`engine: ddsp` through the whole pipeline: a folder whose SFZ plays in tune, louder with velocity."""
    from support.players import measure_pitch_cents, render_sfizz, rms_db as player_rms_db, sfizz_synth

    from dawexport.pipeline import build
    import shutil

    import yaml
    sounds = REPO / "instruments" / "sounds"
    for name in ("cat_meow.flac", "flute.wav"):
        shutil.copy(sounds / name, tmp_path / name)
    settings = {**TINY, "max_steps": 200, "hidden_size": 48, "n_harmonics": 32}
    spec = {"name": "tinyddsp", "sources": {"cat": "cat_meow.flac", "flute": "flute.wav"},
            "engine": {"name": "ddsp", "sample_rate": 16000, "settings": settings},
            "blend": {"corners": ["cat", "flute"], "points_per_side": 2},
            "keys": {"low": "G3", "high": "D4", "every": 3}, "velocity_layers": 2,
            "note": {"length": 1.0, "release": 0.2}, "output": {"dir": "out/tinyddsp", "formats": ["sfz"]}}
    path = tmp_path / "tinyddsp.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = build(path, quiet=True)
    synth = sfizz_synth(result.folder / "tinyddsp.sfz")
    keys = synth.playable_keys
    assert keys and keys[0] <= 55 and keys[-1] >= 62
    errors = [measure_pitch_cents(render_sfizz(synth, key, 127, hold_s=0.8, total_s=0.8, cc={1: cc})[:, 4000:],
                                  44100, key) for key in keys for cc in (0, 127)]
    assert np.median(np.abs(errors)) <= 5.0, errors
    levels = [player_rms_db(render_sfizz(synth, 58, v, hold_s=0.5, total_s=0.5, cc={1: 127})) for v in (30, 127)]
    assert levels[1] > levels[0] + 1.0, levels
    again = build(path, quiet=True, force=True)          # the trained model is cached: no second training
    assert not again.trained


# --------------------------------------------------------------------------- trajectories and contours

def loaded(folder, **settings):
    engine = DDSPEngine(DDSPSettings(**{**TINY, **settings}), sample_rate=SR, device="cpu")
    engine.load(folder / "model")
    return engine


def frames_of(engine, req):
    return int(round((req.duration_s + req.release_s) * SR)) // engine.hop + 2


@pytest.mark.parametrize("mode", ["flat", "source", "vibrato"])
def test_every_contour_mode_keeps_the_held_part_in_tune(trained, mode):
    _, _, folder = trained
    engine = loaded(folder, contour=mode)
    # give 'bright' a meow-like contour: a 150-cent rise and fall with a 30-cent vibrato on it
    for key in engine.keys:
        if key.source == "bright":
            n = len(key.contour)
            u = np.linspace(0, 1, n)
            key.contour = (150 * np.sin(np.pi * u) + 30 * np.sin(2 * np.pi * 5 * u * n * engine.hop / SR)
                           ).astype(np.float32)
    req = request({"bright": 1.0}, note=64, duration=1.5, release=0.2)
    f0, *_ = engine._controls_for(req, frames_of(engine, req))
    held_cents = 1200 * np.log2(f0[10:int(1.5 * SR / engine.hop)] / midi_to_hz(64))
    assert abs(np.median(held_cents)) < 5
    spread = np.ptp(held_cents)
    assert (spread == 0) if mode == "flat" else (spread > 40)
    if mode == "source":
        assert spread > 150                                  # the glide itself is kept
    take, = engine.render([req])
    held = take[int(0.05 * SR):int(1.5 * SR)]
    tr = f0_track(held, SR, fmin=150, fmax=800)
    played = np.nanmedian(100 * hz_to_midi(tr.hz[tr.voiced]))
    assert abs(played - 6400) < 5                            # the held part is on the key ...
    assert abs(100 * estimate_pitch(take, SR).midi - played) < 5   # ... and a sample's measured root says so


def test_a_note_keeps_the_attack_holds_any_length_without_a_jump_and_releases(trained):
    _, _, folder = trained
    engine = loaded(folder)
    short, long = request({"dark": 1.0}, duration=0.3, release=0.3), request({"dark": 1.0}, duration=4.0,
                                                                            release=0.3)
    f_short, l_short, _, z_short, _ = engine._controls_for(short, frames_of(engine, short))
    f_long, l_long, _, z_long, _ = engine._controls_for(long, frames_of(engine, long))
    attack = 8                                              # ~0.13 s: the source's rise
    np.testing.assert_allclose(l_short[:attack], l_long[:attack], atol=1e-6)
    np.testing.assert_allclose(z_short[:, :attack], z_long[:, :attack], atol=1e-6)
    held = slice(attack, int(4.0 * SR / engine.hop))
    assert np.abs(np.diff(l_long[held])).max() < 0.5           # dB per 16 ms frame: no jump
    # the held part wanders through the source's sustain no faster than the recording moves, so no step of
    # z(t) is bigger than the source's own biggest step from one frame to the next
    dark = engine._key_index()[("dark", "L")]
    path, = engine.note_path(long, frames_of(engine, long), [dark], [1.0])
    assert np.abs(np.diff(path[held])).max() <= 1.0
    source_z = engine.key_tracks[dark].numpy()
    assert np.abs(np.diff(z_long[0, held], axis=0)).max() <= np.abs(np.diff(source_z, axis=0)).max() + 1e-6
    take, = engine.render([long])
    env = [rms_db(take[i:i + 800]) for i in range(1600, int(4.0 * SR) - 800, 800)]
    assert np.abs(np.diff(env)).max() < 3.0
    assert rms_db(take[-400:]) < rms_db(take[SR:2 * SR]) - 40      # the release dies away


def test_round_robins_take_another_path_through_the_sustain(trained):
    _, _, folder = trained
    engine = loaded(folder)
    a, b = (request({"dark": 1.0}, duration=2.0, variation=v) for v in (0, 1))
    _, la, _, za, _ = engine._controls_for(a, frames_of(engine, a))
    _, lb, _, zb, _ = engine._controls_for(b, frames_of(engine, b))
    assert np.abs(za - zb).max() > 1e-3 and abs(rms_db(la) - rms_db(lb)) < 1.0


@pytest.mark.parametrize("levels", ["relative", "absolute"])
def test_absolute_harmonic_levels_keep_each_harmonics_level_an_octave_up(levels):
    """'absolute': a harmonic's amplitude is the envelope's where it sits, so an octave up the harmonics that
    remain (on the same frequencies) keep their amplitudes; 'relative' (the envelope a shape normalised to
    sum 1) puts the same overall amplitude into half as many harmonics, each louder. Old model files, which
    have no such key, are relative."""
    from dawexport.engines.ddsp.model import DDSP, DDSPConfig
    config = DDSPConfig(sample_rate=SR, hop=64, n_keys=1, latent=4, hidden=16, n_harmonics=40, noise_bands=9,
                        n_mels=8, table_size=256, envelope_points=48, pitch_free=True, harmonic_levels=levels)
    model = DDSP(config).eval()
    env = torch.linspace(2.0, -4.0, 48).reshape(1, 1, 48)           # falling in mel: a darker top
    logits = [torch.zeros(1, 1, 1), env, torch.zeros(1, 1, 9)]

    def amps(f0):
        return model._controls_from_logits(logits, torch.tensor([[f0]]), torch.zeros(1, 1))["harm_amps"][0, 0]
    low, high = amps(200.0), amps(400.0)
    shared = 20 * torch.log10(high[:19] / low[1:39:2])                 # 400 Hz … 7.6 kHz in both notes
    if levels == "absolute":
        assert shared.abs().max() < 1.0, shared                        # the band means differ a little
    else:
        assert shared.min() > 2.0, shared                              # each remaining harmonic louder
    assert DDSPConfig(**{k: v for k, v in config.to_json().items() if k != "harmonic_levels"}).harmonic_levels \
        == "relative"


def test_a_transposed_note_keeps_the_harmonic_levels_of_its_source_pitch():
    """A 'relative' envelope normalised by its sum at the source's pitch (`source_f0_hz`): an octave up the
    harmonics that remain keep the amplitudes they had at the source's pitch (as 'absolute' levels do),
    and at the source's pitch nothing changes."""
    from dawexport.engines.ddsp.model import DDSP, DDSPConfig
    config = DDSPConfig(sample_rate=SR, hop=64, n_keys=1, latent=4, hidden=16, n_harmonics=40, noise_bands=9,
                        n_mels=8, table_size=256, envelope_points=48, pitch_free=True)
    model = DDSP(config).eval()
    env = torch.linspace(2.0, -4.0, 48).reshape(1, 1, 48)
    logits = [torch.zeros(1, 1, 1), env, torch.zeros(1, 1, 9)]

    def amps(f0, source=None):
        src = None if source is None else torch.tensor([[source]])
        return model._controls_from_logits(logits, torch.tensor([[f0]]), torch.zeros(1, 1), src)["harm_amps"][0, 0]
    at_source = amps(200.0)
    assert torch.equal(amps(200.0, source=200.0), at_source)
    for f0, kept in ((400.0, lambda a: (a[:19], at_source[1:39:2])), (100.0, lambda a: (a[1:39:2], at_source[:19]))):
        moved, plain = kept(amps(f0, source=200.0)), kept(amps(f0))
        assert (20 * torch.log10(moved[0] / moved[1])).abs().max() < 1.0          # the band means differ a little
        assert (20 * torch.log10(plain[0] / plain[1])).abs().min() > 2.0          # learned: each louder or quieter


def test_a_transposed_note_plays_as_its_source_did_at_its_own_pitch(trained):
    """`transposed_levels: source`: a note an octave above or below its source has its harmonics (on the
    frequencies the two share) in the balance with its noise that the note at the source's pitch has, where
    the decoder's own levels ('learned') move it; at its source's pitch the note is the same; a blend's source
    pitch is its corners' weighed like them; it only changes rendering."""
    from dawexport.audio.fidelity import harmonic_split
    _, corpus, folder = trained
    plain, moved = loaded(folder, transposed_levels="learned"), loaded(folder, transposed_levels="source")
    assert plain.cache_key(corpus) == moved.cache_key(corpus)
    for engine in (plain, moved):                    # whole-key source pitches: 'dark' ~57, 'bright' ~64
        for key in engine.keys:
            key.pitch_midi = {"dark": 57.0, "bright": 63.0}[key.source]

    def balance(engine, req, source):
        """How far the harmonic at 4 × the source's pitch (which all three notes play) stands above the floor
        around it (dB)."""
        take, = engine.render([req])
        f = midi_to_hz(source)
        peaks, floor = harmonic_split(take, SR, midi_to_hz(req.note), [(3.7 * f, 4.3 * f)], n_fft=4096, hop=512)
        return float(peaks[0] - floor[0])
    for weights, source in (({"dark": 1.0}, 57), ({"dark": 0.5, "bright": 0.5}, 60)):
        same = request(weights, note=source, duration=1.0)
        assert np.array_equal(plain.render([same])[0], moved.render([same])[0])
        at_source = balance(plain, same, source)
        for shift in (12, -12):
            req = request(weights, note=source + shift, duration=1.0)
            off_moved = abs(balance(moved, req, source) - at_source)
            off_plain = abs(balance(plain, req, source) - at_source)
            assert off_moved < 4.0 and off_moved < off_plain - 2.0, (weights, shift, off_moved, off_plain)
