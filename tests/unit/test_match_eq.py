"""The texture engines' match EQ: fitted at the end of training on takes of the model's own (seeds no texture
uses), it brings a generator whose balance is off toward its sources, stays within its bounds, and is kept
with the model file (a file saved before there was one still loads and plays without)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from dawexport.audio.features import mel_profile_db, profile_distance_db
from dawexport.audio.match_eq import N_BANDS, TEXTURE_MAX_DB, band_centres_hz, equalise
from dawexport.engines.base import TextureRequest
from dawexport.engines.common.seeding import stable_seed
from dawexport.engines.textures import MATCH_CHANNEL, MATCH_TAKES, TextureEngine, TextureSettings
from dawexport.errors import EngineError

SR = 16000


def clatter(seed: int, n: int) -> np.ndarray:
    """Decaying noise hits at random times: the material both the 'sources' and the generator play."""
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    for start in rng.integers(0, max(1, n - 2000), max(1, n // 2500)):
        x[start:start + 2000] += rng.standard_normal(2000) * np.exp(-np.arange(2000) / 400)
    return 0.3 * x


class DullEngine(TextureEngine):
    """A generator that babbles the right material with the wrong balance: its top is low-passed away and
    its bottom thinned (as SampleRNN's drum lacked the kick's body and the highs); it records its seeds."""
    name = "dull"
    Settings = TextureSettings

    def __init__(self, settings):
        super().__init__(settings, sample_rate=SR, seed=0, device="cpu")
        self.model, self.keys = object(), []

    def _generate(self, model, keys, n, reprime=True):
        self.keys += list(keys)
        out = []
        for channel, variation in keys:
            x = clatter(stable_seed("dull", channel, variation), n)
            x = lfilter([0.25], [1.0, -0.75], x)                  # the top lost
            out.append((x - lfilter([0.05], [1.0, -0.95], x)).astype(np.float32))    # the bottom thinned
        return out

    fit = save = load = None


def test_the_match_eq_brings_a_dull_generator_toward_its_sources_on_textures_it_was_not_fitted_on():
    engine = DullEngine(TextureSettings(reprime_every=0))
    sources = [clatter(1000 + k, 2 * SR) for k in range(2)]
    reference = mel_profile_db(sources, SR)
    requests = [TextureRequest("L", 2.0, k) for k in range(6)]
    raw = engine.render_textures(requests)
    engine.fit_match_eq(sources)
    assert len(engine.keys) == 6 + MATCH_TAKES and all(ch == MATCH_CHANNEL for ch, _ in engine.keys[6:])
    curve = engine.match_eq_db
    assert curve.shape == (N_BANDS,) and np.abs(curve).max() <= TEXTURE_MAX_DB + 1e-6
    centres = band_centres_hz(SR)
    assert curve[centres > 4000].mean() - curve[(centres > 500) & (centres < 1500)].mean() > 6   # top lifted
    assert np.ptp(curve[:-1] - curve[1:]) < 8                                                   # smooth
    equalised = engine.render_textures(requests)
    before = [profile_distance_db(mel_profile_db(x, SR), reference) for x in raw]
    after = [profile_distance_db(mel_profile_db(x, SR), reference) for x in equalised]
    assert np.mean(after) < 0.4 * np.mean(before), (before, after)
    for x, y in zip(raw, equalised):                     # the EQ is the only difference
        np.testing.assert_allclose(equalise(x, SR, curve), y, atol=1e-5)
    half = DullEngine(TextureSettings(reprime_every=0, match_eq=0.5))
    half.match_eq_db = curve
    np.testing.assert_allclose(half.render_textures(requests[:1])[0], equalise(raw[0], SR, 0.5 * curve),
                               atol=1e-5)


def test_no_match_eq_is_fitted_at_strength_zero_and_non_finite_takes_are_left_out():
    engine = DullEngine(TextureSettings(reprime_every=0, match_eq=0))
    engine.fit_match_eq([clatter(1, SR)])
    assert engine.match_eq_db is None and engine.keys == []
    broken = DullEngine(TextureSettings(reprime_every=0))
    broken._generate = lambda model, keys, n, reprime=True: [np.full(n, np.nan, np.float32) for _ in keys]
    broken.fit_match_eq([clatter(1, SR)])
    assert np.array_equal(broken.match_eq_db, np.zeros(N_BANDS))       # nothing to measure: a flat EQ


def tiny_samplernn(**settings):
    from dawexport.engines.samplernn import SampleRNNEngine, SampleRNNSettings
    from dawexport.engines.samplernn.data import quantise
    settings = SampleRNNSettings(frame_size=8, sub_frame_size=2, dim=16, mlp_dim=16, embed=4, temperature=0.8,
                                 prime_seconds=0, reprime_every=0.05, **settings)
    engine = SampleRNNEngine(settings, sample_rate=SR, seed=0, device="cpu")
    engine.prime_pool = quantise([clatter(7, SR).astype(np.float32)])[0]
    torch.manual_seed(0)
    from dawexport.engines.samplernn.model import SampleRNN
    engine.model = SampleRNN(engine.model_config()).eval()
    return engine


def test_a_samplernn_model_file_keeps_its_match_eq_and_one_saved_without_it_still_loads(tmp_path):
    from dawexport.engines.samplernn import SampleRNNEngine
    requests = [TextureRequest("L", 0.1, k) for k in range(2)]
    engine = tiny_samplernn()
    raw = engine.render_textures(requests)
    engine.match_eq_db = np.linspace(-6, 6, N_BANDS).astype(np.float32)
    played = engine.render_textures(requests)
    assert not np.allclose(played[0], raw[0], atol=1e-3)
    engine.save(tmp_path / "with")
    engine.match_eq_db = None                            # what a model saved before the match EQ holds
    engine.save(tmp_path / "without")
    for folder, expected, curve in (("with", played, np.linspace(-6, 6, N_BANDS)), ("without", raw, None)):
        again = SampleRNNEngine(engine.settings, sample_rate=SR, seed=0, device="cpu")
        again.load(tmp_path / folder)
        assert (again.match_eq_db is None) == (curve is None)
        for x, y in zip(again.render_textures(requests), expected):
            np.testing.assert_array_equal(x, y)
    engine.match_eq_db = np.zeros(5, np.float32)         # a malformed one: an error naming the file
    engine.save(tmp_path / "odd")
    with pytest.raises(EngineError, match="samplernn.safetensors"):
        SampleRNNEngine(engine.settings, sample_rate=SR, seed=0, device="cpu").load(tmp_path / "odd")
