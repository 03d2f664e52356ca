"""The pipeline's heavy stages as Ray tasks: one task per model fit, renders in shards, post-processing in
chunks. The driver keeps the rest (sources, plan, wavetables, export, atomic publish), the caches, and the
fits with nothing to train (a sampler's, a cached model's): a task would only move the same files.

A build never waits for a Ray of its own to start: until it is up, one stage at a time runs here, shard by
shard as a build without Ray would run it, and the shards left go to Ray once it is up (a tiny build may be
done before Ray is; a big one keeps this process busy meanwhile). A cluster given by address is only ever
used through Ray: it is up as soon as it connects.

    >>> shards(["a", "a", "b", "b", "c", "c", "d", "d", "e", "e"], parts=3)
    [[0, 1, 2, 3], [4, 5], [6, 7, 8, 9]]
    >>> shards([0, 1, 2], parts=8)
    [[0], [1], [2]]
    >>> shards(["x", "y", "x", "y"], parts=2)      # a group stays whole wherever its requests lie
    [[0, 2], [1, 3]]

Results do not depend on the cluster: every request carries its own seed, an engine's renders are split into
shards only when it renders each request to the same bytes whatever its batch (`batch_invariant`; otherwise
a plan renders in one task), and the post-processing is the same pure function wherever it runs.
"""
from __future__ import annotations

import threading
import weakref
from collections import Counter
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Callable, Hashable, Iterator, Sequence

from ..pipeline import Stages, fit_or_load, model_folder, render_here
from ..progress import SILENT
from . import tasks

RETRIES = 3               # a task whose worker dies (or its node) runs again elsewhere, this many times
GPU_PER_RENDER = 0.25     # render tasks of a GPU engine share a GPU four ways
SHARDS_PER_CPU = 2        # enough tasks to keep every worker busy, few enough to keep the overhead low


def shards(groups: Sequence[Hashable], *, parts: int) -> list[list[int]]:
    """Split requests (their `groups`) into at most `parts` lists of indices of about equal size, keeping the
    requests of a group together (groups in order of first appearance, each list a run of whole groups)."""
    members: dict = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    runs = list(members.values())
    parts = max(1, min(parts, len(runs)))
    total, done = len(groups), 0
    out: list[list[int]] = [[] for _ in range(parts)]
    for run in runs:      # a group goes to the part its middle request falls in
        out[min(parts - 1, int((done + len(run) / 2) * parts / total))].extend(run)
        done += len(run)
    return [sorted(part) for part in out if part]


def render_groups(engine, kind: str, requests: Sequence, take_size: int) -> list:
    """Each request's group for `shards`: the engine's `render_group` (blend grids), else its take (the
    channels of a cell stay together)."""
    take = [("take", index // take_size) for index in range(len(requests))]
    if kind == "kit":
        return take
    return [group if group is not None else t for group, t in zip(map(engine.render_group, requests), take)]


class RayStages(Stages):
    """`pipeline.Stages` whose fit, render and post-processing run on Ray; safe to share between threads."""

    def __init__(self, ray, connect: Callable[[], None] | None = None, *, here_while_starting: bool = False,
                 cpus: int = 1):
        """`connect` (ray.init) runs in a thread of its own, so Ray starts while the driver reads the sources
        and plans; each stage waits for it (None: Ray is already connected). `here_while_starting`: while Ray
        is still starting, one stage at a time runs in this process instead, shard by shard, handing the
        shards left to Ray once it is up (for a Ray started here, of `cpus` CPUs)."""
        object.__setattr__(self, "_state", {"ray": ray, "fits": {}, "lock": threading.Lock(),
                                            "models": weakref.WeakKeyDictionary(), "error": None,
                                            "started": threading.Event(), "released": threading.Event(),
                                            "here": threading.Lock() if here_while_starting else None,
                                            "ran_here": Counter(), "cpus": max(1, cpus)})
        super().__init__(fit=self._fit_remote, render=self._render_remote, map=self._map_remote)
        starting = threading.Thread(target=self._start, args=(connect,), name="ray-start", daemon=True)
        self._state["starting"] = starting
        starting.start()

    def _start(self, connect) -> None:
        state, ray = self._state, self._state["ray"]
        try:
            if connect is not None:
                connect()
            resources = ray.cluster_resources()
            state.update(cpus=max(1, int(resources.get("CPU", 1))), gpus=float(resources.get("GPU", 0)),
                         fit=ray.remote(tasks.fit_model), render=ray.remote(tasks.render_shard),
                         chunk=ray.remote(tasks.process_chunk))
            warm = ray.remote(tasks.warm_up).options(num_cpus=1, name="warm_up")
            state["warm"] = [warm.remote() for _ in range(state["cpus"])]     # not waited for
        except BaseException as error:     # noqa: BLE001 — every stage raises it
            state["error"] = error
        finally:
            state["started"].set()
        # Ray's daemons die with the thread that started them (PR_SET_PDEATHSIG): it lives until release().
        state["released"].wait()

    def wait_started(self) -> None:
        """Wait until Ray is up (or has failed to start)."""
        self._state["started"].wait()

    def release(self) -> None:
        """End the start-up thread; call it after ray.shutdown()."""
        self._state["released"].set()
        self._state["starting"].join()

    def ready(self) -> None:
        """Wait for Ray; raises what kept it from starting (a ClusterError naming the address)."""
        self.wait_started()
        if self._state["error"] is not None:
            raise self._state["error"]

    @property
    def ran_here(self) -> dict[str, int]:
        """How many fits, render shards and post-processing chunks ran here while Ray was starting."""
        with self._state["lock"]:
            return dict(self._state["ran_here"])

    @contextmanager
    def _here_while_starting(self) -> Iterator[bool]:
        """True when this stage may run here: Ray is still starting and no other stage runs here."""
        here = self._state["here"]
        if here is None or self._state["started"].is_set() or not here.acquire(blocking=False):
            yield False
            return
        try:
            yield True
        finally:
            here.release()

    def _here_until_started(self, stage: str, make_parts: Callable[[], list], run: Callable, out: list,
                            bar) -> list:
        """Split the work (`make_parts`, by the CPUs Ray has, or will have) and run parts here, one after
        another, while Ray is still starting and no other stage runs here, putting each part's results in
        `out` at its indices; return the parts left for Ray, once Ray is up."""
        with self._here_while_starting() as here:
            if not here:
                self.ready()
                return make_parts()
            left = make_parts()
            while left and not self._state["started"].is_set():
                part = left.pop(0)
                for index, result in zip(part, run(part)):
                    out[index] = result
                bar.update(len(part))
                with self._state["lock"]:
                    self._state["ran_here"][stage] += 1
        if left:
            self.ready()
        return left

    def warmed_up(self) -> None:
        """Wait until Ray is up and every worker has imported the pipeline (what the benchmark times)."""
        self.ready()
        self.ray.get(self._state["warm"])

    # ------------------------------------------------------------ helpers
    @property
    def ray(self):
        return self._state["ray"]

    def _wants_gpu(self, engine) -> bool:
        """A GPU engine asks for one when the cluster has any, unless its spec pins it to the CPU (or MPS)."""
        return (engine.capabilities.gpu and self._state["gpus"] > 0
                and not str(engine.device).startswith(("cpu", "mps")))

    def _gather(self, refs: list, bar) -> list:
        """Wait for every task (advancing `bar` by each one's weight) and return their results in order."""
        ray = self.ray
        weight = {ref: w for ref, w in refs}
        pending = list(weight)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            bar.update(weight[done[0]])
        return ray.get([ref for ref, _ in refs])

    # ------------------------------------------------------------ stages
    def _fit_remote(self, engine, corpus, spec, progress=SILENT) -> bool:
        key = engine.cache_key(corpus)
        self._state["models"][engine] = (spec, key)      # what its render tasks load
        if (model_folder(spec, engine, key) / "complete").exists() or not engine.capabilities.trainable:
            return fit_or_load(engine, corpus, spec, progress)     # cached, or nothing to train: here
        with self._here_while_starting() as here:
            with self._state["lock"]:
                claimed = here and key not in self._state["fits"]
                if claimed:       # no other spec of the batch trains this model: train it here
                    fitting = self._state["fits"][key] = Future()
            if claimed:
                progress.info(f"training {engine.name} here while Ray starts")
                try:
                    trained = fit_or_load(engine, corpus, spec, progress)
                except BaseException as error:
                    fitting.set_exception(error)
                    raise
                fitting.set_result(trained)
                with self._state["lock"]:
                    self._state["ran_here"]["fit"] += 1
                return trained
        with self._state["lock"]:
            ref = self._state["fits"].get(key)
        if not isinstance(ref, Future):      # (a Future: it trains here)
            self.ready()
            gpu = self._wants_gpu(engine)
            with self._state["lock"]:     # two specs of one batch that share a model train it once
                ref = self._state["fits"].get(key)
                if ref is None:
                    ref = self._state["fit"].options(num_cpus=1, num_gpus=1 if gpu else 0, max_retries=RETRIES,
                                                     retry_exceptions=False, name="fit_model").remote(spec, corpus)
                    self._state["fits"][key] = ref
            progress.stage("train" if engine.capabilities.trainable else "model",
                           f"{engine.name} in a Ray task ({'1 GPU' if gpu else '1 CPU'}); cache "
                           f"{model_folder(spec, engine, key).parent.parent}")
        trained = ref.result() if isinstance(ref, Future) else self.ray.get(ref)
        fit_or_load(engine, corpus, spec)       # trained elsewhere and saved in the cache: load it here
        return trained

    def _render_remote(self, engine, plan, requests, progress=SILENT) -> list:
        def make_parts() -> list[list[int]]:
            if not engine.capabilities.batch_invariant:
                return [list(range(len(requests)))]
            return shards(render_groups(engine, plan.kind, requests, len(plan.channels)),
                          parts=SHARDS_PER_CPU * self._state["cpus"])

        takes: list = [None] * len(requests)
        with progress.bar(total=len(requests), desc="render", unit="take") as bar:
            left = self._here_until_started(
                "render", make_parts, lambda part: render_here(engine, plan, [requests[i] for i in part]), takes,
                bar)
            if left:
                gpu = self._wants_gpu(engine)
                spec, key = self._state["models"][engine]
                spec_ref = self.ray.put(spec)
                task = self._state["render"].options(num_cpus=0 if gpu else 1,
                                                     num_gpus=GPU_PER_RENDER if gpu else 0, max_retries=RETRIES,
                                                     retry_exceptions=False, name="render_shard")
                refs = [(task.remote(spec_ref, key, plan.kind, [requests[i] for i in part]), len(part))
                        for part in left]
                for part, shard in zip(left, self._gather(refs, bar)):
                    for index, take in zip(part, shard):
                        takes[index] = take
        return takes

    def _map_remote(self, fn, *iterables) -> list:
        columns = [list(column) for column in iterables]
        rows = len(columns[0]) if columns else 0
        out: list = [None] * rows

        def chunk(part: list[int]) -> list:
            return [column[part[0]:part[-1] + 1] for column in columns]

        with SILENT.bar(total=rows) as bar:
            left = self._here_until_started(
                "post-process", lambda: shards(range(rows), parts=SHARDS_PER_CPU * self._state["cpus"]),
                lambda part: list(map(fn, *chunk(part))), out, bar)
            if left:
                task = self._state["chunk"].options(num_cpus=1, max_retries=RETRIES, retry_exceptions=False,
                                                    name="post_process")
                refs = [(task.remote(fn, *chunk(part)), len(part)) for part in left]
                for part, results in zip(left, self._gather(refs, bar)):
                    for index, result in zip(part, results):
                        out[index] = result
        return out
