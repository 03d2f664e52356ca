"""Builds on a real two-node Ray cluster (loopback) write the same bytes as builds in one process, even when a
worker is killed in the middle of training or of rendering."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from dawexport.batch import build_many
from dawexport.cli import main
from dawexport.cluster.stages import shards
from support.specs import small_spec

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'dawexport[ray]' (.ci/run installs it)")

from support.ray_cluster import processes_marked, processes_titled, two_node_cluster  # noqa: E402

# a tiny reservoir holds its grains at 22050 Hz (the engine's 44100 Hz default wants N = 400)
CONCEPTOR = {"name": "conceptor", "sample_rate": 22050,
             "settings": {"reservoir_size": 100, "grains_per_source": 4, "n_reservoirs": 1}}
# A few training steps, stopped by count (not by the clock) on one torch thread: the same bytes anywhere.
# A checkpoint every 2 steps: a worker killed after the first one leaves 8 steps for the retry to resume.
DDSP = {"name": "ddsp", "sample_rate": 16000, "settings": {
    "max_steps": 10, "max_minutes": None, "threads": 1, "augment_copies": 0, "hidden_size": 32, "batch_size": 2,
    "checkpoint_every": 2, "validate_every": 2}}


def write_specs(folder: Path) -> list[Path]:
    """A sampler spec (its renders shard across tasks), a tiny ddsp spec (trained in a Ray task) and a
    conceptor spec (trained, its renders sharded, some shard lasting long enough to be killed). No Ableton files:
    they record the folder's absolute path, so they differ between any two folders."""
    folder.mkdir(parents=True, exist_ok=True)
    return [small_spec(folder, "sampled", velocity_layers=2, output={"dir": "out/sampled",
                                                                      "formats": ["sfz", "sf2", "bitwig"]}),
            small_spec(folder, "neural", engine=DDSP, output={"dir": "out/neural", "formats": ["sfz"]}),
            small_spec(folder, "reservoir", engine=CONCEPTOR, keys={"low": "C4", "high": "A4", "every": 3},
                       output={"dir": "out/reservoir", "formats": ["sfz", "decent_sampler"]})]


def file_hashes(folder: Path) -> dict[str, str]:
    """Every file's hash, but the report's record of this run's times and memory (`RUN_SPECIFIC`)."""
    from dawexport.report import RUN_SPECIFIC
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.relative_to(folder).as_posix() not in RUN_SPECIFIC}


@pytest.fixture(scope="module")
def cluster():
    with two_node_cluster() as address:
        yield address


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """Every spec built here, one after another, without Ray: the reference bytes."""
    folder = tmp_path_factory.mktemp("local")
    specs = write_specs(folder)
    assert [o.status for o in build_many(specs, quiet=True)] == ["built"] * len(specs)
    return {spec.stem: file_hashes(folder / "out" / spec.stem) for spec in specs}


def test_shards_keep_each_group_whole_and_cover_every_request():
    for groups, parts in [([i // 2 for i in range(12)], 5), (list(range(7)), 3), ([0, 0, 1, 1], 8), ([], 4),
                          ([i % 3 for i in range(9)], 2), ([i // 4 for i in range(56)], 4)]:
        split = shards(groups, parts=parts)
        assert sorted(i for part in split for i in part) == list(range(len(groups)))
        assert len(split) <= max(1, parts)
        owner = {groups[i]: n for n, part in enumerate(split) for i in part}
        assert all(owner[groups[i]] == n for n, part in enumerate(split) for i in part)   # no group split
    sizes = [len(part) for part in shards([i // 4 for i in range(56)], parts=4)]
    assert max(sizes) - min(sizes) <= 4             # about equal: whole groups of 4 apart


def test_a_conceptor_note_renders_its_velocity_layers_in_one_task(tmp_path):
    from dawexport.cluster.stages import render_groups
    from dawexport.engines import make_engine
    from dawexport.render.plan import make_plan
    from dawexport.spec import load_spec
    spec = load_spec(small_spec(tmp_path, "layers", engine=CONCEPTOR, velocity_layers=3))
    engine = make_engine(spec)
    plan = make_plan(spec, ("M",))
    requests = plan.requests()
    for part in shards(render_groups(engine, plan.kind, requests, 1), parts=4):
        notes = {(r.weights, r.note) for r in (requests[i] for i in part)}
        layers = [r for r in requests if (r.weights, r.note) in notes]
        assert len(layers) == len(part) and {r.velocity for r in layers} == {r.velocity for r in requests}


def test_sampler_renders_the_same_bytes_in_any_batch(tmp_path):
    from dawexport.engines import make_engine
    from dawexport.pipeline import build_corpus
    from dawexport.render.plan import make_plan
    from dawexport.spec import load_spec
    spec = load_spec(write_specs(tmp_path)[0])
    engine = make_engine(spec)
    corpus = build_corpus(spec, engine.sample_rate)
    engine.fit(corpus, tmp_path, None)
    assert engine.capabilities.batch_invariant
    requests = make_plan(spec, corpus.channels).requests()
    whole = engine.render(requests)
    pieces = [take for part in shards([i // 2 for i in range(len(requests))], parts=3)
              for take in engine.render([requests[i] for i in part])]
    assert len(whole) == len(pieces) == len(requests)
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(whole, pieces))


def test_two_nodes_build_what_one_process_builds(cluster, local, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RAY_ADDRESS", cluster)
    specs = write_specs(tmp_path)[:2]
    code = main(["build", *map(str, specs), "--cluster", "ray", "--cache", str(tmp_path / "shared")])
    table = capsys.readouterr().out
    assert code == 0, table
    assert table.splitlines()[-1] == "2 built, 0 reused, 0 failed"
    for spec in specs:
        assert file_hashes(tmp_path / "out" / spec.stem) == local[spec.stem], spec.stem
    assert len(list((tmp_path / "shared" / "models").iterdir())) == 2     # the cache every node sees


def test_a_worker_killed_while_rendering_does_not_lose_the_build(cluster, local, tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", cluster)
    spec = write_specs(tmp_path)[2]
    outcome: list = []
    builder = threading.Thread(target=lambda: outcome.extend(
        build_many([spec], quiet=True, cluster="ray", cache=tmp_path / "shared")))
    builder.start()
    killed = _kill_when("ray::render_shard", lambda: True, builder)
    builder.join(timeout=180)
    assert killed is not None, "the render task finished before it could be killed"
    assert [o.status for o in outcome] == ["built"], outcome
    assert file_hashes(tmp_path / "out" / spec.stem) == local[spec.stem]


def test_a_ray_started_for_the_build_stops_with_it(local, tmp_path, monkeypatch):
    """No address: the build starts a Ray of its own here, and no process of it outlives the build."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    mark = f"{os.getpid()}-{time.monotonic_ns()}"
    monkeypatch.setenv("DAWEXPORT_TEST_RAY", mark)     # inherited by every process of that Ray
    spec = write_specs(tmp_path)[0]
    outcome = build_many([spec], quiet=True, cluster="ray", cache=tmp_path / "shared", num_cpus=1)
    assert [o.status for o in outcome] == ["built"], outcome
    assert file_hashes(tmp_path / "out" / spec.stem) == local[spec.stem]
    deadline = time.monotonic() + 10         # daemons are stopped and reaped; their workers follow them
    while processes_marked("DAWEXPORT_TEST_RAY", mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_marked("DAWEXPORT_TEST_RAY", mark) == []


def test_stages_run_here_while_a_ray_of_our_own_is_starting(local, tmp_path, monkeypatch):
    """A build does not wait for the Ray it started: until Ray is up its stages run here (one at a time, shard
    by shard), and write what a build without Ray writes. Here Ray never comes up, so everything runs here."""
    from dawexport.cluster import ClusterError
    from dawexport.cluster.stages import RayStages
    from dawexport.pipeline import build
    monkeypatch.setenv("DAWEXPORT_CACHE", str(tmp_path / "cache"))
    gate = threading.Event()

    def never_up() -> None:
        gate.wait(120)
        raise ClusterError("Ray does not start in this test", key="--cluster", fix="none needed")

    spec = write_specs(tmp_path)[2]            # a conceptor: trained, rendered in groups, post-processed
    stages = RayStages(None, never_up, here_while_starting=True)
    try:
        build(spec, quiet=True, stages=stages)
    finally:
        gate.set()
        stages.wait_started()
        stages.release()
    assert set(stages.ran_here) == {"fit", "render", "post-process"}, stages.ran_here
    assert stages.ran_here["render"] > 1          # shard by shard, as Ray would have them
    assert file_hashes(tmp_path / "out" / spec.stem) == local[spec.stem]
    with pytest.raises(ClusterError):          # once Ray has failed to start, a stage says why
        stages.ready()


class _Done:
    """A finished task's result, as a stand-in for a Ray object reference."""
    def __init__(self, value):
        self.value = value


class _StubRay:
    """Just enough of the `ray` module to run tasks at once in this process and count them."""
    def __init__(self, cpus: int):
        self.cpus, self.submitted = cpus, Counter()

    def cluster_resources(self):
        return {"CPU": float(self.cpus)}

    def remote(self, fn):
        stub = self

        class Task:
            def options(self, **_):
                return self

            def remote(self, *args):
                stub.submitted[fn.__name__] += 1
                return _Done(fn(*args))
        return Task()

    def put(self, value):
        return value

    def wait(self, pending, num_returns=1):
        return pending[:num_returns], pending[num_returns:]

    def get(self, refs):
        return [ref.value for ref in refs]


def test_a_cluster_given_by_address_is_split_by_its_own_cpus():
    """Work for a cluster given by address waits for it and is cut into shards by the cluster's CPUs (not
    this machine's), and none of it runs here."""
    from dawexport.cluster.stages import SHARDS_PER_CPU, RayStages
    ray_stub, gate, squares = _StubRay(cpus=8), threading.Event(), []
    stages = RayStages(ray_stub, lambda: gate.wait(60), cpus=1)      # still connecting
    mapping = threading.Thread(target=lambda: squares.extend(stages.map(lambda x: x * x, range(40))))
    mapping.start()
    time.sleep(0.2)
    gate.set()
    mapping.join(60)
    stages.release()
    assert squares == [x * x for x in range(40)]
    assert ray_stub.submitted["process_chunk"] == SHARDS_PER_CPU * 8
    assert stages.ran_here == {}


def _kill_when(title: str, ready, builder: threading.Thread, timeout: float = 120) -> int | None:
    """SIGKILL the first process titled `title` once `ready()` holds; its pid, or None if the build ended first."""
    deadline = time.monotonic() + timeout
    while builder.is_alive() and time.monotonic() < deadline:
        busy = processes_titled(title)
        if busy and ready():
            os.kill(busy[0], signal.SIGKILL)
            return busy[0]
        time.sleep(0.02)
    return None


def test_a_worker_killed_while_training_resumes_from_its_checkpoint(cluster, local, tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", cluster)
    spec = write_specs(tmp_path)[1]
    shared = tmp_path / "shared"
    outcome: list = []
    builder = threading.Thread(target=lambda: outcome.extend(
        build_many([spec], quiet=True, cluster="ray", cache=shared)))
    builder.start()
    killed = _kill_when("ray::fit_model", lambda: any(shared.glob("training/ddsp-*/checkpoint.safetensors")),
                        builder)
    builder.join(timeout=240)
    assert killed is not None, "the fit finished before a checkpoint could be seen"
    assert [o.status for o in outcome] == ["built"], outcome
    assert file_hashes(tmp_path / "out" / spec.stem) == local[spec.stem]
    [meta] = shared.glob("models/ddsp-*/ddsp.json")
    training = json.loads(meta.read_text())["training"]
    assert training["resumed_from"] >= 2 and training["step"] == 10, training    # the retry resumed
