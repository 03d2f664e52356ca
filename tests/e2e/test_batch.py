"""`dawexport build A.yaml B.yaml …`: many specs, one shared cache, a summary; a failure stops nothing else."""
from __future__ import annotations

import shutil
import sys

from dawexport.batch import build_many, exit_code
from dawexport.cli import main
from support.specs import small_spec

def test_a_failing_spec_stops_nothing_and_the_summary_says_why(tmp_path, capsys):
    good = small_spec(tmp_path, "one")
    bad = small_spec(tmp_path, "two", sources={"cat": "missing.wav", "flute": "flute.wav"})
    other = small_spec(tmp_path, "three", velocity_layers=2)
    code = main(["build", str(good), str(bad), str(other), "--cache", str(tmp_path / "cache")])
    table = capsys.readouterr().out
    assert code == 2, table
    rows = {line.split()[0]: line for line in table.splitlines()[1:-1]}
    assert " built " in rows[str(good)] and " built " in rows[str(other)]
    assert " failed " in rows[str(bad)] and "missing.wav" in rows[str(bad)]
    assert table.splitlines()[-1] == "2 built, 0 reused, 1 failed"
    assert (tmp_path / "out/one/one.sfz").exists() and (tmp_path / "out/three/three.sfz").exists()
    assert not (tmp_path / "out/two").exists()
    # one cache for every spec (the given folder), none beside the outputs
    assert len(list((tmp_path / "cache" / "models").iterdir())) == 1      # one and three share the model
    assert not (tmp_path / "out" / ".dawexport-cache").exists()

    again = build_many([good, other], quiet=True, cache=tmp_path / "cache")
    assert [o.status for o in again] == ["reused", "reused"] and exit_code(again) == 0


def test_two_specs_writing_one_folder_fail_the_second_only(tmp_path):
    first = small_spec(tmp_path, "a")
    second = small_spec(tmp_path, "b", output={"dir": "out/a", "formats": ["sfz"]})
    outcomes = build_many([first, second], quiet=True)
    assert [o.status for o in outcomes] == ["built", "failed"]
    assert "same folder" in outcomes[1].detail and outcomes[1].bad_input


def test_a_cluster_without_ray_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)        # as if Ray were not installed
    outcomes = build_many([small_spec(tmp_path, "a")], quiet=True, cluster="ray")
    assert outcomes[0].status == "failed" and 'pip install "dawexport[ray]"' in outcomes[0].detail
    assert exit_code(outcomes) == 2 and not (tmp_path / "out/a").exists()


def test_a_remote_cluster_needs_a_shared_cache(tmp_path, monkeypatch):
    import pytest
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'dawexport[ray]'")
    outcomes = build_many([small_spec(tmp_path, "a")], quiet=True, cluster="ray://head.example:10001")
    assert outcomes[0].status == "failed" and "--cache" in outcomes[0].detail


def test_a_cached_model_renders_the_same_bytes_as_the_fresh_one(tmp_path):
    """Renders come from the saved model, so a warm build (or a cluster worker) matches a cold one."""
    import hashlib

    spec = small_spec(tmp_path, "res", engine={"name": "conceptor", "sample_rate": 22050, "settings": {
        "reservoir_size": 100, "grains_per_source": 4, "n_reservoirs": 1}})

    from dawexport.report import RUN_SPECIFIC

    def hashes():      # but the report's record of this run's times and memory
        folder = tmp_path / "out" / "res"
        return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).as_posix() not in RUN_SPECIFIC}

    assert [o.status for o in build_many([spec], quiet=True, cache=tmp_path / "cache")] == ["built"]
    cold = hashes()
    shutil.rmtree(tmp_path / "cache" / "renders")         # keep the model, render again from it
    assert [o.status for o in build_many([spec], quiet=True, force=True, cache=tmp_path / "cache")] == ["built"]
    assert hashes() == cold
