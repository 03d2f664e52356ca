"""Single-cycle wavetables from pitched renders: find a steady stretch, measure its period, take one cycle.

    >>> frame = extract_cycle(take, 44100)                    # (2048,): one period, zero DC, band-limited
    >>> table = table_from_takes(takes, 44100)                # (N, 2048): one frame per take (a blend path)
    >>> table = table_from_note(note, 44100, frames=64)       # (64, 2048): attack -> end of sustain
    >>> table.shape, float(abs(table).max())
    ((64, 2048), 0.98)

How a cycle is taken. The period P (fractional, in samples) is measured where the cycle is taken: a coarse
pitch (``estimate_pitch``, or the caller's ``f0_hz``) is refined by the minimum of the YIN difference
``d(tau) = sum (x[n] - x[n + tau])^2`` within +-6 % of it (a parabola through the three lowest points), then
sharpened from how far the harmonics' phases turn over one period (a least-squares fit over the harmonics;
on a steady tone this lands within about 1e-6 samples of the true period, against 0.05 for the parabola).
The frame is then the Fourier series of the signal at exactly that period: the complex amplitude of every
harmonic ``h`` of ``f0 / periods`` is measured with a Hann window spanning ``span`` frame lengths centred
on the chosen point (a chirp-z transform evaluates the DTFT at exactly those frequencies; with a Hann window
of a whole number (>= 2) of frame lengths every other harmonic of a steady sound falls on a zero of the
window's spectrum, so harmonics do not leak into each other, and a level that drifts linearly across the
window reads its centre value). The frame is synthesised from those harmonics by an inverse FFT of
``size`` points. That is frequency-domain resampling of one period: exact for a periodic, band-limited
signal. Harmonics at or above ``size / 2``, and those at or above the source's Nyquist frequency or so
close below it that the window cannot tell them from their mirror image, are dropped: the frame holds
nothing the render did not hold and nothing that would alias. DC is dropped, and because the frame is a
finite Fourier series of period ``size`` it joins end to start without a jump.

Phase. A morph between frames crossfades samples, so frames whose waveforms are circularly shifted against
each other cancel partly and "swirl". ``align_phase`` rotates each frame (by a fractional number of samples,
exactly, in the frequency domain) to maximise its correlation with the previous frame, which minimises the
squared difference the crossfade travels; the first frame starts at the rising zero crossing of its
fundamental.

Everything here is pure numpy/scipy: arrays in, arrays out (float64); the files are written by
``dawexport.export.wavetables``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from scipy.signal import czt

from dawexport.audio.analysis import estimate_pitch, f0_track
from dawexport.errors import ExportError

FRAME_SIZE = 2048            # samples per frame in a Serum-compatible table
MAX_FRAMES = 256             # Serum's limit on frames per table
_SEARCH = 0.06               # the period is refined within +-6 % (about one semitone) of the coarse pitch
_STEADY_DB = -6.0            # a steady window is chosen among those within 6 dB of the loudest
_NOTE_FLOOR_DB = -20.0       # a note's frames start where the attack comes within 20 dB of the peak
_RELEASE_DB = -3.0           # ... and end where the level last holds 3 dB under the sustain level
_FUNDAMENTAL_FLOOR = 1e-3    # a fundamental weaker than this (relative to the strongest bin) sets no phase


# --------------------------------------------------------------------------- helpers

def _mono(x, what: str = "audio") -> np.ndarray:
    """1-D float64 from a 1-D array or a (channels, frames) array (channels averaged)."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 2:
        a = a.mean(axis=0)
    if a.ndim != 1:
        raise ValueError(f"{what} must be 1-D or (channels, frames), got shape {np.shape(x)}")
    if not np.all(np.isfinite(a)):
        raise ExportError(f"{what} contains NaN or infinite samples",
                          fix="check the render; the model produced non-finite output")
    return a


def _check_size(size: int) -> int:
    size = int(size)
    if size < 16 or size % 2:
        raise ValueError(f"frame size must be an even number >= 16, got {size}")
    return size


def _coarse_f0(x: np.ndarray, sr: int, f0_hz) -> float:
    """The caller's pitch, or one robust pitch for the whole clip."""
    if f0_hz is not None:
        f0 = float(f0_hz)
        if not 0.0 < f0 < sr / 2.0:
            raise ValueError(f"f0_hz must be between 0 and the Nyquist frequency {sr / 2} Hz, got {f0_hz}")
        return f0
    est = estimate_pitch(x, sr, fmin=40.0, fmax=min(4000.0, sr / 4.0))
    if not est.pitched:
        raise ExportError("the render has no clear pitch, so no single cycle can be taken from it",
                          fix="render the wavetable from a pitched blend point or note, or pass the "
                              "wavetable's pitch (f0_hz)")
    return float(est.hz)


def _check_span(span) -> int:
    if isinstance(span, bool) or int(span) != span or span < 2:
        raise ValueError(f"span must be a whole number >= 2 of frame lengths (a Hann window of a whole "
                         f"number of periods keeps harmonics apart), got {span!r}")
    return int(span)


def _check_periods(periods) -> int:
    if isinstance(periods, bool) or int(periods) != periods or periods < 1:
        raise ValueError(f"periods must be a whole number >= 1, got {periods!r}")
    return int(periods)


def _window_reach(period: float, periods: int, span: float) -> float:
    """Half the number of samples the analysis of one frame (and its period search) reads around its centre."""
    return 0.5 * (span * periods + 1.2) * period + 4.0


def _clamp_centre(n: int, centre: float, half: float) -> float:
    lo, hi = half + 1.0, n - half - 2.0
    if lo > hi:
        raise ExportError(f"the render is too short to take a cycle from: {n} samples, need about "
                          f"{int(np.ceil(2 * half)) + 3}",
                          fix="render longer notes for wavetables, or lower `span`")
    return float(min(max(centre, lo), hi))


# --------------------------------------------------------------------------- period

def measure_period(x, sr: int, at: float, f0_hz: float | None = None, *, span: int = 4) -> float:
    """The period in samples (fractional) of the sound around sample ``at``.

    A coarse pitch (``f0_hz``, or ``estimate_pitch`` of the whole clip) is refined by the minimum of the
    YIN difference function over ``span`` periods centred on ``at`` (searched within +-6 %, interpolated
    with a parabola), then by the phase turn of the harmonics over one period.

        >>> round(float(measure_period(np.sin(2 * np.pi * 261.63 * np.arange(44100) / 44100), 44100, at=22050)), 2)
        168.56
    """
    span = _check_span(span)
    x = _mono(x)
    p0 = sr / _coarse_f0(x, sr, f0_hz)
    centre = _clamp_centre(len(x), float(at), _window_reach(p0 * (1 + _SEARCH), 1, span))
    return _period_at(x, centre, p0, span)


def _refine_period(x: np.ndarray, centre: float, p0: float, span: float) -> float:
    n = len(x)
    for _ in range(4):
        lo = max(2, int(np.floor(p0 * (1.0 - _SEARCH))))
        hi = max(lo + 2, int(np.ceil(p0 * (1.0 + _SEARCH))))
        width = max(int(round(span * p0)), 8)
        # compare x[s : s+W] with x[s+tau : s+tau+W] for tau = lo-1 .. hi+1 (the ends only for the parabola)
        s = int(round(centre - (width + p0) / 2.0))
        s = min(max(s, 0), n - width - hi - 2)
        if s < 0:
            raise ExportError(f"the render is too short to measure a period of {p0:.1f} samples "
                              f"({n} samples)", fix="render longer notes for wavetables")
        a = x[s:s + width]
        seg = x[s + lo - 1:s + hi + 1 + width]
        cross = np.correlate(seg, a, mode="valid")                      # sum a[k] * x[s+tau+k]
        c2 = np.concatenate(([0.0], np.cumsum(seg * seg)))
        eb = c2[width:width + len(cross)] - c2[:len(cross)]
        d = np.dot(a, a) + eb - 2.0 * cross                             # d[j] at tau = lo - 1 + j
        i = int(np.argmin(d[1:-1])) + 1
        if not d[i - 1] >= d[i] <= d[i + 1]:
            p0 = float(lo - 1 + i)                                      # minimum at the edge: move there
            continue
        den = d[i - 1] - 2.0 * d[i] + d[i + 1]
        off = 0.5 * (d[i - 1] - d[i + 1]) / den if den > 0 else 0.0
        return float(lo - 1 + i + np.clip(off, -1.0, 1.0))
    raise ExportError(f"no stable period near {p0:.1f} samples: the pitch moves too much where the "
                      "cycle is taken", fix="pass the wavetable's pitch (f0_hz) or pick a steadier note")


def _steady_centre(x: np.ndarray, p0: float, span: float, reach: float) -> float:
    """Centre of the most periodic window among those within 6 dB of the loudest."""
    n = len(x)
    lag = max(2, int(round(p0)))
    width = max(int(round(span * p0)), 2 * lag)
    if n < width + lag + 2:
        raise ExportError(f"the render is too short to take a cycle from: {n} samples, need more than "
                          f"{width + lag + 2}", fix="render longer notes for wavetables")
    diff = np.concatenate(([0.0], np.cumsum((x[:-lag] - x[lag:]) ** 2)))
    energy = np.concatenate(([0.0], np.cumsum(x[:-lag] ** 2 + x[lag:] ** 2)))
    starts = np.arange(0, n - lag - width + 1, max(1, lag // 2))
    centres = starts + (width + lag) / 2.0
    inside = (centres >= reach + 1.0) & (centres <= n - reach - 2.0)
    if not inside.any():
        return _clamp_centre(n, n / 2.0, reach)
    e = energy[starts + width] - energy[starts]
    aperiodic = (diff[starts + width] - diff[starts]) / np.maximum(e, 1e-300)
    aperiodic = ndimage.uniform_filter1d(aperiodic, size=3, mode="nearest")   # a steady stretch, not a point
    level = np.where(inside, e, 0.0)
    loud = inside & (level >= level.max() * 10.0 ** (_STEADY_DB / 10.0))
    if level.max() <= 0.0:
        raise ExportError("the render is silent where a cycle would be taken",
                          fix="check the render; a wavetable needs a sounding, pitched note")
    score = np.where(loud, aperiodic - 1e-3 * level / level.max(), np.inf)
    return float(centres[int(np.argmin(score))])


# --------------------------------------------------------------------------- cycles

def _harmonics(x: np.ndarray, centre: float, frame_len: float, span: float, top: int,
               ref: float) -> np.ndarray:
    """Complex amplitudes of harmonics 0..top of 1/frame_len cycles per sample, phase referenced to sample
    ``ref``, measured with a Hann window of ``span`` frame lengths centred on ``centre``."""
    half = 0.5 * span * frame_len
    n0 = max(int(np.ceil(centre - half)), 0)
    n1 = min(int(np.floor(centre + half)), len(x) - 1)
    idx = np.arange(n0, n1 + 1)
    w = np.cos(np.pi * (idx - centre) / (2.0 * half)) ** 2          # Hann centred on `centre`
    omega = 2.0 * np.pi / frame_len
    spectrum = czt(w * x[n0:n1 + 1], m=top + 1, w=np.exp(-1j * omega), a=1.0)
    h = np.arange(top + 1)
    return spectrum * np.exp(-1j * omega * h * (n0 - ref)) * (2.0 / w.sum())


def _refine_by_phase(x: np.ndarray, centre: float, period: float, span: float) -> float:
    """Sharpen a period estimate from how far each harmonic's phase advances over one period.

    With the harmonics measured at centre -+ period/2 against the same time reference, a relative error
    ``eps`` of the frequency turns harmonic h by ``2 pi h eps``; a least-squares fit over the harmonics
    (weighted by their power) gives ``eps``. Two rounds: few harmonics first (no phase wrap), then more.
    """
    for top in (4, 24):
        top = min(top, int(np.ceil(period / 2.0)) - 1)
        if top < 1:
            break
        a = _harmonics(x, centre - 0.5 * period, period, span, top, centre)[1:]
        b = _harmonics(x, centre + 0.5 * period, period, span, top, centre)[1:]
        turn = np.angle(b * np.conj(a))
        h = np.arange(1, top + 1)
        weight = np.minimum(np.abs(a), np.abs(b)) ** 2
        if weight.sum() <= 0.0:
            break
        eps = np.sum(weight * h * turn) / (2.0 * np.pi * np.sum(weight * h * h))
        if not np.isfinite(eps) or abs(eps) * period > 1.0:
            break                                   # the parabola is never a whole sample off: distrust it
        period = period / (1.0 + eps)
    return period


def _harmonic_frame(x: np.ndarray, sr: int, centre: float, period: float, periods: int, span: float,
                    size: int) -> np.ndarray:
    """One frame of ``periods`` periods starting half a frame before ``centre``, from its harmonics."""
    frame_len = periods * period                  # samples of source per frame (fractional)
    # harmonic h of the frame sits at h / frame_len cycles per sample: keep h below the source's
    # Nyquist (h < frame_len / 2) by more than the window's main lobe (2 / span harmonics), where it
    # cannot be told from its own mirror image, and below the frame's own Nyquist (h < size / 2).
    top = min(int(np.ceil((frame_len - 2.0 / span) / 2.0)) - 1, size // 2 - 1)
    if top < 1:
        raise ExportError(f"a period of {period:.2f} samples is too short to hold a fundamental",
                          fix="render the wavetable at a lower note")
    amps = _harmonics(x, centre, frame_len, span, top, centre - 0.5 * frame_len)
    bins = np.zeros(size // 2 + 1, dtype=np.complex128)
    bins[1:top + 1] = amps[1:] * (size / 2.0)                        # DC dropped
    return np.fft.irfft(bins, n=size)


def _period_at(x: np.ndarray, centre: float, p0: float, span: float) -> float:
    return _refine_by_phase(x, centre, _refine_period(x, centre, p0, span), span)


def extract_cycle(x, sr: int, f0_hz: float | None = None, *, at: float | None = None, periods: int = 1,
                  size: int = FRAME_SIZE, span: int = 4) -> np.ndarray:
    """One band-limited, zero-mean frame of exactly ``periods`` periods, resampled to ``size`` samples.

    ``x`` is 1-D or (channels, frames) (channels are averaged). ``f0_hz`` is the expected pitch (it is
    refined locally within +-6 %); without it the clip's pitch is estimated. ``at`` is the sample the
    frame is taken around; without it the most periodic stretch within 6 dB of the loudest is used.
    ``span`` (a whole number >= 2) is the length of the Hann analysis window in frame lengths: longer
    averages more periods (less noise), shorter follows faster change. The frame starts at an arbitrary
    phase of the cycle; ``align_phase`` fixes that for a table.

        >>> frame = extract_cycle(take, 44100, f0_hz=261.63)
        >>> frame.shape, bool(abs(frame.mean()) < 1e-12)
        ((2048,), True)
    """
    size = _check_size(size)
    periods = _check_periods(periods)
    span = _check_span(span)
    x = _mono(x)
    p0 = sr / _coarse_f0(x, sr, f0_hz)
    reach = _window_reach(p0 * (1 + _SEARCH), periods, span)
    centre = _steady_centre(x, p0, span, reach) if at is None else float(at)
    centre = _clamp_centre(len(x), centre, reach)
    period = _period_at(x, centre, p0, span)
    return _harmonic_frame(x, sr, centre, period, periods, span, size)


# --------------------------------------------------------------------------- tables

def _rotate(spectrum: np.ndarray, tau: float, size: int) -> np.ndarray:
    """rfft of y[k] = x[k + tau] (circular, fractional tau) from the rfft of x."""
    h = np.arange(len(spectrum))
    factor = np.exp(2j * np.pi * h * tau / size)
    if size % 2 == 0:
        factor[-1] = np.cos(np.pi * tau)
    return spectrum * factor


def _best_lag(prev: np.ndarray, cur: np.ndarray, size: int) -> float:
    """Fractional tau maximising sum_k prev[k] * cur[k + tau] (the circular cross-correlation)."""
    cross = np.conj(prev) * cur
    tau = float(np.argmax(np.fft.irfft(cross, n=size)))
    h = np.arange(len(cross))
    omega = 2.0 * np.pi * h / size
    weight = np.full(len(cross), 2.0)
    weight[0] = 1.0
    if size % 2 == 0:
        weight[-1] = 1.0
    for _ in range(6):                                  # Newton on the trigonometric polynomial
        rot = cross * np.exp(1j * omega * tau)
        grad = -np.sum(weight * omega * rot.imag)
        curv = -np.sum(weight * omega ** 2 * rot.real)
        if curv >= 0:
            break
        step = float(np.clip(-grad / curv, -1.0, 1.0))
        tau += step
        if abs(step) < 1e-9:
            break
    return tau


def align_phase(frames, *, mode: str = "chain") -> np.ndarray:
    """Rotate frames circularly (by fractional samples, exactly) so a morph through them does not swirl.

    ``mode="chain"``: the first frame starts at the rising zero crossing of its fundamental; every later
    frame is rotated to correlate best with the (aligned) frame before it, which minimises the squared
    difference a crossfade between neighbours travels. ``mode="fundamental"``: every frame independently
    starts at the rising zero crossing of its fundamental. Frames must be band-limited below ``size / 2``
    for the rotation to be exact (``extract_cycle`` frames are).

        >>> aligned = align_phase(np.stack([extract_cycle(t, 44100) for t in takes]))
    """
    table = np.asarray(frames, dtype=np.float64)
    if table.ndim == 1:
        table = table[np.newaxis, :]
    if table.ndim != 2 or table.shape[1] < 4:
        raise ValueError(f"frames must be (N, size), got shape {np.shape(frames)}")
    if mode not in ("chain", "fundamental"):
        raise ValueError(f"mode must be 'chain' or 'fundamental', got {mode!r}")
    size = table.shape[1]
    spectra = np.fft.rfft(table, axis=1)
    out = np.empty_like(spectra)
    for i, spec in enumerate(spectra):
        if mode == "chain" and i > 0:
            tau = _best_lag(out[i - 1], spec, size)
        elif np.abs(spec[1]) > _FUNDAMENTAL_FLOOR * max(np.abs(spec).max(), 1e-300):
            # fundamental phase -> -pi/2: it then reads sin(2 pi k / size), rising through zero at k = 0
            tau = size * (-0.5 * np.pi - np.angle(spec[1])) / (2.0 * np.pi)
        else:
            tau = 0.0
        out[i] = _rotate(spec, tau % size, size)
    return np.fft.irfft(out, n=size, axis=1)


def normalise_table(frames, peak: float = 0.98) -> np.ndarray:
    """Scale the whole table by one gain so its largest absolute sample is ``peak``.

    One gain keeps the level differences between frames (a morph does not pump).

        >>> float(np.abs(normalise_table(table)).max())
        0.98
    """
    table = np.asarray(frames, dtype=np.float64)
    top = float(np.max(np.abs(table))) if table.size else 0.0
    if not np.isfinite(top):
        raise ExportError("the wavetable contains NaN or infinite samples",
                          fix="check the render; the model produced non-finite output")
    if top <= 0.0:
        raise ExportError("the wavetable is silent", fix="render the wavetable from a sounding note")
    return table * (float(peak) / top)


def _check_frames(frames: int) -> int:
    frames = int(frames)
    if not 1 <= frames <= MAX_FRAMES:
        raise ExportError(f"a wavetable holds 1 to {MAX_FRAMES} frames, not {frames}",
                          fix=f"ask for at most {MAX_FRAMES} frames (Serum's limit)")
    return frames


def table_from_takes(takes: Sequence, sr: int, f0_hz: float | Sequence[float] | None = None, *,
                     size: int = FRAME_SIZE, periods: int = 1, span: int = 4,
                     peak: float | None = 0.98) -> np.ndarray:
    """One frame per take (e.g. renders at points along a blend path), phase-aligned, normalised.

    ``f0_hz`` is one pitch for all takes, one per take, or None (each take's pitch is estimated).
    ``peak=None`` leaves the level as extracted.

        >>> table_from_takes(takes, 44100).shape          # four renders along a blend path
        (4, 2048)
    """
    takes = list(takes)
    _check_frames(len(takes))
    if f0_hz is None or np.ndim(f0_hz) == 0:
        pitches = [f0_hz] * len(takes)
    else:
        pitches = list(f0_hz)
        if len(pitches) != len(takes):
            raise ValueError(f"{len(pitches)} pitches for {len(takes)} takes")
    frames = [extract_cycle(t, sr, f, periods=periods, size=size, span=span) for t, f in zip(takes, pitches)]
    table = align_phase(np.stack(frames))
    return table if peak is None else normalise_table(table, peak)


def note_frame_positions(x, sr: int, frames: int, f0_hz: float | None = None, *, span: int = 4,
                         periods: int = 1, floor_db: float = _NOTE_FLOOR_DB,
                         release_db: float = _RELEASE_DB) -> np.ndarray:
    """Centres (sample indices) of ``frames`` frames evenly spaced from the attack to the end of the sustain.

    Levels are measured over ``span``-period windows. The first frame sits where the attack first comes
    within ``floor_db`` of the peak level. The sustain level is the median level of the part that sounds
    (within ``floor_db`` of the peak); the last frame sits where the note last holds ``release_db`` below
    that, i.e. before the release tail. Every analysis window lies inside the clip.

        >>> np.round(note_frame_positions(note, 44100, frames=4) / 44100, 3)   # 1.2 s note, released at 1.0 s
        array([0.011, 0.344, 0.677, 1.01 ])
    """
    x = _mono(x)
    _check_frames(frames)
    p0 = sr / _coarse_f0(x, sr, f0_hz)
    reach = _window_reach(p0 * (1 + _SEARCH), periods, span)
    width = max(int(round(span * periods * p0)), 2)
    if len(x) < 2 * reach + 3:
        _clamp_centre(len(x), 0.0, reach)                 # raises "too short"
    c2 = np.concatenate(([0.0], np.cumsum(x * x)))
    starts = np.arange(0, len(x) - width + 1, max(1, int(p0 // 2)))
    power = c2[starts + width] - c2[starts]
    if power.max() <= 0.0:
        raise ExportError("the note is silent", fix="render the wavetable from a sounding note")
    level = 10.0 * np.log10(np.maximum(power / power.max(), 1e-30))
    sounding = np.flatnonzero(level >= floor_db)
    sustain = float(np.median(level[sounding[0]:sounding[-1] + 1]))
    held = np.flatnonzero(level >= max(sustain + release_db, floor_db))
    first = starts[sounding[0]] + width / 2.0
    last = starts[held[-1]] + width / 2.0
    first, last = _clamp_centre(len(x), first, reach), _clamp_centre(len(x), last, reach)
    return np.round(np.linspace(first, max(first, last), frames)).astype(np.int64)


def table_from_note(x, sr: int, frames: int = 64, f0_hz: float | None = None, *, size: int = FRAME_SIZE,
                    periods: int = 1, span: int = 4, floor_db: float = _NOTE_FLOOR_DB,
                    release_db: float = _RELEASE_DB, peak: float | None = 0.98) -> np.ndarray:
    """``frames`` frames spaced from the attack to the end of the sustain of one note: its evolution.

    Each frame's pitch is followed (``f0_track`` near the frame, refined to the exact local period), so
    vibrato and drift do not smear it. Frames are phase-aligned as a chain and normalised together.

        >>> table_from_note(note, 44100, frames=32).shape
        (32, 2048)
    """
    size = _check_size(size)
    span = _check_span(span)
    periods = _check_periods(periods)
    x = _mono(x)
    f0 = _coarse_f0(x, sr, f0_hz)
    centres = note_frame_positions(x, sr, frames, f0, span=span, periods=periods, floor_db=floor_db,
                                   release_db=release_db)
    local = np.full(len(centres), f0)
    if f0_hz is None:
        track = f0_track(x, sr, fmin=max(20.0, f0 / 2.0), fmax=min(sr / 4.0, f0 * 2.0))
        voiced = np.flatnonzero(track.voiced)
        if len(voiced):
            frame_of = centres / track.hop
            nearest = voiced[np.argmin(np.abs(voiced[None, :] - frame_of[:, None]), axis=1)]
            near = np.abs(nearest - frame_of) * track.hop <= 0.5 * span * sr / f0
            local = np.where(near, track.hz[nearest], f0)
    reach = _window_reach(sr / local.min() * (1 + _SEARCH), periods, span)
    out = []
    for centre, f in zip(centres, local):
        centre = _clamp_centre(len(x), float(centre), reach)
        period = _period_at(x, centre, sr / f, span)
        out.append(_harmonic_frame(x, sr, centre, period, periods, span, size))
    table = align_phase(np.stack(out))
    return table if peak is None else normalise_table(table, peak)


# --------------------------------------------------------------------------- checks

def wrap_discontinuity(frame) -> float:
    """How far the step from the last sample back to the first exceeds its neighbours' steps.

    ``|frame[0] - frame[-1]|`` divided by the larger of the two adjacent steps (``frame[-1] - frame[-2]``
    and ``frame[1] - frame[0]``), floored at a tenth of the median step. A frame that joins smoothly
    reads about 1 or less wherever the wrap falls (steep or flat part of the wave); a jump reads far more.

        >>> wrap_discontinuity(np.sin(2 * np.pi * np.arange(2048) / 2048))
        1.0...
    """
    f = np.asarray(frame, dtype=np.float64).ravel()
    if f.size < 4:
        raise ValueError("a frame needs at least 4 samples")
    steps = np.abs(np.diff(f))
    floor = 0.1 * float(np.median(steps))
    ref = max(steps[-1], steps[0], floor, 1e-15)
    return float(abs(f[0] - f[-1]) / ref)


__all__ = ["FRAME_SIZE", "MAX_FRAMES", "extract_cycle", "measure_period", "align_phase", "normalise_table",
           "table_from_takes", "table_from_note", "note_frame_positions", "wrap_discontinuity"]
