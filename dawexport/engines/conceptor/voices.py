"""The conceptor engine's batched core call: distinct voices grouped by conceptor schedule, each group's
conceptors built once (morphs, ORs, aperture adaptations, cached), run in one batched render per form.
A mixin of `ConceptorEngine` (and used by its grain pads).
"""
from __future__ import annotations

import math

import numpy as np

from .algebra import Conceptor, morph, phi_values
from .grains import GRAIN_RMS, grain_walk, walk_curve
from .level import hold_level, without_fade_out
from .kernels import VOICE_BLOCK, ConceptorLibrary, Segment, render, reached_segments


class Voice:
    """One distinct render: corner clips and weights, and the per-voice controls."""
    __slots__ = ("terms", "speed", "leak", "radius", "gamma", "steps", "channel", "key", "variation", "group")

    def __init__(self, *, terms, speed, leak, radius, gamma, steps, channel, key, variation=0):
        self.terms, self.speed, self.leak, self.radius, self.gamma = terms, speed, leak, radius, gamma
        self.steps, self.channel, self.key, self.variation = steps, channel, key, variation
        self.group = None


def whole_walk(total: int, speed: float, count: int, sequence: str = "hold",
               reverse: bool = False) -> list[tuple[int, int, int]]:
    """`grain_walk` covering at least `total` steps, its last transition at its whole length (not cut at
    `total`): voices sharing a walk hear the same transitions however long the longest of them is.

        >>> whole_walk(10, 4, 3, "loop")
        [(0, 1, 4), (1, 2, 4), (2, 0, 4)]
    """
    longer = grain_walk(total + int(math.ceil(max(float(speed), 1.0))) + 1, speed, count, sequence, reverse=reverse)
    out, t = [], 0
    for a, b, n in longer:
        if t >= total:
            break
        out.append((a, b, n))
        t += n
    return out


def _from_columns(cols: np.ndarray, values) -> Conceptor:
    """Eigen-factor A A^T (A = cols, N x k) through the k x k Gram matrix; eigenvalues mapped by `values`."""
    lam, e = np.linalg.eigh(cols.T @ cols)
    keep = lam > 1e-10 * max(float(lam[-1]), 1e-300)
    u = cols @ (e[:, keep] / np.sqrt(lam[keep]))
    q, r = np.linalg.qr(u)
    return Conceptor(q * np.sign(np.diag(r)), np.clip(values(lam[keep]), 0.0, 1.0))


class VoiceRunner:
    """Running voices through the model's batched render (see the module docstring)."""

    def _run_voices(self, voices: list["Voice"], *, sequence: str, progress=None) -> list[np.ndarray]:
        """Render voices (grouped by shared schedule) and apply each grain's level along the sequence."""
        if not voices:
            return []
        self._require()
        sr = self.sample_rate
        entries: dict = {}          # library key -> index
        schedules, gain_curves, group_of, group_keys = [], [], [], {}
        longest: dict = {}
        for v in voices:
            v.group = (tuple(v.terms), round(v.speed, 6), round(v.gamma, 9))
            longest[v.group] = max(longest.get(v.group, 0), v.steps)
        for v in voices:
            if v.group not in group_keys:
                sched, curve = self._schedule(v, entries, sequence, longest[v.group])
                group_keys[v.group] = len(schedules)
                schedules.append(sched)
                gain_curves.append(curve)
            group_of.append(group_keys[v.group])
        library_items = sorted(entries.items(), key=lambda kv: kv[1])
        cons = [self._entry(key) for key, _ in library_items]
        group_of = np.array(group_of)
        starts = self._start_states(voices, schedules, group_of)
        outs = self._render_groups(schedules, group_of, cons, np.array([v.leak for v in voices]),
                                   np.array([v.radius for v in voices]), starts, max(v.steps for v in voices),
                                   progress, lengths=np.array([v.steps for v in voices]))
        result = []
        for vi, v in enumerate(voices):
            curve = gain_curves[group_of[vi]]
            y = outs[vi][:v.steps].astype(np.float64)
            y = y - np.mean(y[min(len(y) - 1, sr // 50):]) if len(y) > sr // 25 else y
            if self.settings.hold_level:
                y = hold_level(y, sr, GRAIN_RMS, skip=int(self.settings.washout_ms * 1e-3 * sr))
            result.append((y * curve[:v.steps]).astype(np.float32))
        return result

    def _render_groups(self, schedules, group_of: np.ndarray, cons, leak: np.ndarray, radius: np.ndarray,
                       starts: np.ndarray, steps: int, progress=None, *, lengths=None,
                       voice_block: int = VOICE_BLOCK) -> list[np.ndarray]:
        """The batched core call: voices (group_of: voice -> schedule) run in as few `render` calls as the
        conceptor forms and memory allow; one (steps,) float32 row per voice, whose first `lengths[v]`
        steps (default: all) do not depend on the other voices (the form is chosen per voice, too)."""
        m, s = self._require(), self.settings
        washout = int(s.washout_ms * 1e-3 * self.sample_rate)
        lengths = np.full(len(group_of), steps) if lengths is None else np.asarray(lengths)
        form = s.form if m.form != "diagonal" else "diagonal"
        if m.form == "diagonal":
            form = "diagonal"
        elif form == "diagonal":
            form = "lowrank"
        outs: list[np.ndarray | None] = [None] * len(group_of)
        forms = self._voice_forms(form, schedules, cons, group_of, lengths, washout)
        for f in sorted(set(forms)):
            lib = ConceptorLibrary(m, cons, f)
            idx = np.flatnonzero(forms == f)
            # keep the dense conceptors within ~96 MB per call
            per_call = max(1, int(96e6 / (4.0 * m.size * m.size))) if f == "dense" else 512
            gl = sorted(set(group_of[idx].tolist()))
            for k in range(0, len(gl), per_call):
                part = gl[k:k + per_call]
                sel = idx[np.isin(group_of[idx], part)]
                remap = {g: i for i, g in enumerate(part)}
                y = render(lib, [schedules[g] for g in part], [remap[g] for g in group_of[sel]], steps,
                           leak=leak[sel], radius=radius[sel], start_states=starts[sel], washout=washout,
                           threads=s.threads, progress=progress, lengths=lengths[sel], voice_block=voice_block)
                for row, vi in zip(y, sel):
                    outs[vi] = row
        return outs

    def _voice_forms(self, form: str, schedules, cons, group_of, lengths, washout) -> np.ndarray:
        """The conceptor form of each voice. auto: low-rank, unless a segment the voice itself reaches spans
        more than 0.9 N dimensions (a padded low-rank block that wide is slower than the dense form)."""
        if form != "auto":
            return np.array([form] * len(group_of))
        n = self._require().size
        out = []
        for g, length in zip(group_of, lengths):
            sched = schedules[g]
            rank = max(sum(cons[i].rank for i in sched[k].indices) for k in reached_segments(sched, washout, length))
            out.append("lowrank" if rank <= 0.9 * n else "dense")
        return np.array(out)

    def _entry(self, key):
        """The library conceptor for a key: ("grain", j, gamma), or a blend of corner grains at one position:
        ("morph", parts, gamma, hardening) = phi(sum_k w_k C_k, hardening) or ("or", parts, gamma, 1) =
        C(sum_k (w_k / max w) R_k), both then adapted by gamma."""
        m = self._require()
        kind = key[0]
        if kind == "grain":
            _, j, gamma = key
            if m.form == "diagonal":
                return Conceptor(np.eye(m.size), phi_values(m.diag_values(j), gamma))
            return m.conceptor(j).adapt(gamma)
        _, parts, gamma, hard = key
        ws = np.array([w for _, w in parts])
        ap = math.exp(float(np.sum(np.abs(ws) * np.log([m.apertures[j] for j, _ in parts])) / np.sum(np.abs(ws))))
        if m.form == "diagonal":
            if kind == "or":
                energy = sum((w / ws.max()) * m.diag_energy[j] for j, w in parts)
                vals = energy / (energy + ap ** -2.0)
            else:
                vals = phi_values(sum(w * m.diag_values(j) for j, w in parts), hard)
            return Conceptor(np.eye(m.size), phi_values(vals, gamma))
        if kind == "or":
            cols = [m.bases[j] * np.sqrt(max(w / ws.max(), 0.0) * m.spectra[j]) for j, w in parts]
            con = _from_columns(np.concatenate(cols, axis=1), values=lambda lam: lam / (lam + ap ** -2.0))
            return con.adapt(gamma)
        if np.all(ws >= 0):
            cols = [m.conceptor(j).basis * np.sqrt(w * m.conceptor(j).values) for j, w in parts]
            con = _from_columns(np.concatenate(cols, axis=1), values=lambda lam: lam)
        else:   # extrapolated morphs are indefinite: go through the dense matrix
            con = Conceptor.from_matrix(morph([m.conceptor(j) for j, _ in parts], ws))
        return Conceptor(con.basis, phi_values(np.clip(con.values, 0, 1), hard)).adapt(gamma)

    def _schedule(self, v: "Voice", entries: dict, sequence: str, steps: int):
        """Segments for a voice's grain walk, and its per-step level curve (grain gains, interpolated)."""
        s = self.settings
        clips = [self.clips[c] for c, _ in v.terms]
        k_count = max(len(cl["grains"]) for cl in clips)
        walk = whole_walk(steps + 1, abs(v.speed), k_count, sequence, reverse=v.speed < 0)

        live = [(c, w, cl) for (c, w), cl in zip(v.terms, clips)]
        weights = np.array([w for _, w, _ in live])
        k = len(live)
        # hardening exponent: 0 at a corner, 1 at the centre of the blend
        e = 0.0 if k < 2 else float(np.clip((1 - np.max(np.abs(weights)) / np.sum(np.abs(weights)))
                                            / (1 - 1 / k), 0.0, 1.0))

        def grain_parts(g):
            """[(grain, corner weight)] at grain position g."""
            parts = []
            for c, w, cl in live:
                j = cl["grains"][min(g, len(cl["grains"]) - 1)]
                if j >= 0 and abs(w) > 1e-9:
                    parts.append((j, float(w)))
            return parts

        def grain_terms(g):
            """[(library index, weight)] for grain position g: one grain, or the corners' combination."""
            parts = grain_parts(g)
            if not parts:
                return []
            if len(parts) == 1:
                key = ("grain", parts[0][0], round(v.gamma, 9))
                weight = 1.0
            else:
                key = (s.blend_mode, tuple(parts), round(v.gamma, 9),
                       round(s.morph_hardening ** e, 9) if s.blend_mode == "morph" else 1.0)
                weight = 1.0
            if key not in entries:
                entries[key] = len(entries)
            return [(entries[key], weight)]

        def halfway(g_from, g_to):
            """The library index of the hardened morph halfway between two grain positions: a plain linear
            morph between dissimilar consecutive grains shrinks every direction and the note drops out
            there, so a transition passes through this point (hardened like an interior blend point)."""
            merged: dict[int, float] = {}
            for j, w in grain_parts(g_from) + grain_parts(g_to):
                merged[j] = merged.get(j, 0.0) + 0.5 * w
            if len(merged) < 2 or s.morph_hardening <= 1.0 or not all(w > 0 for w in merged.values()):
                return None
            key = ("morph", tuple(sorted(merged.items())), round(v.gamma, 9), round(s.morph_hardening, 9))
            if key not in entries:
                entries[key] = len(entries)
            return entries[key]

        segments = []
        for g_from, g_to, steps in walk:
            a, b = grain_terms(g_from), grain_terms(g_to)
            mid = halfway(g_from, g_to) if g_from != g_to and a and b and steps >= 4 else None
            if mid is not None:
                first = steps // 2
                segments.append(Segment(first, (a[0][0], mid), (a[0][1], 0.0), (0.0, 1.0)))
                segments.append(Segment(steps - first, (mid, b[0][0]), (1.0, 0.0), (0.0, b[0][1])))
                continue
            idx = [i for i, _ in a] + [i for i, _ in b]
            start = [w for _, w in a] + [0.0] * len(b)
            end = [0.0] * len(a) + [w for _, w in b]
            if g_from == g_to:
                idx, start, end = [i for i, _ in a], [w for _, w in a], [w for _, w in a]
            if not idx:
                idx, start, end = [0], [0.0], [0.0]
            segments.append(Segment(steps, tuple(idx), tuple(start), tuple(end)))
        # the level curve follows the same walk over the corners' grain gains
        gains = np.zeros(k_count)
        wsum = sum(w for _, w in v.terms) or 1.0
        for (c, w), cl in zip(v.terms, clips):
            gl = without_fade_out(cl["gains"], s.fade_out_db)
            gl = np.concatenate([gl, np.full(k_count - len(gl), gl[-1])])
            gains += w * gl / wsum
        # a held note follows `level_contour` of the source's loudness contour (in dB): 1 = all of it,
        # 0 = a flat level (the grains are all loaded at one level)
        gains = np.maximum(gains, 0.0)
        level = float(np.exp(np.mean(np.log(gains[gains > 0])))) if np.any(gains > 0) else 0.0
        gains = level * (np.where(gains > 0, gains, level) / max(level, 1e-30)) ** s.level_contour
        curve = walk_curve(walk, gains)
        return segments, curve

    def _start_states(self, voices, schedules, group_of) -> np.ndarray:
        """Each voice starts on its first grains' attractors (weighted), nudged per round robin."""
        m = self._require()
        out = np.zeros((len(voices), m.size))
        for vi, v in enumerate(voices):
            x = np.zeros(m.size)
            wsum = 0.0
            for c, w in v.terms:
                grains = self.clips[c]["grains"]
                j = grains[0] if v.speed > 0 else grains[-1]
                if j >= 0:
                    x += w * m.start_states[j]
                    wsum += w
            if abs(wsum) > 1e-9:
                x /= wsum
            if v.variation:
                rng = np.random.default_rng((self.seed, v.variation))
                x = x + 0.02 * np.std(x) * rng.standard_normal(m.size)
            out[vi] = x
        return out
