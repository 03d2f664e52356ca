"""How close an instrument's note sounds to its source: the three measures of DESIGN.md, in dB.

All three are mean absolute differences in dB with the overall level removed, so 0 means "the same colour",
and they take plain mono float arrays with their sample rates:

- `timbre_distance`: the time-averaged 64-band mel spectrum (40 Hz–16 kHz) of the frames within 20 dB of
  the loudest, source against note;
- `evolution_distance`: the same log-mel comparison frame by frame (2048-point frames, hop 512) from each
  onset over the source's length, both floored 60 dB below their loudest, one level offset removed;
- `formant_distance`: the harmonic envelope (log amplitude at k·f0 up to 8 kHz, read on a log-frequency grid
  from 1.5× the higher f0) of the source against a note at another pitch, each floored 60 dB below its
  loudest point (as evolution floors its frames).

`harmonic_split` tells a note's harmonics from its noise per frequency band (the level of its harmonic peaks
and of the floor between them, `harmonics.harmonic_levels` summed up per band), to see which of a
harmonic-plus-noise model's two branches carries a band.

`formant_keeping_shift` is the reference a formant measure is read against: the source resynthesised at
another pitch from its own harmonic envelope (the ideal a source-filter model can reach), read at each moved
harmonic's frequency or, smoothed, over its band; `best_formant_note` is the lowest formant distance any
steady harmonic note at a given pitch can score (whatever its harmonic levels).

    >>> sr = 32000
    >>> t = np.arange(sr) / sr
    >>> saw = lambda f0: sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 40) if k * f0 < sr / 2)
    >>> round(timbre_distance(saw(220), sr, 0.5 * saw(220), sr), 3)
    0.0
    >>> timbre_distance(saw(220), sr, np.sin(2 * np.pi * 220 * t), sr) > 10
    True
    >>> round(evolution_distance(saw(220), sr, np.concatenate([np.zeros(800), saw(220)]), sr), 1)
    0.0
    >>> formant_distance(saw(220), 220.0, sr, saw(440), 440.0, sr) < 1.0
    True
"""
from __future__ import annotations

import numpy as np

from dawexport.audio.harmonics import harmonic_levels
from dawexport.audio.resample import resample
from dawexport.audio.spectral import frames, mel_filterbank, power_frames

N_FFT = 2048
HOP = 512
N_MELS = 64
MEL_RANGE_HZ = (40.0, 16000.0)
LOUD_WITHIN_DB = 20.0
FLOOR_DB = 60.0
FORMANT_TOP_HZ = 8000.0
ONSET_WITHIN_DB = 40.0
BAND_OFFSETS = np.linspace(-0.5, 0.5, 17)      # points of a harmonic's band (k ± ½)·f0, in f0


def mel_power(x: np.ndarray, sample_rate: int, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """(frames, 64) mel-band power of uncentred Hann frames (frame k starts at sample k·hop), 40 Hz–16 kHz
    (the top edge drops to Nyquist for rates under 32 kHz)."""
    power = power_frames(x, n_fft, hop)
    fmin, fmax = MEL_RANGE_HZ
    bank = mel_filterbank(sample_rate, n_fft, N_MELS, fmin=fmin, fmax=min(fmax, sample_rate / 2.0))
    return power @ bank.T + 1e-20


def _db(p: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(p, 1e-20))


def onset_sample(x: np.ndarray, sample_rate: int, within_db: float = ONSET_WITHIN_DB) -> int:
    """First sample of the first 5 ms block whose level is within `within_db` of the loudest block.

    >>> onset_sample(np.concatenate([np.zeros(1000), np.ones(1000)]), 1000)
    1000
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    block = max(1, int(sample_rate * 0.005))
    n = len(x) // block
    if n == 0:
        return 0
    energy = (x[: n * block].reshape(n, block) ** 2).mean(axis=1) + 1e-20
    loud = _db(energy) >= _db(energy.max()) - within_db
    return int(np.argmax(loud)) * block


def _at_rate(note: np.ndarray, note_rate: int, rate: int) -> np.ndarray:
    # one rate for both, so the 2048-point frames resolve the narrow low mel bands the same way
    note = np.asarray(note, np.float64).ravel()
    return note if note_rate == rate else resample(note, note_rate, rate).astype(np.float64).ravel()


def timbre_distance(source: np.ndarray, source_rate: int, note: np.ndarray, note_rate: int) -> float:
    """Mean |dB| over 64 mel bands between the time-averaged spectra of source and note (each averaged over
    its own frames within 20 dB of its loudest), overall level removed. The note is resampled to the
    source's rate first."""
    note, note_rate = _at_rate(note, note_rate, source_rate), source_rate
    def average_db(x, rate):
        p = mel_power(x, rate)
        energy = p.sum(axis=1)
        loud = _db(energy) >= _db(energy.max()) - LOUD_WITHIN_DB
        return _db(p[loud].mean(axis=0))

    diff = average_db(source, source_rate) - average_db(note, note_rate)
    return float(np.mean(np.abs(diff - diff.mean())))


def evolution_distance(source: np.ndarray, source_rate: int, note: np.ndarray, note_rate: int) -> float:
    """Frame-by-frame mean |dB| between the log-mel spectrograms of source and note, each taken from its own
    onset over the source's duration (the note is zero-padded if shorter), each floored `FLOOR_DB` below its
    loudest bin, with the one level offset that best matches them removed (the median difference). The note
    is resampled to the source's rate first."""
    note, note_rate = _at_rate(note, note_rate, source_rate), source_rate
    source = np.asarray(source, np.float64).ravel()[onset_sample(source, source_rate):]
    duration = len(source) / source_rate
    note = np.asarray(note, np.float64).ravel()[onset_sample(note, note_rate):]
    want = int(round(duration * note_rate))
    note = np.concatenate([note[:want], np.zeros(max(0, want - len(note)))])

    def floored_db(x, rate):
        d = _db(mel_power(x, rate))
        return np.maximum(d, d.max() - FLOOR_DB)

    a, b = floored_db(source, source_rate), floored_db(note, note_rate)
    n = min(len(a), len(b))
    diff = a[:n] - b[:n]
    return float(np.mean(np.abs(diff - np.median(diff))))


def harmonic_envelope(x: np.ndarray, sample_rate: int, f0_hz: float | np.ndarray, grid_hz: np.ndarray,
                      n_fft: int = 4096, hop: int = 1024) -> np.ndarray:
    """Log amplitude (dB) at the harmonics k·f0 up to 8 kHz, interpolated on `grid_hz` (log frequency) and
    averaged over the frames within 20 dB of the loudest. `f0_hz` is one pitch or one per frame of hop
    `hop` (a gliding source); each harmonic's amplitude is the spectral peak within half a harmonic of k·f0."""
    window = np.hanning(n_fft + 2)[1:-1]
    mag = np.abs(np.fft.rfft(frames(x, n_fft, hop) * window, axis=1))
    f0 = np.broadcast_to(np.asarray(f0_hz, np.float64), (len(mag),)) if np.ndim(f0_hz) == 0 \
        else np.interp(np.arange(len(mag)), np.arange(len(f0_hz)), np.asarray(f0_hz, np.float64))
    energy = (mag ** 2).sum(axis=1) + 1e-20
    loud = (_db(energy) >= _db(energy.max()) - LOUD_WITHIN_DB) & (f0 > 0)
    bin_hz = sample_rate / n_fft
    log_grid = np.log(grid_hz)
    rows = []
    for k in np.flatnonzero(loud):
        harmonics = np.arange(1, int(min(FORMANT_TOP_HZ, sample_rate / 2 - f0[k]) // f0[k]) + 1) * f0[k]
        if len(harmonics) < 2:
            continue
        half = max(1, int(0.5 * f0[k] / bin_hz))
        centre = np.round(harmonics / bin_hz).astype(int)
        idx = np.clip(centre[:, None] + np.arange(-half, half + 1)[None, :], 0, mag.shape[1] - 1)
        peaks = 20.0 * np.log10(mag[k][idx].max(axis=1) + 1e-12)
        rows.append(np.interp(log_grid, np.log(harmonics), peaks))
    if not rows:
        return np.full(len(grid_hz), -240.0)
    return np.mean(rows, axis=0)


def _median_f0(f) -> float:
    f = np.atleast_1d(np.asarray(f, np.float64))
    return float(np.median(f[f > 0])) if np.any(f > 0) else 0.0


def formant_grid(source_f0, note_f0, sample_rate: int, n_points: int = 48, caller: str = "formant_grid"
                 ) -> np.ndarray:
    """The formant measure's log-frequency grid: `n_points` from 1.5× the higher (median) f0 to 8 kHz or
    half of `sample_rate` (the lower rate of the two sounds).

        >>> formant_grid(200.0, [0.0, 400.0, 400.0], 16000, 3).round()
        array([ 600., 2191., 8000.])
    """
    top = min(FORMANT_TOP_HZ, sample_rate / 2.0)
    low = 1.5 * max(_median_f0(source_f0), _median_f0(note_f0))
    if not 0 < low < top:
        raise ValueError(f"{caller}: no band between 1.5 × f0 ({low:.0f} Hz) and {top:.0f} Hz")
    return np.geomspace(low, top, n_points)


def formant_distance(source: np.ndarray, source_f0: float | np.ndarray, source_rate: int,
                     note: np.ndarray, note_f0: float | np.ndarray, note_rate: int,
                     n_points: int = 48, floor_db: float | None = FLOOR_DB) -> float:
    """Mean |dB| between the harmonic envelopes of source and note on a log-frequency grid from 1.5× the
    higher (median) f0 to 8 kHz, level removed. A model that keeps the source's formants at another pitch
    scores near 0; a tape-speed transposition moves them and scores high.

    Each envelope is floored `floor_db` below its loudest point (None: not floored): a plucked string's top
    harmonics fall 100–140 dB below its loudest, where an unfloored envelope compares the 24-bit floor and
    the synthesiser's rounding of two inaudible levels rather than formants."""
    grid = formant_grid(source_f0, note_f0, min(source_rate, note_rate), n_points, "formant_distance")

    def envelope(x, rate, f0):
        env = harmonic_envelope(x, rate, f0, grid)
        return env if floor_db is None else np.maximum(env, env.max() - floor_db)

    diff = envelope(source, source_rate, source_f0) - envelope(note, note_rate, note_f0)
    return float(np.mean(np.abs(diff - diff.mean())))


def formant_keeping_shift(x: np.ndarray, sample_rate: int, semitones: float, hop: int = 256,
                          n_fft: int = 4096, read: str = "point") -> np.ndarray:
    """The source moved `semitones` with its formants in place: per frame, its harmonic envelope (the
    spectral peak within half a harmonic of each k·f0, dB, as `harmonic_envelope` reads it; linear in dB over
    log frequency between them, the ends held) is read at the moved harmonics and a sum of sines plays them on
    the source's own f0 curve moved by the interval. The ideal of a source-filter model, so the formant
    distance of this note is what a learned one can reach on that measure (harmonics only: no noise).

    `read` "point": each moved harmonic takes the envelope at its frequency (an octave up, a source's even
    harmonics exactly, odd/even pattern and all); "band": its mean over the moved harmonic's own band
    (k ± ½)·f0', a smooth formant envelope as the ddsp decoder reads one.

        >>> sr = 16000
        >>> t = np.arange(sr) / sr
        >>> note = sum(np.sin(2 * np.pi * k * 200 * t) / k for k in range(1, 40))        # a sawtooth
        >>> up = formant_keeping_shift(note, sr, 12.0)
        >>> len(up) == len(note), formant_distance(note, 200.0, sr, up, 400.0, sr) < 1.0
        (True, True)
    """
    from dawexport.audio.analysis import f0_track
    if read not in ("point", "band"):
        raise ValueError(f"formant_keeping_shift: read must be 'point' or 'band', not {read!r}")
    x = np.asarray(x, np.float64).ravel()
    track = f0_track(x, sample_rate, fmin=40.0, fmax=2000.0, hop=hop)
    voiced = track.voiced & np.isfinite(track.hz)
    if not voiced.any():
        raise ValueError("formant_keeping_shift: the source has no voiced frame")
    idx = np.arange(len(track.hz))
    f0 = np.interp(idx, idx[voiced], track.hz[voiced])
    ratio = 2.0 ** (semitones / 12.0)
    padded = np.concatenate([np.zeros(n_fft // 2), x, np.zeros(n_fft)])
    window = np.hanning(n_fft + 2)[1:-1]
    bin_hz = sample_rate / n_fft
    n_harmonics = max(1, int(0.5 * sample_rate / (f0.min() * ratio)))
    amps = np.zeros((len(f0), n_harmonics))
    for j, hz in enumerate(f0):
        mag = np.abs(np.fft.rfft(padded[j * hop:j * hop + n_fft] * window)) * 2.0 / window.sum()
        harmonics = np.arange(1, max(2, int((0.5 * sample_rate - hz) // hz)) + 1) * hz
        half = max(1, int(0.5 * hz / bin_hz))
        bins = np.clip(np.round(harmonics / bin_hz).astype(int)[:, None] + np.arange(-half, half + 1), 0,
                       len(mag) - 1)
        peaks_db = 20.0 * np.log10(mag[bins].max(axis=1) + 1e-12)
        moved = np.arange(1, n_harmonics + 1) * hz * ratio
        at_hz = moved[:, None] + (BAND_OFFSETS[None, :] * hz * ratio if read == "band" else 0.0)
        level_db = np.interp(np.log(at_hz), np.log(harmonics), peaks_db).mean(axis=1)
        amps[j] = np.where(moved < 0.5 * sample_rate, 10.0 ** (level_db / 20.0), 0.0)
    at = np.arange(len(x))
    phase = 2.0 * np.pi * np.cumsum(np.interp(at, idx * hop, f0 * ratio)) / sample_rate
    out = np.zeros(len(x))
    for k in np.flatnonzero(amps.max(axis=0) > 0):
        out += np.interp(at, idx * hop, amps[:, k]) * np.sin((k + 1) * phase)
    return out


def best_formant_note(source: np.ndarray, source_f0: float | np.ndarray, source_rate: int, note_f0_hz: float,
                      n_points: int = 48, floor_db: float | None = FLOOR_DB) -> tuple[float, np.ndarray]:
    """The lowest formant distance a steady harmonic note at `note_f0_hz` can score against the source,
    whatever its harmonic levels, and those levels (dB, harmonics 1, 2, … of the note up to the grid's top).

    The note's envelope on the measure's grid is linear in its harmonic levels (the line through them over
    log frequency), so the levels that minimise the mean |dB| to the source's envelope are a linear
    programme. The figure is that note's score (level removed by the mean, as the measure does; the
    programme removes the best offset, so no steady note scores more than ~0.1 dB under it). A goal
    well under it is out of reach of any steady harmonic note at that pitch; above it, one reaches it (though
    not necessarily one with a smooth, formant-like envelope).

        >>> sr = 16000
        >>> t = np.arange(sr) / sr
        >>> saw = sum(np.sin(2 * np.pi * k * 200 * t) / k for k in range(1, 40))
        >>> odd = sum(np.sin(2 * np.pi * k * 200 * t) / (1 if k % 2 else 10) for k in range(1, 40))
        >>> best, levels = best_formant_note(saw, 200.0, sr, 400.0)
        >>> round(best, 1), len(levels)                      # 20 harmonics of 400 Hz to 8 kHz and one past it
        (0.1, 21)
        >>> best_formant_note(odd, 200.0, sr, 400.0)[0] > 2.0  # an octave up, the odd/even pattern is lost
        True
    """
    from scipy.optimize import linprog

    top = min(FORMANT_TOP_HZ, source_rate / 2.0)
    grid = formant_grid(source_f0, note_f0_hz, source_rate, n_points, "best_formant_note")
    target = harmonic_envelope(source, source_rate, source_f0, grid)
    if floor_db is not None:
        target = np.maximum(target, target.max() - floor_db)
    harmonics = np.arange(1, int(top // note_f0_hz) + 2) * note_f0_hz
    line = np.stack([np.interp(np.log(grid), np.log(harmonics), e) for e in np.eye(len(harmonics))], axis=1)
    m, n = line.shape           # minimise Σ t with -t ≤ target - line @ v ≤ t (rows sum to 1: level inside)
    res = linprog(np.concatenate([np.zeros(n), np.ones(m)]),
                  A_ub=np.block([[-line, -np.eye(m)], [line, -np.eye(m)]]),
                  b_ub=np.concatenate([-target, target]), bounds=[(None, None)] * n + [(0, None)] * m)
    levels = res.x[:n]
    diff = target - line @ levels
    return float(np.mean(np.abs(diff - diff.mean()))), levels - levels.max()


SPLIT_N_FFT = 8192
SPLIT_HOP = 1024


def harmonic_split(x: np.ndarray, sample_rate: int, f0_hz: float | np.ndarray, bands: list[tuple[float, float]],
                   n_fft: int = SPLIT_N_FFT, hop: int = SPLIT_HOP) -> tuple[np.ndarray, np.ndarray]:
    """(peaks, floor) in dB per band (lo, hi) Hz: `harmonics.harmonic_levels` summed up per band, the mean
    power of the amplitudes of the harmonics k·f0 in the band and of their floors (each the median of its
    harmonic's band (k ± ½)·f0 away from the peak), over the frames within 20 dB of the loudest, in long Hann
    frames (8192 points: harmonics a few bins wide, the floor well clear of them) that lie inside the sound.

    A sine of amplitude a reads 20·log10(a) dB; white noise of variance σ² a floor of 10·log10(6·ln 2·σ² /
    n_fft) dB (the median power of one bin). `f0_hz` is one pitch or one per `hop` frame (frame j centred on
    sample j·hop; NaN or 0 where unvoiced, and those frames are left out); a band with no harmonic reads NaN.

        >>> sr = 32000
        >>> t = np.arange(sr) / sr
        >>> note = 0.5 * np.sin(2 * np.pi * 500 * t) + 0.1 * np.sin(2 * np.pi * 4000 * t)
        >>> note = note + 0.01 * np.random.default_rng(0).standard_normal(sr)
        >>> peaks, floor = harmonic_split(note, sr, 500.0, [(400, 600), (3900, 4100), (6100, 6400)])
        >>> peaks.round(1).tolist()                             # no harmonic at 6.1-6.4 kHz
        [-6.0, -20.0, nan]
        >>> bool(np.all(np.abs(floor[:2] - 10 * np.log10(6 * np.log(2) * 0.01 ** 2 / 8192)) < 1.0))    # -72.9 dB
        True
    """
    x = np.asarray(x, np.float64).ravel()
    n_frames = 1 + len(x) // hop
    track = np.atleast_1d(np.asarray(f0_hz, np.float64))
    f0 = np.interp(np.arange(n_frames), np.arange(len(track)), track) if len(track) > 1 else \
        np.full(n_frames, track[0])
    voiced = np.isfinite(f0) & (f0 > 0)
    out = np.full((2, len(bands)), np.nan)
    if not voiced.any():
        return out[0], out[1]
    f0 = np.where(voiced, f0, np.median(f0[voiced]))
    n_harmonics = int(0.5 * sample_rate / f0.min()) + 1
    levels = harmonic_levels(x, sample_rate, f0, hop, n_harmonics, n_fft)
    # only frames whose window lies inside the sound: one cut off by its edge spreads its harmonics' power
    centre = np.arange(n_frames) * hop
    use = voiced & (centre >= n_fft // 2) & (centre + n_fft // 2 <= len(x))
    if not use.any():
        return out[0], out[1]
    loud = use & (_db(levels.power) >= _db(levels.power[use].max()) - LOUD_WITHIN_DB)
    at = f0[:, None] * np.arange(1, n_harmonics + 1)
    present = loud[:, None] & (levels.amplitude > 0)
    for i, (lo, hi) in enumerate(bands):
        sel = present & (at >= lo) & (at < hi)
        if sel.any():
            out[:, i] = _db(np.mean(levels.amplitude[sel] ** 2)), _db(np.mean(levels.floor[sel] ** 2))
    return out[0], out[1]
