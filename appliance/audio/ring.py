"""Bounded single-producer/single-consumer sample buffer between capture thread and reader."""

from __future__ import annotations

import threading
import time

import numpy as np


class SampleRing:
    """Float32 ring of fixed capacity.

    ``push`` blocks while the ring is full (back-pressure: a real device then overruns
    inside ALSA, where it is detected and counted); ``pop`` blocks until it can return
    exactly ``n`` samples or its timeout passes.
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("ring capacity must be positive")
        self._buf = np.zeros(capacity, dtype=np.float32)
        self._cap = capacity
        self._start = 0
        self._len = 0
        self._cond = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        return self._len

    def push(self, x: np.ndarray, stop: threading.Event) -> None:
        """Append all of ``x``, waiting for room; gives up silently once ``stop`` is set."""
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        i = 0
        with self._cond:
            while i < x.size:
                while self._len == self._cap and not stop.is_set() and not self._closed:
                    self._cond.wait(0.05)
                if stop.is_set() or self._closed:
                    return
                k = min(x.size - i, self._cap - self._len)
                end = (self._start + self._len) % self._cap
                first = min(k, self._cap - end)
                self._buf[end : end + first] = x[i : i + first]
                self._buf[: k - first] = x[i + first : i + k]
                self._len += k
                i += k
                self._cond.notify_all()

    def pop(self, n: int, timeout: float) -> tuple[np.ndarray, int]:
        """Return ``(samples, got)``: exactly ``n`` samples, of which the first ``got`` are
        real and the rest zero padding (only when the timeout expired or the ring closed)."""
        out = np.zeros(n, dtype=np.float32)
        deadline = time.monotonic() + timeout
        got = 0
        with self._cond:
            while got < n:
                if self._len == 0:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._closed:
                        break
                    self._cond.wait(min(left, 0.1))
                    continue
                k = min(n - got, self._len)
                first = min(k, self._cap - self._start)
                out[got : got + first] = self._buf[self._start : self._start + first]
                out[got + first : got + k] = self._buf[: k - first]
                self._start = (self._start + k) % self._cap
                self._len -= k
                got += k
                self._cond.notify_all()
        return out, got

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
