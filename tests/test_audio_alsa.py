"""ALSA source through REAL libasound and pyalsaaudio.

There is no sound card or live mic on the CI machine. The stand-in is an ALSA ``file``
PCM (``type file`` over a ``null`` slave) whose ``infile`` is raw audio we write: the
same libasound open/hw-params/readi path a USB mic goes through, minus the hardware.
Its reads are not paced in real time, and past the end of ``infile`` it returns
whatever the null slave leaves in the buffer (not silence), so checks stay inside the
signal we wrote.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from appliance.audio import AudioSource, open_source
from appliance.audio import alsa as alsa_mod
from tests.conftest import sine_fit

RATE = 16000
DEVICE_RATE = 48000


def pcm_block(name: str, infile: Path, out: Path) -> str:
    return (
        f'pcm.{name} {{ type file slave.pcm {{ type null }} file "{out}" '
        f'infile "{infile}" format "raw" }}\n'
    )


@pytest.fixture
def alsa_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private asound.conf, picked up by libasound at the next snd_pcm_open."""
    conf = tmp_path / "asound.conf"
    conf.write_text("# test PCMs are added per test\n")
    monkeypatch.setenv("ALSA_CONFIG_PATH", f"/usr/share/alsa/alsa.conf:{conf}")
    yield conf


def write_stereo_sine(path: Path, fmt: str, seconds: float, freq: float, gains: list[float]):
    t = np.arange(int(DEVICE_RATE * seconds)) / DEVICE_RATE
    sig = np.sin(2 * np.pi * freq * t)
    data = np.stack([g * sig for g in gains], axis=1)
    dtype, scale = ("<i2", 32767) if fmt == "S16_LE" else ("<i4", 2**31 - 1)
    (data * scale).astype(dtype).tofile(path)


@pytest.mark.parametrize("fmt", ["S16_LE", "S32_LE"])
def test_48k_stereo_capture_comes_out_16k_mono(alsa_conf: Path, tmp_path: Path, fmt: str):
    infile = tmp_path / "in.raw"
    write_stereo_sine(infile, fmt, 1.5, 440.0, [0.6, 0.4])  # mean of channels = 0.5
    alsa_conf.write_text(pcm_block("stagemic", infile, tmp_path / "out.raw"))
    src = open_source("alsa:stagemic", RATE, device_rate=DEVICE_RATE, channels=2, sample_format=fmt)
    try:
        assert isinstance(src, AudioSource)
        assert src.status == "ok"
        assert src.ended is False
        out = src.read(int(1.5 * RATE))
        assert out.shape == (24000,) and out.dtype == np.float32
        body = out[300:23500]  # skip resampler warm-up and the garbage past infile's end
        spec = np.abs(np.fft.rfft(body * np.hanning(body.size)))
        peak = np.fft.rfftfreq(body.size, 1 / RATE)[np.argmax(spec)]
        assert abs(peak - 440.0) < 2.0
        amp, resid = sine_fit(body, RATE, 440.0)
        assert amp == pytest.approx(0.5, rel=0.02)
        assert resid < 0.01  # no lost or repeated periods anywhere in 1.5 s
        assert src.overruns == 0
        assert time.monotonic() - src.last_progress < 5.0
    finally:
        t0 = time.monotonic()
        src.close()
        assert time.monotonic() - t0 < 0.5


def test_missing_device_gives_zeros_and_a_reason(alsa_conf: Path, caplog):
    caplog.set_level(logging.INFO, logger="appliance.audio")
    src = open_source("alsa:no_such_mic", RATE)
    try:
        assert src.status.startswith("no input")
        assert "no_such_mic" in src.status
        t0 = time.monotonic()
        chunks = [src.read(4000) for _ in range(4)]  # 1 s of audio, spans retries
        elapsed = time.monotonic() - t0
        assert 0.7 < elapsed < 2.0, elapsed  # zeros arrive paced by the wall clock
        for c in chunks:
            assert c.shape == (4000,) and c.dtype == np.float32 and not c.any()
        assert src.status.startswith("no input")
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1  # one log per state change, not one per retry
    finally:
        t0 = time.monotonic()
        src.close()
        assert time.monotonic() - t0 < 0.5


def test_device_that_appears_later_is_picked_up(alsa_conf: Path, tmp_path: Path):
    # The PCM is defined but its infile does not exist yet, so snd_pcm_open fails with
    # ENOENT exactly like an absent card; creating the file is "plugging the mic in".
    infile = tmp_path / "late.raw"
    alsa_conf.write_text(pcm_block("latemic", infile, tmp_path / "late_out.raw"))
    src = open_source("alsa:latemic", RATE)
    try:
        assert src.status.startswith("no input")
        assert not src.read(2000).any()
        write_stereo_sine(infile, "S16_LE", 3.0, 440.0, [0.5])
        deadline = time.monotonic() + 3.0
        while src.status != "ok" and time.monotonic() < deadline:
            src.read(800)
        assert src.status == "ok"
        tail = np.concatenate([src.read(1600) for _ in range(5)])
        assert np.abs(tail).max() > 0.3  # real signal, not substitute zeros
    finally:
        src.close()


class _UnpluggingPCM:
    """Wraps a real pyalsaaudio PCM; after ``reads_ok`` reads, behaves like a yanked USB
    mic (ALSAAudioError "No such device"), or reports one overrun if ``overrun_at``."""

    def __init__(self, real, reads_ok: int, overrun_at: int | None = None) -> None:
        self.real = real
        self.reads = 0
        self.reads_ok = reads_ok
        self.overrun_at = overrun_at

    def read(self):
        self.reads += 1
        if self.reads == self.overrun_at:
            return -32, b""  # what pyalsaaudio returns on -EPIPE
        if self.reads > self.reads_ok:
            raise alsa_mod.alsaaudio.ALSAAudioError("No such device [stagemic]")
        return self.real.read()

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_unplug_mid_stream_keeps_flowing_and_counts_overruns(
    alsa_conf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    infile = tmp_path / "in.raw"
    write_stereo_sine(infile, "S16_LE", 2.0, 440.0, [0.5])
    alsa_conf.write_text(pcm_block("stagemic", infile, tmp_path / "out.raw"))
    real_pcm = alsa_mod.alsaaudio.PCM
    opened: list[_UnpluggingPCM] = []

    def fake_pcm(*args, **kwargs):
        # only the first open gets unplugged; reopening after backoff is left real
        pcm = real_pcm(*args, **kwargs)
        if opened:
            return pcm
        opened.append(_UnpluggingPCM(pcm, reads_ok=10, overrun_at=3))
        return opened[0]

    monkeypatch.setattr(alsa_mod.alsaaudio, "PCM", fake_pcm)
    src = open_source("alsa:stagemic", RATE, channels=1)
    try:
        src.read(2000)
        deadline = time.monotonic() + 2.0
        while not src.status.startswith("no input") and time.monotonic() < deadline:
            src.read(400)
        assert "not found" in src.status
        assert src.overruns == 1
        t0 = time.monotonic()
        assert src.read(1600).shape == (1600,)  # still flowing, no exception
        assert time.monotonic() - t0 < 1.0
        deadline = time.monotonic() + 3.0
        while src.status != "ok" and time.monotonic() < deadline:
            src.read(800)
        assert src.status == "ok"  # reopened after backoff
    finally:
        src.close()


def test_close_is_prompt_while_capture_thread_is_blocked_on_a_full_ring(
    alsa_conf: Path, tmp_path: Path
):
    infile = tmp_path / "in.raw"
    write_stereo_sine(infile, "S16_LE", 1.0, 440.0, [0.5])
    alsa_conf.write_text(pcm_block("stagemic", infile, tmp_path / "out.raw"))
    src = open_source("alsa:stagemic", RATE)
    time.sleep(0.3)  # unpaced file PCM fills the 4 s ring almost at once, then waits
    t0 = time.monotonic()
    src.close()
    assert time.monotonic() - t0 < 0.5
    names = [t.name for t in threading.enumerate()]
    assert not any(n.startswith("alsa-capture[stagemic]") for n in names)


def test_bad_arguments_are_rejected_plainly() -> None:
    with pytest.raises(ValueError, match="S24"):
        open_source("alsa:default", RATE, sample_format="S24_LE")
    with pytest.raises(ValueError, match="device name"):
        open_source("alsa:", RATE)


def test_alsa_config_env_is_not_leaked() -> None:
    # guard for the fixture: other test modules must see the machine's own ALSA config
    assert "asound.conf" not in os.environ.get("ALSA_CONFIG_PATH", "")
