"""Differentiable DSP and the networks of the `ddsp` engine (torch only; no I/O).

The maths lives in small pure functions; the processors split it ddsp-style into `get_controls` (network
outputs → synthesiser parameters) and `get_signal` (parameters → audio):

    >>> f0_hz = torch.full((1, 4), 220.0)                                   # (B, F): 4 frames
    >>> amps = harmonic_amplitudes(torch.ones(1, 4, 1), torch.zeros(1, 4, 8), f0_hz, 16000)
    >>> amps.shape                                                          # (B, F, K), Nyquist-safe
    torch.Size([1, 4, 8])
    >>> audio = harmonic_synth(amps, f0_hz, 16000, 64)                      # (B, F * hop)
    >>> noise = filtered_noise(torch.ones(1, 4, 5), torch.rand(1, 4, 128) * 2 - 1, 64)
    >>> audio.shape, noise.shape
    (torch.Size([1, 256]), torch.Size([1, 256]))
    >>> float(multi_resolution_stft_loss(audio, audio, fft_sizes(16000)[-2:]))
    0.0

Frames are centred: frame j describes the sound at sample j * hop, so F frames drive F * hop samples and
sample j * hop + r interpolates frames j and j + 1 by r / hop (the last frame is held).

The additive oscillator bank is computed as wavetable synthesis: each frame's harmonic amplitudes become one
band-limited single cycle (an inverse FFT of the harmonic line spectrum), read at the oscillator phase and
cross-faded between frames. Because a cycle is linear in the amplitudes this is the same signal as summing K
sines with linearly interpolated amplitudes (to the table's interpolation error, < -50 dB), at a cost that does
not grow with K, which is what makes 44.1 kHz rendering fast on a CPU.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


# --------------------------------------------------------------------------- small pure functions

def exp_sigmoid(x: torch.Tensor, exponent: float = 10.0, max_value: float = 2.0,
                threshold: float = 1e-7) -> torch.Tensor:
    """A positive, smooth, wide-range output nonlinearity: max_value * sigmoid(x) ** ln(exponent) + threshold."""
    return max_value * torch.sigmoid(x) ** math.log(exponent) + threshold


def loudness_gain(loudness_db: torch.Tensor, reference_db: torch.Tensor | float) -> torch.Tensor:
    """Linear gain of a loudness relative to the reference (1 at the reference, 0.1 twenty dB below)."""
    return torch.pow(10.0, (loudness_db - reference_db).clamp(-140.0, 40.0) / 20.0)


def hz_to_unit_pitch(f0_hz: torch.Tensor) -> torch.Tensor:
    """log-frequency scaled to about [-1, 1] over C2..C8: (midi - 69) / 36."""
    return 12.0 * torch.log2(f0_hz.clamp_min(1.0) / 440.0) / 36.0


def harmonic_numbers(n_harmonics: int, device=None) -> torch.Tensor:
    return torch.arange(1, n_harmonics + 1, dtype=torch.float32, device=device)


def nyquist_mask(f0_hz: torch.Tensor, n_harmonics: int, sample_rate: int) -> torch.Tensor:
    """(B, F, K) 1.0 where harmonic k of f0 (and of the next frame's f0) is below Nyquist, else 0.0."""
    nxt = torch.cat([f0_hz[:, 1:], f0_hz[:, -1:]], dim=1)
    top = torch.maximum(f0_hz, nxt)[..., None] * harmonic_numbers(n_harmonics, f0_hz.device)
    return (top < 0.5 * sample_rate).to(f0_hz.dtype)


def harmonic_sum(distribution: torch.Tensor, f0_hz: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """(B, F, 1) sum of a harmonic distribution (B, F, K) over the harmonics of f0 below Nyquist."""
    return (distribution * nyquist_mask(f0_hz, distribution.shape[-1], sample_rate)).sum(dim=-1, keepdim=True)


def harmonic_amplitudes(amplitude: torch.Tensor, distribution: torch.Tensor, f0_hz: torch.Tensor,
                        sample_rate: int, normalise: bool = True, total: torch.Tensor | None = None
                        ) -> torch.Tensor:
    """Per-harmonic amplitudes (B, F, K): the distribution with harmonics above Nyquist removed, normalised
    to sum 1 (or, `normalise` False, as it is: each harmonic's own level), times the overall amplitude
    (B, F, 1). `total` (B, F, 1), when given, is the sum normalised by instead of the distribution's own
    (`harmonic_sum` of the distribution at another pitch: the levels that distribution gave there).

        >>> f0 = torch.full((1, 1), 1000.0)
        >>> harmonic_amplitudes(torch.ones(1, 1, 1), torch.ones(1, 1, 4), f0, 16000).tolist()
        [[[0.25, 0.25, 0.25, 0.25]]]
        >>> harmonic_amplitudes(torch.ones(1, 1, 1), torch.ones(1, 1, 4), 2 * f0, 16000, normalise=False).tolist()
        [[[1.0, 1.0, 1.0, 0.0]]]
        >>> four = torch.full((1, 1, 1), 4.0)                 # the sum of the 4 harmonics at the source's 1 kHz
        >>> harmonic_amplitudes(torch.ones(1, 1, 1), torch.ones(1, 1, 4), 2 * f0, 16000, total=four).tolist()
        [[[0.25, 0.25, 0.25, 0.0]]]
    """
    dist = distribution * nyquist_mask(f0_hz, distribution.shape[-1], sample_rate)
    if normalise:
        total = dist.sum(dim=-1, keepdim=True) if total is None else total
        dist = dist / total.clamp_min(1e-7)
    return amplitude * dist


def hz_to_mel(hz: torch.Tensor | float) -> torch.Tensor:
    """The mel scale (O'Shaughnessy): about linear below 700 Hz, logarithmic above."""
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(hz, dtype=torch.float32) / 700.0)


def envelope_at_harmonics(envelope: torch.Tensor, f0_hz: torch.Tensor, n_harmonics: int,
                          sample_rate: int) -> torch.Tensor:
    """Read a spectral envelope (B, F, P), given on P points evenly spaced in mel from 0 Hz to Nyquist
    (linear between points), at the harmonics of f0 (B, F) → (B, F, K): harmonic k reads the envelope's mean
    over its own band, (k ± ½)·f0.

    The envelope is fixed in frequency, so a note an octave up reads the same formants with every other
    harmonic: the source-filter picture a sampler's tape-speed transposition breaks. Reading whole bands
    (which tile the spectrum) rather than points leaves no stretch of the envelope untrained between a
    source's harmonics, where a note at another pitch would read an arbitrary value (a lost fundamental).

        >>> env = torch.linspace(-1.0, 1.0, 65).reshape(1, 1, 65) ** 2        # smooth, in mel
        >>> a = envelope_at_harmonics(env, torch.tensor([[500.0]]), 8, 16000)
        >>> b = envelope_at_harmonics(env, torch.tensor([[1000.0]]), 4, 16000)
        >>> bool((a[..., 3::2] - b[..., 1:]).abs().max() < 0.01)         # 2, 3 and 4 kHz read alike
        True
    """
    points = envelope.shape[-1]
    if points < 2:
        return envelope.expand(*f0_hz.shape, n_harmonics)
    scale = (points - 1) / hz_to_mel(0.5 * sample_rate).to(f0_hz.device)
    # the K + 1 band edges (k - ½)·f0, k = 1..K+1, on the grid (past Nyquist: the top point, a band of width 0
    # whose harmonic is masked later anyway)
    edges = f0_hz[..., None] * (harmonic_numbers(n_harmonics + 1, f0_hz.device) - 0.5)
    pos = (hz_to_mel(edges) * scale).clamp(0.0, points - 1)
    # the envelope's running integral at each edge, exact for a piecewise-linear envelope
    steps = 0.5 * (envelope[..., 1:] + envelope[..., :-1])
    running = torch.cat([torch.zeros_like(envelope[..., :1]), torch.cumsum(steps, dim=-1)], dim=-1)
    i = pos.floor().long().clamp_(0, points - 2)
    frac = (pos - i).to(envelope.dtype)
    e0, e1 = torch.gather(envelope, -1, i), torch.gather(envelope, -1, i + 1)
    integral = torch.gather(running, -1, i) + e0 * frac + 0.5 * (e1 - e0) * frac * frac
    return (integral[..., 1:] - integral[..., :-1]) / (pos[..., 1:] - pos[..., :-1]).clamp_min(1e-3).to(
        envelope.dtype)


def upsample_frames(x: torch.Tensor, hop: int) -> torch.Tensor:
    """(B, F) frame values → (B, F * hop) samples, linear between frame centres, the last frame held."""
    nxt = torch.cat([x[:, 1:], x[:, -1:]], dim=1)
    alpha = torch.arange(hop, dtype=x.dtype, device=x.device) / hop
    return (x[..., None] + (nxt - x)[..., None] * alpha).reshape(x.shape[0], -1)


def oscillator_phase(f0_hz: torch.Tensor, sample_rate: int, hop: int,
                     initial_phase: torch.Tensor | None = None) -> torch.Tensor:
    """Phase in cycles, in [0, 1), of an oscillator following f0 (B, F) → (B, F * hop).

    The running sum is kept per hop block in float32 and across blocks in float64 (of the blocks' fractional
    phase), so a minutes-long note keeps its phase, and so its pitch, exact.
    """
    b, n = f0_hz.shape
    inc = upsample_frames(f0_hz.float(), hop) / sample_rate                     # cycles per sample
    inc = inc.reshape(b, n, hop)
    within = torch.cumsum(inc, dim=-1)                                          # phase after each sample
    wide = torch.float32 if f0_hz.device.type == "mps" else torch.float64      # MPS has no float64
    block = torch.remainder(within[..., -1].to(wide), 1.0)
    start = torch.cumsum(block, dim=1) - block                                  # phase at each block start
    if initial_phase is not None:
        start = start + initial_phase.to(wide)[:, None]
    start = (start - torch.floor(start)).float()
    phase = (within - inc + start[..., None]).frac()                           # phase *at* each sample (>= 0)
    return phase.reshape(b, n * hop)


def harmonic_wavetables(harm_amps: torch.Tensor, table_size: int) -> torch.Tensor:
    """(B, F, K) harmonic amplitudes → (B, F, N) single cycles sum_k a_k sin(2 pi k n / N)."""
    k = harm_amps.shape[-1]
    if table_size < 2 * (k + 1):
        raise ValueError(f"table_size {table_size} cannot hold {k} harmonics")
    # (re, im) pairs of the half spectrum; a sine of amplitude a at bin k is -i * a * N / 2
    spectrum = harm_amps.new_zeros(*harm_amps.shape[:-1], table_size // 2 + 1, 2)
    spectrum[..., 1:k + 1, 1] = harm_amps * (-0.5 * table_size)
    return torch.fft.irfft(torch.view_as_complex(spectrum), n=table_size, dim=-1)


def wavetable_read(tables: torch.Tensor, phase: torch.Tensor, hop: int) -> torch.Tensor:
    """Read per-frame tables (B, F, N) at `phase` (B, F * hop), cross-fading frame j into j + 1."""
    b, n_frames, size = tables.shape
    pos = phase.reshape(b, n_frames, hop) * size
    i0 = pos.floor()
    frac = pos - i0
    i0 = i0.long().clamp_(0, size - 1)
    i1 = (i0 + 1) & (size - 1) if size & (size - 1) == 0 else torch.remainder(i0 + 1, size)

    def read(tab, a, c, fr):
        lo = torch.gather(tab, 2, a)
        return lo + (torch.gather(tab, 2, c) - lo) * fr

    alpha = torch.arange(hop, dtype=tables.dtype, device=tables.device) / hop
    here = read(tables, i0, i1, frac)
    out = here * (1.0 - alpha)
    if n_frames > 1:
        out[:, :-1] += read(tables[:, 1:], i0[:, :-1], i1[:, :-1], frac[:, :-1]) * alpha
    out[:, -1:] += here[:, -1:] * alpha
    return out.reshape(b, n_frames * hop)


def harmonic_synth(harm_amps: torch.Tensor, f0_hz: torch.Tensor, sample_rate: int, hop: int,
                   table_size: int = 2048, initial_phase: torch.Tensor | None = None) -> torch.Tensor:
    """Additive harmonic oscillator bank: (B, F, K) amplitudes at f0 (B, F) → audio (B, F * hop)."""
    phase = oscillator_phase(f0_hz, sample_rate, hop, initial_phase)
    return wavetable_read(harmonic_wavetables(harm_amps, table_size), phase, hop)


def additive_reference(harm_amps: torch.Tensor, f0_hz: torch.Tensor, sample_rate: int, hop: int) -> torch.Tensor:
    """The slow textbook sum of sines (for tests): same phase and interpolation as `harmonic_synth`."""
    phase = oscillator_phase(f0_hz, sample_rate, hop).double()
    k = harm_amps.shape[-1]
    amps = torch.stack([upsample_frames(harm_amps[..., i], hop) for i in range(k)], dim=-1).double()
    ks = torch.arange(1, k + 1, dtype=torch.float64, device=harm_amps.device)
    return (amps * torch.sin(2 * math.pi * phase[..., None] * ks)).sum(-1).float()


def bands_to_bins(magnitudes: torch.Tensor, n_bins: int) -> torch.Tensor:
    """(B, F, M) linearly spaced band gains → (B, F, n_bins) FFT-bin gains (linear interpolation)."""
    b, n, m = magnitudes.shape
    if m == n_bins:
        return magnitudes
    out = F.interpolate(magnitudes.reshape(b * n, 1, m), size=n_bins, mode="linear", align_corners=True)
    return out.reshape(b, n, n_bins)


def filtered_noise(magnitudes: torch.Tensor, white: torch.Tensor, hop: int) -> torch.Tensor:
    """Time-varying filtered noise: (B, F, M) band gains, (B, F, 2 * hop) white noise → (B, F * hop).

    Each frame's white noise is filtered (zero-phase, in the FFT domain), sine-windowed and overlap-added at
    50 %: sin² + cos² = 1 keeps the variance constant, so gain 1 everywhere reproduces unit white noise.
    """
    b, n, _ = magnitudes.shape
    spec = torch.fft.rfft(white, dim=-1) * bands_to_bins(magnitudes, hop + 1)
    grains = torch.fft.irfft(spec, n=2 * hop, dim=-1) * sine_window(2 * hop, white.device, white.dtype)
    first, second = grains[..., :hop], grains[..., hop:]
    out = second + torch.cat([first[:, 1:], torch.zeros_like(first[:, :1])], dim=1)
    return out.reshape(b, n * hop)


def sine_window(n: int, device=None, dtype=torch.float32) -> torch.Tensor:
    return torch.sin(math.pi * (torch.arange(n, dtype=dtype, device=device) + 0.5) / n)


def fft_convolve(audio: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
    """Linear convolution of (B, T) audio with (B, L) impulse responses, cropped to T samples."""
    t, length = audio.shape[-1], ir.shape[-1]
    n = 1 << (t + length - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(audio, n=n) * torch.fft.rfft(ir, n=n), n=n)
    return y[..., :t]


def fft_sizes(sample_rate: int, base=(2048, 1024, 512, 256, 128, 64)) -> tuple[int, ...]:
    """The multi-resolution STFT sizes for a rate: DDSP's 16 kHz set scaled to keep the same durations."""
    return tuple(int(2 ** round(math.log2(s * sample_rate / 16000.0))) for s in base)


def multi_resolution_stft_loss(pred: torch.Tensor, target: torch.Tensor, sizes=(2048, 1024, 512, 256, 128, 64),
                               overlap: float = 0.75, log_eps: float = 1e-5, mag_weight: float = 1.0,
                               log_weight: float = 1.0) -> torch.Tensor:
    """Sum over FFT sizes of relative L1 on magnitudes and L1 on log magnitudes (per-frame sums normalised
    by the window, so a full-scale sine peaks at 0.5 at every size)."""
    total = pred.new_zeros(())
    for n_fft in [n for n in sizes if n <= pred.shape[-1]]:
        hop = max(1, int(n_fft * (1.0 - overlap)))
        window = torch.hann_window(n_fft, device=pred.device, dtype=pred.dtype)
        norm = window.sum()
        sp = torch.stft(pred, n_fft, hop, window=window, center=True, return_complex=True).abs() / norm
        st = torch.stft(target, n_fft, hop, window=window, center=True, return_complex=True).abs() / norm
        if mag_weight:
            total = total + mag_weight * (sp - st).abs().mean() / st.abs().mean().clamp_min(1e-7)
        if log_weight:
            total = total + log_weight * (torch.log(sp + log_eps) - torch.log(st + log_eps)).abs().mean()
    return total


def frame_loudness_loss(pred: torch.Tensor, target: torch.Tensor, frame: int, range_db: float = 80.0
                        ) -> torch.Tensor:
    """Mean |dB| between the per-frame levels (mean square of `frame`-sample blocks) of pred and target,
    in units of 20 dB, both floored `range_db` below the target's loudest frame: the level contour, which
    the spectral loss weighs only through its bins.

        >>> x = torch.randn(1, 4096)
        >>> float(frame_loudness_loss(x, x, 512)), round(float(frame_loudness_loss(0.1 * x, x, 512)), 3)
        (0.0, 1.0)
    """
    n = pred.shape[-1] // frame * frame
    def level(x):
        return 10.0 * torch.log10(x[..., :n].reshape(*x.shape[:-1], -1, frame).square().mean(-1) + 1e-12)
    lp, lt = level(pred), level(target)
    floor = lt.amax(dim=-1, keepdim=True) - range_db
    return (torch.maximum(lp, floor) - torch.maximum(lt, floor)).abs().mean() / 20.0


# --------------------------------------------------------------------------- processors

ABSOLUTE_BIAS = -2.0       # "absolute" envelope logits start here: 56 harmonics sum to about the "relative" init


class Harmonic(nn.Module):
    """Additive synthesiser: amplitude + harmonic distribution (network outputs) at f0 → audio.

    `levels` "relative": the distribution is a shape, normalised so the harmonics' amplitudes sum to the
    overall amplitude (a note an octave up puts it into half as many harmonics, each louder); "absolute": each
    harmonic's amplitude is the overall amplitude times the distribution's value, its level wherever it sits
    (a source-filter model: an octave up the harmonics that remain keep their level against the noise)."""

    def __init__(self, sample_rate: int, hop: int, table_size: int = 2048, levels: str = "relative"):
        super().__init__()
        self.sample_rate, self.hop, self.table_size = sample_rate, hop, table_size
        self.levels = levels

    def get_controls(self, amplitude_logits, distribution_logits, f0_hz, source_logits=None, source_f0_hz=None):
        """`source_logits`, the distribution read at the harmonics of `source_f0_hz` (a transposed note's
        source pitch), makes a "relative" distribution normalise by its sum there: each harmonic gets the
        level it had at the source's pitch (what "absolute" levels do at every pitch)."""
        amplitude = exp_sigmoid(amplitude_logits)
        absolute = self.levels == "absolute"
        bias = ABSOLUTE_BIAS if absolute else 0.0
        distribution = exp_sigmoid(distribution_logits + bias)
        total = None
        if source_logits is not None and not absolute:
            total = harmonic_sum(exp_sigmoid(source_logits + bias), source_f0_hz, self.sample_rate)
        return {"harm_amps": harmonic_amplitudes(amplitude, distribution, f0_hz, self.sample_rate,
                                                 normalise=not absolute, total=total),
                "f0_hz": f0_hz}

    def get_signal(self, harm_amps, f0_hz, initial_phase=None):
        return harmonic_synth(harm_amps, f0_hz, self.sample_rate, self.hop, self.table_size, initial_phase)

    def forward(self, amplitude_logits, distribution_logits, f0_hz):
        return self.get_signal(**self.get_controls(amplitude_logits, distribution_logits, f0_hz))


class FilteredNoise(nn.Module):
    """Noise through a time-varying filter of linearly spaced bands (network outputs, biased quiet)."""

    def __init__(self, hop: int, initial_bias: float = -5.0):
        super().__init__()
        self.hop, self.initial_bias = hop, initial_bias

    def get_controls(self, magnitude_logits):
        return {"magnitudes": exp_sigmoid(magnitude_logits + self.initial_bias)}

    def get_signal(self, magnitudes, white):
        return filtered_noise(magnitudes, white, self.hop)

    def forward(self, magnitude_logits, white):
        return self.get_signal(**self.get_controls(magnitude_logits), white=white)


class Reverb(nn.Module):
    """A learned room per corner: impulse responses (one per latent key) mixed by the request's key weights.

    Convolution is linear, so blending corners' rooms by weight is the same as blending their wet signals.
    The dry path is fixed (a unit impulse); the learned tail starts after it and decays.
    """

    def __init__(self, n_keys: int, length: int, sample_rate: int):
        super().__init__()
        g = torch.Generator().manual_seed(1234)
        t = torch.arange(length, dtype=torch.float32) / sample_rate
        init = torch.randn(n_keys, length, generator=g) * 1e-3 * torch.exp(-t / 0.1)
        self.ir = nn.Parameter(init)

    def get_controls(self, key_weights):
        ir = key_weights @ self.ir                                                  # (B, L)
        return {"ir": torch.cat([torch.ones_like(ir[:, :1]), ir[:, 1:]], dim=1)}

    def get_signal(self, audio, ir):
        return fft_convolve(audio, ir)

    def forward(self, audio, key_weights):
        return self.get_signal(audio, **self.get_controls(key_weights))


# --------------------------------------------------------------------------- networks

def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.LayerNorm(b), nn.LeakyReLU(0.1)]
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """Timbre encoder: normalised log-mel frames → per-frame latents, a recording's trajectory z(t)."""

    def __init__(self, n_mels: int, latent: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(mlp([n_mels, hidden, hidden]), nn.Linear(hidden, latent))
        self.register_buffer("mel_mean", torch.zeros(n_mels))
        self.register_buffer("mel_std", torch.ones(n_mels))

    def frames(self, mel: torch.Tensor) -> torch.Tensor:
        """(..., F, n_mels) → (..., F, latent)."""
        return self.net((mel - self.mel_mean) / self.mel_std)


class Decoder(nn.Module):
    """(f0, loudness, z) per frame → amplitude, harmonic distribution and noise-band logits.

    An input MLP, a GRU over time and an output MLP that also sees the input MLP's features (DDSP's RnnFc).
    The distribution has one logit per harmonic, or `envelope_points` > 0 logits of a spectral envelope on a
    mel frequency grid (read at the harmonics by `envelope_at_harmonics`).

    With `pitch_free` the network reads only (loudness, z): the envelope cannot depend on f0, so the colour
    learned at one pitch is the colour at every pitch (a source-filter model: f0 only places the harmonics on
    the envelope). f0 then reaches the overall harmonic and noise levels alone, through one linear term.
    """

    def __init__(self, latent: int, hidden: int, n_harmonics: int, noise_bands: int, envelope_points: int = 0,
                 pitch_free: bool = False):
        super().__init__()
        self.pitch_free = pitch_free
        self.inp = mlp([(1 if pitch_free else 2) + latent, hidden, hidden])
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.out = mlp([2 * hidden, hidden, hidden])
        self.sizes = (1, envelope_points or n_harmonics, noise_bands)
        self.head = nn.Linear(hidden, sum(self.sizes))
        if pitch_free:
            self.pitch_level = nn.Linear(1, 2)          # f0 → (harmonic level, noise level) logit offsets
            nn.init.zeros_(self.pitch_level.weight)
            nn.init.zeros_(self.pitch_level.bias)

    def forward(self, pitch: torch.Tensor, loud: torch.Tensor, z: torch.Tensor):
        """pitch, loud (B, F) normalised; z (B, latent) or (B, F, latent) → three logit tensors (B, F, ·)."""
        if z.dim() == 2:
            z = z[:, None, :].expand(-1, pitch.shape[1], -1)
        features = [loud[..., None], z.to(pitch.dtype)]
        x = self.inp(torch.cat(features if self.pitch_free else [pitch[..., None]] + features, dim=-1))
        h, _ = self.gru(x)
        y = self.head(self.out(torch.cat([h, x], dim=-1)))
        amp, dist, noise = torch.split(y, self.sizes, dim=-1)
        if self.pitch_free:
            level = self.pitch_level(pitch[..., None].to(y.dtype))
            amp, noise = amp + level[..., :1], noise + level[..., 1:]
        return amp, dist, noise


@dataclass(frozen=True)
class DDSPConfig:
    sample_rate: int
    hop: int
    n_keys: int
    latent: int = 16
    hidden: int = 128
    n_harmonics: int = 64
    noise_bands: int = 65
    n_mels: int = 64
    table_size: int = 2048
    reverb: bool = False
    reverb_samples: int = 0
    envelope_points: int = 0        # 0: one distribution logit per harmonic number (models saved before it)
    pitch_free: bool = False        # the decoder reads only loudness and z (False: f0 too, models saved before it)
    harmonic_levels: str = "relative"   # "absolute": each harmonic's level is the envelope's (models before: relative)

    def to_json(self) -> dict:
        return asdict(self)


class DDSP(nn.Module):
    """The harmonic-plus-noise autoencoder. Loudness is normalised against `loud_ref` (the corpus's loudest
    frame, dB) so the decoder sees 0 at the loudest playing and -1 per 20 dB below."""

    def __init__(self, config: DDSPConfig):
        super().__init__()
        self.config = config
        c = config
        self.encoder = Encoder(c.n_mels, c.latent, c.hidden)
        self.decoder = Decoder(c.latent, c.hidden, c.n_harmonics, c.noise_bands, c.envelope_points,
                               c.pitch_free)
        self.harmonic = Harmonic(c.sample_rate, c.hop, c.table_size, c.harmonic_levels)
        self.noise = FilteredNoise(c.hop)
        self.reverb = Reverb(c.n_keys, c.reverb_samples, c.sample_rate) if c.reverb else None
        self.register_buffer("loud_ref", torch.zeros(()))

    def logits(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor, z: torch.Tensor):
        """The decoder's raw outputs (amplitude, distribution or envelope, noise logits) for frame features."""
        return self.decoder(hz_to_unit_pitch(f0_hz), (loudness_db - self.loud_ref) / 20.0, z)

    def controls(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor, z: torch.Tensor,
                 source_f0_hz: torch.Tensor | None = None) -> dict:
        """Network pass: frame features → synthesiser controls (harmonic amplitudes, noise magnitudes).

        The output level is anchored to the loudness asked for: both amplitudes are the network's (bounded)
        correction times loudness_gain(loudness), so a level outside the corpus's dynamic range still comes
        out at that level, while the timbre (harmonic distribution, noise shape) is what the network learned
        for that loudness.

        `source_f0_hz` (B, F), the pitch a transposed note's source had at each frame, plays the note as a
        source-filter transposition of the source: the decoder reads that pitch (its level term, the only
        place f0 enters it, gives the levels it learned there) and the harmonics at f0 take the levels the
        envelope gave them there (`Harmonic.get_controls`), the noise the source's."""
        pitch = f0_hz if source_f0_hz is None else source_f0_hz
        return self._controls_from_logits(self.logits(pitch, loudness_db, z), f0_hz, loudness_db, source_f0_hz)

    def controls_blend(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor, latents: torch.Tensor,
                       weights: torch.Tensor, source_f0_hz: torch.Tensor | None = None) -> dict:
        """Like `controls`, blending corners in the decoder's output space: the decoder runs on every corner
        latent (K, latent), or each row's own corner trajectories (B, K, F, latent), for the rows that use it
        (all such pairs in one batch), and its outputs are mixed by `weights` (B, K).

        For a single corner this is exactly `controls`. Between corners it morphs the harmonic distribution
        and noise shape (log-like domain) from one learned timbre to the other, so the distance to corner A
        grows steadily along the line to B, which averaging the input latents does not promise: the decoder
        never saw the latents between its few training sources."""
        rel = (loudness_db - self.loud_ref) / 20.0
        pitch = hz_to_unit_pitch(f0_hz if source_f0_hz is None else source_f0_hz)
        # every (row, corner) pair with weight goes through the decoder in one batch (one GRU pass, not one
        # per corner), then each row sums its corners' outputs by weight
        rows, corners = [], []
        for k in range(weights.shape[1]):
            hit = torch.nonzero(weights[:, k] > 0).flatten()
            rows.append(hit)
            corners.append(torch.full_like(hit, k))
        rows, corners = torch.cat(rows), torch.cat(corners)
        if rows.numel() == 0:                             # nothing audible: the caller silences these rows
            acc = list(self.decoder(pitch, rel, latents.new_zeros(f0_hz.shape[0], latents.shape[-1])))
            return self._controls_from_logits(acc, f0_hz, loudness_db, source_f0_hz)
        z = latents[rows, corners] if latents.dim() == 4 else latents[corners]
        outs = self.decoder(pitch[rows], rel[rows], z)
        w = weights[rows, corners].to(outs[0].dtype)[:, None, None]
        acc = [o.new_zeros(f0_hz.shape[0], *o.shape[1:]).index_add_(0, rows, o * w) for o in outs]
        return self._controls_from_logits(acc, f0_hz, loudness_db, source_f0_hz)

    def _read_envelope(self, envelope: torch.Tensor, f0_hz: torch.Tensor) -> torch.Tensor:
        """The decoder's distribution output read at the harmonics of f0 (as is without an envelope)."""
        if self.config.envelope_points:
            return envelope_at_harmonics(envelope.float(), f0_hz.float(), self.config.n_harmonics,
                                         self.config.sample_rate)
        return envelope.float()

    def _controls_from_logits(self, logits, f0_hz: torch.Tensor, loudness_db: torch.Tensor,
                              source_f0_hz: torch.Tensor | None = None) -> dict:
        amp, envelope, noise = logits
        with torch.autocast(device_type=f0_hz.device.type, enabled=False):
            dist = self._read_envelope(envelope, f0_hz)
            source = None if source_f0_hz is None else self._read_envelope(envelope, source_f0_hz)
            gain = loudness_gain(loudness_db.float(), self.loud_ref)[..., None]
            harm = self.harmonic.get_controls(amp.float(), dist, f0_hz.float(), source,
                                              None if source_f0_hz is None else source_f0_hz.float())
            noise_c = self.noise.get_controls(noise.float())
        return {"harm_amps": harm["harm_amps"] * gain, "f0_hz": harm["f0_hz"],
                "magnitudes": noise_c["magnitudes"] * gain}

    def synthesize(self, controls: dict, white: torch.Tensor, key_weights: torch.Tensor | None = None,
                   initial_phase: torch.Tensor | None = None) -> torch.Tensor:
        """Controls → audio (B, F * hop), in float32 whatever the autocast around it."""
        with torch.autocast(device_type=white.device.type, enabled=False):
            audio = self.harmonic.get_signal(controls["harm_amps"], controls["f0_hz"], initial_phase)
            audio = audio + self.noise.get_signal(controls["magnitudes"], white.float())
            if self.reverb is not None and key_weights is not None:
                audio = self.reverb(audio, key_weights.float())
        return audio

    def forward(self, f0_hz, loudness_db, z, white, key_weights=None):
        return self.synthesize(self.controls(f0_hz, loudness_db, z), white, key_weights)


__all__ = ["DDSP", "DDSPConfig", "Decoder", "Encoder", "FilteredNoise", "Harmonic", "Reverb", "additive_reference",
           "bands_to_bins", "envelope_at_harmonics", "exp_sigmoid", "fft_convolve", "fft_sizes", "filtered_noise",
           "frame_loudness_loss", "harmonic_amplitudes", "harmonic_sum", "harmonic_synth", "harmonic_wavetables", "hz_to_mel",
           "hz_to_unit_pitch", "loudness_gain", "multi_resolution_stft_loss", "nyquist_mask", "oscillator_phase",
           "upsample_frames", "wavetable_read"]
