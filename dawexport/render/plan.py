"""Planning the multisample grid: blend points × key zones × velocity layers × round robins × channels.

    >>> plan = make_plan(spec, channels=("L", "R"))
    >>> len(plan.takes), len(plan.requests())
    (81, 162)

Pure data; nothing is rendered here.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from ..engines.base import RenderRequest


@dataclass(frozen=True)
class BlendPoint:
    index: int
    label: str
    position: tuple[float, ...]
    grid_index: tuple[int, ...]
    weights: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class KeyZone:
    lokey: int
    hikey: int
    root: int


@dataclass(frozen=True)
class VelocityLayer:
    index: int
    lovel: int
    hivel: int

    @property
    def velocity(self) -> int:
        """Takes are rendered at the top of their layer, as a player hitting that hard would."""
        return self.hivel


@dataclass(frozen=True)
class Take:
    point: BlendPoint
    zone: KeyZone
    layer: VelocityLayer
    round_robin: int  # 1-based


@dataclass(frozen=True)
class RenderPlan:
    points: tuple[BlendPoint, ...]
    zones: tuple[KeyZone, ...]
    layers: tuple[VelocityLayer, ...]
    round_robins: int
    channels: tuple[str, ...]
    duration_s: float
    release_s: float
    takes: tuple[Take, ...]

    def requests(self) -> list[RenderRequest]:
        """One request per take and channel, take-major (the channels of a take are adjacent)."""
        return [RenderRequest(weights=take.point.weights, channel=channel, note=take.zone.root,
                              velocity=take.layer.velocity, duration_s=self.duration_s,
                              release_s=self.release_s, variation=take.round_robin - 1)
                for take in self.takes for channel in self.channels]


def _label(weights: dict[str, float]) -> str:
    parts = [(name, w) for name, w in weights.items() if w > 1e-9]
    if len(parts) == 1:
        return parts[0][0]
    return "+".join(f"{name}{round(100 * w)}" for name, w in parts)


def blend_points(corners: list[str], points_per_side: int) -> tuple[BlendPoint, ...]:
    """Grid points with corner weights: 1 corner = one point, 2 = a line, 4 = a square (A B / C D)."""
    n = points_per_side
    if len(corners) == 1:
        return (BlendPoint(0, corners[0], (0.0,), (0,), ((corners[0], 1.0),)),)
    steps = np.linspace(0.0, 1.0, n)
    points = []
    if len(corners) == 2:
        a, b = corners
        for i, x in enumerate(steps):
            weights = {a: float(1 - x), b: float(x)}
            points.append(BlendPoint(i, _label(weights), (float(x),), (i,), tuple(weights.items())))
    elif len(corners) == 4:
        a, b, c, d = corners
        for (j, y), (i, x) in product(enumerate(steps), enumerate(steps)):
            weights = {a: float((1 - x) * (1 - y)), b: float(x * (1 - y)),
                       c: float((1 - x) * y), d: float(x * y)}
            points.append(BlendPoint(len(points), _label(weights), (float(x), float(y)), (i, j),
                                     tuple(weights.items())))
    else:
        raise ValueError("a blend grid has 1, 2 or 4 corners")
    return tuple(points)


def key_zones(low: int, high: int, every: int) -> tuple[KeyZone, ...]:
    """Zones of `every` keys from low to high, each rendered at its middle key (so no key is far from a root)."""
    zones = []
    for lokey in range(low, high + 1, every):
        hikey = min(high, lokey + every - 1)
        zones.append(KeyZone(lokey, hikey, lokey + (hikey - lokey) // 2))
    return tuple(zones)


def velocity_layers(count: int) -> tuple[VelocityLayer, ...]:
    """`count` layers splitting velocities 1..127 evenly: 3 -> 1-42, 43-85, 86-127."""
    bounds = np.round(np.linspace(0, 127, count + 1)).astype(int)
    return tuple(VelocityLayer(i, int(bounds[i]) + 1, int(bounds[i + 1])) for i in range(count))


def make_plan(spec, channels: tuple[str, ...]) -> RenderPlan:
    points = blend_points(spec.blend_corners, spec.blend.points_per_side if spec.blend else 1)
    zones = key_zones(spec.keys.low, spec.keys.high, spec.keys.every)
    layers = velocity_layers(spec.velocity_layers)
    takes = tuple(Take(p, z, v, rr) for p, z, v, rr in
                  product(points, zones, layers, range(1, spec.round_robins + 1)))
    return RenderPlan(points, zones, layers, spec.round_robins, tuple(channels), spec.note.length,
                      spec.note.release, takes)
