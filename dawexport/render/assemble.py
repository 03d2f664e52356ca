"""Samples + plan → the format-neutral Instrument that every exporter reads.

    instrument = assemble_instrument(spec, plan, rendered_samples, engine)
"""
from __future__ import annotations

from .. import __version__
from ..instrument import BlendAxis, BlendGroup, Envelope, Instrument, Zone

# A kit's amp release: pads end in silence inside their samples, so hosts without a one-shot mode (Live's
# Sampler, SF2 and Decent Sampler players end notes with their amp envelope) get a release long enough that
# letting go of a pad barely touches it (SF2 releases fall 100 dB over this: 5 dB a second), and the voice
# still ends with its sample. 20 s is the longest Decent Sampler's Release knob offers.
KIT_RELEASE_S = 20.0

# Which loop mode the exporters write for each spec setting; "auto" loops what could be looped.
LOOP_MODES = {"auto": "sustain", "sustain": "sustain", "continuous": "continuous",
              "one_shot": "one_shot", "none": "none"}


def blend_axes(spec) -> tuple[BlendAxis, ...]:
    """No knob for one corner; "Blend" on CC 1 for a line; "Blend X" (CC 1) and "Blend Y" (CC 2) for a square."""
    corners = spec.blend_corners
    n = spec.blend.points_per_side if spec.blend else 1
    if len(corners) == 2:
        return (BlendAxis("Blend", 1, n),)
    if len(corners) == 4:
        return (BlendAxis("Blend X", 1, n), BlendAxis("Blend Y", 2, n))
    return ()


def assemble_instrument(spec, plan, rendered, engine) -> Instrument:
    if plan.kind in ("kit", "texture"):
        return assemble_kit(spec, plan, rendered, engine)
    groups = []
    for point in plan.points:
        zones = tuple(Zone(sample=r.sample, lokey=r.cell.zone.lokey, hikey=r.cell.zone.hikey,
                           lovel=r.cell.layer.lovel, hivel=r.cell.layer.hivel,
                           round_robin=r.cell.round_robin, velocity=r.cell.layer.velocity)
                      for r in rendered if r.cell.point == point)
        groups.append(BlendGroup(index=point.index, label=point.label, position=point.position,
                                 grid_index=point.grid_index, weights=dict(point.weights), zones=zones))
    return Instrument(
        name=spec.name,
        sample_rate=spec.output.sample_rate,
        groups=tuple(groups),
        axes=blend_axes(spec),
        velocity_layers=tuple((layer.lovel, layer.hivel) for layer in plan.layers),
        round_robins=plan.round_robins,
        key_range=(spec.keys.low, spec.keys.high),
        loop_mode=LOOP_MODES[spec.loop],
        envelope=Envelope(attack=spec.note.attack, release=max(0.005, spec.note.release)),
        metadata={"engine": engine.name, "description": spec.description, "dawexport": __version__,
                  "corners": ", ".join(spec.blend_corners), "model_rate": str(engine.sample_rate)},
    )


def assemble_kit(spec, plan, rendered, engine) -> Instrument:
    """A grain kit or a texture instrument: one group of pads, each zone on its own key (root = that key),
    labelled with what it plays; a grain kit's pads are one-shots, a texture's loop when texture.loop."""
    texture = spec.texture
    zones = tuple(Zone(sample=r.sample, lokey=r.cell.pad.key, hikey=r.cell.pad.key, lovel=r.cell.layer.lovel,
                       hivel=r.cell.layer.hivel, round_robin=r.cell.round_robin, velocity=r.cell.layer.velocity,
                       label=r.cell.pad.description) for r in rendered)
    sources = (spec.kit.sources if spec.kit is not None else None) or list(spec.sources)
    group = BlendGroup(index=0, label="textures" if texture else "kit", position=(0.0,), grid_index=(0,),
                       weights={name: 1.0 / len(sources) for name in sources}, zones=zones)
    looping = texture is not None and texture.loop
    envelope = (Envelope(attack=0.001, release=max(0.005, texture.release)) if looping
                else Envelope(attack=0.001, release=KIT_RELEASE_S))
    metadata = {"engine": engine.name, "description": spec.description, "dawexport": __version__,
                "corners": ", ".join(sources), "model_rate": str(engine.sample_rate),
                "category": "Textures" if texture else "Drums"}
    if texture is not None:
        labels = [pad.kind for pad in plan.pads]
        metadata["textures"] = ", ".join(f"{label} {labels.count(label)}" for label in dict.fromkeys(labels))
    return Instrument(
        name=spec.name,
        sample_rate=spec.output.sample_rate,
        groups=(group,),
        axes=(),
        velocity_layers=tuple((layer.lovel, layer.hivel) for layer in plan.layers),
        round_robins=plan.round_robins,
        key_range=(plan.pads[0].key, plan.pads[-1].key),
        loop_mode="continuous" if looping else "one_shot",
        envelope=envelope,
        metadata=metadata,
        kind="kit",
    )
