"""The `conceptor` engine: conceptular synthesis. Grains of the user's sounds are loaded into a fixed random
reservoir; each grain becomes a conceptor, and a note is the reservoir running freely through a sequence
of (morphed) conceptors, pitched by its leak rate.

    >>> from dawexport.audio.analysis import estimate_pitch
    >>> from dawexport.engines.base import Clip
    >>> tone = (0.5 * np.sin(2 * np.pi * 392 * np.arange(8820) / 22050)).astype(np.float32)
    >>> corpus = Corpus(22050, ("mono",), (Clip("flute", "mono", 0, tone, estimate_pitch(tone, 22050)),))
    >>> settings = ConceptorEngine.Settings(reservoir_size=40, grains_per_source=2, n_reservoirs=1)
    >>> engine = ConceptorEngine(settings, sample_rate=22050)
    >>> engine.fit(corpus, None, None)                    # seconds on a CPU: loading, not gradient descent
    >>> [take] = engine.render([RenderRequest((("flute", 1.0),), "mono", 67, 127, 0.2, 0.1)])
    >>> take.shape                                        # (0.2 s held + 0.1 s release) at 22.05 kHz
    (6615,)
    >>> engine.grain_catalogue()                          # the grain protocol: grains that sound, per recording
    {('flute', 0): (0, 1, 2)}

How a request becomes audio:
- every source clip was cut into loopable grains (whole periods at zero crossings for pitched clips, where
  the source is steady and periodic, one per `grain_spacing_ms`, retuned onto the clip's pitch; short
  windows for unpitched ones), normalised, and loaded; the grains' levels are kept and re-applied along
  the sequence (`level_contour` of them, up to where the source fades out: `fade_out_db`), over an output
  held at the grains' level (`hold_level`);
- the note's conceptor schedule walks the grain sequence (`speed` steps per grain; negative = backwards;
  `sequence` says what happens at the end: hold the last grain, loop, or ping-pong), morphing linearly
  between consecutive grains and between the blend corners (`blend_mode: or` uses the Boolean OR of the
  corners instead: the conceptor of the weighted sum of their correlation matrices);
- pitch: the corners' grains share one period (`grain_pitches`); the reservoir runs at its loaded leak
  (calibrated per clip at fit time) and the take is resampled onto the key (`pitch_by: leak` moves the leak
  within `leak_range` instead); the exact tuning is measured on the rendered take (octave errors told
  apart, see `tuning`) and a take whose pitch wanders (a morph between corners) is time-warped onto the key
  (`flatten_render`);
- a voice whose free run drops out (a dead state between dissimilar grains) is rendered again with harder
  conceptors (`revive_hardening`); transitions between grains pass through a hardened halfway morph;
- the noise between each pitched source's harmonics (what its periodic grains leave out: breath, bow,
  hiss), measured at fit time, is added as shaped noise following the note's level (`noise`, see `noise`);
- each pitched source's match EQ, measured at fit time on a note at its own key against the source, brings
  the note's time-averaged spectrum to the source's (`match_eq`, see `match`); it moves with the pitch (it
  undoes what the reservoir does to the grains, which moves with them), corners mix it by weight, it keeps
  the note's level contour (it colours, it does not make later grains quieter), and it comes before the
  noise term (which is fixed in frequency);
- velocity sets the gain (`velocity_curve_db`), the key's hold and release shape the envelope.

Per-corner and per-key-zone overrides of the render controls (spectral radius, leak, speed, gain,
aperture) blend with the request's corner weights.
"""
from __future__ import annotations

import functools
import math
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ...audio.analysis import estimate_pitch, f0_track, midi_to_hz
from ...audio.repitch import repitch
from ...errors import EngineError
from ..base import Capabilities, Clip, Corpus, Engine, RenderRequest
from ..common.envelopes import CLICK_FREE_RISE_S, release_envelope
from ..common.persistence import load_numpy_model, save_numpy_model
from ..common.velocity import velocity_gain
from .blas import blas_threads
from .grains import Grain, cut_grains, retune_grain, steady_mask
from .kernels import ConceptorLibrary, hold, render
from .loading import LoadedReservoir, load_patterns, reconstruction_errors
from .pads import GrainPads
from .reservoir import Reservoir, make_reservoir
from .settings import ConceptorSettings
from .level import dropout_db
from .match import N_MELS, equalise, match_curve
from .noise import N_FFT as NOISE_FFT, HOP as NOISE_HOP, NoiseProfile, add_noise, blend_profiles, noise_profile
from .tuning import flatten_pitch, render_pitch
from .voices import Voice, VoiceRunner

MODEL_VERSION = 5      # 2: checksummed model files, clips name their "recording", one velocity law; 3: noise;
#                        4: match EQ; 5: the match EQ keeps the note's level contour


def _fixed_blas(method):
    """Run an engine method with numpy's BLAS held at `settings.threads`: a parallel sum rounds differently
    with another thread count, and a reservoir amplifies the last bit, so a Ray worker (one thread) and the
    driver (all cores) would otherwise fit and render different instruments."""
    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        with blas_threads(self.settings.threads):
            return method(self, *args, **kwargs)
    return wrapped


class ConceptorEngine(GrainPads, VoiceRunner, Engine):
    name = "conceptor"
    # Any rate works; 44.1 kHz keeps the sources' top octave, which 22050 Hz cuts (the timbre distance to the
    # sources roughly halves, see the README), at twice the render steps per second of sound.
    capabilities = Capabilities(pitched=True, blendable=True, trainable=True, grains=True, native_rates=None,
                                default_rate=44100, batch_invariant=True)
    Settings = ConceptorSettings
    version = MODEL_VERSION
    render_grains = _fixed_blas(GrainPads.render_grains)
    grain_catalogue = _fixed_blas(GrainPads.grain_catalogue)
    morph_frames = _fixed_blas(GrainPads.morph_frames)

    def __init__(self, settings, *, sample_rate, seed=0, device="auto"):
        super().__init__(settings, sample_rate=sample_rate, seed=seed, device=device)
        self.model: LoadedReservoir | None = None
        self.clips: list[dict] = []       # per clip: source, channel, recording, pitch, grains (model indices), ...
        self.grains: list[dict] = []      # per grain: clip, start, gain, length, periods
        self.errors: np.ndarray | None = None
        self._alive: np.ndarray | None = None   # per grain: does its free run sound? (see `_sounding`)
        self.noise: list[NoiseProfile] = []     # per clip: what its periodic grains leave out (see `noise`)
        self.match: list[np.ndarray] = []       # per clip: its match EQ, dB per band (see `match`)

    # ------------------------------------------------------------------ fit

    @_fixed_blas
    def fit(self, corpus: Corpus, workdir: Path, progress) -> None:
        s = self.settings
        if corpus.sample_rate != self.sample_rate:
            raise EngineError(f"corpus is at {corpus.sample_rate} Hz but the engine at {self.sample_rate} Hz")
        sr = self.sample_rate
        patterns, self.clips, self.grains, self.noise, self.match = [], [], [], [], []
        shared = grain_pitches(corpus.clips, s.shared_pitch_semitones) if s.flatten_glide else {}
        for clip in corpus.clips:
            grains = self._cut(clip, sr, shared.get(id(clip)))
            entry = {"source": clip.source, "channel": clip.channel, "recording": clip.recording,
                     "pitch_hz": float(clip.pitch.hz), "pitch_midi": float(clip.pitch.midi),
                     "frames": int(len(clip.audio)), "grains": [], "gains": [], "starts": [],
                     "grain_hz": float(shared.get(id(clip), clip.pitch.hz))}
            for g in grains:
                entry["gains"].append(float(g.gain))
                entry["starts"].append(int(g.start))
                if g.gain > 0:
                    entry["grains"].append(len(patterns))
                    self.grains.append({"clip": len(self.clips), "start": int(g.start), "gain": float(g.gain),
                                        "length": int(len(g.audio)), "periods": int(g.periods),
                                        "confidence": float(g.confidence)})
                    patterns.append(g.audio)
                else:
                    entry["grains"].append(-1)
            noise = _noise_of(clip, sr)
            entry["noise_share"] = noise.share
            self.noise.append(noise)
            self.clips.append(entry)
        if not patterns:
            raise EngineError("every source is silent; the conceptor engine has nothing to load",
                              fix="check the sources")
        if progress is not None:
            progress.info(f"conceptor: {len(patterns)} grains from {len(self.clips)} clips, "
                          f"N={s.reservoir_size}, trying {s.n_reservoirs} reservoir(s)")
        washout = max(50, int(0.005 * sr))
        best = None
        for k in range(s.n_reservoirs):
            res = make_reservoir(s.reservoir_size, spectral_radius=s.spectral_radius, leak=s.leak,
                                      seed=self.seed * 1009 + k, input_scale=s.input_scale, bias_scale=s.bias_scale)
            model = _load(res, patterns, s, washout)
            err = reconstruction_errors(model, patterns, washout=washout)
            score = float(np.mean(np.log(np.clip(np.nan_to_num(err, nan=10.0, posinf=10.0), 1e-4, 10.0))))
            if progress is not None:
                progress.info(f"reservoir {k}: median NRMSE {np.median(err):.3f}")
            if best is None or score < best[0]:
                best = (score, model, err)
        _, self.model, self.errors = best
        self._alive = None
        self._calibrate()
        if progress is not None:
            progress.info("reconstruction NRMSE per source: " + ", ".join(
                f"{name} {val:.3f}" for name, val in self.source_errors().items()))
        self.match = self._match_curves(corpus.clips, progress)

    def _match_curves(self, clips, progress=None) -> list[np.ndarray]:
        """Per clip, its match EQ (see `match`): a note of the clip's length at its own key, rendered as any
        note is (grains in order, then EQ, then the noise term), against the clip. Flat for unpitched clips."""
        s, sr = self.settings, self.sample_rate
        curves = [np.zeros(N_MELS) for _ in self.clips]
        if s.match_eq <= 0:
            return curves
        which, requests = [], []
        for c, (clip, entry) in enumerate(zip(clips, self.clips)):
            if clip.pitch.pitched and np.any(clip.audio) and any(g >= 0 for g in entry["grains"]):
                entry["match_hz"] = float(midi_to_hz(round(entry["pitch_midi"])))
                which.append(c)
                requests.append(RenderRequest(((entry["source"], 1.0),), entry["channel"],
                                              int(round(entry["pitch_midi"])), 127,
                                              min(len(clip.audio) / sr, 4.0), 0.05))
        if not requests:
            return curves
        if progress is not None:
            progress.info(f"conceptor: measuring the match EQ on {len(requests)} note(s)")
        self.match, noise = [], self.noise
        self.noise = []                   # rendered without the noise term: it is added after the EQ
        try:
            takes = self.render(requests)
        finally:
            self.noise = noise
        for c, req, take in zip(which, requests, takes):
            if np.any(take):
                seed = self._noise_seed(req)
                then = (lambda y, c=c, seed=seed: add_noise(y, sr, noise[c], rng=np.random.default_rng(seed),
                                                            scale=s.noise)) if s.noise > 0 else None
                curves[c] = match_curve(np.asarray(clips[c].audio, np.float64), take.astype(np.float64), sr,
                                        f0_hz=self.clips[c]["match_hz"], then=then, keep_level=True)
        return curves

    def _noise_seed(self, req: RenderRequest) -> int:
        """The noise term's seed: the request's, so a take does not depend on its batch."""
        return zlib.crc32(repr((self.seed, req.weights, req.channel, req.note, req.variation)).encode())

    def _cut(self, clip, sr, grain_hz: float | None = None) -> list[Grain]:
        """The clip's grains; pitched grains retuned onto `grain_hz` (default: the clip's own pitch)."""
        s = self.settings
        x = np.asarray(clip.audio, dtype=np.float64)
        mode = s.grain_mode
        if mode == "auto":
            mode = "period" if clip.pitch.pitched else "window"
        if mode == "period" and np.max(np.abs(x)) > 0:
            tr = f0_track(x, sr)
            at = np.arange(len(x))
            hz = np.where(tr.voiced, tr.hz, np.nan)
            confidence = np.interp(at, tr.times * sr, np.where(tr.voiced, tr.confidence, 0.0))
            period = None
            if np.any(np.isfinite(hz)):
                per = np.interp(at, tr.times * sr, np.nan_to_num(sr / hz, nan=-1.0))
                per[per <= 0] = np.nan
                period = per
            elif clip.pitch.pitched:
                period = sr / clip.pitch.hz
            if period is not None:
                steady = steady_mask(x, sr, confidence, s.min_pitch_confidence, s.steady_db)
                count = s.grains_per_source
                if s.grain_spacing_ms is not None:
                    count = max(count, min(256, int(round(steady.sum() / sr / (s.grain_spacing_ms * 1e-3)))))
                grains = cut_grains(x, sr, count, period=period, min_length=max(8, int(s.grain_min_ms * 1e-3 * sr)),
                                    window=int(s.window_ms * 1e-3 * sr), where=steady if steady.any() else None)
                out = []
                for g in grains:
                    conf = float(np.mean(confidence[g.start:g.start + len(g.audio)]))
                    audio = g.audio
                    if s.flatten_glide and g.periods > 0 and g.gain > 0 and clip.pitch.pitched:
                        audio = retune_grain(audio, g.periods, sr / (grain_hz or clip.pitch.hz))
                    out.append(replace(g, audio=audio, confidence=conf))
                return out
        return cut_grains(x, sr, s.grains_per_source, window=max(8, int(s.window_ms * 1e-3 * sr)))

    def _calibrate(self) -> None:
        """Per clip, how far the reservoir's pitch sits from the grains' own: hold the middle voiced grain at
        the base leak, measure, and scale the clip's pitch by measured / grain pitch (kappa)."""
        sr = self.sample_rate
        steps = int(0.25 * sr)
        which = []
        for c, clip in enumerate(self.clips):
            clip["cal_hz"] = clip.get("grain_hz", clip["pitch_hz"])
            voiced = [j for j in clip["grains"] if j >= 0 and self.grains[j]["periods"] > 0]
            if not voiced or not np.isfinite(clip["pitch_hz"]):
                continue
            j = voiced[len(voiced) // 2]
            which.append((c, j))
        if not which:
            return
        form = "diagonal" if self.model.form == "diagonal" else "lowrank"
        lib = ConceptorLibrary(self.model, [self._entry(("grain", j, 1.0)) for _, j in which], form)
        y = render(lib, [hold(i, steps) for i in range(len(which))], np.arange(len(which)), steps,
                   leak=np.full(len(which), self.model.reservoir.leak),
                   start_states=self.model.start_states[[j for _, j in which]],
                   washout=int(0.01 * sr), threads=None, voice_block=1)
        for (c, j), yy in zip(which, y):
            g = self.grains[j]
            grain_hz = sr * g["periods"] / g["length"]
            # the grains may have been retuned (flatten_glide): what the reservoir plays is measured
            # against the grain's own pitch, an octave error of the tracker ruled out
            hz = render_pitch(yy, sr, grain_hz).hz
            kappa = hz / grain_hz if np.isfinite(hz) and 0.7 < hz / grain_hz < 1.4 else 1.0
            self.clips[c]["cal_hz"] = float(grain_hz * kappa)

    def grain_report(self) -> list[dict]:
        """Per loaded grain: source, channel, where it was cut (seconds), its pitch confidence, level and
        reconstruction NRMSE (grain vs its conceptor's free run)."""
        self._require()
        out = []
        for j, g in enumerate(self.grains):
            clip = self.clips[g["clip"]]
            out.append({"source": clip["source"], "channel": clip["channel"], "grain": j,
                        "start_s": g["start"] / self.sample_rate, "confidence": g.get("confidence", float("nan")),
                        "gain": g["gain"], "nrmse": float(self.errors[j])})
        return out

    def source_errors(self) -> dict[str, float]:
        """Median reconstruction NRMSE of each source's grains."""
        out: dict[str, list[float]] = {}
        for j, g in enumerate(self.grains):
            out.setdefault(self.clips[g["clip"]]["source"], []).append(float(self.errors[j]))
        return {k: float(np.median(v)) for k, v in out.items()}

    # ------------------------------------------------------------------ save / load

    def save(self, directory: Path) -> None:
        m = self._require()
        r = m.reservoir
        arrays = {"reservoir.W": r.weights, "reservoir.w_in": r.input_weights, "reservoir.b": r.bias,
                  "loaded.W": m.weights, "readout": m.readout, "apertures": m.apertures,
                  "lengths": m.lengths.astype(np.int64), "start_states": m.start_states, "errors": self.errors}
        for j, (u, sv) in enumerate(zip(m.bases, m.spectra)):
            arrays[f"basis.{j}"] = u
            arrays[f"spectrum.{j}"] = sv
        if m.diag_energy is not None:
            arrays["diag_energy"] = m.diag_energy
        arrays["noise.psd"] = np.stack([n.psd for n in self.noise]) if self.noise else np.zeros((0, NOISE_FFT // 2 + 1))
        arrays["match.db"] = np.stack(self.match) if self.match else np.zeros((0, N_MELS))
        meta = {"version": MODEL_VERSION, "sample_rate": self.sample_rate, "seed": self.seed,
                "form": m.form, "leak": r.leak, "spectral_radius": r.spectral_radius, "reservoir_seed": r.seed,
                "readout_bias": m.readout_bias, "clips": self.clips, "grains": self.grains,
                "settings": self.settings.model_dump(mode="json")}
        save_numpy_model(directory, "conceptor", arrays, meta)

    @_fixed_blas
    def load(self, directory: Path) -> None:
        arrays, meta = load_numpy_model(directory, "conceptor", "conceptor")
        if meta.get("version") != MODEL_VERSION:
            raise EngineError(f"conceptor model version {meta.get('version')} is not {MODEL_VERSION}",
                              file=str(directory), fix="delete that folder and build again")
        res = Reservoir(arrays["reservoir.W"], arrays["reservoir.w_in"], arrays["reservoir.b"],
                             float(meta["leak"]), float(meta["spectral_radius"]), int(meta["reservoir_seed"]))
        count = len(arrays["apertures"])
        full = meta["form"] == "full"
        self.model = LoadedReservoir(
            res, arrays["loaded.W"], arrays["readout"], float(meta["readout_bias"]), meta["form"],
            arrays["apertures"], arrays["lengths"], arrays["start_states"],
            [arrays[f"basis.{j}"].astype(np.float64) for j in range(count)] if full else [],
            [arrays[f"spectrum.{j}"] for j in range(count)] if full else [],
            arrays.get("diag_energy"))
        self.errors = arrays["errors"]
        self._alive = None
        self.clips, self.grains = meta["clips"], meta["grains"]
        self.noise = [NoiseProfile(psd, float(c["noise_share"])) for psd, c in zip(arrays["noise.psd"], self.clips)]
        self.match = list(arrays["match.db"])
        self.sample_rate = int(meta["sample_rate"])

    def _require(self) -> LoadedReservoir:
        if self.model is None:
            raise EngineError("the conceptor engine has no model; call fit() or load() first")
        return self.model

    # ------------------------------------------------------------------ render

    def render_group(self, request: RenderRequest):
        """A note's velocity layers are one voice, rendered once and scaled (see `render`): one task's work."""
        return (request.weights, request.note, request.duration_s, request.release_s, request.variation)

    @_fixed_blas
    def render(self, requests: Sequence[RenderRequest], progress=None) -> list[np.ndarray]:
        self._require()
        s = self.settings
        unique: dict[tuple, int] = {}
        plans = []
        for req in requests:
            key = (req.weights, req.channel, req.note, req.duration_s, req.release_s, req.variation)
            if key not in unique:
                unique[key] = len(plans)
                plans.append(self._plan(req))
        if progress is not None:
            progress.info(f"conceptor: {len(plans)} distinct voices for {len(requests)} takes")
        live = [p for p in plans if p["voice"] is not None]
        raw = self._sustained(live, self._run_voices([p["voice"] for p in live], sequence=s.sequence,
                                                     progress=progress), progress)
        for p, y in zip(live, raw):
            p["raw"] = y
        finished = [self._finish(p, p.get("raw")) for p in plans]
        # a take whose measured pitch needs more rendered steps than it got (e.g. the reservoir played an
        # octave low) is rendered again, long enough for the corrected ratio
        short = [i for i, f in enumerate(finished) if f is None]
        if short:
            for i in short:
                plans[i]["voice"].steps = int(math.ceil(plans[i]["frames"] * plans[i]["needs_ratio"] * 1.06)) + 64
            again = self._run_voices([plans[i]["voice"] for i in short], sequence=s.sequence, progress=progress)
            for i, y in zip(short, again):
                finished[i] = self._finish(plans[i], y, last=True)
        out = []
        for req in requests:
            key = (req.weights, req.channel, req.note, req.duration_s, req.release_s, req.variation)
            take = finished[unique[key]]
            vel_gain = velocity_gain(req.velocity, s.velocity_curve_db)
            out.append((take * vel_gain).astype(np.float32))
        return out

    def _sustained(self, plans: list[dict], raw: list[np.ndarray], progress=None) -> list[np.ndarray]:
        """Voices whose free run drops out (passes through a dead state: a morph between dissimilar grains,
        a blend point whose conceptor is too soft) are rendered again with their conceptors hardened by
        `revive_hardening` (aperture adaptation), up to twice; the take with the shallowest dip is kept."""
        s, sr = self.settings, self.sample_rate
        if s.revive_hardening <= 1.0:
            return raw

        def dip(p, y):
            return dropout_db(y[:int(min(len(y), p["frames"] * p["ratio"]))], sr)
        raw = list(raw)
        dips = [dip(p, y) for p, y in zip(plans, raw)]
        for _ in range(2):
            weak = [i for i, d in enumerate(dips) if d > s.max_dropout_db]
            if not weak:
                break
            if progress is not None:
                progress.info(f"conceptor: {len(weak)} voice(s) drop out; rendering them again, harder")
            for i in weak:
                plans[i]["voice"].gamma *= s.revive_hardening
            again = self._run_voices([plans[i]["voice"] for i in weak], sequence=s.sequence, progress=progress)
            for i, y in zip(weak, again):
                d = dip(plans[i], y)
                if d < dips[i]:
                    raw[i], dips[i] = y, d
        return raw

    def _controls(self, weights: dict[str, float], note: int) -> dict[str, float]:
        """Defaults, blended corner overrides (by weight), then the key zone's overrides."""
        s = self.settings
        names = ("spectral_radius_scale", "leak_scale", "speed", "gain", "aperture_scale")
        ctl = {n: getattr(s, n) for n in names}
        total = sum(max(w, 0.0) for w in weights.values()) or 1.0
        for n in names:
            vals = [(w, getattr(s.corners[c], n)) for c, w in weights.items()
                    if c in s.corners and getattr(s.corners[c], n) is not None and w > 0]
            if vals and ctl[n] != "auto":
                base = ctl[n]
                ctl[n] = base + sum(w * (v - base) for w, v in vals) / total
            elif vals:
                ctl[n] = sum(w * v for w, v in vals) / sum(w for w, _ in vals)
        for zone in s.zones:
            if zone.low <= note <= zone.high:
                for n in names:
                    v = getattr(zone, n)
                    if v is not None:
                        ctl[n] = v
        return ctl

    def _clip_for(self, source: str, channel: str, note: int) -> int:
        """The clip of `source` on `channel` whose pitch is nearest the note (the first for unpitched)."""
        cands = [i for i, c in enumerate(self.clips) if c["source"] == source and c["channel"] == channel]
        if not cands:
            raise EngineError(f"the conceptor model has no clip for source {source!r} on channel {channel!r}",
                              fix="build again (the model in the cache was trained on other sources)")

        def dist(i):
            m = self.clips[i]["pitch_midi"]
            return abs(m - note) if np.isfinite(m) else 0.0
        return min(cands, key=dist)

    def _auto_speed(self, c: int) -> float:
        starts = [st for st, g in zip(self.clips[c]["starts"], self.clips[c]["grains"])]
        if len(starts) < 2:
            return float(max(1, self.clips[c]["frames"]))
        return float(max(1.0, (starts[-1] - starts[0]) / (len(starts) - 1)))

    def _plan(self, req: RenderRequest) -> dict:
        s, sr = self.settings, self.sample_rate
        weights = {k: float(w) for k, w in req.weights}
        if s.blend_stretch != 1.0 and len(weights) > 1:
            mean = sum(weights.values()) / len(weights)
            weights = {k: mean + (w - mean) * s.blend_stretch for k, w in weights.items()}
        ctl = self._controls(weights, req.note)
        frames = int(round((req.duration_s + req.release_s) * sr))
        plan = {"req": req, "frames": frames, "ctl": ctl, "voice": None}
        terms, logs_f, logs_s, speeds, wsum = [], [], [], [], 0.0
        target = float(midi_to_hz(req.note))
        for source, w in weights.items():
            if abs(w) <= 1e-9:
                continue
            c = self._clip_for(source, req.channel, req.note)
            clip = self.clips[c]
            if not any(g >= 0 for g in clip["grains"]):
                continue
            terms.append((c, w))
            f1 = clip.get("cal_hz", clip["pitch_hz"])
            pitched = np.isfinite(f1) and f1 > 0
            ref = f1 if pitched else float(midi_to_hz(s.unpitched_root))
            beta = clip.get("cal_beta", 1.0) if pitched else 1.0
            logs_f.append((w, math.log(ref)))
            logs_s.append((w, math.log(target / ref) / beta))
            speeds.append((w, self._auto_speed(c)))
            wsum += w
        if not terms or abs(wsum) < 1e-9:
            return plan
        mix = lambda pairs: sum(w * v for w, v in pairs) / wsum   # noqa: E731
        want = math.exp(mix(logs_s))
        leak = s.leak * ctl["leak_scale"]
        if s.pitch_by == "leak":
            lo, hi = s.leak_range
            scale = float(np.clip(want, lo, min(hi, max(s.max_leak / leak, lo))))
        else:
            scale = 1.0
        predicted = math.exp(mix(logs_f)) * scale ** 1.0 * ctl["leak_scale"]
        ratio = target / predicted                         # residual playback ratio after the render
        speed = ctl["speed"]
        if speed == "auto":
            speed = math.exp(sum(w * math.log(v) for w, v in speeds) / wsum)
        semis = round(12 * math.log2(ratio)) if abs(math.log2(ratio)) > 1 / 24 else 0
        speed = float(speed) * 2.0 ** (semis / 12)       # keep the grain timeline in real time
        steps = int(math.ceil(frames * ratio * 1.06)) + 64
        plan.update(ratio=ratio, target=target, pitched=any(np.isfinite(self.clips[c].get("cal_hz", np.nan))
                                                            for c, _ in terms))
        plan["voice"] = Voice(terms=terms, speed=speed, leak=min(leak * scale, 1.0), radius=ctl["spectral_radius_scale"],
                               gamma=ctl["aperture_scale"], steps=steps, channel=req.channel,
                               key=(req.weights, req.channel, req.variation), variation=req.variation)
        return plan

    def _finish(self, plan: dict, y: np.ndarray | None, last: bool = False) -> np.ndarray | None:
        """Exact pitch, length and envelope of a rendered voice; None when the measured pitch needs a longer
        render (the caller renders again; `last` accepts the take as it is)."""
        s, sr = self.settings, self.sample_rate
        req, frames = plan["req"], plan["frames"]
        if y is None:
            return np.zeros(frames, dtype=np.float32)
        ratio = plan["ratio"]
        if s.exact_pitch and plan["pitched"]:
            expected = plan["target"] / plan["ratio"]        # what leak and calibration should have given
            for _ in range(2):   # the held part depends on the ratio (gliding sounds): measure it twice
                held = y[:int(min(len(y), max(req.duration_s * ratio, 0.1) * sr))]
                est = render_pitch(held, sr, expected)
                if not (np.isfinite(est.hz) and abs(math.log2(plan["target"] / est.hz)) < 2.0):
                    break
                ratio = plan["target"] / est.hz
            if not last and len(y) < frames * ratio:
                plan["needs_ratio"] = ratio
                return None
        if abs(ratio - 1.0) > 1e-6:
            y = repitch(y, ratio)
        if s.exact_pitch and plan["pitched"] and s.flatten_render:
            warped, more = flatten_pitch(y, sr, plan["target"], frames)
            if warped is None and not last:
                plan["needs_ratio"] = ratio * more * 1.05
                return None
            y = y if warped is None else warped
        y = np.asarray(y[:frames], dtype=np.float32)
        if len(y) < frames:
            y = np.concatenate([y, np.zeros(frames - len(y), dtype=np.float32)])
        terms = plan["voice"].terms if self.match or self.noise else []
        if s.match_eq > 0 and self.match:
            y = equalise(y, sr, [(s.match_eq * self.match[c], w,
                                  plan["target"] / self.clips[c].get("match_hz", plan["target"]))
                                 for c, w in terms], keep_level=True).astype(np.float32)
        if s.noise > 0 and self.noise:
            profile = blend_profiles([self.noise[c] for c, _ in terms], [w for _, w in terms])
            y = add_noise(y, sr, profile, rng=np.random.default_rng(self._noise_seed(req)),
                          scale=s.noise).astype(np.float32)
        env = release_envelope(frames, sr, req.duration_s, req.release_s, attack_s=CLICK_FREE_RISE_S)
        return y * env * np.float32(plan["ctl"]["gain"])

def grain_pitches(clips, within_semitones: float) -> dict[int, float]:
    """One grain pitch per channel that every pitched clip of that channel is retuned onto (by `id` of the
    clip), so the corners of a blend hold grains of one period and a morph between them plays that period,
    not a mixture of two. The pitch is the geometric mean of the channel's clips; a clip further than
    `within_semitones` from it keeps its own pitch (a multisampled source spanning octaves). Retuning a grain
    and pitching it back by the leak are both time scalings, so a corner's timbre does not change.

        >>> from dawexport.audio.analysis import PitchEstimate
        >>> a = Clip("cat", "mono", 0, np.zeros(4), PitchEstimate(587.3, 74.0, 1.0, 1.0))
        >>> b = Clip("flute", "mono", 0, np.zeros(4), PitchEstimate(392.0, 67.0, 1.0, 1.0))
        >>> sorted(round(hz) for hz in grain_pitches([a, b], 12.0).values())
        [480, 480]
    """
    out: dict[int, float] = {}
    if within_semitones <= 0:
        return out
    for channel in dict.fromkeys(c.channel for c in clips):
        pitched = [c for c in clips if c.channel == channel and c.pitch.pitched and c.pitch.hz > 0]
        if len({c.source for c in pitched}) < 2:
            continue
        midi = float(np.mean([c.pitch.midi for c in pitched]))
        for c in pitched:
            if abs(c.pitch.midi - midi) <= within_semitones:
                out[id(c)] = float(midi_to_hz(midi))
    return out


def _noise_of(clip: Clip, sr: int) -> NoiseProfile:
    """The noise between a pitched clip's harmonics over its voiced frames (none for unpitched clips: their
    window grains hold their noise themselves)."""
    x = np.asarray(clip.audio, dtype=np.float64)
    if not clip.pitch.pitched or not np.any(x):
        return NoiseProfile.silent()
    tr = f0_track(x, sr)
    centres = (np.arange(1 + max(0, len(x) - NOISE_FFT) // NOISE_HOP) * NOISE_HOP + NOISE_FFT / 2) / sr
    hz = np.interp(centres, tr.times, np.where(tr.voiced, tr.hz, 0.0))
    voiced = np.interp(centres, tr.times, tr.voiced.astype(np.float64)) > 0.5
    return noise_profile(x, sr, np.where(voiced, hz, np.nan))


def _load(res, patterns, settings, washout) -> LoadedReservoir:
    form = "diagonal" if settings.form == "diagonal" else "full"
    if form == "diagonal" and settings.aperture == "auto":
        # attenuation is degenerate for diagonal conceptors (c -> 1 as the aperture grows): pick the one
        # aperture with the least median reconstruction error instead
        best = None
        for ap in (5.0, 10.0, 20.0, 40.0):
            model = load_patterns(res, patterns, aperture=ap, washout=washout, form="diagonal")
            err = float(np.median(reconstruction_errors(model, patterns, washout=washout)))
            if best is None or err < best[0]:
                best = (err, model)
        return best[1]
    return load_patterns(res, patterns, aperture=settings.aperture, washout=washout, form=form)
