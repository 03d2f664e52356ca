"""Planning the multisample grid: blend points × key zones × velocity layers × round robins × channels;
or, for a spec with `kit:`, a grain kit: one pad per key × velocity layer × round robin × channel.

    >>> from dawexport.spec import load_spec
    >>> spec = load_spec("instruments/cat_flute.yaml", check_sources=False)
    >>> plan = make_plan(spec, channels=("L", "R"))      # 3 blend points x 13 zones x 3 layers
    >>> len(plan.cells), len(plan.requests())
    (117, 234)

A kit is planned from the engine's grains (`engine.grain_catalogue()`):

    >>> kit = make_plan(load_spec("instruments/conceptor_kit.yaml", check_sources=False), ("L", "R"),
    ...                 grains={("cat", 0): tuple(range(8)), ("flute", 0): tuple(range(8))})
    >>> kit.kind, kit.pads[0].description       # sequence: 2, so each pad walks two grains
    ('kit', 'grains 1-2 of cat')

Pure data; nothing is rendered here.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from ..engines.base import GrainRequest, RenderRequest
from ..errors import SpecError


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
class KitPad:
    """One pad of a grain kit: the key it sits on and the grains it plays (positions along the grain
    sequence of one recording of a source; several are walked in a loop)."""
    key: int
    source: str
    recording: int
    positions: tuple[int, ...]
    recordings: int = 1      # how many recordings the source has (names mention the recording only when > 1)

    def _numbers(self) -> str:
        """1-based grain numbers: '3', '3-5' for a run, '7+8+1' where the sequence wraps or skips."""
        numbers = [p + 1 for p in self.positions]
        if len(numbers) == 1:
            return str(numbers[0])
        if numbers == list(range(numbers[0], numbers[0] + len(numbers))):
            return f"{numbers[0]}-{numbers[-1]}"
        return "+".join(map(str, numbers))

    @property
    def label(self) -> str:
        """File-name part: cat_g3, cat_g3-4, cat_t2_g3."""
        grains = f"g{self._numbers()}"
        return f"{self.source}_t{self.recording + 1}_{grains}" if self.recordings > 1 else f"{self.source}_{grains}"

    @property
    def description(self) -> str:
        """For people: 'grain 3 of cat', 'grains 3-4 of cat (recording 2)'."""
        what = ("grain " if len(self.positions) == 1 else "grains ") + self._numbers()
        return f"{what} of {self.source}" + (f" (recording {self.recording + 1})" if self.recordings > 1 else "")


@dataclass(frozen=True)
class TexturePad:
    """One pad of a texture instrument: the key it sits on and the kept texture it plays (the curator's
    candidate number, its label and a summary of its measured features).

        >>> TexturePad(38, 3, 17, "gnarly", "onsets 3.9/s").description
        'texture 3: gnarly (onsets 3.9/s)'
    """
    key: int
    number: int              # 1-based among the kept textures, in key order
    candidate: int           # which generated candidate
    kind: str                # the curator's label: rhythmic, gnarly, tonal, drone (noise when filled in)
    detail: str = ""

    @property
    def label(self) -> str:
        """File-name part: tex3_gnarly."""
        return f"tex{self.number}_{self.kind}"

    @property
    def description(self) -> str:
        """For people: 'texture 3: gnarly (onsets 3.9/s, ...)'."""
        return f"texture {self.number}: {self.kind}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class Cell:
    """One cell of the render grid: a blend point × key zone × velocity layer × round robin (or a kit pad)."""
    point: BlendPoint
    zone: KeyZone
    layer: VelocityLayer
    round_robin: int  # 1-based
    pad: KitPad | TexturePad | None = None   # set in a grain kit or a texture instrument


@dataclass(frozen=True)
class RenderPlan:
    points: tuple[BlendPoint, ...]
    zones: tuple[KeyZone, ...]
    layers: tuple[VelocityLayer, ...]
    round_robins: int
    channels: tuple[str, ...]
    duration_s: float
    release_s: float
    cells: tuple[Cell, ...]
    pads: tuple[KitPad, ...] | tuple[TexturePad, ...] = ()   # a kit's pads (empty for a blend grid)
    decay_s: float = 0.0               # a grain kit's decay (-60 dB) time

    @property
    def kind(self) -> str:
        """"kit" for a grain kit, "texture" for a texture instrument, "multisample" for a blend grid."""
        if not self.pads:
            return "multisample"
        return "texture" if isinstance(self.pads[0], TexturePad) else "kit"

    def requests(self) -> list[RenderRequest] | list[GrainRequest]:
        """One request per cell and channel, cell-major (the channels of a cell are adjacent).
        A grain kit asks for `GrainRequest`s (`Engine.render_grains`), a blend grid for `RenderRequest`s; a
        texture instrument's audio comes from the curator's kept candidates (`render.textures`), not requests."""
        if self.kind == "texture":
            raise ValueError("a texture plan plays kept candidates: see dawexport.render.textures.texture_takes")
        if self.pads:
            return [GrainRequest(source=cell.pad.source, recording=cell.pad.recording, positions=cell.pad.positions,
                                 channel=channel, note=cell.pad.key, velocity=cell.layer.velocity,
                                 duration_s=self.duration_s, decay_s=self.decay_s,
                                 variation=cell.round_robin - 1)
                    for cell in self.cells for channel in self.channels]
        return [RenderRequest(weights=cell.point.weights, channel=channel, note=cell.zone.root,
                              velocity=cell.layer.velocity, duration_s=self.duration_s,
                              release_s=self.release_s, variation=cell.round_robin - 1)
                for cell in self.cells for channel in self.channels]


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


def kit_pads(kit, sources: list[str], grains: dict[tuple[str, int], tuple[int, ...]],
             file: str = "<spec>") -> tuple[KitPad, ...]:
    """`kit.grains` pads from `kit.low` up, their grains chosen evenly from the sounding grains of `sources`
    (in source order, recording by recording, along each recording's grain sequence). A pad with
    `kit.sequence` > 1 takes that many consecutive sounding grains of its recording (wrapping around).

        >>> from dawexport.spec import KitSpec
        >>> [p.description for p in kit_pads(KitSpec(grains=2), ["cat"], {("cat", 0): (0, 1, 2, 3)})]
        ['grain 1 of cat', 'grain 4 of cat']
    """
    pool = [(source, recording, i) for source in sources
            for (name, recording), positions in grains.items() if name == source for i in range(len(positions))]
    if len(pool) < kit.grains:
        counts = ", ".join(f"{s} {sum(len(p) for (n, _), p in grains.items() if n == s)}" for s in sources)
        raise SpecError(f"the kit asks for {kit.grains} grains but the model has only {len(pool)} sounding "
                        f"grains in {', '.join(sources)} ({counts})", file=file, key="kit.grains",
                        fix="lower kit.grains, add sources to kit.sources, or raise "
                            "engine.settings.grains_per_source")
    recordings = {s: len([1 for (n, _) in grains if n == s]) for s in sources}
    pads = []
    for k, pick in enumerate(np.round(np.linspace(0, len(pool) - 1, kit.grains)).astype(int)):
        source, recording, i = pool[int(pick)]
        sounding = grains[(source, recording)]
        positions = tuple(sounding[(i + n) % len(sounding)] for n in range(min(kit.sequence, len(sounding))))
        pads.append(KitPad(kit.low + k, source, recording, positions, recordings[source]))
    return tuple(pads)


def make_plan(spec, channels: tuple[str, ...], grains: dict[tuple[str, int], tuple[int, ...]] | None = None
              ) -> RenderPlan:
    """The render plan of a spec. A spec with `kit:` needs the engine's `grain_catalogue()` as `grains`."""
    if spec.kit is not None:
        return make_kit_plan(spec, channels, grains)
    points = blend_points(spec.blend_corners, spec.blend.points_per_side if spec.blend else 1)
    zones = key_zones(spec.keys.low, spec.keys.high, spec.keys.every)
    layers = velocity_layers(spec.velocity_layers)
    cells = tuple(Cell(p, z, v, rr) for p, z, v, rr in
                  product(points, zones, layers, range(1, spec.round_robins + 1)))
    return RenderPlan(points, zones, layers, spec.round_robins, tuple(channels), spec.note.length,
                      spec.note.release, cells)


KIT_POINT = BlendPoint(0, "kit", (0.0,), (0,), ())


def make_kit_plan(spec, channels: tuple[str, ...], grains: dict[tuple[str, int], tuple[int, ...]] | None
                  ) -> RenderPlan:
    """A grain kit: one cell per pad key × velocity layer × round robin (× channel in the requests)."""
    if grains is None:
        raise ValueError("a grain kit is planned from the engine's grain_catalogue(); pass it as `grains`")
    kit = spec.kit
    file = str(spec.spec_path) if spec.spec_path else "<spec>"
    pads = kit_pads(kit, kit.sources or list(spec.sources), grains, file)
    zones = tuple(KeyZone(p.key, p.key, p.key) for p in pads)
    layers = velocity_layers(spec.velocity_layers)
    cells = tuple(Cell(KIT_POINT, zone, layer, rr, pad) for (pad, zone), layer, rr in
                  product(zip(pads, zones), layers, range(1, spec.round_robins + 1)))
    return RenderPlan((KIT_POINT,), zones, layers, spec.round_robins, tuple(channels), kit.length, 0.0, cells,
                      pads=pads, decay_s=kit.decay_s)


def make_texture_plan(spec, channels: tuple[str, ...], kept) -> RenderPlan:
    """A texture instrument: one pad per kept texture (`curator.Candidate`s in key order) from `texture.low`,
    one cell per pad × velocity layer (× channel in the takes)."""
    texture = spec.texture
    pads = tuple(TexturePad(texture.low + k, k + 1, c.index, c.label, c.features.summary())
                 for k, c in enumerate(kept))
    zones = tuple(KeyZone(p.key, p.key, p.key) for p in pads)
    layers = velocity_layers(spec.velocity_layers)
    cells = tuple(Cell(KIT_POINT, zone, layer, 1, pad) for (pad, zone), layer in product(zip(pads, zones), layers))
    return RenderPlan((KIT_POINT,), zones, layers, 1, tuple(channels), texture.length, 0.0, cells, pads=pads)
