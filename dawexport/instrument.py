"""The format-neutral instrument every exporter reads.

One `Instrument` holds blend groups (one per point of the blend grid), each holding zones (key range ×
velocity layer × round robin) that point at samples already written into the instrument folder. A grain
kit (`kind == "kit"`) is one group whose zones are pads: one key each, rooted on that key, one-shot, with
a `label` saying which grains play. Exporters never look at the spec or the engine: only at this.

    inst.groups[0].zones[0].sample.path      # -> 'samples/cat_flute_b0_C4_v127_rr1.wav'

    >>> axis_crossfades(3)        # CC ranges that crossfade 3 blend points along one knob
    [(0, 0, 0, 64), (0, 64, 64, 127), (64, 127, 127, 127)]
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Loop:
    """A sustain loop in sample frames; `end` is inclusive (as in SFZ and the WAV smpl chunk)."""
    start: int
    end: int
    crossfade: int = 0

    @property
    def length(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True)
class Sample:
    """One audio file of the instrument, relative to the instrument folder with '/' separators."""
    path: str
    frames: int
    sample_rate: int
    channels: int
    root_key: int
    tune_cents: float = 0.0  # correction to play in tune: the sample sounds at root_key - tune_cents/100
    loop: Loop | None = None
    peak_db: float = 0.0
    loudness_db: float = 0.0


@dataclass(frozen=True)
class Zone:
    """Where a sample plays: a key range, a velocity range and its place in the round-robin cycle."""
    sample: Sample
    lokey: int
    hikey: int
    lovel: int
    hivel: int
    round_robin: int = 1  # 1-based position in the cycle
    velocity: int = 127    # the velocity it was rendered at
    label: str = ""        # what plays here, for people (a kit pad: "grain 3 of cat"); may be empty

    @property
    def root_key(self) -> int:
        return self.sample.root_key


@dataclass(frozen=True)
class BlendGroup:
    """All zones rendered at one point of the blend grid.

    `position` is (x,) on a line or (x, y) on a square, each 0..1; `weights` are the corner weights.
    `grid_index` is the point's integer coordinate along each axis.
    """
    index: int
    label: str
    position: tuple[float, ...]
    grid_index: tuple[int, ...]
    weights: dict[str, float]
    zones: tuple[Zone, ...]


@dataclass(frozen=True)
class BlendAxis:
    """One blend knob: a name shown to the musician, the MIDI CC that drives it, and its grid points."""
    name: str
    cc: int
    points: int


@dataclass(frozen=True)
class Envelope:
    attack: float = 0.002
    decay: float = 0.0
    sustain: float = 1.0
    release: float = 0.3


@dataclass(frozen=True)
class Wavetable:
    """A Serum-compatible table written beside the samples."""
    path: str
    frames: int
    frame_size: int
    label: str
    extra_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class Instrument:
    name: str
    sample_rate: int
    groups: tuple[BlendGroup, ...]
    axes: tuple[BlendAxis, ...]
    velocity_layers: tuple[tuple[int, int], ...]
    round_robins: int
    key_range: tuple[int, int]
    loop_mode: str                  # "sustain", "continuous", "one_shot" or "none"
    envelope: Envelope = Envelope()
    wavetables: tuple[Wavetable, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    kind: str = "multisample"       # "multisample", or "kit": a drum map, one pad per key (lokey = hikey = root)

    @property
    def is_kit(self) -> bool:
        return self.kind == "kit"

    @property
    def samples(self) -> list[Sample]:
        """Every distinct sample, in group/zone order."""
        seen: dict[str, Sample] = {}
        for group in self.groups:
            for zone in group.zones:
                seen.setdefault(zone.sample.path, zone.sample)
        return list(seen.values())

    def group_crossfades(self, group: BlendGroup) -> list[tuple[BlendAxis, tuple[int, int, int, int]]]:
        """For each blend axis, the (in_lo, in_hi, out_lo, out_hi) CC values of this group's crossfade."""
        return [(axis, axis_crossfades(axis.points)[i]) for axis, i in zip(self.axes, group.grid_index)]


def axis_crossfades(points: int, top: int = 127) -> list[tuple[int, int, int, int]]:
    """Controller ranges that crossfade `points` evenly spaced groups along one 0..top knob.

    Group i is fully in at its own value c_i, fades in from c_(i-1) and out towards c_(i+1);
    the first group has no fade-in and the last no fade-out. Returns (in_lo, in_hi, out_lo, out_hi).
    """
    if points < 1:
        raise ValueError("an axis needs at least one point")
    if points == 1:
        return [(0, 0, top, top)]
    centres = [round(top * i / (points - 1)) for i in range(points)]
    ranges = []
    for i, centre in enumerate(centres):
        fade_in = (0, 0) if i == 0 else (centres[i - 1], centre)
        fade_out = (top, top) if i == points - 1 else (centre, centres[i + 1])
        ranges.append((*fade_in, *fade_out))
    return ranges
