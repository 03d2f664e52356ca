"""Shared test helpers: a tiny, real instrument folder built from sine-like tones, without any engine.

    >>> inst = make_test_instrument(Path("."), keys=(60, 64), layers=2, blend_points=2)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dawexport.audio.io import write_wav
from dawexport.instrument import (BlendAxis, BlendGroup, Envelope, Instrument, Loop, Sample, Zone,
                                  axis_crossfades)


def tone(freq: float, seconds: float, sr: int, *, bright: float = 0.3, amp: float = 0.5,
         channels: int = 1) -> np.ndarray:
    """A sustained harmonic tone with a short attack; `bright` sets the harmonics' weight."""
    t = np.arange(int(seconds * sr)) / sr
    x = np.sin(2 * np.pi * freq * t)
    for k in range(2, 8):
        if k * freq < sr / 2:
            x += (bright ** (k - 1)) * np.sin(2 * np.pi * k * freq * t)
    x *= amp / np.max(np.abs(x))
    x *= np.minimum(1.0, t / 0.005)
    out = np.tile(x, (channels, 1)).astype(np.float32)
    return out


def loop_for(freq: float, sr: int, seconds: float) -> Loop:
    """A loop of a whole number of periods in the middle of a steady tone (start at a rising zero crossing)."""
    period = sr / freq
    n_periods = max(1, int(round(0.25 * seconds * freq)))
    start = int(np.ceil(round(0.3 * seconds * freq) * period))
    return Loop(start=start, end=start + int(round(n_periods * period)) - 1)


def make_test_instrument(folder: Path, *, name: str = "tiny", keys: tuple[int, ...] = (60, 67),
                         zone_width: int = 3, layers: int = 2, blend_points: int = 2,
                         round_robins: int = 1, sr: int = 44100, seconds: float = 1.0,
                         channels: int = 2, loop: bool = True) -> Instrument:
    """Write sine-ish samples into folder/samples and return the Instrument describing them.

    Blend point b is brighter the higher b is (so a blend knob changes the timbre), velocity layer
    v is louder with v, and every sample is pitched exactly at its root key.
    """
    folder = Path(folder)
    (folder / "samples").mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, 127, layers + 1).round().astype(int)
    vel_layers = tuple((int(bounds[i]) + 1 if i else 1, int(bounds[i + 1])) for i in range(layers))
    groups = []
    for b in range(blend_points):
        zones = []
        for key in keys:
            freq = 440.0 * 2 ** ((key - 69) / 12)
            for v, (lo, hi) in enumerate(vel_layers):
                for rr in range(1, round_robins + 1):
                    brightness = 0.05 + 0.8 * b / max(1, blend_points - 1)
                    audio = tone(freq, seconds, sr, bright=brightness, amp=0.15 * (v + 1) ** 1.5 / layers,
                                 channels=channels)
                    lp = loop_for(freq, sr, seconds) if loop else None
                    rel = f"samples/{name}_b{b}_k{key}_v{hi}_rr{rr}.wav"
                    write_wav(folder / rel, audio, sr, "24", unity_note=key, loop=None if lp is None
                              else (lp.start, lp.end), key_range=(key - zone_width // 2, key + zone_width // 2),
                              velocity_range=(lo, hi))
                    sample = Sample(path=rel, frames=audio.shape[1], sample_rate=sr, channels=channels,
                                    root_key=key, tune_cents=0.0, loop=lp)
                    zones.append(Zone(sample=sample, lokey=key - zone_width // 2, hikey=key + zone_width // 2,
                                      lovel=lo, hivel=hi, round_robin=rr, velocity=hi))
        position = (b / max(1, blend_points - 1),)
        groups.append(BlendGroup(index=b, label=f"blend {b}", position=position, grid_index=(b,),
                                 weights={"a": 1 - position[0], "b": position[0]}, zones=tuple(zones)))
    axes = (BlendAxis(name="Blend", cc=1, points=blend_points),) if blend_points > 1 else ()
    return Instrument(name=name, sample_rate=sr, groups=tuple(groups), axes=axes,
                      velocity_layers=vel_layers, round_robins=round_robins,
                      key_range=(min(keys) - zone_width // 2, max(keys) + zone_width // 2),
                      loop_mode="sustain" if loop else "one_shot", envelope=Envelope(release=0.2),
                      metadata={"engine": "test", "description": "tiny test instrument"})


__all__ = ["make_test_instrument", "tone", "loop_for", "axis_crossfades"]
