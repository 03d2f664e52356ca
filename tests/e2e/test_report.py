"""The build report (report.html) opened in a real browser: a tiny sampler instrument (a 4-corner square,
one key zone, two velocity layers, a wavetable) built end to end, then checked in headless Chromium.
Screenshots at 1280 and 390 px wide are kept as test artefacts in build/test-artefacts/ (git ignores build/)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from support import REPO, copy_example_sounds
from support.browser import chromium_page, media_of, screenshots

from dawexport.cli import main
from dawexport.engines.common.training_log import TRAINING_LOG, TrainingLog
from dawexport.pipeline import build
from dawexport.publish import MANIFEST
from dawexport.report.facts import training_curve
from dawexport.report.images import png_bytes, spectrogram_db, spectrogram_image

ARTEFACTS = REPO / "build" / "test-artefacts"


def square_spec(tmp_path: Path) -> Path:
    copy_example_sounds(tmp_path)
    spec = {"name": "sq", "sources": {"cat": "cat_meow.flac", "flute": "flute.wav", "cat2": "cat_meow.flac",
                                      "flute2": "flute.wav"},
            "engine": {"name": "sampler"},
            "blend": {"corners": ["cat", "flute", "cat2", "flute2"], "points_per_side": 2},
            "keys": {"low": "G4", "high": "A4", "every": 3}, "velocity_layers": 2,
            "note": {"length": 0.6, "release": 0.1},
            "wavetables": [{"name": "line", "along": "blend", "frames": 4, "note": "C4", "corners": ["cat", "flute"]}],
            "output": {"dir": "out/sq", "formats": ["sfz"]}}
    path = tmp_path / "sq.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="module")
def square(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("report")
    result = build(square_spec(tmp_path), quiet=True)
    return tmp_path, result.folder


def test_report_is_written_and_listed_in_the_manifest(square):
    _, folder = square
    manifest = json.loads((folder / MANIFEST).read_text())
    report_files = [f for f in manifest["files"] if f == "report.html" or f.startswith("report/")]
    assert "report.html" in report_files and "report/build.json" in report_files
    assert {f for f in report_files} == {p.relative_to(folder).as_posix() for p in folder.rglob("*")
                                         if p.is_file() and (p.name == "report.html" or "report" in p.parts)}
    html = (folder / "report.html").read_text()
    assert "http://" not in html and "https://" not in html       # nothing from the network
    assert not list(folder.rglob("*.partial"))


def test_report_in_a_real_browser(square):
    _, folder = square
    samples = sorted(p.relative_to(folder).as_posix() for p in (folder / "samples").glob("*.wav"))
    assert len(samples) == 4 * 1 * 2                                  # 4 blend points × 1 zone × 2 layers
    shots = ARTEFACTS / "report"
    with chromium_page() as page:
        page.goto((folder / "report.html").as_uri())
        page.wait_for_load_state("load")
        media = media_of(page)
        assert media["images"] and all(i["width"] > 0 for i in media["images"]), media["images"]
        assert all(a["error"] is None and a["duration"] > 0 for a in media["audio"]), media["audio"]
        played = {a["src"] for a in media["audio"]}
        assert set(samples) <= played                                 # every sample, linked in place
        assert any(src.startswith("report/wavetables/") for src in played)   # the morph player
        assert any(src.startswith("report/sources/") for src in played)

        cells = page.locator("#cells button.cell")
        assert cells.count() == len(samples)
        assert sorted(page.evaluate("""() => Array.from(document.querySelectorAll('#cells button.cell'))
            .map(b => document.getElementById(b.dataset.audio).getAttribute('src'))""")) == samples
        assert page.locator(".square button.pad").count() == 4       # the blend square

        first = cells.nth(0)
        audio_id = first.get_attribute("data-audio")
        first.click()
        page.wait_for_function(f"() => !document.getElementById('{audio_id}').paused", timeout=10_000)
        assert "root" in page.locator("#info").inner_text()           # the sample's details
        cells.nth(1).click()                                          # another cell stops the first
        page.wait_for_function(f"() => document.getElementById('{audio_id}').paused", timeout=10_000)

        paths = screenshots(page, shots, "report")
        page.set_viewport_size({"width": 390, "height": 900})
        overflow = page.evaluate("() => document.documentElement.scrollWidth")
        assert overflow <= 390, "at phone width the page scrolls sideways (only the grid should)"
        assert page.errors == []
        assert all(url.startswith(("file:", "data:")) for url in page.requests), page.requests
    assert all(p.stat().st_size > 10_000 for p in paths)
    print(f"report screenshots: {', '.join(map(str, paths))}")


def test_dawexport_report_draws_the_page_again(square, capsys):
    _, folder = square
    before = json.loads((folder / MANIFEST).read_text())["files"]
    (folder / "report.html").unlink()
    (folder / "report" / "cells").rename(folder.parent / "moved_cells")       # drawn again, not needed
    manifest = folder / MANIFEST
    data = json.loads(manifest.read_text())
    data["files"] = [f for f in data["files"] if f != "report.html" and not f.startswith("report/cells/")]
    manifest.write_text(json.dumps(data))
    assert main(["report", str(folder)]) == 0
    assert capsys.readouterr().out.strip().endswith("report.html")
    assert sorted(json.loads(manifest.read_text())["files"]) == sorted(before)
    assert (folder / "report.html").is_file()


def test_dawexport_report_on_a_folder_without_facts_is_a_clear_error(tmp_path, capsys):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / MANIFEST).write_text(json.dumps({"files": []}))
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "build.json" in err and "build the instrument again" in err and "Traceback" not in err


def test_training_curve_comes_from_the_training_log(tmp_path):
    log = TrainingLog(tmp_path / TRAINING_LOG, resumed_from=None)
    log.validation(0, 4.0, 0.0)
    for step in range(1, 1001):
        log.step(step, 4.0 / step ** 0.5, 1e-3, step * 0.1)
        if step % 250 == 0:
            log.validation(step, 4.0 / step ** 0.4, step * 0.1)
    log.close()
    curve = training_curve(tmp_path, trained_now=True)
    assert curve["total_steps"] == 1000 and curve["seconds"] == pytest.approx(100.0)
    assert len(curve["steps"]) <= 600 and curve["steps"][-1] == 1000
    assert curve["val_steps"] == [0, 250, 500, 750, 1000] and curve["best_step"] == 1000
    assert curve["loss"][0] > curve["loss"][-1]
    assert training_curve(tmp_path / "none", trained_now=False) is None


def test_spectrogram_puts_a_tone_in_its_band_and_is_a_valid_png():
    sr = 44100
    t = np.arange(sr) / sr
    low, high = np.sin(2 * np.pi * 200 * t), np.sin(2 * np.pi * 4000 * t)
    rows_low = spectrogram_db(low, sr, width=8, height=48).mean(axis=1)
    rows_high = spectrogram_db(high, sr, width=8, height=48).mean(axis=1)
    assert rows_low.argmax() < rows_high.argmax()
    assert rows_low.max() == pytest.approx(rows_high.max(), abs=6)
    quiet = spectrogram_image(0.01 * low, sr, width=8, height=48)
    loud = spectrogram_image(low, sr, width=8, height=48)
    assert loud.max() > quiet.max()                                     # a fixed dB scale: quieter is darker
    png = png_bytes(loud)
    assert png.startswith(b"\x89PNG") and png.endswith(b"IEND\xaeB`\x82")


def test_the_instrument_survives_the_build_facts(tmp_path):
    """`dawexport report` draws from report/build.json alone: the Instrument must come back exactly."""
    from support.helpers import make_test_instrument

    from dawexport.report.facts import instrument_from_json, instrument_to_json
    instrument = make_test_instrument(tmp_path, layers=2, blend_points=3, round_robins=2)
    assert instrument_from_json(json.loads(json.dumps(instrument_to_json(instrument)))) == instrument
