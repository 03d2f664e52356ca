"""The SFZ exporter, checked with the real linter (sfzlint) and the real player (sfizz)."""
from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
from support.helpers import make_test_instrument, tone
from support.players import (harmonic_amplitudes, make_grid_instrument, make_round_robin_instrument,
                             measure_pitch_cents, render_sfizz, rms_db, sfizz_synth, sfzlint_errors,
                             spectral_centroid)

from dawexport.audio.io import write_wav
from dawexport.errors import ExportError
from dawexport.export import sfz, write_formats

SR = 44100
BRIGHT = {3: [0.05, 0.45, 0.85]}   # h2/h1 of helpers' blend points 0, 1, 2 (bright = 0.05 + 0.8 b / (n-1))


def midi_hz(key: float) -> float:
    return 440.0 * 2 ** ((key - 69) / 12)


def h2_ratio(audio, f0: float) -> float:
    h = harmonic_amplitudes(audio, SR, f0, count=2)
    return float(h[1] / h[0])


def regions(text: str) -> list[str]:
    return text.split("<region>")[1:]


# --- fixtures: each instrument is built and exported once per module ------------------------------

@pytest.fixture(scope="module")
def line3(test_instrument):
    """3 blend points on CC1, keys 59..64 (two zones of three keys), 2 velocity layers, looped."""
    inst, folder = test_instrument("line3", keys=(60, 63), zone_width=3, layers=2, blend_points=3)
    sfz.write(inst, folder)
    return inst, folder / "tiny.sfz"


@pytest.fixture(scope="module")
def line3_synth(line3):
    return sfizz_synth(line3[1], SR)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grid")
    inst = make_grid_instrument(folder, keys=(60,), layers=1, seconds=0.6)
    sfz.write(inst, folder)
    return inst, folder / "grid.sfz"


@pytest.fixture(scope="module")
def rr(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rr")
    inst = make_round_robin_instrument(folder, name="rr", keys=(60,), layers=2, blend_points=2, seconds=0.5)
    sfz.write(inst, folder)
    return inst, folder / "rr.sfz"


@pytest.fixture(scope="module")
def layers3(test_instrument):
    inst, folder = test_instrument("layers3", name="layers", keys=(60,), layers=3, blend_points=1, seconds=0.5)
    sfz.write(inst, folder)
    return inst, folder / "layers.sfz"


@pytest.fixture(scope="module")
def oneshot(test_instrument):
    inst, folder = test_instrument("oneshot", name="shot", keys=(60,), layers=1, blend_points=2, seconds=0.5,
                                loop=False)
    sfz.write(inst, folder)
    return inst, folder / "shot.sfz"


# --- the file: linter, paths, structure --------------------------------------------------------------

@pytest.mark.parametrize("fixture", ["line3", "grid", "rr", "layers3", "oneshot"])
def test_sfzlint_clean_paths_exist_no_default_path(fixture, request):
    inst, path = request.getfixturevalue(fixture)
    assert sfzlint_errors(path) == []
    text = path.read_text(encoding="utf-8")
    assert "default_path" not in text
    samples = re.findall(r"^<region> sample=(.+)$", text, flags=re.M)
    assert len(samples) == sum(len(g.zones) for g in inst.groups)
    for rel in samples:
        assert "\\" not in rel and not rel.startswith("/")
        assert (path.parent / rel).is_file(), rel
    assert text.count("<group>") == len(inst.groups)


def test_linter_does_report_errors(tmp_path):
    bad = tmp_path / "bad.sfz"
    bad.write_text("<region> sample=x.wav hikey=abc\n")
    assert sfzlint_errors(bad), "sfzlint_errors must see an error in a broken file"


def test_header_control_and_global(line3, grid):
    inst, path = line3
    text = path.read_text()
    head = text.split("<control>")[0]
    assert head.lstrip().startswith("// tiny")
    assert "tiny test instrument" in head and "Engine: test" in head
    assert "sfizz" in head and "Sforzando" in head and "CC1 = Blend" in head
    control = text.split("<control>")[1].split("<global>")[0]
    assert "set_cc1=0" in control and "label_cc1=Blend" in control
    glob = text.split("<global>")[1].split("<group>")[0]
    for line in ("ampeg_attack=0.002", "ampeg_release=0.2", "ampeg_sustain=100", "loop_mode=loop_sustain"):
        assert re.search(rf"^{re.escape(line)}$", glob, flags=re.M), line
    gtext = grid[1].read_text()
    assert "set_cc1=0" in gtext and "set_cc2=0" in gtext
    assert "label_cc1=Blend X" in gtext and "label_cc2=Blend Y" in gtext


def test_regions_carry_mapping_and_loops(line3):
    inst, path = line3
    regs = regions(path.read_text())
    zones = [z for g in inst.groups for z in g.zones]
    for reg, zone in zip(regs, zones):
        assert f"sample={zone.sample.path}\n" in reg
        for op in (f"lokey={zone.lokey}", f"hikey={zone.hikey}", f"pitch_keycenter={zone.root_key}",
                   f"lovel={zone.lovel}", f"hivel={zone.hivel}",
                   f"loop_start={zone.sample.loop.start}", f"loop_end={zone.sample.loop.end}"):
            assert re.search(rf"(^|\s){op}(\s|$)", reg), (op, reg)
        assert "tune=" not in reg and "seq_position" not in reg


def test_crossfade_opcodes_leave_out_degenerate_ends(line3, grid):
    text = line3[1].read_text()
    groups = text.split("<group>")[1:]
    first, middle, last = (g.split("<region>")[0] for g in groups)
    assert "xfin_" not in first and "xfout_locc1=0" in first and "xfout_hicc1=64" in first
    assert all(op in middle for op in ("xfin_locc1=0", "xfin_hicc1=64", "xfout_locc1=64", "xfout_hicc1=127"))
    assert "xfout_" not in last and "xfin_locc1=64" in last and "xfin_hicc1=127" in last
    assert all("xf_cccurve=power" in g for g in (first, middle, last))
    corner = grid[1].read_text().split("<group>")[4].split("<region>")[0]     # grid point (1, 1)
    assert "xfin_locc1=0" in corner and "xfin_locc2=0" in corner and "xfout_" not in corner


@pytest.mark.parametrize("mode, opcode, loops", [("sustain", "loop_sustain", True),
                                                 ("continuous", "loop_continuous", True),
                                                 ("one_shot", "one_shot", False),
                                                 ("none", "no_loop", False)])
def test_loop_modes(line3, mode, opcode, loops):
    inst, _ = line3
    text = sfz.render_sfz(replace(inst, loop_mode=mode))
    assert re.search(rf"^loop_mode={opcode}$", text.split("<group>")[0], flags=re.M)
    assert ("loop_start=" in text) is loops and ("loop_end=" in text) is loops


def test_unlooped_sample_in_looping_instrument_does_not_loop(line3):
    inst, _ = line3
    group = inst.groups[0]
    zones = (replace(group.zones[0], sample=replace(group.zones[0].sample, loop=None)),) + group.zones[1:]
    text = sfz.render_sfz(replace(inst, groups=(replace(group, zones=zones),) + inst.groups[1:]))
    first = regions(text)[0]
    assert "loop_mode=no_loop" in first and "loop_start" not in first
    assert "loop_mode=no_loop" not in regions(text)[1]


def test_bad_input_raises_export_error(line3):
    inst, _ = line3
    group = inst.groups[0]
    for bad_path in ("/abs/x.wav", "samples\\x.wav", "../x.wav", "a=b.wav"):
        zone = replace(group.zones[0], sample=replace(group.zones[0].sample, path=bad_path))
        with pytest.raises(ExportError, match="sample path"):
            sfz.render_sfz(replace(inst, groups=(replace(group, zones=(zone,)),)))
    with pytest.raises(ExportError, match="loop mode"):
        sfz.render_sfz(replace(inst, loop_mode="pingpong"))


def test_velocity_depth_follows_measured_loudness(line3):
    inst, _ = line3
    assert sfz.layer_depths_db(inst) == {(1, 64): 6.0, (65, 127): 3.0}     # loudness not measured
    measured = replace(inst, groups=tuple(
        replace(g, zones=tuple(replace(z, sample=replace(z.sample, loudness_db=-30.0 if z.hivel == 64 else -26.0))
                               for z in g.zones)) for g in inst.groups))
    assert sfz.layer_depths_db(measured)[(65, 127)] == pytest.approx(2.0)  # half the 4 dB step
    text = sfz.render_sfz(measured)
    assert "amp_velcurve_65=0.7943 amp_velcurve_127=1" in text


def test_registry_writes_sfz_and_preview(line3, tmp_path):
    inst, path = line3
    written = write_formats(inst, path.parent, ["sfz", "midi"])
    assert written == ["tiny.sfz", "tiny_preview.mid"]
    assert all((path.parent / w).is_file() for w in written)


# --- sfizz plays it ----------------------------------------------------------------------------------

def test_playable_keys_cover_exactly_the_key_range(line3, line3_synth, grid):
    inst, _ = line3
    lo, hi = inst.key_range
    assert line3_synth.playable_keys == list(range(lo, hi + 1))
    ginst, gpath = grid
    assert sfizz_synth(gpath).playable_keys == list(range(ginst.key_range[0], ginst.key_range[1] + 1))


def test_every_mapped_key_sounds_at_its_pitch(line3, line3_synth):
    inst, _ = line3
    lo, hi = inst.key_range
    errors = {}
    for key in range(lo, hi + 1):
        for cc in (0, 127):
            audio = render_sfizz(line3_synth, key, 100, 0.3, 0.3, cc={1: cc})
            errors[key, cc] = measure_pitch_cents(audio[:, 2000:], SR, key)
    assert np.median(np.abs(list(errors.values()))) <= 5.0
    assert all(abs(e) <= 5.0 for e in errors.values()), errors


def test_tune_opcode_corrects_a_detuned_sample(tmp_path):
    inst = make_test_instrument(tmp_path, name="tuned", keys=(60,), layers=1, blend_points=1, seconds=0.5,
                                loop=False)
    zone = inst.groups[0].zones[0]
    sharp = tone(midi_hz(60.3), 0.5, SR, channels=2)                 # 30 cents sharp
    write_wav(tmp_path / zone.sample.path, sharp, SR, "24", unity_note=60)
    fixed = replace(zone, sample=replace(zone.sample, tune_cents=-30.0))
    inst = replace(inst, groups=(replace(inst.groups[0], zones=(fixed,)),))
    sfz.write(inst, tmp_path)
    text = (tmp_path / "tuned.sfz").read_text()
    assert re.search(r"(^|\s)tune=-30(\s|$)", text, flags=re.M)
    synth = sfizz_synth(tmp_path / "tuned.sfz")
    for key in (59, 60, 61):
        audio = render_sfizz(synth, key, 127, 0.3, 0.3)
        assert abs(measure_pitch_cents(audio[:, 2000:], SR, key)) <= 5.0


def test_louder_velocity_layers_render_louder(layers3):
    inst, path = layers3
    synth = sfizz_synth(path)
    levels = {}
    for lo, hi in inst.velocity_layers:
        for vel in (lo, hi):
            levels[vel] = rms_db(render_sfizz(synth, 60, vel, 0.3, 0.3)[:, 2000:])
    at_rendered = [levels[hi] for _, hi in inst.velocity_layers]
    assert all(b - a > 3.0 for a, b in zip(at_rendered, at_rendered[1:])), levels
    ordered = [levels[v] for v in sorted(levels)]
    assert all(b > a for a, b in zip(ordered, ordered[1:])), levels        # layers stay ordered
    for lo, hi in inst.velocity_layers:
        assert 1.0 < levels[hi] - levels[lo] <= 6.5, (lo, hi, levels)   # velocity matters a little


def test_blend_cc_moves_the_timbre(line3, line3_synth):
    f0 = midi_hz(60)
    centroids, ratios = {}, {}
    for cc in (0, 64, 127):
        audio = render_sfizz(line3_synth, 60, 127, 0.4, 0.4, cc={1: cc})[:, 4000:]
        centroids[cc] = spectral_centroid(audio, SR)
        ratios[cc] = h2_ratio(audio, f0)
    assert centroids[0] < centroids[64] < centroids[127]
    assert centroids[127] > 1.5 * centroids[0]
    # each extreme is exactly its own blend point; at CC 64 the middle point alone sounds
    for cc, expected in zip((0, 64, 127), BRIGHT[3]):
        assert ratios[cc] == pytest.approx(expected, abs=0.03), ratios


def test_end_points_play_at_full_level(line3, line3_synth, tmp_path):
    """The first group at CC 0 and the last at CC 127 sound exactly as loud as with no crossfade at all."""
    inst, _ = line3
    for group, cc in ((inst.groups[0], 0), (inst.groups[-1], 127)):
        alone = replace(inst, groups=(group,), axes=())
        folder = tmp_path / f"alone{cc}"
        folder.mkdir()
        (folder / "samples").symlink_to(line3[1].parent / "samples")
        sfz.write(alone, folder)
        assert "xf" not in (folder / "tiny.sfz").read_text().split("<group>")[1]
        reference = rms_db(render_sfizz(sfizz_synth(folder / "tiny.sfz"), 60, 127, 0.4, 0.4)[:, 4000:])
        played = rms_db(render_sfizz(line3_synth, 60, 127, 0.4, 0.4, cc={1: cc})[:, 4000:])
        assert played == pytest.approx(reference, abs=0.1)


def test_sfizz_treats_degenerate_ranges_as_fully_in(line3, line3_synth, tmp_path):
    """Why leaving the 0..0 fade-in and 127..127 fade-out out is safe: sfizz plays them fully in too."""
    inst, path = line3
    groups = path.read_text().split("<group>\n")
    groups[1] = "xfin_locc1=0\nxfin_hicc1=0\n" + groups[1]
    groups[3] = "xfout_locc1=127\nxfout_hicc1=127\n" + groups[3]
    (tmp_path / "samples").symlink_to(path.parent / "samples")
    (tmp_path / "explicit.sfz").write_text("<group>\n".join(groups))
    explicit = sfizz_synth(tmp_path / "explicit.sfz")
    for cc in (0, 127):
        ours = rms_db(render_sfizz(line3_synth, 60, 127, 0.3, 0.3, cc={1: cc})[:, 4000:])
        theirs = rms_db(render_sfizz(explicit, 60, 127, 0.3, 0.3, cc={1: cc})[:, 4000:])
        assert ours == pytest.approx(theirs, abs=0.05)


def test_four_corner_grid(grid):
    inst, path = grid
    synth = sfizz_synth(path)
    f0 = midi_hz(60)
    bright = [0.05 + 0.8 * b / 3 for b in range(4)]       # group j*2+i of make_grid_instrument
    for (cx, cy), expected in zip(((0, 0), (127, 0), (0, 127), (127, 127)), bright):
        audio = render_sfizz(synth, 60, 127, 0.3, 0.3, cc={1: cx, 2: cy})[:, 4000:]
        assert h2_ratio(audio, f0) == pytest.approx(expected, abs=0.03), (cx, cy)


def loop_glitch(audio: np.ndarray, f0: float, start_s: float, stop_s: float) -> float:
    """How far a steady tone strays from itself one period earlier, relative to its peak.

    A clean loop keeps a periodic tone periodic across every join; a join in the wrong phase shows up
    as a large residual even though sfizz's built-in 1 ms loop crossfade smooths the step itself.
    """
    x = audio[0].astype(np.float64)
    n = np.arange(len(x))
    delayed = np.interp(n - SR / f0, n, x)
    window = slice(int(start_s * SR), int(stop_s * SR))
    return float(np.abs(x - delayed)[window].max() / np.abs(x[window]).max())


def test_held_note_sustains_through_the_loop_without_clicks(line3, line3_synth):
    inst, _ = line3
    zone = next(z for z in inst.groups[0].zones if z.root_key == 60 and z.hivel == 127)
    data, _ = sf.read(str(line3[1].parent / zone.sample.path), always_2d=True)
    original_jump = np.abs(np.diff(data[:, 0])).max()
    hold = 3.0                                               # the samples are 1 s long
    audio = render_sfizz(line3_synth, 60, 127, hold, hold + 0.4, cc={1: 0})
    first, last = audio[:, int(0.1 * SR):int(0.6 * SR)], audio[:, int((hold - 0.5) * SR):int(hold * SR)]
    assert abs(rms_db(last) - rms_db(first)) <= 3.0
    assert rms_db(last) > -60
    # no step anywhere above the original sample's own largest step...
    assert np.abs(np.diff(audio[0])).max() <= 1.5 * original_jump
    # ...and the tone stays periodic across the loop joins (three of them in 3 s)
    loop_end_s = (zone.sample.loop.end + 1) / SR
    assert loop_glitch(audio, midi_hz(60), 0.05, loop_end_s - 0.005) < 0.01
    assert loop_glitch(audio, midi_hz(60), loop_end_s - 0.005, hold) < 0.1
    assert rms_db(audio[:, int((hold + 0.3) * SR):]) < -80          # released (loop_sustain)


def test_click_check_catches_a_bad_loop(line3, tmp_path):
    """The loop check above is meaningful: a loop a quarter period too short is caught."""
    inst, path = line3
    zone = next(z for z in inst.groups[0].zones if z.root_key == 60 and z.hivel == 127)
    loop = zone.sample.loop
    quarter_period = int(round(SR / midi_hz(60) / 4))
    text = path.read_text().replace(f"loop_end={loop.end}", f"loop_end={loop.end - quarter_period}")
    (tmp_path / "samples").symlink_to(path.parent / "samples")
    (tmp_path / "broken.sfz").write_text(text)
    audio = render_sfizz(sfizz_synth(tmp_path / "broken.sfz"), 60, 127, 1.5, 1.5, cc={1: 0})
    assert loop_glitch(audio, midi_hz(60), (loop.end - quarter_period + 1) / SR - 0.005, 1.5) > 0.5


def test_round_robins_alternate(rr):
    inst, path = rr
    text = path.read_text()
    assert text.count("seq_length=2") == len(inst.groups)
    assert "seq_position=1" in text and "seq_position=2" in text
    synth = sfizz_synth(path)
    levels = [rms_db(render_sfizz(synth, 60, 127, 0.2, 0.25)[:, 2000:]) for _ in range(4)]
    # take 2 was written at 0.4x (-8 dB): consecutive notes differ, every other note matches
    assert abs(levels[0] - levels[1]) > 6.0 and abs(levels[1] - levels[2]) > 6.0
    assert levels[0] == pytest.approx(levels[2], abs=0.2) and levels[1] == pytest.approx(levels[3], abs=0.2)


def test_one_shot_plays_to_the_end_and_ignores_note_off(oneshot):
    inst, path = oneshot
    text = path.read_text()
    assert "loop_mode=one_shot" in text and "loop_start" not in text
    synth = sfizz_synth(path)
    audio = render_sfizz(synth, 60, 127, 0.1, 0.7)
    assert rms_db(audio[:, int(0.3 * SR):int(0.45 * SR)]) > -50     # still sounding after note-off
    assert rms_db(audio[:, int(0.55 * SR):]) < -80                    # and silent after the 0.5 s sample
