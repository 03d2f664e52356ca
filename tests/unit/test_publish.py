"""Atomic publish: an interrupted or failed build never leaves a half-written instrument and never
deletes or overwrites files that dawexport did not create."""
import json

import pytest

from dawexport.errors import ExportError
from dawexport.publish import MANIFEST, Staging, check_target, recover


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
    monkeypatch.setattr(publish, "_exchange", lambda a, b: False)   # a filesystem without an atomic exchange
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


def publish_new(target, text="new", spec=None):
    with Staging(target, spec=spec) as staging:
        (staging.path / "a.sfz").write_text(text)
        manifest = {"files": ["a.sfz"]} | ({"spec": spec} if spec else {})
        (staging.path / MANIFEST).write_text(json.dumps(manifest))
        staging.publish()


def test_replacing_an_old_build_is_one_exchange_and_leaves_nothing_beside_it(tmp_path, monkeypatch):
    import dawexport.publish as publish
    target = tmp_path / "inst"
    finished(target, {"a.sfz": "old"})
    renames = []
    monkeypatch.setattr(publish.os, "replace", lambda *a: renames.append(a))
    publish_new(target)
    assert (target / "a.sfz").read_text() == "new"
    assert renames == []            # the exchange did it: no moment without a target folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inst"]


def test_a_kill_between_the_two_renames_is_rolled_back_by_the_next_build(tmp_path):
    target = tmp_path / "inst"
    finished(tmp_path / ".inst.old-999999999", {"a.sfz": "old"})     # the old build, moved aside; then killed
    assert recover(target) == [f"restored {target} from an interrupted publish"]
    assert (target / "a.sfz").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inst"]


def test_a_kill_after_the_new_build_appeared_removes_the_old_copy(tmp_path):
    finished(tmp_path / "inst", {"a.sfz": "new"})
    finished(tmp_path / ".inst.old-999999999", {"a.sfz": "old"})
    finished(tmp_path / ".inst.staging-999999998", {"a.sfz": "half"})
    with Staging(tmp_path / "inst") as staging:
        assert sorted(p.name for p in tmp_path.iterdir()) == [staging.path.name, "inst"]
    assert (tmp_path / "inst" / "a.sfz").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inst"]


def test_a_live_process_leftovers_are_not_touched(tmp_path):
    import os
    finished(tmp_path / f".inst.old-{os.getppid()}", {"a.sfz": "old"})
    assert recover(tmp_path / "inst") == []
    assert (tmp_path / f".inst.old-{os.getppid()}" / "a.sfz").exists()


@pytest.mark.parametrize("kind", ["empty folder", "link to a folder", "link to nothing", "fifo"])
def test_anything_dawexport_did_not_write_is_foreign(tmp_path, kind):
    import os
    target = tmp_path / "inst"
    finished(target, {"a.sfz": "old"})
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "song.als").write_text("precious")
    entry = target / "extra"
    if kind == "empty folder":
        entry.mkdir()
    elif kind == "link to a folder":
        entry.symlink_to(mine, target_is_directory=True)
    elif kind == "link to nothing":
        entry.symlink_to(tmp_path / "nowhere")
    else:
        os.mkfifo(entry)
    with pytest.raises(ExportError, match="did not write: extra"):
        publish_new(target)
    assert os.path.lexists(entry) and (mine / "song.als").read_text() == "precious"
    assert (target / "a.sfz").read_text() == "old"


def test_an_owned_sample_folder_is_not_foreign_but_an_extra_subfolder_is(tmp_path):
    target = tmp_path / "inst"
    target.mkdir()
    (target / "samples" / "mine").mkdir(parents=True)
    (target / "samples" / "a.wav").write_text("x")
    (target / MANIFEST).write_text(json.dumps({"files": ["samples/a.wav"]}))
    with pytest.raises(ExportError, match=r"did not write: samples/mine/\n"):
        check_target(target)


def test_an_output_folder_reached_through_a_link_is_replaced_and_the_link_kept(tmp_path):
    real = tmp_path / "disk" / "inst"
    real.parent.mkdir()
    finished(real, {"a.sfz": "old"})
    link = tmp_path / "inst"
    link.symlink_to(real, target_is_directory=True)
    publish_new(link)
    assert link.is_symlink() and (link / "a.sfz").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk", "inst"]
    assert sorted(p.name for p in real.parent.iterdir()) == ["inst"]


def test_an_output_link_to_nothing_is_refused(tmp_path):
    link = tmp_path / "inst"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(ExportError, match="link to nothing"):
        publish_new(link)
    assert link.is_symlink() and not (tmp_path / "nowhere").exists()


def test_an_instrument_built_from_another_spec_is_not_replaced(tmp_path):
    target = tmp_path / "inst"
    publish_new(target, "from a", spec="/specs/a/inst.yaml")
    with pytest.raises(ExportError, match="built from another spec"):
        publish_new(target, "from b", spec="/specs/b/inst.yaml")
    publish_new(target, "a again", spec="/specs/a/inst.yaml")
    assert (target / "a.sfz").read_text() == "a again"
