"""How the wavenet engine turns a recording's latent frames into a held note: the attack kept as it is,
the sustain's mean held, a glide to silence over the release, and a loudness direction for velocity.

    >>> attack_and_sustain(np.array([-30.0, -3.0, 0.0, -1.0, -2.0, -40.0]), attack_frames=4, sustain_db=6.0)
    (1, 5)
"""
from __future__ import annotations

import numpy as np


def frame_loudness_db(x: np.ndarray, hop: int) -> np.ndarray:
    """RMS level (dB) of each hop-long frame, on the encoder's frame grid (ceil(len / hop) frames)."""
    n = max(1, -(-len(x) // hop))
    padded = np.zeros(n * hop, dtype=np.float64)
    padded[:len(x)] = x
    rms = np.sqrt(np.mean(padded.reshape(n, hop) ** 2, axis=1))
    return 20.0 * np.log10(np.maximum(rms, 1e-6))


def attack_and_sustain(loud_db: np.ndarray, attack_frames: int, sustain_db: float) -> tuple[int, int]:
    """(A, E): frames [0, A) are the attack, kept as they are; [A, E) the sustain whose mean is held.

    A is the first frame within 3 dB of the peak (at most `attack_frames`, at least 1 when there is a
    sustain after it); E is one past the last frame within `sustain_db` of the peak.
    """
    n = len(loud_db)
    top = float(np.max(loud_db))
    near = np.flatnonzero(loud_db >= top - 3.0)
    a = int(min(near[0], attack_frames)) if len(near) else 0
    loud = np.flatnonzero(loud_db >= top - sustain_db)
    e = int(loud[-1]) + 1 if len(loud) else n
    if n > 1:
        a = max(1, min(a, n - 1))
    else:
        a = 0
    e = max(e, a + 1)
    return a, min(e, n)


def held_latents(latents: np.ndarray, loud_db: np.ndarray, n_frames: int, attack_frames: int,
                 sustain_db: float, crossfade_frames: int) -> np.ndarray:
    """A corner's latent sequence for a key held n_frames: the attack frames, then a glide into the mean of
    the sustain frames, held. (n_frames, latent) float64."""
    latents = np.asarray(latents, dtype=np.float64)
    a, e = attack_and_sustain(loud_db, attack_frames, sustain_db)
    hold = latents[a:e].mean(axis=0)
    out = np.empty((n_frames, latents.shape[1]))
    for f in range(n_frames):
        if f < a:
            out[f] = latents[f]
        elif f < a + crossfade_frames:
            alpha = (f - a + 1) / (crossfade_frames + 1)
            out[f] = (1 - alpha) * latents[min(f, len(latents) - 1)] + alpha * hold
        else:
            out[f] = hold
    return out


def release_mix(n_frames: int, hop: int, sample_rate: int, duration_s: float, release_s: float) -> np.ndarray:
    """Per frame, how far the latent has glided to silence: 0 while held, a raised-cosine rise to 1 over the
    release (measured at each frame's end), 1 after."""
    t = (np.arange(n_frames) + 1) * hop / sample_rate
    if release_s <= 0:
        return (t > duration_s).astype(np.float64)
    r = np.clip((t - duration_s) / release_s, 0.0, 1.0)
    return 0.5 * (1 - np.cos(np.pi * r))


def loudness_direction(latents: np.ndarray, loud_db: np.ndarray) -> np.ndarray:
    """Least-squares slope of the latents against frame loudness (latent units per dB); zeros when the
    corpus has (almost) no loudness variation."""
    lat = np.asarray(latents, dtype=np.float64)
    loud = np.asarray(loud_db, dtype=np.float64)
    if len(loud) < 3:
        return np.zeros(lat.shape[1])
    dl = loud - loud.mean()
    var = float(np.mean(dl ** 2))
    if var < 1.0:
        return np.zeros(lat.shape[1])
    return (dl[:, None] * (lat - lat.mean(axis=0))).mean(axis=0) / var
