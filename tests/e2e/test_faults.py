"""Builds under faults: nothing lost, nothing hangs, no traceback (issue 13).

Every build here is tiny (the sampler engine, one key, one layer, SFZ only), so each takes about a second.
Faults are injected with monkeypatching, or with real small tmpfs and read-only bind mounts where the
machine lets us mount (root on Linux); elsewhere those tests are skipped, saying why.
"""
from __future__ import annotations

import dataclasses
import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dawexport.pipeline import build
from dawexport.publish import MANIFEST
from dawexport.spec import load_spec

from support.faults import cli, leftovers, tiny


def test_output_goes_to_output_dir_beside_the_spec_and_build_in_the_working_folder_by_default(tmp_path,
                                                                                             monkeypatch):
    spec = tiny(tmp_path / "specs")
    monkeypatch.chdir(tmp_path)
    assert build(spec, quiet=True).folder == tmp_path / "specs" / "out" / "tiny"
    plain = tiny(tmp_path / "other", output={"formats": ["sfz"]})
    assert build(plain, quiet=True).folder == tmp_path / "build" / "tiny"


def test_two_specs_with_one_name_never_overwrite_each_other(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    first = tiny(tmp_path / "a", output={"formats": ["sfz"]})
    second = tiny(tmp_path / "b", output={"formats": ["sfz"]})
    assert cli("build", first, "-q") == 0
    before = {p: p.read_bytes() for p in (tmp_path / "build" / "tiny").rglob("*") if p.is_file()}
    assert cli("build", second, "-q", "--force") == 2
    err = capsys.readouterr().err
    assert "built from another spec (../../a/tiny.yaml)" in err and "fix:" in err
    assert {p: p.read_bytes() for p in (tmp_path / "build" / "tiny").rglob("*") if p.is_file()} == before
    assert cli("build", first, "-q", "--force") == 0


def test_a_project_folder_moved_as_a_whole_keeps_its_builds(tmp_path):
    spec = tiny(tmp_path / "project")
    assert cli("build", spec, "-q") == 0
    os.replace(tmp_path / "project", tmp_path / "moved")
    assert cli("build", tmp_path / "moved" / "tiny.yaml", "-q", "--force") == 0


def test_a_build_killed_between_the_two_renames_is_restored_by_the_next_build(tmp_path):
    spec = tiny(tmp_path)
    folder = build(spec, quiet=True).folder
    aside = folder.parent / ".tiny.old-999999999"        # what a kill between the renames left: no folder
    os.replace(folder, aside)
    assert cli("build", spec, "-q") == 0
    assert (folder / MANIFEST).exists() and leftovers(tmp_path) == []


def test_build_force_never_deletes_an_empty_folder_or_a_link_the_user_put_inside(tmp_path):
    spec = tiny(tmp_path)
    folder = build(spec, quiet=True).folder
    (folder / "my presets").mkdir()
    (folder / "link").symlink_to(tmp_path / "nowhere")
    assert cli("build", spec, "-q", "--force") == 2
    assert (folder / "my presets").is_dir() and (folder / "link").is_symlink()


def test_an_output_dir_that_is_a_link_keeps_the_link_and_leaves_nothing_behind(tmp_path):
    real = tmp_path / "disk"
    real.mkdir()
    spec = tiny(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "tiny").symlink_to(real, target_is_directory=True)
    assert cli("build", spec, "-q") == 0
    assert cli("build", spec, "-q", "--force") == 0
    assert (tmp_path / "out" / "tiny").is_symlink() and (real / "tiny.sfz").exists()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".dawexport-cache", "tiny"]


def test_an_output_dir_inside_the_cache_is_refused_before_any_work(tmp_path, capsys):
    spec = tiny(tmp_path, output={"dir": "out/.dawexport-cache/tiny", "formats": ["sfz"]})
    assert cli("build", spec, "-q") == 2
    assert "output.dir" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def render_cache(tmp_path: Path) -> Path:
    [cache] = (tmp_path / "out" / ".dawexport-cache" / "renders").glob("*.npz")
    return cache


def _truncate(p: Path):
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _bit_flip(p: Path):
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x40
    p.write_bytes(bytes(data))


def _nan(p: Path):
    with np.load(p) as data:
        takes = {k: np.full_like(v, np.nan) for k, v in data.items()}
    np.savez(p, **takes)


def _pickled(p: Path):
    np.savez(p, t0=np.array([object()], dtype=object))


@pytest.mark.parametrize("damage", [_truncate, _bit_flip, lambda p: p.write_bytes(b""), _nan, _pickled],
                         ids=["truncated", "bit-flipped", "empty", "NaN", "pickled"])
def test_a_corrupt_render_cache_is_discarded_and_rendered_again(tmp_path, capsys, damage):
    spec = tiny(tmp_path)
    build(spec, quiet=True)
    cache = render_cache(tmp_path)
    good = cache.read_bytes()
    damage(cache)
    assert cli("build", spec, "--force") == 0
    err = capsys.readouterr().err
    assert "render cache" in err and "discarding it" in err
    with np.load(cache) as fresh, np.load(__import__("io").BytesIO(good)) as before:
        np.testing.assert_array_equal(fresh["t0"], before["t0"])


def rewrite_model(model: Path, stem: str, arrays=None, meta=None) -> None:
    """Edit a cached numpy model in place, as a user or a disk might: its arrays and/or its embedded meta."""
    from safetensors import safe_open
    from safetensors.numpy import save_file
    path = model / f"{stem}.safetensors"
    with safe_open(str(path), framework="numpy") as f:
        metadata, tensors = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    tensors = {k: arrays(v) for k, v in tensors.items()} if arrays else tensors
    metadata["dawexport"] = meta(metadata["dawexport"]) if meta else metadata["dawexport"]
    save_file(tensors, str(path), metadata=metadata)


def built_sampler_model(tmp_path: Path) -> Path:
    build(tiny(tmp_path), quiet=True)
    for cache in (tmp_path / "out" / ".dawexport-cache" / "renders").glob("*"):
        cache.unlink()
    [model] = (tmp_path / "out" / ".dawexport-cache" / "models").glob("sampler-*")
    return model


def loudest_sample(tmp_path: Path) -> float:
    return max(float(np.abs(sf.read(p)[0]).max()) for p in (tmp_path / "out" / "tiny" / "samples").glob("*.wav"))


@pytest.mark.parametrize("tamper", ["zeroed arrays", "edited meta", "meta of the wrong type"])
def test_a_tampered_numpy_model_is_detected_discarded_and_made_again(tmp_path, capsys, tamper):
    """A zeroed sampler model used to build a silent instrument (exit 0); an edited one, a KeyError or
    'corpus is at abc Hz'. The checksum covers the arrays and the meta: warned about, discarded, remade."""
    import re
    model = built_sampler_model(tmp_path)
    if tamper == "zeroed arrays":
        rewrite_model(model, "sampler", arrays=np.zeros_like)
    elif tamper == "edited meta":
        rewrite_model(model, "sampler", meta=lambda m: m.replace('"clips"', '"klips"'))
    else:
        rewrite_model(model, "sampler", meta=lambda m: re.sub(r'"sample_rate": \d+', '"sample_rate": "abc"', m))
    assert cli("build", tiny(tmp_path), "--force") == 0
    err = capsys.readouterr().err
    assert "fails its checksum" in err and "discarding it" in err and "corpus is at" not in err
    assert loudest_sample(tmp_path) > 0.05


def test_the_informative_json_beside_a_model_is_not_trusted(tmp_path, capsys):
    model = built_sampler_model(tmp_path)
    meta = model / "sampler.json"
    meta.write_text(meta.read_text().replace('"clips"', '"klips"').replace('"sample_rate"', '"rate"'))
    assert cli("build", tiny(tmp_path), "--force") == 0
    assert "cached sampler model" in capsys.readouterr().err and loudest_sample(tmp_path) > 0.05


def test_a_model_that_renders_nan_is_discarded_and_trained_again(tmp_path, capsys, monkeypatch):
    from dawexport.engines.sampler import SamplerEngine
    spec = tiny(tmp_path)
    build(spec, quiet=True)
    for cache in (tmp_path / "out" / ".dawexport-cache" / "renders").glob("*"):
        cache.unlink()
    real_load = SamplerEngine.load
    poisoned = []

    def poisoned_load(self, directory):                     # a cached model whose weights turned into NaN
        real_load(self, directory)
        if poisoned:                                        # the model trained again is saved sound
            return
        poisoned.append(directory)
        self.corpus = type(self.corpus)(self.corpus.sample_rate, self.corpus.channels, tuple(
            dataclasses.replace(c, audio=np.full_like(c.audio, np.nan)) for c in self.corpus.clips))

    monkeypatch.setattr(SamplerEngine, "load", poisoned_load)
    assert cli("build", spec, "--force") == 0
    err = capsys.readouterr().err
    assert "rendered NaN" in err and "discarding it" in err


def test_a_corrupt_training_checkpoint_is_discarded_and_training_restarts(tmp_path, capsys, monkeypatch):
    from dawexport.engines.sampler import SamplerEngine
    from dawexport.errors import EngineError
    spec = tiny(tmp_path)
    real_fit, calls = SamplerEngine.fit, []

    def fit(self, corpus, workdir, progress):
        calls.append(sorted(p.name for p in Path(workdir).iterdir()))
        if len(calls) == 1:                               # what the trainer says about a damaged checkpoint
            (Path(workdir) / "checkpoint.safetensors").write_bytes(b"\0" * 64)
            raise EngineError("checkpoint is unreadable", file=str(Path(workdir) / "checkpoint.safetensors"),
                              fix="delete the training folder and train again")
        return real_fit(self, corpus, workdir, progress)

    monkeypatch.setattr(SamplerEngine, "fit", fit)
    assert cli("build", spec) == 0
    assert calls == [[], []] and "training checkpoint" in capsys.readouterr().err


@pytest.fixture
def mounts(tmp_path):
    """Mount helpers (tmpfs of a size, read-only bind); skipped where this process may not mount."""
    made = []

    def mount(*args, target: Path):
        target.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount here ({proc.stderr.strip() or 'not root'}); needs root on Linux")
        made.append(target)
        return target

    yield mount
    for target in reversed(made):
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


@pytest.mark.skipif(sys.platform != "linux", reason="tmpfs and bind mounts are Linux")
@pytest.mark.parametrize("size", ["24k", "96k"])
def test_a_full_disk_is_one_clear_error_and_leaves_nothing_half_written(tmp_path, mounts, capsys, size):
    """24 KiB: the render cache does not fit; 96 KiB: it fits, the samples do not."""
    spec = tiny(tmp_path, keys={"low": "C4", "high": "E4", "every": 2},
                output={"dir": "disk/out/tiny", "formats": ["sfz"]})
    disk = mounts("-t", "tmpfs", "-o", f"size={size}", "tmpfs", target=tmp_path / "disk")
    assert cli("build", spec, "-q") == 1
    err = capsys.readouterr().err
    assert "the disk is full" in err and "fix: free some space" in err
    assert leftovers(disk) == [] and not (disk / "out" / "tiny").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="bind mounts are Linux")
def test_a_read_only_folder_is_one_clear_error(tmp_path, mounts, capsys):
    spec = tiny(tmp_path, output={"dir": "ro/tiny", "formats": ["sfz"]})
    (tmp_path / "ro").mkdir()
    ro = mounts("--bind", str(tmp_path / "ro"), target=tmp_path / "ro")
    subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
    assert cli("build", spec, "-q") == 1
    err = capsys.readouterr().err
    assert "read-only" in err and str(ro) in err and "output.dir" in err


@pytest.mark.skipif(sys.platform != "linux", reason="tmpfs is Linux")
def test_an_empty_mount_point_as_output_is_refused_before_any_work(tmp_path, mounts, capsys):
    spec = tiny(tmp_path)
    mounts("-t", "tmpfs", "-o", "size=64k", "tmpfs", target=tmp_path / "out" / "tiny")
    assert cli("build", spec, "-q") == 2
    assert "mount point" in capsys.readouterr().err
    assert not (tmp_path / "out" / ".dawexport-cache").exists()


def test_a_full_disk_injected_while_saving_renders_leaves_no_partial_file(tmp_path, capsys, monkeypatch):
    spec = tiny(tmp_path)

    def savez(path, **arrays):
        Path(path).write_bytes(b"PK half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(np, "savez", savez)
    assert cli("build", spec, "-q") == 1
    assert "the disk is full" in capsys.readouterr().err
    assert leftovers(tmp_path) == []


def test_a_path_longer_than_the_system_allows_is_one_clear_error(tmp_path, capsys):
    deep = "/".join(["d" * 200] * 25)                      # 5000 characters
    spec = tiny(tmp_path, output={"dir": f"{deep}/tiny", "formats": ["sfz"]})
    assert cli("build", spec, "-q") == 1
    err = capsys.readouterr().err
    assert "path is too long" in err and "fix:" in err and len(err) < 1500


def test_a_file_where_the_cache_folder_belongs_is_one_clear_error(tmp_path, capsys):
    spec = tiny(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".dawexport-cache").write_text("not a folder")
    assert cli("build", spec, "-q") == 1
    err = capsys.readouterr().err
    assert ".dawexport-cache" in err and "a file stands where dawexport needs a folder" in err


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_mid_build_cleans_up_and_exits_128_plus_its_number(tmp_path, capsys, monkeypatch, signum,
                                                                   code):
    import dawexport.pipeline as pipeline
    spec = tiny(tmp_path)
    real = pipeline.make_samples

    def interrupted(plan, takes, rate, settings, folder, progress, map_fn=map):
        samples = real(plan, takes, rate, settings, folder, progress)
        os.kill(os.getpid(), signum)                      # a real signal, while the staging folder is full
        return samples

    monkeypatch.setattr(pipeline, "make_samples", interrupted)
    before = signal.getsignal(signal.SIGTERM)
    assert cli("build", spec, "-q") == code
    assert "interrupted" in capsys.readouterr().err
    assert leftovers(tmp_path) == [] and not (tmp_path / "out" / "tiny").exists()
    assert signal.getsignal(signal.SIGTERM) == before


def test_exit_codes(tmp_path, capsys, monkeypatch):
    spec = tiny(tmp_path)
    assert cli("validate", spec) == 0
    assert cli("build", tmp_path / "missing.yaml") == 2
    monkeypatch.setattr("dawexport.pipeline.build_corpus", lambda *a: 1 / 0)
    assert cli("build", spec) == 1
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError" in err and "DAWEXPORT_DEBUG=1" in err


def test_sigterm_from_outside_mid_build_exits_143_and_leaves_nothing(tmp_path):
    """A real `dawexport build` process, sent SIGTERM once its staging folder exists (as systemd or a
    container stop would)."""
    import time
    spec = tiny(tmp_path, keys={"low": "C3", "high": "C6", "every": 2}, velocity_layers=2)
    proc = subprocess.Popen([sys.executable, "-m", "dawexport", "build", str(spec), "-q"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "out").glob(".tiny.staging-*")):
        assert proc.poll() is None and time.monotonic() < deadline, "the build ended before it was staged"
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "interrupted (SIGTERM)" in err
    assert leftovers(tmp_path) == [] and not (tmp_path / "out" / "tiny").exists()


DDSP_TINY = dict(latent_size=4, hidden_size=32, n_harmonics=20, noise_bands=17, n_mels=24, table_size=256,
                 max_steps=3, max_minutes=None, batch_size=4, crop_s=0.2, checkpoint_every=1, validate_every=2,
                 augment=False, threads=1)


def test_a_damaged_checkpoint_and_a_tampered_torch_model_are_discarded_and_trained_again(tmp_path, capsys):
    """Real ddsp training (3 steps): garbage in place of the resume checkpoint, then a pickle in place of
    the cached model, are both warned about, discarded and made again; nothing is unpickled."""
    import torch
    from dawexport.engines import make_engine
    from dawexport.pipeline import build_corpus
    spec = tiny(tmp_path, engine={"name": "ddsp", "sample_rate": 16000, "device": "cpu", "settings": DDSP_TINY})
    engine = make_engine(load_spec(spec))
    name = f"ddsp-{engine.cache_key(build_corpus(load_spec(spec), engine.sample_rate))}"
    cache = tmp_path / "out" / ".dawexport-cache"
    workdir = cache / "training" / name                       # as if killed mid-training, with a bad checkpoint
    workdir.mkdir(parents=True)
    (workdir / "checkpoint.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":1}!" + b"\0" * 99)
    assert cli("build", spec) == 0
    err = capsys.readouterr().err
    assert "training checkpoint" in err and "discarding it" in err
    model = cache / "models" / name
    assert (model / "complete").exists() and not workdir.exists()

    marker = tmp_path / "ran"
    torch.save({"payload": f"open({str(marker)!r}, 'w')"}, model / "ddsp.safetensors")
    assert cli("build", spec, "--force") == 0
    err = capsys.readouterr().err
    assert "cached ddsp model" in err and "discarding it" in err and not marker.exists()
    assert (model / "complete").exists()


def test_a_long_source_is_announced_before_its_analysis(tmp_path, capsys, monkeypatch):
    import dawexport.pipeline as pipeline
    spec = tiny(tmp_path)
    monkeypatch.setattr(pipeline, "LONG_SOURCE_S", 0.2)           # the 0.5 s tone stands in for a long one
    assert cli("build", spec) == 0
    err = capsys.readouterr().err
    assert "tone.wav is 0.0 minutes long: analysing it takes" in err
    assert err.index("minutes long") < err.index("model:")
