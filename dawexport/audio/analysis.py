"""Pitch and loudness of mono clips: a pYIN-style f0 tracker, one robust pitch per sound, A-weighted loudness.

    >>> track = f0_track(x, 44100)            # F0Track: times, hz (NaN unvoiced), confidence, voiced
    >>> est = estimate_pitch(x, 44100)        # PitchEstimate(hz=261.6, midi=60.0, ...)
    >>> est.note, round(est.cents)
    (60, 0)
    >>> loud = loudness_db(x, 44100)          # A-weighted dB, one value per f0_track frame

Frames are centred: frame ``i`` describes the sound around sample ``i * hop`` and a clip of ``n`` samples
has ``1 + n // hop`` frames, in both ``f0_track`` and ``loudness_db`` (so their frames line up).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft
from scipy import ndimage, special
from scipy.signal import get_window

FLOOR_DB = -120.0
_CHUNK = 512                # frames analysed per FFT batch: bounds memory on long sources
_SWITCH_P = 0.01            # per-frame probability of a voiced <-> unvoiced switch (pYIN)
_NO_DIP_P = 0.01            # pYIN's probability for the global minimum when no dip is below the threshold
_MAX_RATE_OCT_S = 36.0      # fastest pitch glide followed without penalty, octaves per second
_N_CANDIDATES = 6
_VOICED_APERIODICITY = 0.3  # a frame whose best dip has d' = 0.3 is voiced with probability 1/2
_MIN_RMS_DB = -100.0        # frames quieter than this, or 80 dB under the loudest, are unvoiced
_REL_SILENCE_DB = -80.0


@dataclass(frozen=True)
class F0Track:
    """Frame-wise fundamental frequency. ``hz`` is NaN where ``voiced`` is False."""
    times: np.ndarray
    hz: np.ndarray
    confidence: np.ndarray
    voiced: np.ndarray
    hop: int
    sample_rate: int


@dataclass(frozen=True)
class PitchEstimate:
    """One pitch for a whole sound; ``hz`` is NaN (and confidence 0) for unpitched sounds.

        >>> round(PitchEstimate(hz=436.0, midi=68.84, confidence=0.9, voiced_fraction=1.0).cents, 1)
        -16.0
    """
    hz: float
    midi: float
    confidence: float
    voiced_fraction: float

    @property
    def pitched(self) -> bool:
        return bool(np.isfinite(self.midi))

    @property
    def note(self) -> int:
        """Nearest MIDI note; -1 for an unpitched sound."""
        return int(round(self.midi)) if self.pitched else -1

    @property
    def cents(self) -> float:
        """Offset from the nearest note in cents (-50..50); NaN for an unpitched sound."""
        return 100.0 * (self.midi - self.note) if self.pitched else float("nan")


def hz_to_midi(hz):
    """Fractional MIDI number (69 = 440 Hz); NaN for hz <= 0 or NaN.

        >>> hz_to_midi(261.6256)
        60.0...
    """
    hz = np.asarray(hz, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(hz > 0, 69.0 + 12.0 * np.log2(np.where(hz > 0, hz, 1.0) / 440.0), np.nan)
    return float(out) if out.ndim == 0 else out


def midi_to_hz(midi):
    """Frequency of a (fractional) MIDI number.

        >>> midi_to_hz(69)
        440.0
    """
    out = 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)
    return float(out) if out.ndim == 0 else out


def default_hop(sr: int) -> int:
    """The power of two nearest sr/200 (about 5 ms): 256 at 44.1/48 kHz, 64 at 16 kHz."""
    return int(2 ** round(np.log2(max(sr / 200.0, 1.0))))


def _frames(x: np.ndarray, frame: int, hop: int, left: int, start: int, stop: int) -> np.ndarray:
    """Frames ``start..stop-1``; frame i reads x[i*hop - left : i*hop - left + frame] (zeros outside x)."""
    lo = start * hop - left
    hi = (stop - 1) * hop - left + frame
    seg = np.zeros(hi - lo, dtype=np.float64)
    a, b = max(lo, 0), min(hi, len(x))
    if b > a:
        seg[a - lo:b - lo] = x[a:b]
    return np.lib.stride_tricks.sliding_window_view(seg, frame)[::hop][:stop - start]


# --------------------------------------------------------------------------- f0

def _yin_chunk(frames: np.ndarray, win: int, tau_max: int):
    """Raw difference d(tau) and cumulative-mean-normalised difference d'(tau), tau = 0..tau_max (YIN eq. 6, 8).

    d(tau) = sum_j (x_j - x_{j+tau})^2 over j < win, as energy terms minus twice an FFT cross-correlation.
    """
    n = frames.shape[1]
    nfft = sfft.next_fast_len(n, real=True)
    a = sfft.rfft(frames[:, :win], nfft, axis=1)
    b = sfft.rfft(frames, nfft, axis=1)
    r = sfft.irfft(np.conj(a) * b, nfft, axis=1)[:, :tau_max + 1]
    cs = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames ** 2, axis=1)], axis=1)
    taus = np.arange(tau_max + 1)
    e0 = cs[:, win][:, None]
    etau = cs[:, taus + win] - cs[:, taus]
    d = np.maximum(e0 + etau - 2.0 * r, 0.0)
    csum = np.cumsum(d[:, 1:], axis=1)
    dn = np.ones_like(d)
    ok = csum > 1e-12 * np.maximum(e0, 1e-300)
    dn[:, 1:] = np.where(ok, d[:, 1:] * taus[1:] / np.where(ok, csum, 1.0), 1.0)
    return d, dn, e0[:, 0] / win


def _deepest_nearby(d: np.ndarray, tau: np.ndarray, tau_min: int, tau_max: int) -> np.ndarray:
    """Move each candidate lag to the lowest raw d within +-3% (YIN's "best local estimate").

    The threshold rule picks the first dip under the threshold; with noise that is the leading ripple
    of a valley, which biases pitch sharp.
    """
    half = int(np.ceil(0.03 * tau_max))
    offs = np.arange(-half, half + 1)
    lags = tau[..., None] + offs
    ok = (np.abs(offs) <= np.maximum(1, 0.03 * tau[..., None])) & (lags >= tau_min) & (lags < tau_max)
    lags = np.clip(lags, tau_min, tau_max - 1)
    vals = np.take_along_axis(d, lags.reshape(len(d), -1), axis=1).reshape(lags.shape)
    best = np.argmin(np.where(ok, vals, np.inf), axis=-1)
    return np.take_along_axis(lags, best[..., None], axis=-1)[..., 0]


def _candidates(d: np.ndarray, dn: np.ndarray, tau_min: int, tau_max: int, sr: int, k: int):
    """pYIN candidates: the dips of d', each with the probability that YIN's absolute threshold picks it.

    With thresholds s ~ Beta(2, 18), dip j wins when d'_j < s <= min of the earlier dips, so
    P_j = F(min earlier) - F(d'_j), F the Beta CDF. Returns hz, prob (normalised to sum 1 over the
    dips), aperiodicity (each frames x k) and the voiced probability.
    """
    nf = len(dn)
    mid = dn[:, tau_min:tau_max]
    dip = (mid < dn[:, tau_min - 1:tau_max - 1]) & (mid <= dn[:, tau_min + 1:tau_max + 1])
    vals = np.where(dip, mid, np.inf)
    prev = np.minimum.accumulate(np.concatenate([np.full((nf, 1), np.inf), vals[:, :-1]], axis=1), axis=1)
    cdf = special.betainc(2.0, 18.0, np.clip(prev, 0.0, 1.0))
    prob = np.where(dip, np.maximum(cdf - special.betainc(2.0, 18.0, np.clip(mid, 0.0, 1.0)), 0.0), 0.0)
    rows = np.arange(nf)
    gmin = np.argmin(vals, axis=1)
    has = np.isfinite(vals[rows, gmin])
    best = np.where(has, vals[rows, gmin], np.inf)
    prob[rows[has], gmin[has]] += _NO_DIP_P * special.betainc(2.0, 18.0, np.clip(best[has], 0.0, 1.0))
    # pYIN would take sum(prob) as the voicing probability; that calls a tone 10 dB above white noise
    # (aperiodicity ~0.1) unvoiced half the time, so voicing comes from the best dip's aperiodicity instead
    with np.errstate(over="ignore"):
        voiced_p = 1.0 / (1.0 + np.exp((best - _VOICED_APERIODICITY) / 0.05))
    prob /= np.maximum(prob.sum(axis=1, keepdims=True), 1e-300)

    k = min(k, prob.shape[1])
    idx = np.argpartition(-prob, k - 1, axis=1)[:, :k]
    p = np.take_along_axis(prob, idx, axis=1)
    tau = _deepest_nearby(d, idx + tau_min, tau_min, tau_max)
    # parabolic interpolation on the raw difference, whose minimum is closer to a parabola than d''s
    y0 = np.take_along_axis(d, tau - 1, axis=1)
    y1 = np.take_along_axis(d, tau, axis=1)
    y2 = np.take_along_axis(d, tau + 1, axis=1)
    den = y0 - 2.0 * y1 + y2
    off = np.where(den > 0, 0.5 * (y0 - y2) / np.where(den > 0, den, 1.0), 0.0)
    hz = sr / (tau + np.clip(off, -1.0, 1.0))
    aper = np.take_along_axis(dn, tau, axis=1)
    return hz, p, aper, voiced_p


def _viterbi(hz: np.ndarray, p: np.ndarray, voiced_p: np.ndarray, silent: np.ndarray, max_step_cents: float):
    """Best path over {unvoiced} + candidates; jumps cost 0.5 * (cents / (max_step / 2))^2. Returns state per frame."""
    nf, k = p.shape
    big = 1e6
    emis = np.empty((nf, k + 1))
    emis[:, 0] = -np.log(np.maximum(1.0 - voiced_p, 1e-12))
    emis[:, 1:] = np.where(p > 0, -np.log(np.maximum(p * voiced_p[:, None], 1e-300)), big)
    emis[silent, 0] = 0.0
    emis[silent, 1:] = big
    cents = np.where(p > 0, 1200.0 * np.log2(hz / 10.0), 0.0)
    sigma = max(max_step_cents / 2.0, 1.0)
    stay, switch = -np.log(1.0 - _SWITCH_P), -np.log(_SWITCH_P)
    back = np.zeros((nf, k + 1), dtype=np.intp)
    cost = emis[0].copy()
    cols = np.arange(k + 1)
    for c0 in range(1, nf, 4096):               # transition costs a block at a time: bounded memory
        c1 = min(c0 + 4096, nf)
        trans = np.empty((c1 - c0, k + 1, k + 1))
        dc = cents[c0 - 1:c1 - 1, :, None] - cents[c0:c1, None, :]
        trans[:, 1:, 1:] = stay + 0.5 * (dc / sigma) ** 2
        trans[:, 0, 0] = stay
        trans[:, 0, 1:] = switch
        trans[:, 1:, 0] = switch
        for t in range(c0, c1):
            total = cost[:, None] + trans[t - c0]
            b = np.argmin(total, axis=0)
            back[t] = b
            cost = total[b, cols] + emis[t]
    path = np.empty(nf, dtype=np.intp)
    path[-1] = int(np.argmin(cost))
    for t in range(nf - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def f0_track(x, sr: int, *, fmin: float = 40.0, fmax: float = 2000.0, hop: int | None = None,
             frame: int | None = None) -> F0Track:
    """Fundamental frequency per frame (pYIN-style: YIN dips as candidates, Viterbi over a voiced/unvoiced path).

    ``frame`` is the samples read per analysis (default: the power of two >= 3 periods of fmin); it must
    hold at least two periods of fmin. Glides are followed; octave jumps need strong, lasting evidence.

        >>> tr = f0_track(np.sin(2 * np.pi * 220 * np.arange(44100) / 44100), 44100)
        >>> round(float(np.nanmedian(tr.hz)), 2)
        220.0
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    sr = int(sr)
    if not (0 < fmin < fmax):
        raise ValueError(f"need 0 < fmin < fmax, got fmin={fmin}, fmax={fmax}")
    hop = int(hop) if hop else default_hop(sr)
    if hop < 1:
        raise ValueError(f"hop must be >= 1, got {hop}")
    tau_min = max(2, int(np.floor(sr / min(fmax, sr / 4.0))))
    tau_max = int(np.ceil(sr / fmin)) + 1
    if frame is None:
        frame = int(2 ** np.ceil(np.log2(3.0 * sr / fmin)))
    frame = int(frame)
    if frame < 2.0 * sr / fmin + 2:
        raise ValueError(f"frame={frame} is shorter than two periods of fmin={fmin} Hz at {sr} Hz "
                         f"(need >= {int(np.ceil(2.0 * sr / fmin)) + 2}); raise fmin or the frame")
    win = frame - tau_max
    n_frames = 1 + len(x) // hop
    left = win // 2                             # centre the integration window on i * hop

    hz_c, p_c, ap_c, vp, ms = [], [], [], [], []
    for s in range(0, n_frames, _CHUNK):
        fr = _frames(x, frame, hop, left, s, min(s + _CHUNK, n_frames))
        d, dn, energy = _yin_chunk(fr, win, tau_max)
        h, p, ap, v = _candidates(d, dn, tau_min, tau_max, sr, _N_CANDIDATES)
        hz_c.append(h), p_c.append(p), ap_c.append(ap), vp.append(v), ms.append(energy)
    hz_c, p_c, ap_c = np.concatenate(hz_c), np.concatenate(p_c), np.concatenate(ap_c)
    vp, ms = np.concatenate(vp), np.concatenate(ms)

    ms_db = 10.0 * np.log10(np.maximum(ms, 1e-30))
    silent = (ms_db < _MIN_RMS_DB) | (ms_db < ms_db.max() + _REL_SILENCE_DB)
    max_step = _MAX_RATE_OCT_S * 1200.0 * hop / sr
    path = _viterbi(hz_c, p_c, vp, silent, max_step)

    rows = np.arange(n_frames)
    voiced = path > 0
    chosen = np.where(voiced, path - 1, np.argmax(p_c, axis=1))
    hz = np.where(voiced, hz_c[rows, chosen], np.nan)
    conf = np.clip(1.0 - ap_c[rows, chosen], 0.0, 1.0)
    conf[silent] = 0.0
    return F0Track(times=rows * hop / sr, hz=hz, confidence=conf, voiced=voiced, hop=hop, sample_rate=sr)


# --------------------------------------------------------------------------- loudness

def a_weighting_db(freqs):
    """IEC 61672 A-weighting in dB (0 dB at 1 kHz, -19.1 dB at 100 Hz, -inf at 0 Hz).

        >>> round(float(a_weighting_db(100.0)), 1)
        -19.1
    """
    f2 = np.asarray(freqs, dtype=np.float64) ** 2
    ra = (12194.0 ** 2 * f2 ** 2) / ((f2 + 20.6 ** 2) * np.sqrt((f2 + 107.7 ** 2) * (f2 + 737.9 ** 2))
                                    * (f2 + 12194.0 ** 2))
    with np.errstate(divide="ignore"):
        out = 20.0 * np.log10(ra) + 2.0
    return float(out) if out.ndim == 0 else out


def loudness_db(x, sr: int, *, hop: int | None = None, frame: int | None = None,
                a_weighted: bool = True) -> np.ndarray:
    """Loudness per frame in dB: power of the (A-weighted) Hann-windowed STFT, floored at -120 dB.

    The bin powers are weighted by the A-curve and summed with Parseval's normalisation, so the value
    is an A-weighted mean square in dBFS: a 1 kHz sine of amplitude 1 reads -3.0 dB. Frames match
    ``f0_track`` (hop default ~5 ms, 1 + len // hop centred frames); frame default ~40 ms.

        >>> round(float(loudness_db(0.5 * np.sin(2 * np.pi * 1000 * np.arange(44100) / 44100), 44100)[50]), 1)
        -9.0
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    sr = int(sr)
    hop = int(hop) if hop else default_hop(sr)
    frame = int(frame) if frame else int(2 ** np.ceil(np.log2(0.04 * sr)))
    window = get_window("hann", frame, fftbins=True)
    freqs = sfft.rfftfreq(frame, 1.0 / sr)
    weight = np.ones_like(freqs)
    weight[1:frame - frame // 2] = 2.0         # one-sided spectrum: every bin but DC (and Nyquist) twice
    if a_weighted:
        with np.errstate(over="ignore"):
            weight = weight * 10.0 ** (a_weighting_db(freqs) / 10.0)
    weight /= frame * np.sum(window ** 2)
    n_frames = 1 + len(x) // hop
    out = np.empty(n_frames)
    for s in range(0, n_frames, _CHUNK):
        e = min(s + _CHUNK, n_frames)
        spec = sfft.rfft(_frames(x, frame, hop, frame // 2, s, e) * window, axis=1)
        out[s:e] = (spec.real ** 2 + spec.imag ** 2) @ weight
    return np.maximum(10.0 * np.log10(np.maximum(out, 1e-30)), FLOOR_DB)


def rms_db(x) -> float:
    """RMS level in dBFS (a full-scale sine is -3.0), floored at -120.

        >>> round(rms_db(np.full(100, 0.1)), 6)
        -20.0
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return FLOOR_DB
    return float(max(10.0 * np.log10(max(np.mean(x * x), 1e-30)), FLOOR_DB))


def integrated_loudness_db(x, sr: int) -> float:
    """One A-weighted loudness for a clip: mean power of the frames within 20 dB of the loudest frame.

    The gate keeps silence and tails from lowering the figure. -120 for a silent clip.

        >>> integrated_loudness_db(np.sin(2 * np.pi * 1000 * np.arange(44100) / 44100), 44100)
        -3.0...
    """
    loud = loudness_db(x, sr)
    top = float(loud.max()) if loud.size else FLOOR_DB
    if top <= FLOOR_DB:
        return FLOOR_DB
    gated = loud[loud >= top - 20.0]
    return float(10.0 * np.log10(np.mean(10.0 ** (gated / 10.0))))


# --------------------------------------------------------------------------- one pitch per sound

def _weighted_quantile(v: np.ndarray, w: np.ndarray, q: float) -> float:
    order = np.argsort(v)
    cw = np.cumsum(w[order])
    return float(v[order][min(np.searchsorted(cw, q * cw[-1]), len(v) - 1)])


def pitch_weights(cents: np.ndarray, loudness_db: np.ndarray, times: np.ndarray,
                  confidence: np.ndarray | float = 1.0, hop_s: float | None = None) -> np.ndarray:
    """How much each frame counts towards a sound's one pitch: its amplitude times its confidence, down-weighted
    where the 250 ms median-smoothed pitch glides (a glide of 300 cents/s counts half)."""
    cents = np.asarray(cents, np.float64)
    times = np.asarray(times, np.float64)
    if hop_s is None:
        hop_s = float(np.median(np.diff(times))) if len(times) > 1 else 0.01
    size = max(1, int(round(0.25 / hop_s)) | 1)
    smooth = ndimage.median_filter(cents, size=size, mode="nearest")
    slope = np.gradient(smooth, times) if len(times) > 1 else np.zeros(len(cents))
    return 10.0 ** (np.asarray(loudness_db, np.float64) / 20.0) * confidence / (1.0 + (slope / 300.0) ** 2)


OCTAVE_READ_CENTS = 900.0   # further than this from a sound's median pitch: an octave read, not the note


def central_cents(cents: np.ndarray, weights: np.ndarray) -> float:
    """The weighted mean of the middle half (by weight) of per-frame pitches: the centre of a vibrato, and
    scoops ignored. `estimate_pitch` and the engines that shape a pitch curve agree through this.

    Frames more than `OCTAVE_READ_CENTS` from the weighted median are left out first: they are octave or
    subharmonic reads (a take that is period-doubled for a while, a weak fundamental), and a mean across
    an octave is a pitch no frame plays; with them in, a small change of timbre (an EQ) that turns a few
    more frames into octave reads would move the pitch by tens of cents.

        >>> central_cents(np.array([0.0, 10.0, 20.0, 30.0, 400.0]), np.ones(5))
        20.0
        >>> central_cents(np.array([0.0, 2.0, 4.0, -1200.0, -1198.0]), np.ones(5))   # two frames an octave low
        2.0
    """
    cents = np.asarray(cents, np.float64)
    w = np.asarray(weights, np.float64)
    near = np.abs(cents - _weighted_quantile(cents, w, 0.5)) <= OCTAVE_READ_CENTS
    if np.sum(w[near]) > 0:
        cents, w = cents[near], w[near]
    lo, hi = _weighted_quantile(cents, w, 0.25), _weighted_quantile(cents, w, 0.75)
    mid = (cents >= lo) & (cents <= hi)
    return float(np.sum(cents[mid] * w[mid]) / np.sum(w[mid]))


def estimate_pitch(x, sr: int, *, fmin: float = 40.0, fmax: float = 2000.0) -> PitchEstimate:
    """One robust pitch for a sound (NaN, confidence 0 if unpitched; never raises on audio content).

    Uses voiced, confident frames within 20 dB of the loudest voiced frame, weighted by amplitude and
    down-weighted where the (250 ms median-smoothed) pitch glides; the result is the weighted mean of
    the middle half of their cents values, which is the centre of a vibrato and ignores scoops.

        >>> round(estimate_pitch(np.sin(2 * np.pi * 436 * np.arange(44100) / 44100), 44100).cents)
        -16
    """
    nan = PitchEstimate(hz=float("nan"), midi=float("nan"), confidence=0.0, voiced_fraction=0.0)
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size < 2 or not np.all(np.isfinite(x)):
        return nan
    tr = f0_track(x, sr, fmin=fmin, fmax=fmax)
    loud = loudness_db(x, sr, hop=tr.hop)
    top = float(loud.max())
    active = loud >= max(top - 40.0, FLOOR_DB + 1.0)
    if not active.any():
        return nan
    vfrac = float(np.mean(tr.voiced[active]))
    use = tr.voiced & active & (tr.confidence >= 0.5)
    if use.sum() < 3 or vfrac < 0.2:
        return PitchEstimate(float("nan"), float("nan"), 0.0, vfrac)
    use &= loud >= loud[use].max() - 20.0
    cents = 100.0 * hz_to_midi(tr.hz[use])
    w = pitch_weights(cents, loud[use], tr.times[use], tr.confidence[use], tr.hop / tr.sample_rate)
    midi = central_cents(cents, w) / 100.0
    conf = float(np.sum(tr.confidence[use] * w) / np.sum(w)) * min(1.0, vfrac / 0.5)
    return PitchEstimate(hz=midi_to_hz(midi), midi=midi, confidence=conf, voiced_fraction=vfrac)
