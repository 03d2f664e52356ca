"""Connecting to Ray: an existing cluster (`ray://HOST:PORT`, `HOST:PORT` or $RAY_ADDRESS), or a local Ray
started for this build and stopped after it.

    >>> resolve_address("ray", environ={})            # nothing given: start Ray here
    >>> resolve_address("ray", environ={"RAY_ADDRESS": "10.0.0.5:6379"})
    '10.0.0.5:6379'
    >>> resolve_address("ray://head:10001", environ={})
    'ray://head:10001'
"""
from __future__ import annotations

import logging
import os
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

from ..errors import DawexportError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "auto", "local")


class ClusterError(DawexportError):
    """The cluster cannot be used: Ray missing, a bad address, no shared cache."""


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_address(cluster: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The Ray address to connect to, or None to start a local Ray: `--cluster ray` uses $RAY_ADDRESS when set."""
    environ = os.environ if environ is None else environ
    if cluster == "ray":
        return environ.get("RAY_ADDRESS") or None
    if cluster.startswith("ray://"):
        return cluster
    raise ClusterError(f"unknown cluster {cluster!r}", key="--cluster",
                       fix="use --cluster ray (local Ray, or $RAY_ADDRESS) or --cluster ray://HOST:PORT")


def _is_local(address: str) -> bool:
    host = address.removeprefix("ray://").rsplit(":", 1)[0]
    return host in LOCAL_HOSTS


@contextmanager
def ray_session(cluster: str, *, cache: Path | None = None, num_cpus: int | None = None,
                progress=None) -> Iterator["RayStages"]:
    """Connect to Ray (or start it), yield the pipeline stages that run on it, and disconnect at the end.

    A remote cluster needs `cache` on storage that every node and this machine see (NFS, a cluster file
    system): trained models, training checkpoints and renders live there, so a retried task resumes."""
    try:
        import ray
    except ImportError:
        raise ClusterError("Ray is not installed", key="--cluster",
                           fix='pip install "dawexport[ray]" (or build without --cluster)') from None
    from ..pipeline import CACHE_ENV
    from .stages import RayStages

    address = resolve_address(cluster)
    if address is not None and not _is_local(address) and cache is None:
        raise ClusterError(f"building on the cluster at {address} needs a cache on storage every node sees",
                           key="--cache", fix="add --cache /path/every/node/mounts (e.g. an NFS share)")
    env = {CACHE_ENV: str(Path(cache).resolve())} if cache is not None else {}
    if address is None and all(os.environ.get(name) == value for name, value in env.items()):
        env = {}     # our own Ray's workers inherit this process's environment: no runtime env to set up
    options = dict(runtime_env={"env_vars": env} if env else None, log_to_driver=False,
                   configure_logging=False)
    if address is None:     # a Ray of our own on this machine, gone when the build ends ("local": never
        # another Ray that happens to run here; RAY_ADDRESS=auto joins that one)
        options.update(address="local", num_cpus=num_cpus, include_dashboard=False)
    else:
        options.update(address=address)
    if ray.is_initialized():
        raise ClusterError("Ray is already connected in this process", key="--cluster",
                           fix="build from a fresh process")

    def connect() -> None:
        try:
            with _quiet_sigterm_warning(), _own_ray_settings(address is None):
                ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise ClusterError(f"cannot connect to Ray at {address or 'a new local instance'}: {error}",
                               key="--cluster", fix="start the cluster (ray start --head) or check the address")
        if progress is not None:
            resources = ray.cluster_resources()
            progress.stage("cluster", f"Ray {'at ' + address if address else 'started here'}: "
                           f"{len(ray.nodes())} node(s), {resources.get('CPU', 0):g} CPU(s), "
                           f"{resources.get('GPU', 0):g} GPU(s)")

    # Ray starts in a thread while the driver reads the sources; a Ray of our own is not waited for
    stages = RayStages(ray, connect, here_while_starting=address is None, cpus=num_cpus or os.cpu_count() or 1)
    try:
        yield stages
    finally:
        stages.wait_started()
        try:
            if address is None:
                _stop_monitors()
            ray.shutdown()
        finally:
            stages.release()


# Read by the raylet we start (Ray's system config from the environment; Ray ignores names it no longer has).
# No prestarted workers: ray.init would wait until they have started and registered (a second or more of
# Python start-up on a small machine); the warm-up tasks submitted right after it start them anyway.
OWN_RAY_SETTINGS = {"RAY_prestart_worker_first_driver": "0"}


@contextmanager
def _own_ray_settings(own: bool) -> Iterator[None]:
    """`OWN_RAY_SETTINGS` in the environment while a Ray of our own starts (the user's own values win)."""
    added = [name for name in OWN_RAY_SETTINGS if own and name not in os.environ]
    for name in added:
        os.environ[name] = OWN_RAY_SETTINGS[name]
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


MONITORS = ("ray/autoscaler/_private/monitor.py", "ray/_private/log_monitor.py")


def _stop_monitors() -> None:
    """Kill the autoscaler's monitor and the log monitor of the Ray this process started, before
    `ray.shutdown()`: a fixed local Ray needs neither, and shutting down waits a second for the monitor to
    heed SIGTERM. `ray.shutdown()` stops the rest (and reaps these). Linux only (elsewhere: a no-op)."""
    for pid in _children_running(MONITORS):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _children_running(scripts: tuple[str, ...]) -> list[int]:
    """Pids of this process's children whose command line names one of `scripts`."""
    found, me = [], os.getpid()
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) != me:
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if any(script in command for script in scripts):
            found.append(int(entry.name))
    return found


class _SigtermWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()


@contextmanager
def _quiet_sigterm_warning() -> Iterator[None]:
    """Ray warns that a driver started off the main thread sets no SIGTERM handler; the main thread keeps
    Python's own (the build's Staging cleans up either way)."""
    logger, quiet = logging.getLogger("ray._private.worker"), _SigtermWarning()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)
