"""Atomic publish: an interrupted or failed build never leaves a half-written instrument and never
deletes or overwrites files that dawexport did not create."""
import json

import pytest

from dawexport.errors import ExportError
from dawexport.publish import MANIFEST, Staging, check_target


def finished(folder, files):
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    (folder / MANIFEST).write_text(json.dumps({"files": sorted(files)}))


def test_new_folder_appears_whole(tmp_path):
    target = tmp_path / "build" / "inst"
    with Staging(target) as staging:
        (staging.path / "a.sfz").write_text("new")
        (staging.path / MANIFEST).write_text(json.dumps({"files": ["a.sfz"]}))
        assert not target.exists()
        staging.publish()
    assert (target / "a.sfz").read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["inst"]


def test_failure_before_publish_keeps_the_old_build_and_leaves_no_staging(tmp_path):
    target = tmp_path / "inst"
    finished(target, {"a.sfz": "old"})
    with pytest.raises(RuntimeError):
        with Staging(target) as staging:
            (staging.path / "a.sfz").write_text("half")
            raise RuntimeError("injected failure mid-build")
    assert (target / "a.sfz").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inst"]


def test_failure_during_the_swap_restores_the_old_build(tmp_path, monkeypatch):
    import dawexport.publish as publish
    target = tmp_path / "inst"
    finished(target, {"a.sfz": "old"})
    real_replace = publish.os.replace
    calls = []

    def flaky_replace(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # the staging folder moving into place
            raise OSError("injected: disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(publish.os, "replace", flaky_replace)
    with pytest.raises(OSError):
        with Staging(target) as staging:
            (staging.path / "a.sfz").write_text("new")
            (staging.path / MANIFEST).write_text(json.dumps({"files": ["a.sfz"]}))
            staging.publish()
    assert (target / "a.sfz").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inst"]


def test_folder_not_made_by_dawexport_is_refused(tmp_path):
    target = tmp_path / "inst"
    target.mkdir()
    (target / "my_song.als").write_text("precious")
    with pytest.raises(ExportError, match="not made by dawexport"):
        check_target(target)
    assert (target / "my_song.als").read_text() == "precious"


def test_user_file_added_inside_a_build_is_never_deleted(tmp_path):
    target = tmp_path / "inst"
    finished(target, {"a.sfz": "old"})
    (target / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="notes.txt"):
        with Staging(target) as staging:
            (staging.path / MANIFEST).write_text(json.dumps({"files": []}))
            staging.publish()
    assert (target / "notes.txt").read_text() == "mine"
    assert (target / "a.sfz").read_text() == "old"


def test_stale_staging_of_a_dead_process_is_cleaned(tmp_path):
    stale = tmp_path / ".inst.staging-999999999"
    stale.mkdir()
    with Staging(tmp_path / "inst") as staging:
        (staging.path / MANIFEST).write_text(json.dumps({"files": []}))
        staging.publish()
    assert not stale.exists()
