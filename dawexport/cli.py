"""The `dawexport` command.

    $ dawexport build instruments/cat_flute.yaml      # train (or reuse), render, export, publish
    $ dawexport train instruments/cat_flute.yaml      # only train (resumes an interrupted run)
    $ dawexport validate instruments/cat_flute.yaml   # check the spec and its sources, do nothing else
    $ dawexport inspect instruments/cat_flute.yaml    # show what a build would render
"""
from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import DawexportError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dawexport", description="Turn neural audio synthesis into "
                                     "instruments you can play: SFZ, Ableton racks, wavetables and more.")
    parser.add_argument("--version", action="version", version=f"dawexport {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("spec", help="instrument spec (YAML), e.g. instruments/cat_flute.yaml")
        sub.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
        return sub

    build = command("build", "train (or reuse) the model, render the grid and write the instrument folder")
    build.add_argument("--force", action="store_true", help="rebuild even if the folder is up to date")
    command("train", "train the model only (cached; an interrupted run resumes from its last checkpoint)")
    command("validate", "check the spec and every source sound; exit non-zero on any problem")
    command("inspect", "show the sources' measured pitch and the grid a build would render")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except DawexportError as error:
        print(f"dawexport: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dawexport: interrupted; nothing was published. Run the same command again: training resumes "
              "from its last checkpoint.", file=sys.stderr)
        return 130


def _run(args) -> int:
    from .pipeline import build
    from .progress import Progress
    from .spec import load_spec

    progress = Progress(quiet=args.quiet)
    spec = load_spec(args.spec)
    if args.command == "validate":
        if not args.quiet:
            print(f"{args.spec}: OK — {_summary(spec)}")
        return 0
    if args.command == "inspect":
        return _inspect(spec)
    if args.command == "train":
        result = build(spec, progress=progress, stop_after="train")
        if not args.quiet:
            print("trained" if result.trained else "model already trained (cached)")
        return 0
    result = build(spec, progress=progress, force=args.force)
    if not args.quiet:
        print(result.folder)
    return 0


def _summary(spec) -> str:
    from .notes import midi_to_note
    from .render.plan import blend_points, key_zones, velocity_layers
    if spec.kit is not None:
        kit = spec.kit
        takes = kit.grains * spec.velocity_layers * spec.round_robins
        return (f"engine {spec.engine.name}, grain kit of {kit.grains} pad(s) {midi_to_note(kit.low)}-"
                f"{midi_to_note(kit.high)} × {spec.velocity_layers} layer(s) × {spec.round_robins} round robin(s) "
                f"= {takes} samples; formats: {', '.join(spec.output.formats)} → {spec.output_dir()}")
    points = blend_points(spec.blend_corners, spec.blend.points_per_side if spec.blend else 1)
    zones = key_zones(spec.keys.low, spec.keys.high, spec.keys.every)
    takes = len(points) * len(zones) * len(velocity_layers(spec.velocity_layers)) * spec.round_robins
    return (f"engine {spec.engine.name}, {len(points)} blend point(s) × {len(zones)} zone(s) × "
            f"{spec.velocity_layers} layer(s) × {spec.round_robins} round robin(s) = {takes} samples; "
            f"formats: {', '.join(spec.output.formats)} → {spec.output_dir()}")


def _inspect(spec) -> int:
    from .engines import engine_rate
    from .notes import midi_to_note
    from .pipeline import build_corpus
    from .progress import Progress
    from .render.plan import make_plan

    print(_summary(spec))
    corpus = build_corpus(spec, engine_rate(spec), Progress())
    if spec.kit is not None:      # the pads' grains are picked from the trained model's grains
        kit = spec.kit
        print(f"channels: {', '.join(corpus.channels)} (stereo mode {spec.stereo}); model rate "
              f"{corpus.sample_rate} Hz")
        print(f"kit: {kit.grains} pad(s) {midi_to_note(kit.low)}-{midi_to_note(kit.high)} from "
              f"{', '.join(kit.sources or spec.sources)}, {kit.sequence} grain(s) per pad, {kit.length} s "
              f"one-shots (grains are picked once the model is trained)")
        return 0
    plan = make_plan(spec, corpus.channels)
    print(f"channels: {', '.join(corpus.channels)} (stereo mode {spec.stereo}); model rate {corpus.sample_rate} Hz")
    print("blend points: " + ", ".join(p.label for p in plan.points))
    print("zones: " + ", ".join(f"{midi_to_note(z.lokey)}-{midi_to_note(z.hikey)} (root {midi_to_note(z.root)})"
                                for z in plan.zones))
    print("velocity layers: " + ", ".join(f"{v.lovel}-{v.hivel}" for v in plan.layers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
