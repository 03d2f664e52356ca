"""A real two-node Ray cluster on loopback for the cluster tests, and a clean stop of exactly its processes.

    with two_node_cluster() as address:     # "127.0.0.1:PORT"; the second node joins the head
        build_many(specs, cluster="ray")    # with RAY_ADDRESS=address

`ray stop` would stop every Ray on the machine, so the fixture stops only the processes that carry its own
temporary folder on their command line (the head's and the node's daemons; their workers exit with them).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

RAY = Path(sys.executable).parent / "ray"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray(*args: str, env: dict) -> None:
    done = subprocess.run([str(RAY), *args], env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"ray {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def processes_mentioning(text: str) -> list[int]:
    """Pids of this user's processes whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def processes_marked(name: str, value: str) -> list[int]:
    """Pids of other processes whose environment holds `name=value` (children inherit it: a Ray started by
    this process, its daemons and its workers)."""
    found, wanted = [], f"{name}={value}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def processes_titled(title: str) -> list[int]:
    """Pids of processes whose command line starts with `title` (Ray names a busy worker `ray::TASK`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(title.encode()):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _stop(marker: str) -> None:
    """Stop the daemons whose command line names `marker`, and every process they started."""
    tree, pids = _children(), processes_mentioning(marker)
    for pid in list(pids):
        pids.extend(child for child in tree.get(pid, []) if child not in pids)
    for sig, wait in ((signal.SIGTERM, 3), (signal.SIGKILL, 3)):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
            time.sleep(0.1)


@contextmanager
def two_node_cluster(cpus_per_node: int = 1, nodes: int = 2):
    """Start a head and a second node on 127.0.0.1 (each `cpus_per_node` CPUs); yield the head's address.
    `nodes=1`: the head alone (a Ray left running on this machine, as `ray start --head` leaves one)."""
    temp = Path(tempfile.mkdtemp(prefix="dxray", dir="/tmp"))   # short: Ray's socket paths have a length limit
    port = free_port()
    # Loopback only, so no token: the same mode for both nodes and the driver, whatever ~/.ray holds.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    mode_before = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", str(cpus_per_node), "--num-gpus", "0",
              "--object-store-memory", str(80 * 2 ** 20), "--disable-usage-stats"]
    try:
        _ray("start", "--head", "--port", str(port), "--include-dashboard", "false", "--temp-dir", str(temp),
             *common, env=env)
        for _ in range(nodes - 1):
            _ray("start", "--address", f"127.0.0.1:{port}", "--temp-dir", str(temp), *common, env=env)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(str(temp))
        shutil.rmtree(temp, ignore_errors=True)
        if mode_before is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = mode_before
