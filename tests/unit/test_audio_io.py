import struct

import numpy as np
import pytest
import soundfile as sf

from dawexport.audio import riff
from dawexport.audio.io import read_audio, read_wav_metadata, write_wav
from dawexport.errors import ExportError, SourceError

SR = 44100


def _sine(freq=440.0, seconds=1.0, amp=0.5, sr=SR):
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)).astype(np.float32)


# --- riff -------------------------------------------------------------------------------------

def test_smpl_chunk_layout():
    chunk = riff.smpl_chunk(60, 25.0, loops=[(10, 99)], sample_rate=48000)
    assert chunk[:4] == b"smpl" and struct.unpack("<I", chunk[4:8])[0] == 36 + 24
    head = struct.unpack("<9I", chunk[8:44])
    assert head == (0, 0, 20833, 60, 2 ** 30, 0, 0, 1, 0)
    assert struct.unpack("<6I", chunk[44:68]) == (0, 0, 10, 99, 0, 0)
    parsed = riff.parse_smpl(chunk[8:])
    assert parsed == {"unity_note": 60, "pitch_fraction_cents": 25.0,
                      "sample_period_ns": 20833, "loops": [(10, 99)]}
    with pytest.raises(ExportError):
        riff.smpl_chunk(60, -1.0)


def test_inst_and_clm_chunks():
    chunk = riff.inst_chunk(60, -30, -3, 55, 65, 1, 100)
    assert chunk[:4] == b"inst" and struct.unpack("<I", chunk[4:8])[0] == 7 and len(chunk) == 16
    assert riff.parse_inst(chunk[8:15]) == {
        "unshifted_note": 60, "fine_tune_cents": -30, "gain_db": -3, "low_note": 55,
        "high_note": 65, "low_velocity": 1, "high_velocity": 100}
    text = "<!>2048 01000000 wavetable (xy)"
    clm = riff.clm_chunk(text)
    assert len(text) % 2 == 1 and clm[:4] == b"clm " and len(clm) == 8 + len(text) + 1
    assert struct.unpack("<I", clm[4:8])[0] == len(text)
    with pytest.raises(ExportError):
        riff.inst_chunk(60, 80, 0, 0, 127, 0, 127)


def test_append_chunks_to_odd_data_chunk(tmp_path):
    path = tmp_path / "odd.wav"
    sf.write(path, np.zeros(3, np.float32), SR, subtype="PCM_24")  # 9-byte data chunk
    riff.append_chunks(path, [riff.clm_chunk("<!>2048 01000000 odd"), riff.inst_chunk(
        60, 0, 0, 0, 127, 0, 127)])
    data = path.read_bytes()
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8 and len(data) % 2 == 0
    chunks = riff.read_chunks(path)
    assert chunks["clm "] == b"<!>2048 01000000 odd"
    assert riff.parse_inst(chunks["inst"])["unshifted_note"] == 60
    assert len(chunks["data"]) == 9
    np.testing.assert_array_equal(sf.read(path)[0], np.zeros(3))


def test_append_chunks_rejects_non_wave(tmp_path):
    path = tmp_path / "x.flac"
    sf.write(path, _sine(seconds=0.01), SR)
    with pytest.raises(ExportError, match="RIFF/WAVE"):
        riff.append_chunks(path, [riff.clm_chunk("x")])


# --- write_wav / read_audio --------------------------------------------------------------------

@pytest.mark.parametrize("bit_depth,step", [("16", 2 ** -15), ("24", 2 ** -23), ("32f", 1e-7)])
def test_write_each_bit_depth(tmp_path, bit_depth, step):
    stereo = np.stack([_sine(440, 0.1), _sine(660, 0.1, amp=0.25)])
    path = tmp_path / f"x{bit_depth}.wav"
    write_wav(path, stereo, SR, bit_depth)
    info = sf.info(path)
    assert info.subtype == {"16": "PCM_16", "24": "PCM_24", "32f": "FLOAT"}[bit_depth]
    back, sr = sf.read(path, dtype="float32", always_2d=True)
    assert sr == SR and back.shape == (stereo.shape[1], 2)
    np.testing.assert_allclose(back.T, stereo, atol=step)
    assert not (tmp_path / f"x{bit_depth}.wav.part").exists()
    assert read_wav_metadata(path) == {"smpl": None, "inst": None, "clm": None}


def test_write_clips_and_accepts_1d(tmp_path):
    path = tmp_path / "hot.wav"
    write_wav(path, np.array([1.5, -2.0, 0.25], np.float32), SR, "32f")
    np.testing.assert_array_equal(sf.read(path, dtype="float32")[0], [1.0, -1.0, 0.25])


@pytest.mark.parametrize("fine_tune,smpl_note,fraction,inst_note,correction", [
    (0.0, 69, 0.0, 69, 0),
    (30.0, 69, 30.0, 69, -30),
    (-30.0, 68, 70.0, 69, 30),
    (70.0, 69, 70.0, 70, 30),   # nearer to 70: inst stays within -50..50
])
def test_tuning_metadata(tmp_path, fine_tune, smpl_note, fraction, inst_note, correction):
    path = tmp_path / "tuned.wav"
    write_wav(path, _sine(seconds=0.05), SR, "16", unity_note=69, fine_tune_cents=fine_tune,
              loop=(100, 2000), key_range=(60, 72), velocity_range=(1, 90))
    meta = read_wav_metadata(path)
    assert meta["smpl"]["unity_note"] == smpl_note
    assert meta["smpl"]["pitch_fraction_cents"] == pytest.approx(fraction, abs=1e-6)
    assert meta["smpl"]["loops"] == [(100, 2000)]
    assert meta["smpl"]["sample_period_ns"] == 22676
    assert meta["inst"] == {"unshifted_note": inst_note, "fine_tune_cents": correction,
                            "gain_db": 0, "low_note": 60, "high_note": 72,
                            "low_velocity": 1, "high_velocity": 90}
    assert meta["clm"] is None
    assert sf.info(path).frames == int(SR * 0.05)  # libsndfile still reads it


def test_bad_loop_leaves_no_file(tmp_path):
    path = tmp_path / "bad.wav"
    with pytest.raises(ExportError, match="loop"):
        write_wav(path, _sine(seconds=0.01), SR, unity_note=60, loop=(0, 441))
    assert list(tmp_path.iterdir()) == []


def test_failed_append_leaves_no_file(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(riff, "append_chunks", boom)
    path = tmp_path / "x.wav"
    with pytest.raises(OSError):
        write_wav(path, _sine(seconds=0.01), SR, unity_note=60)
    assert list(tmp_path.iterdir()) == []


def _render_with_sfizz(tmp_path, pysfizz, loop):
    # 0.1 s = 44 whole cycles of 440 Hz, so the loop is seamless. The file is shorter than
    # sfizz's preload (8192 frames): longer files stream from a background thread, and under
    # CPU load sfizz drops the voice when the stream is late, even when freewheeling.
    write_wav(tmp_path / "x.wav", _sine(440.0, 0.1), SR, "24", unity_note=69, loop=loop)
    sfz = tmp_path / "x.sfz"
    # sfizz takes the unity note from the file only when asked; without it the keycenter is 60.
    sfz.write_text("<region> sample=x.wav pitch_keycenter=sample\n")
    synth = pysfizz.Synth(SR)
    assert synth.load_sfz_file(sfz)
    return synth, synth.render_note(81, 100, 1.5, 1.6)[0].astype(np.float64)


def test_sfizz_honours_smpl_chunk(tmp_path):
    pysfizz = pytest.importorskip("pysfizz")
    synth, out = _render_with_sfizz(tmp_path, pysfizz, loop=(0, 4409))
    assert synth.get_note_info(69)[0]["pitch_keycenter"] == 69
    seg = out[:2048]
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), 64 * len(seg)))
    assert abs(np.argmax(spec) * SR / (64 * len(seg)) - 880.0) < 2.0
    # The smpl loop keeps the 0.1 s sample sounding while the key is held 1.5 s ...
    assert np.sqrt(np.mean(out[int(1.2 * SR):int(1.4 * SR)] ** 2)) > 0.01
    # ... and without it the same file has long ended by then.
    _, dry = _render_with_sfizz(tmp_path, pysfizz, loop=None)
    assert np.max(np.abs(dry[int(1.2 * SR):int(1.4 * SR)])) == 0.0


def test_read_audio_round_trip(tmp_path):
    stereo = np.stack([_sine(seconds=0.05), _sine(seconds=0.05, amp=0.1)])
    for ext in ("wav", "flac", "aiff"):
        path = tmp_path / f"x.{ext}"
        sf.write(path, stereo.T, 22050)
        audio, sr = read_audio(path)
        assert sr == 22050 and audio.dtype == np.float32 and audio.shape == stereo.shape
        np.testing.assert_allclose(audio, stereo, atol=2 ** -15)
        assert audio.flags.c_contiguous


def _write_bytes(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case,match", [
    ("missing", "not found"),
    ("empty", "empty"),
    ("garbage", "cannot decode"),
    ("no_frames", "no audio frames"),
    ("nan", "NaN"),
    ("silent", "silent"),
])
def test_read_audio_errors(tmp_path, case, match):
    path = tmp_path / f"{case}.wav"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "garbage":
        path.write_bytes(b"this is not audio at all, just text" * 10)
    elif case == "no_frames":
        sf.write(path, np.zeros((0, 1), np.float32), SR)
    elif case == "nan":
        sf.write(path, np.array([0.1, np.nan, 0.2], np.float32), SR, subtype="FLOAT")
    elif case == "silent":
        sf.write(path, np.full(100, 1e-5, np.float32), SR, subtype="FLOAT")  # -100 dBFS
    with pytest.raises(SourceError, match=match) as info:
        read_audio(path, key="sources.cat")
    text = str(info.value)
    assert f"{case}.wav" in text and "sources.cat" in text and "fix:" in text


def test_float_wavs_are_byte_identical_across_writes(tmp_path):
    """libsndfile stamps float WAVs' PEAK chunk with the time; we zero it so builds are reproducible."""
    import time as time_module

    from dawexport.audio.riff import read_chunks
    audio = (0.5 * np.sin(np.arange(2000) / 7.0)).astype(np.float32)
    write_wav(tmp_path / "a.wav", audio, 44100, "32f")
    time_module.sleep(1.1)
    write_wav(tmp_path / "b.wav", audio, 44100, "32f")
    assert "PEAK" in read_chunks(tmp_path / "a.wav")
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
