"""The common trainer and the torch plumbing: budgets, checkpoints, exact resume, safe weight files."""
from __future__ import annotations

import io
import math
import time

import numpy as np
import pytest

import torch

from dawexport.engines.common.persistence import load_state, load_tensors, save_state, save_tensors
from dawexport.engines.common.torch_utils import pick_device, pick_precision
from dawexport.engines.common.training import (BEST, CHECKPOINT, TRAINING_LOG, TrainConfig, Trainer, lr_at,
                                               read_training_log)
from dawexport.errors import EngineError
from dawexport.progress import Progress, SILENT

TRUE_W = np.array([[1.5], [-2.0], [0.5], [3.0]], dtype=np.float32)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(4, 8)
        self.b = torch.nn.Linear(8, 1)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)))


def batch_fn(step, rng):
    x = rng.standard_normal((16, 4)).astype(np.float32)
    return {"x": x, "y": x @ TRUE_W}


def loss_fn(model, batch):
    return torch.mean((model(batch["x"]) - batch["y"]) ** 2)


def val_batch():
    rng = np.random.default_rng(123)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    return {"x": x, "y": x @ TRUE_W}


def make_trainer(workdir, batch=batch_fn, progress=SILENT, seed=0, **cfg):
    torch.manual_seed(seed)
    config = TrainConfig(**{"max_steps": 60, "max_minutes": None, "lr": 1e-2, "checkpoint_every": 20,
                            "validate_every": 20, "seed": seed, "device": "cpu", "threads": 1, **cfg})
    return Trainer(Net(), config, batch_fn=batch, loss_fn=loss_fn, val_batches=[val_batch()], workdir=workdir,
                   progress=progress)


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_lr_schedules():
    cos = TrainConfig(max_steps=100, lr=1.0, lr_final=0.1, lr_schedule="cosine")
    assert lr_at(0, cos) == pytest.approx(1.0)
    assert lr_at(50, cos) == pytest.approx(0.55)
    assert lr_at(100, cos) == pytest.approx(0.1)
    exp = TrainConfig(max_steps=100, lr=1.0, lr_final=0.01, lr_schedule="exponential")
    assert lr_at(50, exp) == pytest.approx(0.1)
    warm = TrainConfig(max_steps=100, lr=1.0, warmup_steps=10, lr_schedule="constant")
    assert lr_at(0, warm) == pytest.approx(0.1) and lr_at(10, warm) == 1.0
    with pytest.raises(ValueError):
        TrainConfig(max_stepz=3)


def test_trainer_learns_checkpoints_and_keeps_the_best(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=200, lr=2e-2)
    before = trainer.validate()
    result = trainer.run()
    assert result.step == 200 and result.stopped_by == "steps" and result.resumed_from == 0
    assert result.best_val < before / 20
    assert (tmp_path / CHECKPOINT).is_file() and (tmp_path / BEST).is_file()
    assert [h["step"] for h in result.history] == list(range(0, 201, 20))
    assert result.history[0]["val"] == pytest.approx(before)
    assert result.best_val == pytest.approx(min(h["val"] for h in result.history))
    # the model handed back holds the best weights
    assert trainer.validate() == pytest.approx(result.best_val, rel=1e-6)
    # checkpoints are safetensors with JSON state, never pickles
    tensors, meta = load_tensors(tmp_path / CHECKPOINT)
    assert meta["step"] == 200 and meta["finished"] is True
    assert meta["numpy_rng"]["bit_generator"] == "PCG64"
    assert any(k.startswith("optim/") for k in tensors) and "rng/torch" in tensors
    assert (tmp_path / CHECKPOINT).read_bytes()[:2] != b"PK"


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    """Killed between checkpoints (here: an exception at step 47), restarted: bit-identical to one long run."""
    full = make_trainer(tmp_path / "full")
    full.run()

    def dies_at_47(step, rng):
        if step == 47:
            raise KeyboardInterrupt
        return batch_fn(step, rng)

    broken = make_trainer(tmp_path / "broken", batch=dies_at_47)
    with pytest.raises(KeyboardInterrupt):
        broken.run()
    _, meta = load_tensors(tmp_path / "broken" / CHECKPOINT)
    assert meta["step"] == 40 and not meta["finished"]

    resumed = make_trainer(tmp_path / "broken", seed=0)
    torch.nn.init.zeros_(resumed.model.a.weight)   # whatever the fresh model holds is replaced by the checkpoint
    result = resumed.run()
    assert result.resumed_from == 40 and result.step == 60
    a, b = weights(full.model), weights(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_training_log_has_every_step_and_validation_and_survives_a_resume(tmp_path):
    """One JSON line per step and per validation; steps 41-46 of the killed run are dropped and taken again."""
    full = make_trainer(tmp_path / "full")
    full.run()
    log = read_training_log(tmp_path / "full" / TRAINING_LOG)
    steps = [e["step"] for e in log if "loss" in e]
    vals = [e for e in log if "val" in e]
    assert steps == list(range(1, 61))
    assert [e["step"] for e in vals] == [0, 20, 40, 60] and all(e["val"] > 0 for e in vals)
    assert all(e["loss"] > 0 and e["lr"] > 0 for e in log if "loss" in e)

    def dies_at_47(step, rng):
        if step == 47:
            raise KeyboardInterrupt
        return batch_fn(step, rng)

    with pytest.raises(KeyboardInterrupt):
        make_trainer(tmp_path / "broken", batch=dies_at_47).run()
    assert max(e["step"] for e in read_training_log(tmp_path / "broken" / TRAINING_LOG)) <= 47
    with (tmp_path / "broken" / TRAINING_LOG).open("a") as torn:   # a kill mid-write leaves half a line
        torn.write('{"step": 4')
    make_trainer(tmp_path / "broken").run()
    resumed = read_training_log(tmp_path / "broken" / TRAINING_LOG)
    assert [e["step"] for e in resumed] == [e["step"] for e in log]
    assert [e["loss"] for e in resumed if "loss" in e] == pytest.approx([e["loss"] for e in log if "loss" in e])


def test_a_finished_run_is_not_trained_again(tmp_path):
    make_trainer(tmp_path).run()
    calls = []

    def counting(step, rng):
        calls.append(step)
        return batch_fn(step, rng)

    again = make_trainer(tmp_path, batch=counting).run()
    assert again.stopped_by == "finished" and calls == [] and again.step == 60
    assert again.record()["stopped_by"] == "steps" and again.record()["steps"] == 60


def test_wall_clock_budget_stops_training(tmp_path):
    def slow(step, rng):
        time.sleep(0.02)
        return batch_fn(step, rng)

    result = make_trainer(tmp_path, batch=slow, max_steps=10_000, max_minutes=0.5 / 60).run()
    assert result.stopped_by == "time"
    assert 5 <= result.step < 200
    assert math.isfinite(result.best_val)        # it validated before stopping
    _, meta = load_tensors(tmp_path / CHECKPOINT)
    assert meta["finished"] and meta["step"] == result.step
    again = make_trainer(tmp_path, batch=slow, max_steps=10_000, max_minutes=0.5 / 60).run()
    assert again.record() == {**result.record()} and again.record()["stopped_by"] == "time"


def test_training_stops_at_its_steps_by_default():
    assert TrainConfig().max_minutes is None
    from dawexport.engines import engine_class
    for name in ("ddsp", "wavenet"):
        settings = engine_class(name).Settings()
        assert settings.max_minutes is None and settings.max_steps >= 300 and settings.threads >= 1


def test_patience_stops_on_a_plateau(tmp_path):
    result = make_trainer(tmp_path, lr=1e-9, max_steps=1000, validate_every=5, patience=3,
                          min_improvement=0.01).run()
    assert result.stopped_by == "plateau" and result.step == 20


def test_nonfinite_loss_is_reported_as_divergence(tmp_path):
    def nan_batch(step, rng):
        b = batch_fn(step, rng)
        b["y"][:] = np.nan
        return b

    with pytest.raises(EngineError, match="diverged"):
        make_trainer(tmp_path, batch=nan_batch, max_steps=100).run()


def test_progress_shows_loss_and_is_silent_when_quiet(tmp_path):
    loud, quiet = io.StringIO(), io.StringIO()
    make_trainer(tmp_path / "a", progress=Progress(stream=loud), max_steps=40).run()
    make_trainer(tmp_path / "b", progress=Progress(quiet=True, stream=quiet), max_steps=40).run()
    assert "loss" in loud.getvalue() and "40 steps" in loud.getvalue()
    assert quiet.getvalue() == ""


@pytest.mark.parametrize("damage", ["pickle", "truncated", "edited", "foreign", "garbage"])
def test_damaged_or_pickled_checkpoints_are_refused(tmp_path, damage):
    make_trainer(tmp_path, max_steps=20).run()
    path = tmp_path / CHECKPOINT
    data = path.read_bytes()
    if damage == "pickle":
        torch.save({"model/a.weight": torch.zeros(8, 4)}, path)
    elif damage == "truncated":
        path.write_bytes(data[:-100])
    elif damage == "edited":                      # one byte of one weight changed: the checksum catches it
        path.write_bytes(data[:-5] + bytes([data[-5] ^ 0x40]) + data[-4:])
    elif damage == "foreign":                     # a valid safetensors file that dawexport did not write
        from safetensors.torch import save_file
        save_file({"x": torch.zeros(3)}, str(path))
    else:
        path.write_bytes(b"\x00" * 64)
    with pytest.raises(EngineError) as info:
        make_trainer(tmp_path, max_steps=40).run()
    assert str(path) in str(info.value)


def test_save_state_writes_tensors_and_a_json_sidecar(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3), "tied": torch.ones(2)}
    state["alias"] = state["tied"]                # shared storage must not trip safetensors
    save_state(tmp_path, "model", state, {"rate": 44100})
    tensors, meta = load_state(tmp_path, "model")
    assert meta == {"rate": 44100} and torch.equal(tensors["w"], state["w"])
    assert '"rate": 44100' in (tmp_path / "model.json").read_text()
    assert not list(tmp_path.glob("*.tmp"))       # atomic writes leave no temp files
    with pytest.raises(EngineError, match="missing"):
        load_tensors(tmp_path / "nothing.safetensors")


def test_bfloat16_tensors_round_trip(tmp_path):
    t = torch.randn(5).to(torch.bfloat16)
    save_tensors(tmp_path / "b.safetensors", {"t": t})
    loaded, _ = load_tensors(tmp_path / "b.safetensors")
    assert loaded["t"].dtype == torch.bfloat16 and torch.equal(loaded["t"], t)


def test_device_and_precision_choice():
    assert pick_device("cpu").type == "cpu"
    auto = pick_device("auto")
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() else "cpu")
    assert auto.type == expected
    cpu = pick_precision(torch.device("cpu"))
    assert cpu.dtype is None and cpu.make_scaler() is None and cpu.describe() == "float32"
    if not torch.cuda.is_available():
        with pytest.raises(EngineError, match="cuda"):
            pick_device("cuda")
    else:
        gpu = pick_precision(torch.device("cuda"))
        assert gpu.dtype in (torch.bfloat16, torch.float16)
        assert (gpu.make_scaler() is not None) == (gpu.dtype == torch.float16)


def test_numpy_models_carry_a_checksum_and_an_edited_one_is_refused(tmp_path):
    from safetensors.numpy import save_file

    from dawexport.engines.common.persistence import load_numpy_model, save_numpy_model
    arrays = {"clip0": np.linspace(-1, 1, 64, dtype=np.float32)}
    save_numpy_model(tmp_path / "m", "sampler", arrays, {"sample_rate": 8000})
    loaded, meta = load_numpy_model(tmp_path / "m", "sampler", "sampler")
    assert np.array_equal(loaded["clip0"], arrays["clip0"]) and meta == {"sample_rate": 8000}
    path = tmp_path / "m" / "sampler.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x40                                     # one bit of the last float's bytes
    path.write_bytes(bytes(data))
    with pytest.raises(EngineError, match="checksum"):
        load_numpy_model(tmp_path / "m", "sampler", "sampler")
    save_file(arrays, str(path))                          # a plain safetensors file: not one of ours
    with pytest.raises(EngineError, match="no checksum"):
        load_numpy_model(tmp_path / "m", "sampler", "sampler")
