"""The conceptor engine on real-like recordings: grains where the source is periodic, gliding sources retuned,
octave errors corrected (not mapped), held notes that keep their level. Small reservoirs, short notes."""
from __future__ import annotations

import numpy as np
import pytest

from dawexport.audio.analysis import estimate_pitch
from dawexport.engines.base import Clip, Corpus, RenderRequest
from dawexport.engines.conceptor import ConceptorEngine
from dawexport.engines.conceptor.tuning import render_pitch

SR = 16000


def harmonic(f0, sr=SR):
    """A bright harmonic tone following the per-sample f0 array."""
    phase = 2 * np.pi * np.cumsum(f0) / sr
    return sum(0.5 ** (k - 1) * np.sin(k * phase) for k in range(1, 5))


def clip(name, x, sr=SR):
    x = (0.5 * x / np.max(np.abs(x))).astype(np.float32)
    return Clip(name, "mono", 0, x, estimate_pitch(x, sr))


def test_grains_are_cut_where_the_source_is_periodic_and_report_their_confidence():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(int(0.4 * SR))                      # a breath / snare-like part first
    tone = harmonic(np.full(int(0.6 * SR), 250.0))
    c = clip("v", np.concatenate([noise, tone]))
    eng = ConceptorEngine(ConceptorEngine.Settings(reservoir_size=60, n_reservoirs=1, grains_per_source=4),
                          sample_rate=SR)
    grains = eng._cut(c, SR)
    assert len(grains) == 4
    assert all(g.start >= 0.4 * SR for g in grains), [g.start for g in grains]
    assert all(g.confidence >= 0.9 for g in grains)
    eng.fit(Corpus(SR, ("mono",), (c,)), None, None)
    report = eng.grain_report()
    assert len(report) == 4 and all(r["start_s"] >= 0.4 and np.isfinite(r["nrmse"]) for r in report)


def test_a_gliding_source_is_retuned_so_every_grain_plays_one_pitch():
    f0 = np.linspace(200.0, 300.0, int(0.8 * SR))
    c = clip("glide", harmonic(f0))
    settings = ConceptorEngine.Settings(reservoir_size=60, n_reservoirs=1, grains_per_source=5)
    flat = ConceptorEngine(settings, sample_rate=SR)._cut(c, SR)
    kept = ConceptorEngine(settings.model_copy(update={"flatten_glide": False}), sample_rate=SR)._cut(c, SR)
    per_flat = [len(g.audio) / g.periods for g in flat]
    per_kept = [len(g.audio) / g.periods for g in kept]
    assert max(per_kept) / min(per_kept) > 1.2                       # the source really glides
    assert max(per_flat) / min(per_flat) < 1.02, per_flat            # the grains do not
    assert abs(np.median(per_flat) - SR / c.pitch.hz) < 1.0


def test_render_pitch_tells_a_real_octave_error_from_a_measuring_one():
    t = np.arange(SR // 2) / SR
    tone = np.sin(2 * np.pi * 220 * t)
    assert not render_pitch(tone, SR, 220.0).octave_error
    low = render_pitch(tone, SR, 440.0)             # the render really plays an octave below
    assert low.octave_error and abs(low.hz - 220) < 1
    high = render_pitch(tone, SR, 110.0)            # ... or above
    assert high.octave_error and abs(high.hz - 220) < 1


def test_a_render_an_octave_low_is_corrected_not_mapped():
    """The reservoir played an octave below the key: the take is rendered again, longer, and re-pitched onto
    the key, so the zone plays its note."""
    eng = ConceptorEngine(ConceptorEngine.Settings(reservoir_size=60), sample_rate=SR)
    req = RenderRequest((("a", 1.0),), "mono", 69, 127, 0.5, 0.1)
    frames = int(0.6 * SR)
    plan = {"req": req, "frames": frames, "ratio": 1.0, "target": 440.0, "pitched": True, "ctl": {"gain": 1.0}}
    t = np.arange(int(frames * 1.06) + 64) / SR
    assert eng._finish(plan, np.sin(2 * np.pi * 220 * t).astype(np.float32)) is None
    assert abs(plan["needs_ratio"] - 2.0) < 0.01
    t = np.arange(int(frames * plan["needs_ratio"] * 1.06) + 64) / SR
    take = eng._finish(plan, np.sin(2 * np.pi * 220 * t).astype(np.float32))
    assert len(take) == frames
    assert abs(100 * (estimate_pitch(take[:int(0.5 * SR)], SR).midi - 69)) < 5
    assert np.std(take[int(0.4 * SR):int(0.5 * SR)]) > 0.5 * np.std(take[int(0.1 * SR):int(0.2 * SR)])


@pytest.fixture(scope="module")
def fading(tmp_path_factory):
    """A source whose level falls 12 dB along its length (a decaying meow-like tone)."""
    n = int(0.8 * SR)
    x = harmonic(np.full(n, 300.0)) * 10 ** (-12 * np.arange(n) / n / 20)
    eng = ConceptorEngine(ConceptorEngine.Settings(reservoir_size=80, n_reservoirs=1, grains_per_source=4),
                          sample_rate=SR)
    eng.fit(Corpus(SR, ("mono",), (clip("fade", x),)), tmp_path_factory.mktemp("w"), None)
    return eng


def level(x):
    return 10 * np.log10(np.mean(np.asarray(x, np.float64) ** 2) + 1e-20)


def test_held_notes_keep_their_level_and_pitch(fading):
    req = RenderRequest((("fade", 1.0),), "mono", 67, 127, 1.6, 0.1)
    [take] = fading.render([req])
    assert abs(level(take[int(1.2 * SR):int(1.5 * SR)]) - level(take[:SR])) < 3.0
    assert abs(100 * (estimate_pitch(take[:int(1.6 * SR)], SR).midi - 67)) < 10


def test_the_level_follower_holds_a_reservoir_whose_gain_drifts():
    """Spectral radius scaled to 0.8, pitched by the leak (0.65 here): the free run slowly dies; the level
    follower keeps most of the note."""
    x = harmonic(np.full(int(0.8 * SR), 300.0))
    drops = {}
    for hold in (True, False):
        settings = ConceptorEngine.Settings(reservoir_size=80, n_reservoirs=1, grains_per_source=4,
                                            spectral_radius_scale=0.8, hold_level=hold, pitch_by="leak",
                                            revive_hardening=1.0)   # the level follower alone
        eng = ConceptorEngine(settings, sample_rate=SR)
        eng.fit(Corpus(SR, ("mono",), (clip("tone", x),)), None, None)
        [take] = eng.render([RenderRequest((("tone", 1.0),), "mono", 67, 127, 1.6, 0.1)])
        drops[hold] = level(take[:SR]) - level(take[int(1.2 * SR):int(1.5 * SR)])
    assert drops[False] > 8.0 and drops[True] < drops[False] - 4.0, drops


def test_blend_corners_share_one_grain_pitch_so_the_midpoint_plays_the_key():
    """Two sources three semitones apart: their grains are retuned onto one shared period, so a 50/50 morph
    plays one period (not a mixture) and lands on the key."""
    n = int(0.6 * SR)
    low, high = clip("low", harmonic(np.full(n, 330.0))), clip("high", harmonic(np.full(n, 392.0)))
    settings = ConceptorEngine.Settings(reservoir_size=80, n_reservoirs=1, grains_per_source=3)
    eng = ConceptorEngine(settings, sample_rate=SR)
    eng.fit(Corpus(SR, ("mono",), (low, high)), None, None)
    periods = {eng.clips[g["clip"]]["source"]: g["length"] / g["periods"] for g in eng.grains}
    assert abs(periods["low"] - periods["high"]) < 0.6, periods
    apart = ConceptorEngine(settings.model_copy(update={"shared_pitch_semitones": 0.0}), sample_rate=SR)
    apart.fit(Corpus(SR, ("mono",), (low, high)), None, None)
    periods = {apart.clips[g["clip"]]["source"]: g["length"] / g["periods"] for g in apart.grains}
    assert periods["low"] / periods["high"] > 1.1
    [take] = eng.render([RenderRequest((("low", 0.5), ("high", 0.5)), "mono", 64, 127, 0.8, 0.1)])
    assert abs(100 * (estimate_pitch(take[int(0.1 * SR):int(0.8 * SR)], SR).midi - 64)) < 10


def test_a_voice_that_drops_out_is_rendered_again_with_harder_conceptors(fading, monkeypatch):
    """The free run passes through a dead state (here: 0.2 s at -60 dB): the voice is rendered again with its
    aperture adapted by revive_hardening, and the take that sustains is kept."""
    req = RenderRequest((("fade", 1.0),), "mono", 67, 127, 1.0, 0.1)
    real = fading._run_voices
    gammas = []

    def run(voices, **kw):
        gammas.append([v.gamma for v in voices])
        out = real(voices, **kw)
        if len(gammas) == 1:                      # the first render drops out in the middle
            for y in out:
                y[int(0.4 * SR):int(0.6 * SR)] *= 1e-3
        return out
    monkeypatch.setattr(fading, "_run_voices", run)
    [take] = fading.render([req])
    assert gammas[1][0] == gammas[0][0] * fading.settings.revive_hardening
    assert abs(level(take[int(0.45 * SR):int(0.55 * SR)]) - level(take[int(0.1 * SR):int(0.3 * SR)])) < 3.0


def test_a_take_whose_pitch_flips_or_wanders_is_warped_onto_the_key():
    from dawexport.engines.conceptor.tuning import flatten_pitch
    t = np.arange(2 * SR) / SR
    hz = np.where((t > 0.6) & (t < 0.9), 600.0, 300.0) * (1 + 0.03 * np.sin(2 * np.pi * 0.7 * t))
    y = harmonic(hz)                                   # an octave flip and a slow wander around 300 Hz
    out, more = flatten_pitch(y, SR, 300.0, SR)
    assert more == 1.0 and len(out) == SR
    for a, b in ((0.1, 0.4), (0.55, 0.75), (0.75, 0.95)):
        assert abs(100 * (estimate_pitch(out[int(a * SR):int(b * SR)], SR).midi - 62.35)) < 10, (a, b)
    short, more = flatten_pitch(y[:int(0.7 * SR)], SR, 300.0, SR)   # too little input for the warp
    assert short is None and more > 1.3


def test_a_breathy_source_keeps_its_noise_between_the_harmonics():
    from dawexport.engines.conceptor.noise import noise_profile
    rng = np.random.default_rng(1)
    tone = harmonic(np.full(int(0.8 * SR), 250.0))
    breath = 0.15 * rng.standard_normal(len(tone))
    c = clip("breathy", tone + breath)
    source = noise_profile(np.asarray(c.audio, np.float64), SR, 250.0).share
    settings = ConceptorEngine.Settings(reservoir_size=60, n_reservoirs=1, grains_per_source=3)
    eng = ConceptorEngine(settings, sample_rate=SR)
    eng.fit(Corpus(SR, ("mono",), (c,)), None, None)
    assert 0.5 < eng.noise[0].share / source < 1.5, (eng.noise[0].share, source)
    note = estimate_pitch(np.asarray(c.audio, np.float64), SR).midi
    req = RenderRequest((("breathy", 1.0),), "mono", int(round(note)), 127, 0.6, 0.05)
    other = RenderRequest((("breathy", 1.0),), "mono", int(round(note)) + 2, 127, 0.6, 0.05)
    [noisy] = eng.render([req])
    assert np.array_equal(noisy, eng.render([other, req])[1])          # the noise belongs to the request
    eng.settings = settings.model_copy(update={"noise": 0.0})
    [clean] = eng.render([req])
    hz = float(2 ** ((round(note) - 69) / 12) * 440)
    held = slice(int(0.1 * SR), int(0.6 * SR))
    got = noise_profile(noisy[held].astype(np.float64), SR, hz).share
    assert noise_profile(clean[held].astype(np.float64), SR, hz).share < 0.2 * got
    assert 0.4 < got / source < 2.0, (got, source)


def test_the_match_eq_brings_a_note_at_the_source_key_to_the_source_spectrum():
    """The reservoir colours its grains (a dull top, stray sound below the fundamental); the EQ measured at
    fit time on a note at the source's key undoes that on a note it was not measured on (another length and
    noise seed), moves with the pitch and leaves the pitch alone."""
    from dawexport.audio.fidelity import timbre_distance
    rng = np.random.default_rng(2)
    phase = 2 * np.pi * 330.0 * np.arange(int(0.8 * SR)) / SR
    tone = sum(np.sin(k * phase) / k for k in range(1, 22)) + 0.02 * rng.standard_normal(len(phase))  # sawtooth
    c = clip("bright", tone)
    settings = ConceptorEngine.Settings(reservoir_size=60, n_reservoirs=1, grains_per_source=3)
    eng = ConceptorEngine(settings, sample_rate=SR)
    eng.fit(Corpus(SR, ("mono",), (c,)), None, None)
    curve = eng.match[0]
    assert curve.shape == (64,) and np.any(np.abs(curve) > 1.0) and abs(curve.mean()) < 1e-9
    key = int(round(estimate_pitch(np.asarray(c.audio, np.float64), SR).midi))
    assert eng.clips[0]["match_hz"] == pytest.approx(440 * 2 ** ((key - 69) / 12))
    requests = [RenderRequest((("bright", 1.0),), "mono", k, 127, 0.7, 0.05) for k in (key, key + 3)]
    matched = eng.render(requests)
    eng.settings = settings.model_copy(update={"match_eq": 0.0})
    plain = eng.render(requests)
    source = np.asarray(c.audio, np.float64)
    (before, before_up), (after, after_up) = ([timbre_distance(source, SR, y, SR) for y in takes]
                                              for takes in (plain, matched))
    assert after < 0.7 * before, (before, after)             # at the key it was measured on
    assert after_up < before_up, (before_up, after_up)       # and a minor third up
    for y, y0 in zip(matched, plain):      # in tune: only the envelope moved (lifting the gaps between the
        # harmonics to match a gliding source pulled a real cat note 8 semitones down)
        held = slice(int(0.1 * SR), int(0.7 * SR))
        assert abs(1200 * np.log2(estimate_pitch(y[held], SR).hz / estimate_pitch(y0[held], SR).hz)) < 25
    flat = ConceptorEngine(settings.model_copy(update={"match_eq": 0.0}), sample_rate=SR)
    flat.fit(Corpus(SR, ("mono",), (c,)), None, None)
    assert not np.any(flat.match[0])


def test_equalise_moves_the_curve_with_the_pitch_and_mixes_corners_in_db():
    from dawexport.engines.conceptor.match import band_levels, equalise
    sr = 16000
    noise = np.random.default_rng(0).standard_normal(sr)
    curve = np.where(np.arange(64) < 32, 6.0, -6.0)                # a shelf: +6 dB low, -6 dB high
    flat = band_levels(noise, sr)
    up = band_levels(equalise(noise, sr, curve, scale=2.0), sr) - flat       # the shelf an octave up
    same = band_levels(equalise(noise, sr, curve), sr) - flat
    edge = int(np.argmax(np.diff(same) < -3))
    assert np.argmax(np.diff(up) < -3) > edge + 3
    half = band_levels(equalise(noise, sr, [(curve, 1.0, 1.0), (np.zeros(64), 1.0, 1.0)]), sr) - flat
    assert abs(half[5] - same[5] / 2) < 0.5 and abs(half[60] - same[60] / 2) < 0.5


def test_the_match_eq_colours_a_note_without_changing_its_level_along_it():
    """A fixed EQ that cuts where the later grains have their formants made the glide's held notes 3 dB
    quieter than their first second; with `keep_level` the note keeps its level contour and still gets the
    colour within each part."""
    from dawexport.engines.conceptor.match import _centres, equalise
    sr = 16000
    t = np.arange(2 * sr) / sr
    first = t < 1.0
    low, high = np.sin(2 * np.pi * 200 * t), np.sin(2 * np.pi * 3000 * t)
    x = np.where(first, low + 0.25 * high, 0.25 * low + high)      # a dark part, then a bright one, one level
    curve = np.where(_centres(sr) > 1000, -12.0, 0.0)

    def part_db(y, part):
        return level(y[part][int(0.1 * sr):-int(0.1 * sr)])

    def ratio_db(y, part):         # 3 kHz over 200 Hz within one part: the colour
        spec = np.abs(np.fft.rfft(y[part]))
        return 20 * np.log10(spec[3000] / spec[200])      # 1 s parts: bins are 1 Hz
    later, early = ~first, first
    plain, kept = equalise(x, sr, curve), equalise(x, sr, curve, keep_level=True)
    assert part_db(plain, later) - part_db(plain, early) < -8.0
    assert abs(part_db(kept, later) - part_db(kept, early)) < 0.5
    for part in (early, later):
        assert ratio_db(kept, part) - ratio_db(x, part) == pytest.approx(-12.0, abs=1.0)


@pytest.fixture(scope="module")
def fading_out(tmp_path_factory):
    """A steady tone whose last 0.3 s fade by 10 dB (a recording's end): grains are cut there too."""
    t = np.arange(int(1.2 * SR)) / SR
    x = harmonic(np.full(len(t), 300.0)) * 10 ** (-10 * np.clip((t - 0.9) / 0.3, 0, 1) / 20)
    eng = ConceptorEngine(ConceptorEngine.Settings(reservoir_size=80, n_reservoirs=1), sample_rate=SR)
    eng.fit(Corpus(SR, ("mono",), (clip("ends", x),)), tmp_path_factory.mktemp("w"), None)
    return eng


def test_a_held_note_holds_the_source_body_not_its_fade_out_and_so_does_its_loop(fading_out):
    from dawexport.render.samples import SampleSettings, process_take
    gains = 20 * np.log10(fading_out.clips[0]["gains"])
    assert gains[-1] < np.median(gains) - 4.0, gains              # the last grain was cut in the fade-out
    req = RenderRequest((("ends", 1.0),), "mono", 62, 127, 2.0, 0.1)
    drops = {}
    for fade_out_db in (None, 3.0):
        fading_out.settings = fading_out.settings.model_copy(update={"fade_out_db": fade_out_db})
        [take] = fading_out.render([req])
        drops[fade_out_db] = level(take[int(1.5 * SR):int(1.9 * SR)]) - level(take[:SR])
    # the grain just before the fade-out is within 3 dB of the body and still followed (half of it, in dB)
    assert drops[None] < -3.0 and abs(drops[3.0]) < 1.5 and drops[3.0] > drops[None] + 2.0, drops
    done = process_take({"mono": take}, 62, SR, SampleSettings("t", "mono", SR, "24", "none", "auto", held_s=2.0))
    loop = done.audio[0, done.loop.start:done.loop.end + 1]
    assert abs(level(loop) - level(done.audio[0, :SR])) < 1.5     # what a held key plays after its first second
