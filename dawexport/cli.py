"""The `dawexport` command.

    $ dawexport build instruments/cat_flute.yaml      # train (or reuse), render, export, publish
    $ dawexport build instruments/*.yaml --cluster ray   # many specs, on Ray (see dawexport.batch)
    $ dawexport train instruments/cat_flute.yaml      # only train (resumes an interrupted run)
    $ dawexport validate instruments/cat_flute.yaml   # check the spec and its sources, do nothing else
    $ dawexport inspect instruments/cat_flute.yaml    # show what a build would render
    $ dawexport inspect build/cat_flute               # show what a finished build depends on
    $ dawexport report build/cat_flute --open         # draw a build's report.html again, open it
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sys
import threading
from pathlib import Path

from . import __version__
from .errors import BuildError, DawexportError


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
    build.add_argument("more", nargs="*", metavar="SPEC", help="more specs: build them all, then show a summary")
    build.add_argument("--cluster", metavar="ray|ray://HOST:PORT", help="build on Ray: 'ray' starts one here "
                       "(or joins $RAY_ADDRESS); ray://HOST:PORT joins a cluster (pip install \"dawexport[ray]\")")
    build.add_argument("--cache", metavar="DIR", help="the model and render cache for every spec (default: "
                       "beside each output folder); on a cluster, a folder every node sees")
    command("train", "train the model only (cached; an interrupted run resumes from its last checkpoint)")
    command("validate", "check the spec and every source sound; exit non-zero on any problem")
    command("inspect", "show the sources' measured pitch and the grid a build would render; given a build "
            "folder, what that build depends on (engine, settings, steps trained, seed, sources, versions)")
    report = commands.add_parser("report", help="draw a build folder's report.html again (every build writes "
                                 "one) and optionally open it", description="draw a build folder's report.html "
                                 "again (every build writes one) and optionally open it in the browser")
    report.add_argument("folder", help="a build folder, e.g. build/cat_flute")
    report.add_argument("--open", action="store_true", help="open the page in the web browser")
    report.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit status: 0 built (or checked), 1 the build failed, 2 bad input,
    128 + signal number when interrupted (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), after cleaning up."""
    args = _parser().parse_args(argv)
    with _signals_interrupt():
        try:
            return _run(args)
        except DawexportError as error:
            return _report(error, error.exit_code)
        except KeyboardInterrupt as stop:
            signum = getattr(stop, "signum", signal.SIGINT)
            print(f"dawexport: interrupted ({signal.Signals(signum).name}); nothing was published. Run the same "
                  "command again: training resumes from its last checkpoint.", file=sys.stderr)
            return 128 + signum
        except OSError as error:
            return _report(os_error(error), 1)
        except Exception as error:  # noqa: BLE001 - a bug: one line, the traceback only when asked for
            if os.environ.get("DAWEXPORT_DEBUG"):
                raise
            print(f"dawexport: internal error: {type(error).__name__}: {error}\n  this is a bug in dawexport; "
                  "please report it with the output of the same command run with DAWEXPORT_DEBUG=1",
                  file=sys.stderr)
            return 1


def _report(error: DawexportError, code: int) -> int:
    print(f"dawexport: error: {error}", file=sys.stderr)
    return code


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGHUP: unwinds like Ctrl-C, so every staging folder is removed on the way out."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signum)
        self.signum = int(signum)


@contextlib.contextmanager
def _signals_interrupt():
    """Turn SIGTERM and SIGHUP (and Ctrl-C) into `Interrupted`; later signals are ignored while cleaning up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    wanted = [s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None]
    before = {s: signal.getsignal(s) for s in wanted}

    def handler(signum, frame):
        for s in wanted:
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    for s in wanted:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, previous in before.items():
            signal.signal(s, previous)


_OS_FIXES = {
    errno.ENOSPC: ("the disk is full", "free some space and build again; finished training and renders are kept "
                   "in the cache"),
    errno.EDQUOT: ("the disk quota is used up", "free some space and build again"),
    errno.EROFS: ("the folder is on a read-only disk", "set output.dir in the spec to a folder you can write to "
                  "(the cache lives beside it)"),
    errno.EACCES: ("no permission", "set output.dir in the spec to a folder you can write to, or change the "
                   "folder's permissions"),
    errno.EPERM: ("not permitted", "set output.dir in the spec to a folder you can write to"),
    errno.ENAMETOOLONG: ("the path is too long", "use a shorter output.dir, spec path or name"),
    errno.ENOTDIR: ("a file stands where dawexport needs a folder", "move that file away"),
    errno.EISDIR: ("a folder stands where dawexport needs a file", "move that folder away"),
    errno.EEXIST: ("something already stands at that path", "move it away"),
    errno.EBUSY: ("the path is busy (a mount point cannot be replaced)", "set output.dir to a folder inside "
                  "the mount point, e.g. <mount>/<name>"),
    errno.EXDEV: ("the output folder is on another disk than its parent folder", "set output.dir to a folder "
                  "that is not itself a mount point"),
}


def os_error(error: OSError) -> BuildError:
    """A BuildError naming the file, what went wrong in words and the fix."""
    what, fix = _OS_FIXES.get(error.errno, (error.strerror or str(error), "check the path and build again"))
    if error.strerror and error.strerror.lower() not in what.lower():
        what = f"{what} ({error.strerror})"
    file = error.filename if error.filename is None or len(str(error.filename)) <= 300 \
        else f"{str(error.filename)[:150]}…{str(error.filename)[-100:]}"
    return BuildError(f"cannot finish the build: {what}", file=file, fix=fix)


def _run(args) -> int:
    if args.command == "build" and (args.more or args.cluster or args.cache):
        return _build_many(args)
    from .pipeline import build
    from .progress import Progress
    from .spec import load_spec

    if args.command == "report":
        return _remake_report(args)
    progress = Progress(quiet=args.quiet)
    if args.command == "inspect" and Path(args.spec).is_dir():
        from .provenance import describe_build
        print(describe_build(Path(args.spec)))
        return 0
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


def _remake_report(args) -> int:
    from pathlib import Path

    from .report import remake_report
    page = remake_report(Path(args.folder))
    if not args.quiet:
        print(page)
    if args.open:
        import webbrowser
        webbrowser.open(page.resolve().as_uri())
    return 0


def _build_many(args) -> int:
    from pathlib import Path

    from .batch import build_many, exit_code, summary_table
    outcomes = build_many([args.spec, *args.more], force=args.force, quiet=args.quiet, cluster=args.cluster,
                          cache=Path(args.cache) if args.cache else None)
    if not args.quiet:
        print(summary_table(outcomes))
    for failed in (o for o in outcomes if o.status == "failed" and args.quiet):
        print(f"dawexport: error: {failed.spec}: {failed.detail}", file=sys.stderr)
    return exit_code(outcomes)


def _summary(spec) -> str:
    from .notes import midi_to_note
    from .render.plan import blend_points, key_zones, velocity_layers
    if spec.kit is not None:
        kit = spec.kit
        takes = kit.grains * spec.velocity_layers * spec.round_robins
        return (f"engine {spec.engine.name}, grain kit of {kit.grains} pad(s) {midi_to_note(kit.low)}-"
                f"{midi_to_note(kit.high)} × {spec.velocity_layers} layer(s) × {spec.round_robins} round robin(s) "
                f"= {takes} samples; formats: {', '.join(spec.output.formats)} → {spec.output_dir()}")
    if spec.texture is not None:
        tex = spec.texture
        return (f"engine {spec.engine.name}, texture kit of {tex.count} pad(s) {midi_to_note(tex.low)}-"
                f"{midi_to_note(tex.high)} (kept from {tex.candidate_count} candidates of {tex.length} s, "
                f"{'looped' if tex.loop else 'one-shots'}) × {spec.velocity_layers} layer(s) = "
                f"{tex.count * spec.velocity_layers} samples; formats: {', '.join(spec.output.formats)} → "
                f"{spec.output_dir()}")
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
    if spec.texture is not None:  # the pads' textures are chosen by the curator after training
        print(f"channels: {', '.join(corpus.channels)} (stereo mode {spec.stereo}); model rate "
              f"{corpus.sample_rate} Hz; the curator picks the pads once the model is trained")
        return 0
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
