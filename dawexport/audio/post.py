"""Post-processing of rendered takes: DC removal, onset-aligned trim, fades and gain normalisation.

    >>> x = remove_dc(take, 44100)
    >>> x, removed = trim(x, 44100)                  # starts ~2 ms before the onset, silent tail cut
    >>> x = fade(x, 44100)                           # 2 ms raised-cosine in, 10 ms out
    >>> gains = normalise_gains(np.array([-20.0, -14.0, -8.0]), np.array([0, 1, 2]), 3)   # one gain per take
"""
from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfiltfilt

POLICIES = ("even", "peak", "none")
_MAX_GAIN_DB = 60.0         # "even" never lifts a near-silent take by more than this


def remove_dc(x, sr: int, cutoff_hz: float = 10.0) -> np.ndarray:
    """Zero-phase high-pass (2nd-order Butterworth, run forwards and backwards) after removing the mean.

    Clips shorter than three periods of the cutoff only have their mean removed.

        >>> y = remove_dc(np.full(44100, 0.1, np.float32) + tone, 44100)     # ~ tone
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0:
        return x.astype(np.float32)
    x = x - x.mean()
    if len(x) < 3.0 * sr / cutoff_hz or cutoff_hz <= 0:
        return x.astype(np.float32)
    sos = butter(2, cutoff_hz, btype="highpass", fs=sr, output="sos")
    # pad by a period of the cutoff so the filter's start-up transient falls outside the clip
    pad = int(min(len(x) - 1, sr / cutoff_hz))
    return sosfiltfilt(sos, x, padtype="odd", padlen=pad).astype(np.float32)


def _envelope(x: np.ndarray, win: int, *, causal: bool = False) -> np.ndarray:
    """Moving RMS over ``win`` samples, centred or trailing (x[i - win + 1 .. i])."""
    win = max(1, int(win))
    cs = np.concatenate([[0.0], np.cumsum(x * x)])
    i = np.arange(len(x))
    if causal:
        lo, hi = np.clip(i - win + 1, 0, None), i + 1
    else:
        lo, hi = np.clip(i - win // 2, 0, len(x)), np.clip(i + (win + 1) // 2, 0, len(x))
    return np.sqrt(np.maximum(cs[hi] - cs[lo], 0.0) / win)


def find_onset(x, sr: int, threshold_db: float = -40.0) -> int:
    """First sample where a trailing 1 ms RMS envelope comes within ``threshold_db`` of its peak, moved
    back to the preceding zero crossing (searching at most 2 ms; else 2 ms back). 0 for a silent clip.

        >>> find_onset(np.concatenate([np.zeros(4410), tone]), 44100)
        4410
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0:
        return 0
    env = _envelope(x, 0.001 * sr, causal=True)
    peak = env.max()
    if peak <= 0:
        return 0
    i = int(np.argmax(env >= peak * 10.0 ** (threshold_db / 20.0)))
    lo = max(0, i - max(1, int(round(0.002 * sr))))
    seg = x[lo:i + 1]
    # j such that x[j] is zero or the sign changes between j and j + 1; take the quieter of the two
    cross = np.nonzero((seg[:-1] == 0) | (np.sign(seg[:-1]) != np.sign(seg[1:])))[0]
    if not cross.size:
        return lo
    j = lo + int(cross[-1])
    return j if abs(x[j]) <= abs(x[j + 1]) else j + 1


def trim(x, sr: int, *, onset_threshold_db: float = -40.0, preroll_s: float = 0.002,
         tail_threshold_db: float = -70.0) -> tuple[np.ndarray, int]:
    """Cut to the onset (less ``preroll_s``) and drop the tail once the 10 ms envelope stays below
    ``tail_threshold_db`` relative to its peak. Returns (trimmed copy, samples removed at the start).
    A silent clip comes back unchanged.

        >>> y, removed = trim(np.concatenate([np.zeros(4410), tone, np.zeros(44100)]), 44100)
    """
    x = np.asarray(x)
    xd = x.astype(np.float64).ravel()
    if xd.size == 0 or not np.any(xd):
        return x.astype(np.float32, copy=True), 0
    start = max(0, find_onset(xd, sr, onset_threshold_db) - int(round(preroll_s * sr)))
    win = max(1, int(0.01 * sr))
    env = _envelope(xd, win)
    loud = np.nonzero(env >= env.max() * 10.0 ** (tail_threshold_db / 20.0))[0]
    stop = min(len(xd), int(loud[-1]) + win // 2 + 1)
    stop = max(stop, start + 1)
    return xd[start:stop].astype(np.float32), int(start)


def fade(x, sr: int, *, fade_in_s: float = 0.002, fade_out_s: float = 0.01) -> np.ndarray:
    """Raised-cosine fade in (from 0) and out (to 0); fades longer than the clip share it.

        >>> fade(np.ones(44100, np.float32), 44100)[[0, 88, -1]]
        array([0., 1., 0.], dtype=float32)
    """
    y = np.asarray(x, dtype=np.float32).ravel().copy()
    n = len(y)
    fi, fo = max(0, int(round(fade_in_s * sr))), max(0, int(round(fade_out_s * sr)))
    if fi + fo > n and fi + fo > 0:
        fi, fo = (fi * n) // (fi + fo), n - (fi * n) // (fi + fo)
    if fi:
        y[:fi] *= (0.5 - 0.5 * np.cos(np.pi * np.arange(fi) / fi)).astype(np.float32)
    if fo:
        y[n - fo:] *= (0.5 + 0.5 * np.cos(np.pi * (np.arange(fo) + 1) / fo)).astype(np.float32)
    return y


def normalise_gains(loudness_db, layer, n_layers: int, *, policy: str = "even", peak=None,
                    target_db: float = -14.0, layer_spread_db: float = 6.0,
                    ceiling_db: float = -1.0) -> np.ndarray:
    """Linear gain for each take, from its loudness (dB, e.g. ``integrated_loudness_db``) and velocity layer.

    Policies:
      - ``"even"``: every take of layer k is brought to target_db - layer_spread_db * (n_layers - 1 - k),
        so the top layer of every key is equally loud and layers are ordered by the spread; then, if
        ``peak`` (linear sample peak per take, before gain) is given and a peak would pass ``ceiling_db``,
        ONE trim down for all takes so the highest peak lands on it (levels stay even and ordered,
        nothing clips). A take is
        never lifted by more than 60 dB (near-silent takes stay quiet).
      - ``"peak"``: every take is peak-normalised to ``ceiling_db`` and layer k is lowered by
        layer_spread_db * (n_layers - 1 - k); needs ``peak``. Loudness is not evened out.
      - ``"none"``: gains of 1, with one global trim down if any peak would pass ``ceiling_db``.

        >>> normalise_gains(np.array([-20.0, -10.0]), np.array([0, 1]), 2, peak=np.array([0.1, 0.5]))
        array([1.        , 0.63095734])
    """
    loud = np.asarray(loudness_db, dtype=np.float64).ravel()
    layer = np.asarray(layer).ravel()
    if policy not in POLICIES:
        raise ValueError(f"gain policy must be one of {POLICIES}, got {policy!r}")
    if layer.shape != loud.shape:
        raise ValueError(f"{loud.size} loudness values but {layer.size} layer indices")
    if n_layers < 1 or (layer.size and (layer.min() < 0 or layer.max() >= n_layers)):
        raise ValueError(f"layer indices must lie in 0..{n_layers - 1}")
    if layer_spread_db < 0:
        raise ValueError(f"layer_spread_db must be >= 0, got {layer_spread_db}")
    pk = None
    if peak is not None:
        pk = np.asarray(peak, dtype=np.float64).ravel()
        if pk.shape != loud.shape:
            raise ValueError(f"{loud.size} loudness values but {pk.size} peaks")
    ceiling = 10.0 ** (ceiling_db / 20.0)
    offset_db = -layer_spread_db * (n_layers - 1 - layer.astype(np.float64))

    if policy == "even":
        gain_db = np.minimum(target_db + offset_db - loud, _MAX_GAIN_DB)
        gains = 10.0 ** (gain_db / 20.0)
    elif policy == "peak":
        if pk is None:
            raise ValueError("the 'peak' gain policy needs the peak of each take")
        gains = np.where(pk > 0, ceiling / np.where(pk > 0, pk, 1.0), 1.0) * 10.0 ** (offset_db / 20.0)
    else:
        gains = np.ones_like(loud)
    if pk is not None and pk.size:
        top = float(np.max(pk * gains))
        if top > ceiling:
            gains = gains * (ceiling / top)
    return gains
