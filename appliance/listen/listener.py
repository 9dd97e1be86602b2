"""Windows every hop → engine → smoothing → GenreEstimate.

Features are computed incrementally: each hop only the new STFT frames are computed and
appended to a rolling window, which gives exactly the frames ``log_mel`` computes offline
for the same window (frames are not centred), at a fraction of the cost.

Until a whole window has been heard (the first window_s after the listener starts: boot,
or a file from its start), the engine hears what has been heard so far, repeated to fill
the window, and the moving average starts from "no music", as if the box had been hearing a
quiet room. The engine then answers within a hop of starting, on sound like the sound it
was trained on: a window that cuts from digital silence to room sound is one no training
window has, and engines call such windows music (docs/experiments/genre-2.md, "the
listener's first seconds": no-music clips heard from a fresh listener opened the gate in
their first 5 s 22 of 45 times that way, 13 this way).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from appliance.audio.level import dbfs
from appliance.listen.bundle import Bundle
from appliance.listen.calibration import Calibration, manifest_sha256
from appliance.listen.engine import Engine
from appliance.listen.estimate import GENRES, NONE, GenreEstimate
from appliance.listen.frontend import log_mel


@dataclass(frozen=True)
class Smoothing:
    """How raw engine outputs become a steady reading. Bundles may override (manifest
    ``listener``), because the right amount depends on the window and hop."""

    tau_s: float = 1.0            # time constant of the moving average over probabilities
    switch_margin: float = 0.10   # a new genre must lead the current one by this much
    # Evidence rule for switching styles (used when switch_evidence > 0, replacing the
    # margin rule; the first style after silence is still named from the moving average).
    # Each window adds log(p_new / p_current), capped at +-evidence_cap, to a running sum
    # per rival style that never drops below zero (a CUSUM change detector); the reading
    # moves when one sum reaches switch_evidence. A few confused windows then cost nothing
    # unless they agree and persist, while a real change builds up evidence at every hop.
    switch_evidence: float = 0.0  # nats; 0 = margin rule
    evidence_cap: float = 2.0     # nats per window, so one confident window cannot switch
    # Music starts when smoothed p(none) falls below music_on. With tau 1 s and a 0.5 s hop
    # one window moves the average 39% of the way, so from any room reading above 0.57 a
    # single stray window cannot start the music: it takes two in a row (1 s).
    music_on: float = 0.35
    music_off: float = 0.60       # smoothed p(none) above this: music stops
    level_floor_db: float = -65.0  # below this window level (dBFS) the room is silent

    @classmethod
    def from_manifest(cls, m: dict) -> Smoothing:
        d = m.get("listener", {})
        return cls(**{k: float(d[k]) for k in cls.__dataclass_fields__ if k in d})


class Listener:
    """Feed audio at the engine's rate; get one GenreEstimate per hop."""

    def __init__(self, engine: Engine, smoothing: Smoothing | None = None,
                 calibration: Calibration | None = None) -> None:
        b: Bundle = engine.bundle
        self.engine = engine
        self.bundle = b
        self.fe = b.frontend
        self.smoothing = smoothing or Smoothing.from_manifest(b.manifest)
        self.labels = list(b.labels)
        self._none_idx = self.labels.index(NONE) if NONE in self.labels else None
        self._genre_idx = [self.labels.index(g) for g in GENRES if g in self.labels]
        if b.hop_samples % self.fe.hop_length:
            raise ValueError("bundle hop must be a whole number of front-end frames")
        self._n_frames = b.n_frames
        self._mel = np.full((self.fe.n_mels, self._n_frames), math.log(self.fe.log_floor),
                            np.float32)  # what log_mel gives for digital silence
        self._frames_seen = 0
        # samples from the start of the next frame onwards (frame k starts at k * hop_length)
        self._pending = np.zeros(0, np.float32)
        self._heard = 0  # samples fed so far
        self._energy = np.zeros(self._n_frames, np.float32)  # mean square per frame hop
        self._since_estimate = 0
        self._hop_power = 0.0  # sum of squares of the samples since the last estimate
        self._alpha = 1.0 - math.exp(-b.hop_s / max(1e-6, self.smoothing.tau_s))
        self._smooth: np.ndarray | None = None
        self._music = False
        self._genre = NONE
        self._evidence = np.zeros(len(self.labels))  # per rival style, for the evidence rule
        self.last_engine_ms = 0.0     # engine time of the last estimate
        self.last_frontend_ms = 0.0   # front-end time accumulating towards the next estimate
        self.last_cost_ms = 0.0       # front end + engine behind the last estimate
        # the venue's calibration (appliance.listen.calibration), made for this engine only
        self.calibration: Calibration | None = None
        if calibration is not None:
            calibration.check_for(b.label, manifest_sha256(b.path), tuple(b.labels))
            self.calibration = calibration
        self.last_engine_probs: np.ndarray | None = None  # the engine's own, uncalibrated
        self.last_embedding: np.ndarray | None = None
        self.last_window_db = -120.0  # the level the silence gate judged the last window by
        # windows the engine failed on (raised, or gave NaN/inf): ignored and counted
        self.bad_windows = 0
        self.bad_in_a_row = 0
        self.last_bad = ""  # why the last bad window was bad, in words

    @property
    def time(self) -> float:
        """Audio time heard so far, in seconds."""
        return self._heard / self.fe.sample_rate

    def feed(self, samples: np.ndarray) -> list[GenreEstimate]:
        out: list[GenreEstimate] = []
        hop = self.bundle.hop_samples
        pos = 0
        while pos < len(samples):
            take = min(len(samples) - pos, hop - self._since_estimate)
            chunk = np.asarray(samples[pos:pos + take], np.float32)
            self._hop_power += float(np.dot(chunk, chunk))
            self._push(chunk)
            pos += take
            self._since_estimate += take
            if self._since_estimate >= hop:
                self._since_estimate = 0
                if self._frames_seen:
                    estimate = self._estimate()
                    if estimate is not None:
                        out.append(estimate)
        return out

    def continue_from(self, old: Listener, recent: np.ndarray) -> None:
        """Take over from ``old`` between two of its windows (an engine switch while the show
        plays): hear the last window of ``recent`` audio again, so this engine's first
        estimate is on a whole window of real sound, one hop after old's last; carry on old's
        clock; keep its reading (music gate, style, and the smoothed probabilities when the
        labels are the same), so a new engine does not read as the music stopping."""
        recent = np.asarray(recent, np.float32)[-self.bundle.window_samples:]
        self._heard = old._heard - len(recent)
        self._push(recent)
        self._since_estimate = 0
        self.last_frontend_ms = 0.0
        self._music = old._music
        if old._genre in self.labels:
            self._genre = old._genre
        if old._smooth is not None and old.labels == self.labels:
            self._smooth = old._smooth.copy()

    def _push(self, chunk: np.ndarray) -> None:
        self._heard += len(chunk)
        buf = np.concatenate([self._pending, np.asarray(chunk, np.float32)])
        fe = self.fe
        if len(buf) < fe.n_fft:
            self._pending = buf
            return
        t0 = time.perf_counter()
        new = log_mel(buf, fe)
        k = new.shape[1]
        used = k * fe.hop_length
        frames = np.lib.stride_tricks.sliding_window_view(buf[:used], fe.hop_length)[
            ::fe.hop_length]
        energy = np.mean(frames.astype(np.float32) ** 2, axis=1)
        self._pending = buf[used:]
        if k >= self._n_frames:
            self._mel[:] = new[:, -self._n_frames:]
            self._energy[:] = energy[-self._n_frames:]
        else:
            self._mel = np.roll(self._mel, -k, axis=1)
            self._mel[:, -k:] = new
            self._energy = np.roll(self._energy, -k)
            self._energy[-k:] = energy
        self._frames_seen += k
        self.last_frontend_ms += (time.perf_counter() - t0) * 1000

    def _infer(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The engine's answer for the current window, or None when it raised or answered
        NaN/inf: that window is ignored (the reading stays where it was) and counted."""
        try:
            probs, emb = self.engine.infer(self._window()[None, None])
            p = np.asarray(probs, np.float64)[0]
            e = np.asarray(emb)[0]
            if np.all(np.isfinite(p)) and np.all(np.isfinite(e)):
                self.bad_in_a_row = 0
                return p, e
            why = "returned NaN or infinity"
        except Exception as error:  # any runtime or driver failure; the show goes on
            why = f"raised {type(error).__name__}: {error}"[:200]
        self.bad_windows += 1
        self.bad_in_a_row += 1
        self.last_bad = why
        self._hop_power = 0.0
        self.last_frontend_ms = 0.0
        return None

    # What the engine hears before a whole window has been heard (module docstring);
    # training.experiments.warm_up compares other answers by overriding these four.
    def _heard_frames(self) -> int:
        return min(self._frames_seen, self._n_frames)

    def _window(self) -> np.ndarray:
        """The engine's input: the rolling window, or while it is not yet whole, the frames
        heard so far repeated (the newest frames last, as in a whole window)."""
        k = self._heard_frames()
        if k >= self._n_frames:
            return self._mel
        return np.tile(self._mel[:, -k:], (1, -(-self._n_frames // k)))[:, -self._n_frames:]

    def _window_level_db(self) -> float:
        heard = self._energy[-self._heard_frames():]
        return 10 * math.log10(float(heard.mean()) + 1e-12)

    def _first_average(self, p: np.ndarray) -> np.ndarray:
        """Where the moving average starts: "no music", when the engine can say it."""
        if self._none_idx is None:
            return p
        quiet = np.zeros_like(p)
        quiet[self._none_idx] = 1.0
        return quiet

    def _may_start_music(self) -> bool:
        return True

    def _estimate(self) -> GenreEstimate | None:
        t0 = time.perf_counter()
        answer = self._infer()
        if answer is None:
            return None
        p, emb0 = answer
        self.last_engine_probs, self.last_embedding = p, emb0
        if self.calibration is not None:
            p = self.calibration.apply(p, emb0)
        self.last_engine_ms = (time.perf_counter() - t0) * 1000  # calibration included
        level_db = self._window_level_db()
        self.last_window_db = level_db
        if level_db < self.smoothing.level_floor_db and self._none_idx is not None:
            p = np.zeros_like(p)
            p[self._none_idx] = 1.0
        if self._smooth is None:
            self._smooth = self._first_average(p)
        self._smooth = self._smooth + self._alpha * (p - self._smooth)
        s = self._smooth
        sm = self.smoothing
        if self._none_idx is not None:
            p_none = s[self._none_idx]
            if self._music and p_none > sm.music_off:
                self._music = False
            elif not self._music and p_none < sm.music_on and self._may_start_music():
                self._music = True
        else:
            self._music = True
        if not self._music:
            self._genre = NONE
            self._evidence[:] = 0.0
        else:
            self._genre = self._next_genre(p, s)
        confidence = float(s[self.labels.index(self._genre)]) if self._genre in self.labels else 0.0
        self.last_frontend_ms, fe_ms = 0.0, self.last_frontend_ms
        self.last_cost_ms = fe_ms + self.last_engine_ms
        hop_db = round(dbfs(self._hop_power / self.bundle.hop_samples), 2)  # the meter
        self._hop_power = 0.0
        return GenreEstimate(
            t=self.time, probs={lab: float(v) for lab, v in zip(self.labels, s, strict=True)},
            music_present=self._music, genre=self._genre, confidence=confidence,
            raw_probs={lab: float(v) for lab, v in zip(self.labels, p, strict=True)},
            level_db=hop_db)

    def _next_genre(self, p: np.ndarray, s: np.ndarray) -> str:
        """The style to show while music plays, from raw ``p`` and smoothed ``s``."""
        sm = self.smoothing
        cur = self.labels.index(self._genre) if self._genre in self.labels else None
        if cur is None or cur == self._none_idx or sm.switch_evidence <= 0:
            best = max(self._genre_idx, key=lambda i: s[i])
            first = cur is None or cur == self._none_idx  # as fast as the average allows
            if first or s[best] > s[cur] + sm.switch_margin:
                self._evidence[:] = 0.0
                return self.labels[best]
            return self._genre
        # the current style's own step is log(1) = 0, so its sum stays at zero by itself
        step = np.log(p + 1e-6) - math.log(float(p[cur]) + 1e-6)
        step = np.clip(step, -sm.evidence_cap, sm.evidence_cap)
        self._evidence = np.maximum(0.0, self._evidence + step)
        if self._none_idx is not None:
            self._evidence[self._none_idx] = 0.0  # music stopping is the gate's job
        rival = int(np.argmax(self._evidence))
        if self._evidence[rival] >= sm.switch_evidence:
            self._evidence[:] = 0.0
            return self.labels[rival]
        return self._genre
