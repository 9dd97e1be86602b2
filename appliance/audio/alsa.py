"""Live capture from an ALSA device (the stage mic), never raising into the daemon.

A capture thread owns the PCM: it reads periods (non-blocking, so ``close()`` is prompt
even if a device wedges), converts them to float mono, resamples to the engine rate and
pushes into a bounded ring that ``read()`` drains. When the device cannot be opened or
stops working, the thread reports ``status = "no input: ..."``, feeds zeros at wall-clock
pace so consumers keep flowing, and retries with exponential backoff.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from .resample import StreamResampler
from .ring import SampleRing

try:
    import alsaaudio
except ImportError:  # pragma: no cover - only on machines without libasound
    alsaaudio = None

log = logging.getLogger("appliance.audio")


def _quiet_libasound() -> None:
    """libasound prints its own lines to stderr on every failed open; while a mic is
    missing the source retries for hours, so those would flood the journal. The source logs
    one plain-words line per change instead."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("asound")
    if not name:
        return
    try:
        lib = ctypes.CDLL(name)
        handler_t = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                                     ctypes.c_int, ctypes.c_char_p)
        _quiet_libasound.handler = handler_t(lambda *_: None)  # kept alive with the function
        lib.snd_lib_error_set_handler(_quiet_libasound.handler)
    except (OSError, AttributeError):
        pass


if alsaaudio is not None:
    _quiet_libasound()

# sample_format name -> (numpy dtype, full scale); the PCM constant is looked up lazily.
_FORMATS: dict[str, tuple[str, float]] = {
    "S16_LE": ("<i2", 32768.0),
    "S32_LE": ("<i4", 2147483648.0),
}

_PLAIN_ERRORS = {
    "No such file or directory": "not found (is the mic plugged in and the name right?)",
    "No such device": "not found (is the mic plugged in?)",
    "Device or resource busy": "busy (another program is using it)",
    "Input/output error": "I/O error (mic unplugged?)",
    "Invalid argument": "rejected the requested rate/channels/format",
}


def plain_reason(device: str, exc: BaseException) -> str:
    """Turn a pyalsaaudio error ("No such file or directory [hw:1,0]") into plain words."""
    msg = str(exc)
    suffix = f" [{device}]"
    if msg.endswith(suffix):
        msg = msg[: -len(suffix)]
    words = _PLAIN_ERRORS.get(msg.strip())
    if words:
        return f"capture device '{device}' {words}"
    return f"capture device '{device}': {msg}"


class AlsaSource:
    """``AudioSource`` over an ALSA capture PCM (``ended`` is always False)."""

    ended = False

    def __init__(
        self,
        device: str,
        rate: int,
        *,
        device_rate: int = 48000,
        channels: int = 1,
        period_frames: int = 1024,
        sample_format: str = "S16_LE",
        buffer_seconds: float = 4.0,
        backoff_initial: float = 0.5,
        # a mic back after however long an outage is heard within 2 s (issue 15); one failed
        # snd_pcm_open a second and a half costs nothing
        backoff_max: float = 1.5,
        stall_seconds: float = 2.0,
    ) -> None:
        if sample_format not in _FORMATS:
            raise ValueError(
                f"unsupported sample format {sample_format!r}; use one of {sorted(_FORMATS)}"
            )
        if rate <= 0 or device_rate <= 0 or channels <= 0 or period_frames <= 0:
            raise ValueError(
                "rate, device_rate, channels and period_frames must be positive "
                f"(got {rate}, {device_rate}, {channels}, {period_frames})"
            )
        self.device = device
        self.rate = rate
        self.device_rate = device_rate
        self.channels = channels
        self.period_frames = period_frames
        self.sample_format = sample_format
        self.overruns = 0
        self.status = "no input: not opened yet"
        self.last_progress = time.monotonic()
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._stall_seconds = stall_seconds
        self._ring = SampleRing(max(int(buffer_seconds * rate), period_frames))
        self._stop = threading.Event()
        self._pcm = None
        self._resampler: StreamResampler | None = None
        self._dtype, self._scale = _FORMATS[sample_format]
        self._in_channels = channels
        self._backoff = backoff_initial
        self._next_attempt = 0.0
        self._feeding_zeros = False
        self._zero_clock = 0.0
        self._zeros_fed = 0
        self._last_data = 0.0
        self._last_overrun_log = -1e9
        self._read_timed_out = False
        # First attempt happens here so ``status`` is meaningful as soon as we return.
        self._try_open()
        self._thread = threading.Thread(
            target=self._run, name=f"alsa-capture[{device}]", daemon=True
        )
        self._thread.start()

    # ---- state -------------------------------------------------------------------------
    def _set_status(self, status: str) -> None:
        if status == self.status:
            return
        if status == "ok":
            log.info("audio input '%s' ok", self.device)
        else:
            log.warning("audio input '%s': %s", self.device, status)
        self.status = status

    def _no_input(self, reason: str) -> None:
        """Enter (or stay in) the zero-feeding state and schedule the next open attempt."""
        now = time.monotonic()
        if not self._feeding_zeros:
            self._feeding_zeros = True
            self._zero_clock = now
            self._zeros_fed = 0
        self._close_pcm()
        self._set_status(f"no input: {reason}")
        self._next_attempt = now + self._backoff
        self._backoff = min(self._backoff * 2, self._backoff_max)

    def _try_open(self) -> bool:
        if alsaaudio is None:
            self._no_input("pyalsaaudio is not installed")
            return False
        try:
            pcm = alsaaudio.PCM(
                type=alsaaudio.PCM_CAPTURE,
                mode=alsaaudio.PCM_NONBLOCK,
                device=self.device,
                rate=self.device_rate,
                channels=self.channels,
                format=getattr(alsaaudio, f"PCM_FORMAT_{self.sample_format}"),
                periodsize=self.period_frames,
            )
            info = pcm.info()
        except Exception as e:  # ALSAAudioError, but never let anything escape
            self._no_input(plain_reason(self.device, e))
            return False
        if info.get("format_name") != self.sample_format:
            pcm.close()
            self._no_input(
                f"capture device '{self.device}' gave format {info.get('format_name')}, "
                f"not {self.sample_format}"
            )
            return False
        actual_rate = int(info.get("rate", self.device_rate))
        self._in_channels = int(info.get("channels", self.channels))
        if actual_rate != self.device_rate or self._in_channels != self.channels:
            log.info(
                "audio input '%s' runs at %d Hz, %d ch (asked %d Hz, %d ch)",
                self.device,
                actual_rate,
                self._in_channels,
                self.device_rate,
                self.channels,
            )
        self._pcm = pcm
        self._feeding_zeros = False
        self._resampler = StreamResampler(actual_rate, self.rate)
        self._backoff = self._backoff_initial
        self._last_data = time.monotonic()
        self._set_status("ok")
        return True

    def _close_pcm(self) -> None:
        if self._pcm is not None:
            try:
                self._pcm.close()
            except Exception:  # closing a dead device may fail; it is gone either way
                pass
            self._pcm = None
            self._resampler = None

    # ---- capture thread ----------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self._pcm is None:
                    self._idle_step()
                else:
                    self._capture_step()
        except Exception as e:  # last line of defence: keep the daemon alive, say why
            log.exception("audio capture thread failed")
            self.status = f"no input: capture thread failed ({e})"
        finally:
            self._close_pcm()

    def _idle_step(self) -> None:
        now = time.monotonic()
        if now >= self._next_attempt and self._try_open():
            return
        due = int((now - self._zero_clock) * self.rate) - self._zeros_fed
        if due > 0:
            self._ring.push(np.zeros(due, dtype=np.float32), self._stop)
            self._zeros_fed += due
            self.last_progress = time.monotonic()
        self._stop.wait(min(0.05, max(0.0, self._next_attempt - now)) or 0.001)

    def _capture_step(self) -> None:
        try:
            n, data = self._pcm.read()
        except Exception as e:
            self._no_input(plain_reason(self.device, e))
            return
        now = time.monotonic()
        if n < 0:  # pyalsaaudio returns (-EPIPE, b"") on overrun and re-prepares the PCM
            self.overruns += 1
            if now - self._last_overrun_log > 10.0:
                log.warning("audio input '%s' overrun (%d so far)", self.device, self.overruns)
                self._last_overrun_log = now
            return
        if n == 0:  # non-blocking: nothing ready yet
            if now - self._last_data > self._stall_seconds:
                self._no_input(
                    f"capture device '{self.device}' stopped delivering audio "
                    f"for {self._stall_seconds:g} s"
                )
            else:
                self._stop.wait(self.period_frames / self.device_rate / 4)
            return
        self._last_data = now
        samples = np.frombuffer(data, dtype=self._dtype, count=n * self._in_channels)
        x = samples.astype(np.float32) / self._scale
        if self._in_channels > 1:
            x = x.reshape(-1, self._in_channels).mean(axis=1, dtype=np.float32)
        y = self._resampler.process(x)
        if y.size:
            self._ring.push(np.clip(y, -1.0, 1.0), self._stop)
            self.last_progress = time.monotonic()

    # ---- consumer side -----------------------------------------------------------------
    def read(self, n: int) -> np.ndarray:
        """Exactly ``n`` float32 mono samples; blocks about n/rate seconds of capture.

        The capture thread always delivers (zeros when there is no input), so this only
        pads with zeros if that thread itself is stuck for over 2 s beyond the request.
        """
        if n < 0:
            raise ValueError(f"cannot read a negative number of samples ({n})")
        out, got = self._ring.pop(n, timeout=n / self.rate + 2.0)
        if got < n and not self._stop.is_set():
            if not self._read_timed_out:
                log.warning("audio input '%s': capture thread stalled, padding", self.device)
            self._read_timed_out = True
        else:
            self._read_timed_out = False
        return out

    def close(self) -> None:
        """Stop the capture thread (within a period or so) and release the device."""
        self._stop.set()
        self._ring.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=1.0)

    def __repr__(self) -> str:
        return f"AlsaSource({self.device!r}, rate={self.rate}, status={self.status!r})"
