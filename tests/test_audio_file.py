"""File source: real files decoded by PyAV/FFmpeg, resampled by libswresample."""

from __future__ import annotations

import time
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from appliance.audio import AudioSource, open_source
from tests.conftest import sine_fit

RATE = 16000


def write_wav(path: Path, rate: int, seconds: float, freq: float, gains: list[float]) -> None:
    """A sine at ``freq``; channel i has amplitude ``gains[i]`` (16-bit PCM WAV)."""
    t = np.arange(int(rate * seconds)) / rate
    sig = np.sin(2 * np.pi * freq * t)
    data = np.stack([g * sig for g in gains], axis=1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(len(gains))
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((data * 32767).astype("<i2").tobytes())


def write_flac(path: Path, rate: int, seconds: float, freq: float, amp: float) -> None:
    t = np.arange(int(rate * seconds)) / rate
    pcm = (amp * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("flac", rate=rate, layout="mono")
        for i in range(0, pcm.size, 4096):
            frame = av.AudioFrame.from_ndarray(
                pcm[i : i + 4096].reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def peak_hz(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / rate)[np.argmax(spec)])


@pytest.mark.parametrize("src_rate", [44100, 48000])
def test_stereo_wav_becomes_16k_mono_with_right_length_pitch_and_level(
    tmp_path: Path, src_rate: int
) -> None:
    path = tmp_path / f"sine_{src_rate}.wav"
    # unequal channels: the mono mix must be their mean (0.5), not one channel or a sum
    write_wav(path, src_rate, 1.0, 440.0, [0.6, 0.4])
    src = open_source(str(path), RATE)
    assert isinstance(src, AudioSource)
    assert src.rate == RATE
    out = np.concatenate([src.read(4000) for _ in range(5)])  # 20000 > 16000 available
    assert out.dtype == np.float32 and out.shape == (20000,)
    assert src.ended
    length = int(np.nonzero(np.abs(out) > 1e-4)[0][-1]) + 1
    assert abs(length - RATE) <= 4, length
    body = out[200 : RATE - 200]
    assert abs(peak_hz(body, RATE) - 440.0) < 2.0
    amp, resid = sine_fit(body, RATE, 440.0)
    assert amp == pytest.approx(0.5, rel=0.02)
    assert resid < 0.01
    src.close()


def test_flac_mono_22050_through_file_uri(tmp_path: Path) -> None:
    path = tmp_path / "tone.flac"
    write_flac(path, 22050, 0.5, 1000.0, 0.25)
    src = open_source(f"file:{path}", RATE)
    out = src.read(RATE)
    length = int(np.nonzero(np.abs(out) > 1e-4)[0][-1]) + 1
    assert abs(length - RATE // 2) <= 4
    body = out[200 : RATE // 2 - 200]
    assert abs(peak_hz(body, RATE) - 1000.0) < 3.0
    assert sine_fit(body, RATE, 1000.0)[0] == pytest.approx(0.25, rel=0.02)
    src.close()


def test_ended_then_zeros_forever(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    write_wav(path, 48000, 0.1, 440.0, [0.5])
    src = open_source(str(path), RATE)
    first = src.read(1000)
    assert not src.ended and src.status == "ok"
    assert np.abs(first[100:]).max() > 0.4
    src.read(1000)  # passes the end (0.1 s = 1600 samples)
    assert src.ended
    assert src.status.startswith("no input")
    for _ in range(3):
        z = src.read(512)
        assert z.shape == (512,) and z.dtype == np.float32 and not z.any()
    assert src.ended
    src.close()


def test_fast_mode_is_not_paced(tmp_path: Path) -> None:
    path = tmp_path / "two_s.wav"
    write_wav(path, 48000, 2.0, 440.0, [0.5, 0.5])
    src = open_source(str(path), RATE)
    t0 = time.monotonic()
    src.read(2 * RATE)
    assert time.monotonic() - t0 < 1.0
    src.close()


def test_realtime_mode_is_paced_to_the_wall_clock(tmp_path: Path) -> None:
    path = tmp_path / "one_s.wav"
    write_wav(path, 48000, 1.0, 440.0, [0.5])
    src = open_source(str(path), RATE, realtime=True)
    before = src.last_progress
    t0 = time.monotonic()
    src.read(RATE // 4)
    src.read(RATE // 4)  # 0.5 s of audio in total
    elapsed = time.monotonic() - t0
    assert 0.45 <= elapsed < 0.9, elapsed
    assert src.last_progress > before
    src.close()


def test_missing_file_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "nope.wav"
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        open_source(f"file:{missing}", RATE)


def test_unreadable_file_says_so(tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(ValueError, match="junk.wav"):
        open_source(str(junk), RATE)


def test_unknown_scheme_lists_valid_forms() -> None:
    with pytest.raises(ValueError, match=r"alsa:DEVICE.*file:PATH"):
        open_source("http://example.org/x.wav", RATE)
