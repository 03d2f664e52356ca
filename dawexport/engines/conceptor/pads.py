"""The conceptor engine's side of the grain protocol (`Engine.grain_catalogue`, `render_grains`,
`morph_frames`): grain-kit pads, the grains that sound, and grain morphs for wavetables. A mixin of
`ConceptorEngine`; it uses the engine's model and batched render.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ...audio.analysis import estimate_pitch
from ...audio.repitch import repitch
from ...errors import EngineError
from ..base import GrainRequest
from ..common.envelopes import decay_envelope
from ..common.velocity import velocity_gain
from .algebra import Conceptor, phi_values
from .grains import GRAIN_RMS, walk_curve
from .kernels import ConceptorLibrary, Segment, hold, morph_frames, render
from .voices import whole_walk

_ALIGN_RATIO = 1.5       # a pad's channels are pulled onto one pitch when they sit within a fifth
_PROBE_S = 0.1           # a grain's liveness probe: this long a free run ...
_ALIVE_DB = -40.0        # ... whose second half must stay within this of a loaded grain's level


class GrainPads:
    """The grain protocol for `ConceptorEngine` (see `Engine` for the contract)."""

    # ------------------------------------------------------------------ hooks for kits and wavetables

    def grain_index(self, source: str, channel: str, position: int, recording: int = 0) -> int:
        """The model's index of a clip's grain (position along its sequence); -1 for a silent grain."""
        for c in self.clips:
            if c["source"] == source and c["channel"] == channel and c["recording"] == recording:
                return int(c["grains"][position])
        raise KeyError((source, channel, recording))

    def render_grain(self, grain: int, seconds: float, *, leak_scale: float = 1.0, radius: float = 1.0,
                     aperture_scale: float = 1.0) -> np.ndarray:
        """One grain's conceptor held for `seconds` (raw reservoir output, normalised level)."""
        m = self._require()
        steps = int(seconds * self.sample_rate)
        con = m.conceptor(grain).adapt(aperture_scale) if m.form == "full" else Conceptor(
            np.eye(m.size), phi_values(m.diag_values(grain), aperture_scale))
        form = "diagonal" if m.form == "diagonal" else "lowrank"
        lib = ConceptorLibrary(m, [con], form)
        y = render(lib, [hold(0, steps)], [0], steps, leak=[m.reservoir.leak * leak_scale],
                        radius=[radius], start_states=m.start_states[grain][None, :],
                        washout=int(self.settings.washout_ms * 1e-3 * self.sample_rate), threads=self.settings.threads,
                        voice_block=1)
        return y[0]

    def grain_catalogue(self) -> dict[tuple[str, int], tuple[int, ...]]:
        """(source, recording) -> the positions along its grain sequence whose grain sounds on the first channel:
        cut from a part of the source that is not silent, and held by the reservoir as a living sound (a
        conceptor that was loaded badly can run into a fixed point, which after DC removal is silence). A
        grain kit picks its pads from these; another channel may be silent there (e.g. the side channel of a
        mono source) and then plays silence.

        e.g. {('cat', 0): (0, 1, 2, 3, 4, 5, 6, 7), ('flute', 0): (1, 2, 3, 4, 5, 6, 7)}
        """
        self._require()
        alive = self._sounding()
        out: dict[tuple[str, int], tuple[int, ...]] = {}
        for clip in self.clips:
            key = (clip["source"], int(clip["recording"]))
            if key not in out:    # clips are stored channel by channel in corpus order: the first is the main one
                out[key] = tuple(p for p, j in enumerate(clip["grains"]) if j >= 0 and alive[j])
        return out

    def _sounding(self) -> np.ndarray:
        """Per model grain: whether its conceptor, held at the default controls, keeps the reservoir sounding
        (the second half of a `_PROBE_S` free run has an AC level within `_ALIVE_DB` of a loaded grain's).
        All grains run in one batch; computed once per model."""
        if self._alive is None:
            m, s = self._require(), self.settings
            steps = max(64, int(_PROBE_S * self.sample_rate))
            gamma = round(float(s.aperture_scale), 9)
            cons = [self._entry(("grain", j, gamma)) for j in range(m.count)]
            outs = self._render_groups([hold(j, steps) for j in range(m.count)], np.arange(m.count), cons,
                                       np.full(m.count, min(m.reservoir.leak * s.leak_scale, 1.0)),
                                       np.full(m.count, s.spectral_radius_scale), m.start_states, steps,
                                       voice_block=1)     # the same set of voices every time: no blocks needed
            level = np.array([np.std(np.asarray(y[steps // 2:], dtype=np.float64)) for y in outs])
            self._alive = np.isfinite(level) & (level > GRAIN_RMS * 10.0 ** (_ALIVE_DB / 20.0))
        return self._alive

    def render_grains(self, requests: Sequence[GrainRequest], progress=None) -> list[np.ndarray]:
        """Grain-kit pads in one batched call: each request's grains (one held, or several walked in a loop at
        the source's own grain rate, morphing from one to the next) at their own pitch, under a 3 ms attack and
        an exponential decay (-60 dB at `decay_s`) that closes to silence at `duration_s`.

        The corner and key-zone overrides of the settings apply (the source is the corner, the pad's key the
        key). The channels of one pad are cut from different grains of each channel's clip and may settle on
        different pitches: every other channel is resampled onto the first channel's pitch (within a fifth),
        so a stereo pad is one note, not two. E.g. grain 4 of the cat's first recording as a pad on key 36:
        `engine.render_grains([GrainRequest("cat", 0, (3,), "mono", 36, 127, 0.5, 0.5)])`.
        """
        self._require()
        s, sr = self.settings, self.sample_rate
        unique: dict[tuple, int] = {}
        pads: list[dict] = []
        for req in requests:
            key = (req.source, req.recording, tuple(req.positions), req.channel, req.note, req.duration_s,
                   req.decay_s, req.variation)
            if key not in unique:
                unique[key] = len(pads)
                pads.append(self._grain_pad(req))
        if progress is not None:
            progress.info(f"conceptor: {len(pads)} grain voices for {len(requests)} pads")
        channels = len({p["req"].channel for p in pads})
        # each pad renders for its own length (a kit's channels are rendered together, whatever the shard)
        for p in pads:
            p["steps"] = int(math.ceil(p["frames"] * (_ALIGN_RATIO if channels > 1 else 1.0))) + 64
        steps = max(p["steps"] for p in pads)
        entries: dict = {}
        schedules, curves, group_keys, group_of = [], [], {}, []
        voiced = [p for p in pads if p["grains"]]
        longest: dict = {}
        for p in voiced:
            p["group"] = (tuple(p["grains"]), round(p["speed"], 6), round(p["gamma"], 9))
            longest[p["group"]] = max(longest.get(p["group"], 0), p["steps"])
        for p in voiced:
            gkey = p["group"]
            if gkey not in group_keys:
                walk = whole_walk(longest[gkey] + 1, p["speed"], len(p["grains"]), "loop")
                index = [entries.setdefault(("grain", j, round(p["gamma"], 9)), len(entries)) for j in p["grains"]]
                schedules.append([Segment(n, (index[a],), (1.0,), (1.0,)) if a == b else
                                  Segment(n, (index[a], index[b]), (1.0, 0.0), (0.0, 1.0))
                                  for a, b, n in walk])
                curves.append(walk_curve(walk, np.asarray(p["gains"]) / max(max(p["gains"]), 1e-12)))
                group_keys[gkey] = len(schedules) - 1
            group_of.append(group_keys[gkey])
        raw: list[np.ndarray] = []
        if voiced:
            cons = [self._entry(k) for k, _ in sorted(entries.items(), key=lambda kv: kv[1])]
            starts = np.stack([self._grain_start(p) for p in voiced])
            outs = self._render_groups(schedules, np.array(group_of), cons, np.array([p["leak"] for p in voiced]),
                                       np.array([p["radius"] for p in voiced]), starts, steps, progress,
                                       lengths=np.array([p["steps"] for p in voiced]))
            for row, g, p in zip(outs, group_of, voiced):
                y = row[:p["steps"]].astype(np.float64)
                y = y - np.mean(y[min(len(y) - 1, sr // 50):])
                raw.append(y * curves[g][:len(y)])
        it = iter(raw)
        for p in pads:
            p["y"] = next(it) if p["grains"] else np.zeros(p["steps"])
        self._align_channels(pads)
        finished = []
        for p in pads:
            req = p["req"]
            y = np.asarray(p["y"][:p["frames"]], dtype=np.float64)
            y = np.concatenate([y, np.zeros(p["frames"] - len(y))])
            finished.append(y * decay_envelope(p["frames"], sr, req.decay_s) * p["gain"])
        out = []
        for req in requests:
            key = (req.source, req.recording, tuple(req.positions), req.channel, req.note, req.duration_s,
                   req.decay_s, req.variation)
            vel_gain = velocity_gain(req.velocity, s.velocity_curve_db)
            out.append((finished[unique[key]] * vel_gain).astype(np.float32))
        return out

    def _grain_pad(self, req: GrainRequest) -> dict:
        """One distinct pad voice: its model grains on the request's channel, their levels and the controls."""
        if not req.positions:
            raise EngineError("a grain-kit pad needs at least one grain position")
        cands = [i for i, c in enumerate(self.clips)
                 if c["source"] == req.source and c["channel"] == req.channel and int(c["recording"]) == req.recording]
        if not cands:
            raise EngineError(f"the conceptor model has no clip for source {req.source!r} (recording {req.recording}) on "
                              f"channel {req.channel!r}",
                              fix="build again (the model in the cache was trained on other sources)")
        c = cands[0]
        clip = self.clips[c]
        if any(not 0 <= p < len(clip["grains"]) for p in req.positions):
            raise EngineError(f"source {req.source!r} has {len(clip['grains'])} grains; positions "
                              f"{list(req.positions)} asked for", fix="pick positions from grain_catalogue()")
        grains = [int(clip["grains"][p]) for p in req.positions]
        gains = [float(clip["gains"][p]) for p in req.positions]
        alive = self._sounding()
        if req.channel != "S" and any(j >= 0 and not alive[j] for j in grains):
            # this channel's grain freezes where the main channel's sounds: play the main channel's grain here,
            # rather than leave one side of a stereo pad silent (a side channel stays silent instead)
            main = next(cl for cl in self.clips if cl["source"] == req.source and int(cl["recording"]) == req.recording)
            grains = [int(main["grains"][p]) if j >= 0 and not alive[j] else j
                      for p, j in zip(req.positions, grains)]
        ctl = self._controls({req.source: 1.0}, req.note)
        speed = self._auto_speed(c) if ctl["speed"] == "auto" else float(ctl["speed"])
        if speed < 0:
            grains, gains = grains[::-1], gains[::-1]
        if any(j < 0 for j in grains):       # silent here (e.g. the side channel of a mono source)
            grains, gains = [], []
        leak = min(self._require().reservoir.leak * ctl["leak_scale"], 1.0)
        return {"req": req, "frames": int(round(req.duration_s * self.sample_rate)), "grains": grains,
                "gains": gains, "speed": max(abs(speed), 1.0), "gamma": float(ctl["aperture_scale"]),
                "leak": leak, "radius": float(ctl["spectral_radius_scale"]), "gain": float(ctl["gain"])}

    def _grain_start(self, pad: dict) -> np.ndarray:
        """The first grain's attractor state, nudged per round robin (as for notes)."""
        m = self._require()
        x = np.array(m.start_states[pad["grains"][0]], dtype=np.float64)
        if pad["req"].variation:
            rng = np.random.default_rng((self.seed, pad["req"].variation))
            x = x + 0.02 * np.std(x) * rng.standard_normal(m.size)
        return x

    def _align_channels(self, pads: list[dict]) -> None:
        """Resample every channel of a pad onto the pitch of its first channel in the corpus's order (when both
        are pitched and within a ratio of `_ALIGN_RATIO`), whatever the order of the requests."""
        sr = self.sample_rate
        first: dict[tuple, float] = {}
        order = list(dict.fromkeys(c["channel"] for c in self.clips))     # the corpus's: the main channel first
        for p in sorted(pads, key=lambda p: order.index(p["req"].channel) if p["req"].channel in order else len(order)):
            r = p["req"]
            key = (r.source, r.recording, tuple(r.positions), r.note, r.duration_s, r.decay_s, r.variation)
            held = p["y"][:p["frames"]]
            if not np.any(held):
                continue
            est = estimate_pitch(held[min(len(held) // 4, sr // 20):], sr)
            if not est.pitched:
                continue
            if key not in first:
                first[key] = float(est.hz)
                continue
            ratio = first[key] / float(est.hz)
            if 1.0 / _ALIGN_RATIO <= ratio <= _ALIGN_RATIO and abs(1200 * math.log2(ratio)) > 3:
                p["y"] = repitch(p["y"], ratio)

    def morph_frames(self, a: tuple[str, int], b: tuple[str, int], channel: str, frames: int,
                     seconds: float = 0.1) -> list[np.ndarray]:
        """(frames, steps) outputs of the morphs (1 - mu) C_a + mu C_b, mu = 0..1, between the grains at
        (source, position) `a` and `b` of the first recordings on `channel`: a wavetable's raw material."""
        m = self._require()
        grain_a = self.grain_index(a[0], channel, a[1])
        grain_b = self.grain_index(b[0], channel, b[1])
        # BLAS is held at settings.threads by the engine (ConceptorEngine wraps this method)
        return morph_frames(m, grain_a, grain_b, frames, int(seconds * self.sample_rate),
                            washout=int(self.settings.washout_ms * 1e-3 * self.sample_rate),
                            hardening=self.settings.morph_hardening, threads=self.settings.threads)
