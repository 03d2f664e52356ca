"""The curator: label generated textures from measured features, reject the poor ones, keep the requested
number as different from each other as possible.

    >>> noise = np.random.default_rng(0).standard_normal(44100) * 0.3
    >>> curation = curate([x, noise, np.zeros(44100)], 44100, count=1)      # x: 1 s of a held C4
    >>> [(c.label, c.rejected) for c in curation.candidates]
    [('tonal', 'stuck'), ('noise', 'noise'), ('silence', 'silence')]
    >>> [c.index for c in curation.kept], curation.filled      # nothing passed: the stuck tone fills in
    ([0], 1)

Labels (first match wins; see `label_of`):
- `silence`: almost nothing sounds (90 % of frames silent, or below -60 dBFS);
- `rhythmic`: at least one onset a second, recurring regularly (onset periodicity ≥ 0.6);
- `noise`: a noise-like spectrum whatever its colour (flatness ≥ 0.45, or ≥ 0.3 without a pitch), and
  hissier than the hissiest source (a field recording of wind and crickets is itself hiss by this measure);
- `tonal`: a clear pitch (confidence ≥ 0.6) and few onsets (fewer than 2 a second);
- `drone`: a slowly moving, sustained sound (spectral flux under 1 dB a frame, few onsets);
- `gnarly`: the rest: a moving spectrum with transients, neither noise nor silence (the good stuff).
Rejected: silence, noise, output farther from the sources' spectrum than white noise at equal level is
(`far`: whatever its label, it sounds less like the sources than hiss would), and stuck output (the spectrum
frozen over the last half, or gone silent there).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio.features import TextureFeatures, profile_distance_db, texture_features, white_noise_profile_db

LABELS = ("rhythmic", "gnarly", "tonal", "drone", "noise", "silence")     # also the pads' order on the keys
REJECTED_LABELS = ("silence", "noise")
STUCK_FLUX_DB = 0.1        # mean frame-to-frame log-mel change over the last half below this: frozen
DRONE_FLUX_DB = 1.0
NOISE_FLATNESS = 0.45      # white, pink, windy noise read ~0.6; a buzz of repeated noisy frames ~0.55


def label_of(f: TextureFeatures, sources_flatness: float = 0.0) -> str:
    """The texture's label; `sources_flatness` (see `features.sources_flatness`): how much hiss the sources
    themselves hold. A texture is noise only when it is also hissier than the hissiest source: from a field
    recording of wind and crickets (flatness ~0.5), a texture as hissy as the field is the field."""
    if f.silence >= 0.9 or f.level_db < -60.0:
        return "silence"
    if f.onset_rate >= 1.0 and f.periodicity >= 0.6:
        return "rhythmic"
    hiss = f.flatness >= NOISE_FLATNESS or (f.flatness >= 0.3 and f.pitch_confidence < 0.5)
    if hiss and f.flatness > sources_flatness:
        return "noise"
    if f.pitch_confidence >= 0.6 and f.onset_rate < 2.0:
        return "tonal"
    if f.flux < DRONE_FLUX_DB and f.onset_rate < 1.0:
        return "drone"
    return "gnarly"


def is_stuck(f: TextureFeatures) -> bool:
    """The output stopped moving (a frozen spectrum, a held cycle) or went silent in its last half."""
    return f.tail_silence >= 0.9 or f.flux_tail < STUCK_FLUX_DB


@dataclass(frozen=True)
class Candidate:
    index: int                      # position in the list given to `curate`
    features: TextureFeatures
    label: str
    rejected: str | None            # why it was rejected ("silence", "noise", "far", "stuck"), or None

    def description(self) -> str:
        return f"{self.label} texture ({self.features.summary()})"


@dataclass(frozen=True)
class Curation:
    candidates: tuple[Candidate, ...]
    kept: tuple[Candidate, ...]     # in key order: grouped by label (LABELS order), then as selected
    filled: int = 0                 # how many kept ones were rejected candidates taken to reach the count

    @property
    def keep_share(self) -> float:
        """Share of the candidates that passed (not rejected)."""
        return sum(c.rejected is None for c in self.candidates) / max(1, len(self.candidates))

    def counts(self) -> dict[str, int]:
        return {label: sum(c.label == label for c in self.candidates) for label in LABELS
                if any(c.label == label for c in self.candidates)}


def judge(features: TextureFeatures, noise_distance: float | None = None, sources_flatness: float = 0.0
          ) -> Candidate:
    """Label and verdict; `noise_distance`: white noise's distance to the sources (None: not checked);
    `sources_flatness`: see `label_of`."""
    label = label_of(features, sources_flatness)
    if label in REJECTED_LABELS:
        rejected = label
    elif noise_distance is not None and features.source_distance >= noise_distance:
        rejected = "far"
    else:
        rejected = "stuck" if is_stuck(features) else None
    return Candidate(-1, features, label, rejected)


def noise_distance_db(reference: np.ndarray, sample_rate: int) -> float:
    """How far white noise (at any level) lies from the sources' profile."""
    return profile_distance_db(white_noise_profile_db(sample_rate), reference)


def _vectors(candidates: list[Candidate]) -> np.ndarray:
    """Standardised feature vectors for the diversity choice: the scalar measures and the spectrum's shape."""
    scalars = np.array([[c.features.flatness, np.log1p(c.features.onset_rate), c.features.periodicity,
                         c.features.pitch_confidence, np.log1p(c.features.flux), c.features.silence]
                        for c in candidates])
    shapes = np.array([c.features.profile - c.features.profile.mean() for c in candidates]) / 10.0
    spread = scalars.std(axis=0)
    scalars = (scalars - scalars.mean(axis=0)) / np.where(spread > 1e-9, spread, 1.0)
    return np.concatenate([scalars, shapes / np.sqrt(shapes.shape[1] / scalars.shape[1])], axis=1)


def most_different(candidates: list[Candidate], count: int) -> list[Candidate]:
    """Greedy farthest-point choice: start from the candidate nearest the sources' spectrum (the first when
    there is no reference), then add the one farthest from every candidate chosen so far."""
    if count >= len(candidates):
        return list(candidates)
    vectors = _vectors(candidates)
    distance = np.array([c.features.source_distance for c in candidates])
    first = int(np.nanargmin(distance)) if np.isfinite(distance).any() else 0
    chosen = [first]
    nearest = np.linalg.norm(vectors - vectors[first], axis=1)
    while len(chosen) < count:
        nearest[chosen] = -1.0
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        nearest = np.minimum(nearest, np.linalg.norm(vectors - vectors[pick], axis=1))
    return [candidates[i] for i in chosen]


def curate(textures: list[np.ndarray], sample_rate: int, count: int, reference: np.ndarray | None = None,
           channels: list[list[np.ndarray]] | None = None, sources_flatness: float = 0.0) -> Curation:
    """Label every texture (mono), reject the poor ones and keep `count`, as different as possible.

    `channels` (optional, per texture its channel arrays): a texture with a silent channel is rejected
    as silence. With a `reference`, a texture at least as far from it as white noise is rejected (`far`).
    With `sources_flatness` (`features.sources_flatness` of the sources), noise is hiss beyond theirs.
    When fewer than `count` pass, the least bad rejected ones fill the gap (stuck, then far, then noise,
    never silence) and `filled` says how many; when even that is short, fewer are kept.
    """
    candidates = []
    noise = noise_distance_db(reference, sample_rate) if reference is not None else None
    for i, x in enumerate(textures):
        judged = judge(texture_features(x, sample_rate, reference), noise, sources_flatness)
        if channels is not None and judged.rejected != "silence" and any(
                float(np.sqrt(np.mean(np.square(ch, dtype=np.float64)))) < 1e-3 for ch in channels[i]):
            judged = Candidate(-1, judged.features, judged.label, "silence")
        candidates.append(Candidate(i, judged.features, judged.label, judged.rejected))
    good = [c for c in candidates if c.rejected is None]
    kept = most_different(good, count)
    filled = 0
    if len(kept) < count:
        badness = {"stuck": 0, "far": 1, "noise": 2}
        spare = sorted((c for c in candidates if c.rejected in badness),
                       key=lambda c: (badness[c.rejected], np.nan_to_num(c.features.source_distance, nan=1e9)))
        extra = spare[:count - len(kept)]
        kept, filled = kept + extra, len(extra)
    order = {label: k for k, label in enumerate(LABELS)}
    kept = sorted(kept, key=lambda c: (c.rejected is not None, order[c.label]))
    return Curation(tuple(candidates), tuple(kept), filled)


__all__ = ["Candidate", "Curation", "LABELS", "curate", "is_stuck", "judge", "label_of", "most_different",
           "noise_distance_db"]
