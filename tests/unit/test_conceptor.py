"""The conceptor engine: pattern recall, morphing, Boolean algebra, leak-rate pitch, grain order, the three
conceptor forms, the engine's fit/save/load/render, and an end-to-end build played in sfizz.

Small reservoirs (N = 100) keep the whole file to well under a minute on a 2-core CPU.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from dawexport.audio.analysis import estimate_pitch
from dawexport.engines.base import Clip, Corpus, RenderRequest
from dawexport.engines.conceptor import ConceptorEngine, algebra, kernels, loading, reservoir
from dawexport.engines.conceptor.grains import grain_walk

REPO = Path(__file__).resolve().parents[2]
SOUNDS = REPO / "instruments" / "sounds"

RECALL_NRMSE = 0.05     # the stated recall bound for the periodic patterns below


def jaeger_reservoir(seed=0):
    """Jaeger's pattern-recall setup: N = 100, non-leaky, spectral radius 1.5, input scale 1.5."""
    return reservoir.make_reservoir(100, spectral_radius=1.5, leak=1.0, seed=seed, input_scale=1.5, bias_scale=0.2)


def sine_fit_nrmse(y, period, rel=0.02):
    """NRMSE of y against a unit sine of (almost) `period`: best phase, period within +-rel; and that period."""
    t = np.arange(len(y))
    best = (np.inf, period)
    for p in np.linspace(1 - rel, 1 + rel, 81) * period:
        a = np.stack([np.sin(2 * np.pi * t / p), np.cos(2 * np.pi * t / p)], axis=1)
        co = np.linalg.lstsq(a, y, rcond=None)[0]
        phase = np.arctan2(co[1], co[0])
        err = np.sqrt(np.mean((np.sin(2 * np.pi * t / p + phase) - y) ** 2)) / np.sqrt(0.5)
        best = min(best, (err, p))
    return best


def mean_period(y):
    """Samples per cycle from rising zero crossings (sub-sample interpolated)."""
    y = y - np.mean(y)
    i = np.flatnonzero((y[:-1] < 0) & (y[1:] >= 0))
    pos = i + (-y[i]) / (y[i + 1] - y[i])
    return float(np.mean(np.diff(pos)))


@pytest.fixture(scope="module")
def sines():
    periods = (8.83, 9.83)
    pats = [np.sin(2 * np.pi * np.arange(900) / p) for p in periods]
    model = loading.load_patterns(jaeger_reservoir(), pats, washout=300, loop=False, aperture=10.0)
    return model, periods


# ------------------------------------------------------------------ recall

def test_sine_with_a_non_integer_period_is_recalled(sines):
    model, periods = sines
    for j, period in enumerate(periods):
        y = loading.run_conceptor(model, model.conceptor(j).dense(), 600, x0=model.start_states[j])[400:]
        err, fitted = sine_fit_nrmse(y, period)
        assert err < RECALL_NRMSE, (period, err)
        assert abs(fitted / period - 1) < 0.01


def test_random_five_periodic_pattern_is_recalled():
    """As the engine does: try a few random reservoirs and keep the one that reconstructs best."""
    rng = np.random.default_rng(3)
    five = rng.uniform(-1, 1, 5)
    pats = [np.tile(five, 180), np.sin(2 * np.pi * np.arange(900) / 8.83)]
    best = np.inf
    for seed in range(4):
        model = loading.load_patterns(jaeger_reservoir(seed), pats, washout=300, loop=False, aperture=10.0)
        y = loading.run_conceptor(model, model.conceptor(0).dense(), 500, x0=model.start_states[0])[300:]
        best = min(best, loading.periodic_nrmse(y, five))
    assert best < RECALL_NRMSE, best


def test_looped_grains_load_through_the_auto_aperture_and_report_their_error():
    res = reservoir.make_reservoir(100, spectral_radius=1.7, leak=0.5, seed=0)
    grains = [np.sin(2 * np.pi * np.arange(40) / 20), np.sin(2 * np.pi * np.arange(60) / 30) ** 3]
    model = loading.load_patterns(res, grains, aperture="auto")
    assert model.apertures.shape == (2,) and np.all(model.apertures > 0)
    assert all(b.shape[1] <= len(g) for b, g in zip(model.bases, grains)), "rank <= learn length"
    assert np.all(loading.reconstruction_errors(model, grains) < 0.1)


# ------------------------------------------------------------------ morphing, aperture, Boolean algebra

def test_morph_halfway_between_two_sines_has_an_intermediate_period(sines):
    model, periods = sines
    half = algebra.morph([model.conceptor(0), model.conceptor(1)], [0.5, 0.5])
    x0 = 0.5 * (model.start_states[0] + model.start_states[1])
    period = mean_period(loading.run_conceptor(model, half, 1000, x0=x0)[500:])
    lo, hi = periods
    assert lo + 0.2 * (hi - lo) < period < hi - 0.2 * (hi - lo), period
    # extrapolation (mu = 1.5) goes past the second sine
    beyond = algebra.morph([model.conceptor(0), model.conceptor(1)], [-0.5, 1.5])
    assert mean_period(loading.run_conceptor(model, beyond, 1000, x0=model.start_states[1])[500:]) > hi


def random_correlation(n, rank, rng):
    a = rng.standard_normal((n, rank)) * rng.uniform(0.2, 2.0, rank)
    return a @ a.T / rank


def test_aperture_adaptation_rescales_the_aperture():
    rng = np.random.default_rng(0)
    r = random_correlation(12, 12, rng)
    assert np.allclose(algebra.aperture_adapt(algebra.conceptor(r, 2.0), 3.0), algebra.conceptor(r, 6.0), atol=1e-9)
    c = algebra.Conceptor.from_matrix(algebra.conceptor(r, 2.0))
    assert np.allclose(c.adapt(3.0).dense(), algebra.conceptor(r, 6.0), atol=1e-9)


@pytest.mark.parametrize("rank", [12, 5])        # full rank, and singular (needs the SVD-safe forms)
def test_not_and_or_identities(rank):
    rng = np.random.default_rng(rank)
    n, alpha = 12, 1.7
    r1, r2 = random_correlation(n, rank, rng), random_correlation(n, rank, rng)
    c1, c2 = algebra.conceptor(r1, alpha), algebra.conceptor(r2, alpha)
    assert np.allclose(algebra.NOT(algebra.NOT(c1)), c1)
    # OR equals the conceptor of R1 + R2 at the same aperture
    assert np.allclose(algebra.OR(c1, c2), algebra.conceptor(r1 + r2, alpha), atol=1e-6)
    # C AND C = phi(C, 1/sqrt 2) and C OR C = phi(C, sqrt 2): exactly idempotent only for hard conceptors
    assert np.allclose(algebra.AND(c1, c1), algebra.aperture_adapt(c1, 2 ** -0.5), atol=1e-6)
    assert np.allclose(algebra.OR(c1, c1), algebra.aperture_adapt(c1, 2 ** 0.5), atol=1e-6)
    hard = algebra.conceptor(r1, 1e3)                 # eigenvalues ~0 or ~1
    assert np.allclose(algebra.AND(hard, hard), hard, atol=1e-3)
    assert np.allclose(algebra.OR(hard, hard), hard, atol=1e-3)
    # de Morgan, and identity/zero elements
    assert np.allclose(algebra.AND(c1, c2), algebra.NOT(algebra.OR(algebra.NOT(c1), algebra.NOT(c2))), atol=1e-6)
    assert np.allclose(algebra.AND(c1, np.eye(n)), c1, atol=1e-6)
    assert np.allclose(algebra.OR(c1, np.zeros((n, n))), c1, atol=1e-6)


def test_and_of_invertible_conceptors_matches_the_plain_formula():
    rng = np.random.default_rng(1)
    c1, c2 = (algebra.conceptor(random_correlation(8, 8, rng), 2.0) for _ in range(2))
    plain = np.linalg.inv(np.linalg.inv(c1) + np.linalg.inv(c2) - np.eye(8))
    assert np.allclose(algebra.AND(c1, c2), plain, atol=1e-8)


# ------------------------------------------------------------------ render controls

@pytest.fixture(scope="module")
def leaky():
    """A leaky reservoir (base leak 0.3) loaded with two looped grains of different periods."""
    res = reservoir.make_reservoir(100, spectral_radius=1.7, leak=0.3, seed=1)
    grains = [np.sin(2 * np.pi * np.arange(40) / 40), np.sin(2 * np.pi * np.arange(60) / 15)]
    model = loading.load_patterns(res, grains, aperture=50.0)
    return model, grains


def test_doubling_the_leak_rate_raises_the_pitch_by_about_an_octave(leaky):
    model, _ = leaky
    lib = kernels.ConceptorLibrary(model, [model.conceptor(0)], "lowrank")
    y = kernels.render(lib, [kernels.hold(0, 3000)], [0, 0], 3000, leak=[0.3, 0.6],
                  start_states=np.stack([model.start_states[0]] * 2), washout=500)
    ratio = mean_period(y[0]) / mean_period(y[1])
    assert abs(mean_period(y[0]) / 40 - 1) < 0.03
    assert 1.85 < ratio < 2.15, ratio


def test_negative_speed_plays_the_grain_sequence_backwards(leaky):
    model, _ = leaky
    assert grain_walk(10, 4, 3) == [(0, 1, 4), (1, 2, 4), (2, 2, 2)]
    assert grain_walk(10, 4, 3, reverse=True) == [(2, 1, 4), (1, 0, 4), (0, 0, 2)]
    assert [a for a, _, _ in grain_walk(40, 4, 3, "loop")][:5] == [0, 1, 2, 0, 1]
    assert [a for a, _, _ in grain_walk(40, 4, 3, "pingpong")][:6] == [0, 1, 2, 1, 0, 1]
    lib = kernels.ConceptorLibrary(model, [model.conceptor(0), model.conceptor(1)], "lowrank")
    steps, speed = 2400, 1200
    schedules = []
    for reverse in (False, True):
        walk = grain_walk(steps, speed, 2, reverse=reverse)
        schedules.append([kernels.Segment(n, (a, b), (1.0, 0.0), (0.0, 1.0)) if a != b else kernels.Segment(n, (a,), (1.0,), (1.0,))
                          for a, b, n in walk])
    y = kernels.render(lib, schedules, [0, 1], steps, leak=[0.3, 0.3])
    fwd = [mean_period(y[0][20:260]), mean_period(y[0][1600:2400])]
    rev = [mean_period(y[1][20:260]), mean_period(y[1][1600:2400])]
    assert fwd[0] > 30 and fwd[1] < 20, fwd       # long period (grain 0) first, then the short one
    assert rev[0] < 20 and rev[1] > 30, rev


def test_spectral_radius_and_gain_controls_are_per_voice(leaky):
    model, _ = leaky
    lib = kernels.ConceptorLibrary(model, [model.conceptor(0)], "dense")
    y = kernels.render(lib, [kernels.hold(0, 1500)], [0, 0, 0], 1500, leak=[0.3] * 3, radius=[1.0, 1.0, 0.3],
                  start_states=np.stack([model.start_states[0]] * 3))
    assert np.allclose(y[0], y[1])
    assert np.std(y[2][-500:]) < 0.5 * np.std(y[0][-500:])     # a small radius calms the reservoir down


# ------------------------------------------------------------------ conceptor forms

def test_lowrank_and_dense_forms_agree(leaky):
    model, _ = leaky
    cons = [model.conceptor(0), model.conceptor(1)]
    schedules = [[kernels.Segment(300, (0, 1), (1.0, 0.0), (0.0, 1.0)), kernels.Segment(300, (1,), (1.0,), (1.0,))],
                 kernels.hold(0, 600)]
    kw = dict(leak=[0.3, 0.25, 0.35], radius=[1.0, 1.1, 0.95], washout=50)
    dense = kernels.render(kernels.ConceptorLibrary(model, cons, "dense"), schedules, [0, 0, 1], 600, **kw)
    low = kernels.render(kernels.ConceptorLibrary(model, cons, "lowrank"), schedules, [0, 0, 1], 600, **kw)
    assert np.max(np.abs(dense - low)) < 1e-3 * max(1.0, np.std(dense))
    assert max(f.rank for f in kernels.ConceptorLibrary(model, cons, "lowrank").factors) <= 60
    ref = loading.run_conceptor(model, cons[0].dense(), 650, x0=model.start_states[0], leak=0.35, radius=0.95)[50:]
    assert np.max(np.abs(dense[2] - ref)) < 1e-3


def test_diagonal_form_matches_a_dense_diagonal_matrix_and_recalls_the_pattern():
    res = reservoir.make_reservoir(100, spectral_radius=1.7, leak=0.5, seed=0)
    pats = [np.sin(2 * np.pi * np.arange(88) / 8.8), np.sin(2 * np.pi * np.arange(137) / 13.7)]
    diag = loading.load_patterns(res, pats, aperture=10.0, form="diagonal")
    vecs = [diag.diag_values(j) for j in range(2)]
    kw = dict(leak=[0.5, 0.5], start_states=diag.start_states, washout=100)
    y_diag = kernels.render(kernels.ConceptorLibrary(diag, vecs, "diagonal"), [kernels.hold(0, 800), kernels.hold(1, 800)],
                       [0, 1], 800, **kw)
    y_dense = kernels.render(kernels.ConceptorLibrary(diag, [np.diag(v) for v in vecs], "dense"),
                        [kernels.hold(0, 800), kernels.hold(1, 800)], [0, 1], 800, **kw)
    assert np.max(np.abs(y_diag - y_dense)) < 1e-4
    errors = loading.reconstruction_errors(diag, pats)
    assert np.all(errors < 0.1), errors
    # and it plays the same pattern as the full conceptor loaded from the same grains
    full = loading.load_patterns(res, pats, aperture=10.0)
    for j, p in enumerate((8.8, 13.7)):
        assert abs(mean_period(y_diag[j][200:]) / p - 1) < 0.02
        y_full = loading.run_conceptor(full, full.conceptor(j).dense(), 900, x0=full.start_states[j])[300:]
        assert abs(mean_period(y_full) / p - 1) < 0.02


def test_morph_frames_walk_from_one_grain_to_the_other(leaky):
    model, _ = leaky
    frames = kernels.morph_frames(model, 0, 1, 5, 1200, washout=600, hardening=4.0)
    assert all(np.std(f[300:]) > 0.2 * np.std(frames[0][300:]) for f in frames), "no frame falls silent"
    periods = [mean_period(f[300:]) for f in frames]
    assert abs(periods[0] / 40 - 1) < 0.03 and abs(periods[-1] / 15 - 1) < 0.03
    assert periods[0] > periods[2] > periods[-1], periods


# ------------------------------------------------------------------ the engine

def tone(freq, seconds, sr, bright=0.3):
    t = np.arange(int(seconds * sr)) / sr
    x = sum(bright ** (k - 1) * np.sin(2 * np.pi * k * freq * t) for k in range(1, 5))
    return (0.5 * x / np.max(np.abs(x)) * np.minimum(1, t / 0.01)).astype(np.float32)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    sr = 16000
    clips = []
    for name, freq in (("a", 220.0), ("b", 330.0)):
        x = tone(freq, 0.6, sr, bright=0.2 if name == "a" else 0.5)
        clips.append(Clip(name, "mono", 0, x, estimate_pitch(x, sr)))
    corpus = Corpus(sr, ("mono",), tuple(clips))
    settings = ConceptorEngine.Settings(reservoir_size=100, grains_per_source=4, n_reservoirs=1)
    eng = ConceptorEngine(settings, sample_rate=sr, seed=0)
    eng.fit(corpus, tmp_path_factory.mktemp("work"), None)
    return eng


def test_engine_renders_every_note_in_tune_and_scales_velocity(engine):
    sr = engine.sample_rate
    reqs = [RenderRequest((("a", 1.0), ("b", 0.0)), "mono", note, vel, 0.5, 0.1)
            for note in (52, 57, 64) for vel in (127, 40)] + [
        RenderRequest((("a", 0.5), ("b", 0.5)), "mono", 57, 127, 0.5, 0.1)]
    takes = engine.render(reqs)
    for req, y in zip(reqs, takes):
        assert y.dtype == np.float32 and len(y) == int(round(0.6 * sr)) and np.all(np.isfinite(y))
        est = estimate_pitch(y[:int(0.5 * sr)], sr)
        assert abs(100 * (est.midi - req.note)) < 15, (req, est)
    loud, soft = takes[0], takes[1]
    assert np.allclose(soft, loud * 10 ** (-40 * (1 - 39 / 126) / 20), atol=1e-6)   # velocity 1..127 over 40 dB
    assert np.max(np.abs(takes[0][-20:])) < 1e-3 * max(np.max(np.abs(takes[0])), 1e-9) + 1e-6   # released
    assert set(engine.source_errors()) == {"a", "b"}


def test_engine_save_and_load_reproduce_the_render(engine, tmp_path):
    req = [RenderRequest((("b", 1.0),), "mono", 60, 100, 0.3, 0.1, variation=1)]
    before = engine.render(req)[0]
    engine.save(tmp_path / "model")
    assert not list((tmp_path / "model").glob("*.pkl"))
    again = ConceptorEngine(engine.settings, sample_rate=engine.sample_rate, seed=0)
    again.load(tmp_path / "model")
    # the bases come back from float32 storage; a free run carries that rounding along (1e-4 of the peak)
    assert np.allclose(again.render(req)[0], before, atol=1e-4)


@pytest.mark.parametrize("changes", [{"blend_mode": "or"}, {"form": "diagonal", "aperture": 10.0},
                                     {"form": "dense", "sequence": "pingpong", "speed": -40.0,
                                      "zones": [{"low": 50, "high": 60, "spectral_radius_scale": 1.05}]}])
def test_engine_options_render_living_in_tune_notes(changes, tmp_path):
    sr = 16000
    x = tone(220.0, 0.5, sr)
    y = tone(330.0, 0.5, sr, bright=0.5)
    corpus = Corpus(sr, ("mono",), (Clip("a", "mono", 0, x, estimate_pitch(x, sr)),
                                     Clip("b", "mono", 0, y, estimate_pitch(y, sr))))
    settings = ConceptorEngine.Settings(reservoir_size=80, grains_per_source=3, n_reservoirs=1, **changes)
    eng = ConceptorEngine(settings, sample_rate=sr, seed=1)
    eng.fit(corpus, tmp_path, None)
    for take in eng.render([RenderRequest((("a", 0.5), ("b", 0.5)), "mono", 57, 127, 0.4, 0.05),
                            RenderRequest((("a", 1.0), ("b", 0.0)), "mono", 55, 127, 0.4, 0.05)]):
        assert np.all(np.isfinite(take)) and np.std(take[:int(0.4 * sr)]) > 1e-3


def test_settings_reject_bad_values():
    with pytest.raises(Exception):
        ConceptorEngine.Settings(speed=0.5)
    with pytest.raises(Exception):
        ConceptorEngine.Settings(leak_range=(1.5, 2.0))
    with pytest.raises(Exception):
        ConceptorEngine.Settings(reservoir_sise=100)
    s = ConceptorEngine.Settings(zones=[{"low": "C3", "high": "B3", "spectral_radius_scale": 1.1}],
                                 corners={"cat": {"gain": 0.5}})
    assert s.zones[0].low == 48


# ------------------------------------------------------------------ end to end

def test_build_plays_in_sfizz(tmp_path):
    import yaml
    from support.players import measure_pitch_cents, render_sfizz, rms_db, sfizz_synth

    from dawexport.pipeline import build
    for name in ("cat_meow.flac", "flute.wav"):
        shutil.copy(SOUNDS / name, tmp_path / name)
    spec = {"name": "reservoir", "sources": {"cat": "cat_meow.flac", "flute": "flute.wav"},
            # a tiny reservoir holds grains at 22050 Hz; at the default 44100 Hz (grains twice as long in
            # steps) it takes the default N = 400
            "engine": {"name": "conceptor", "sample_rate": 22050,
                       "settings": {"reservoir_size": 120, "grains_per_source": 4, "n_reservoirs": 1}},
            "blend": {"corners": ["flute", "cat"], "points_per_side": 2},
            "keys": {"low": "F4", "high": "A4", "every": 3}, "velocity_layers": 1,
            "note": {"length": 0.6, "release": 0.1}, "output": {"dir": "out/reservoir", "formats": ["sfz"]}}
    path = tmp_path / "reservoir.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = build(path, quiet=True)
    synth = sfizz_synth(result.folder / "reservoir.sfz")
    for key in (66, 68):
        audio = render_sfizz(synth, key, 127, hold_s=0.5, total_s=0.5, cc={1: 0})
        assert rms_db(audio) > -50
        assert abs(measure_pitch_cents(audio[:, 2000:], 44100, key)) < 25
