"""The ``none`` class: what a stage mic hears when nobody plays.

Kinds: speech (espeak-ng, several voices, in a room), applause, room noise, mains hum,
near-silence, knocks and page turns. Each clip is 16 kHz mono float32, seeded. Train and val
use disjoint seeds and disjoint sentences (``split`` argument).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from training.render import (
    RATE,
    _fft_filter,
    colored_noise,
    hum,
    mic_eq,
    read_wav,
    resample,
    room_ir,
)

KINDS: tuple[str, ...] = ("speech", "applause", "room", "hum", "silence", "knocks")

VOICES = ("en", "en-us", "en+m3", "en+f3", "en+f4", "en-gb-x-rp", "de", "fr", "es", "it")

_SENTENCES = {
    "train": [
        "Good evening everyone, and welcome to tonight's performance.",
        "Please switch off your mobile phones before the concert begins.",
        "Could the piano technician come to the stage, please.",
        "We will take a short break of fifteen minutes after the first half.",
        "Thank you all for coming, the bar at the back is open.",
        "Check, check, one two, one two, is this microphone on?",
        "The next piece was written in a small town in the mountains.",
        "Let me tell you a little about how this film was made.",
        "Can everyone at the back hear me? Raise your hand if not.",
        "Tickets for next week are available at the front desk.",
        "Our pianist tonight has travelled a long way to be here.",
        "Is the projector ready? We are waiting for the lights.",
    ],
    "val": [
        "Ladies and gentlemen, the show will start in five minutes.",
        "Please take your seats, the performance is about to begin.",
        "I would like to thank the organisers for inviting us tonight.",
        "Where did you park the car? I think it was near the station.",
        "The film you are about to see has been restored last year.",
        "Let's have a big round of applause for the musicians.",
    ],
}


def _norm(x: np.ndarray) -> np.ndarray:
    return (x / (np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-9)).astype(np.float32)


def speech(seconds: float, rng: np.random.Generator, *, split: str = "train") -> np.ndarray:
    """Sentences spoken by espeak-ng voices (varied pitch and speed), with pauses."""
    n = int(seconds * RATE)
    out = np.zeros(n, dtype=np.float32)
    pos = int(rng.uniform(0.0, 1.0) * RATE)
    sentences = _SENTENCES["val" if split == "val" else "train"]
    with tempfile.TemporaryDirectory(prefix="speech-") as td:
        wav = Path(td) / "s.wav"
        while pos < n:
            text = str(rng.choice(sentences))
            cmd = ["espeak-ng", "-v", str(rng.choice(VOICES)),
                   "-s", str(int(rng.uniform(130, 190))),
                   "-p", str(int(rng.uniform(20, 80))), "-w", str(wav), text]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            x, r = read_wav(wav)
            x = resample(x, r, RATE)
            x = _norm(x) * rng.uniform(0.5, 1.5)
            m = min(len(x), n - pos)
            out[pos:pos + m] += x[:m]
            pos += m + int(rng.uniform(0.3, 2.5) * RATE)
    return out


def applause(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Many short filtered noise bursts (claps) with a swell and a decay."""
    n = int(seconds * RATE)
    out = np.zeros(n, dtype=np.float32)
    rate = rng.uniform(15.0, 120.0)  # claps per second (a few people .. a crowd)
    onset = rng.uniform(0.0, seconds * 0.3)
    length = rng.uniform(2.0, seconds)
    n_claps = int(rate * length)
    times = onset + rng.uniform(0.0, length, n_claps)
    clap_len = int(0.03 * RATE)
    env = np.exp(-np.arange(clap_len) / (0.004 * RATE)).astype(np.float32)
    for t in times:
        i = int(t * RATE)
        if i + clap_len >= n:
            continue
        b = rng.standard_normal(clap_len).astype(np.float32) * env
        b = np.diff(b, prepend=0.0) if rng.random() < 0.5 else b  # brighter claps
        rel = (t - onset) / length
        out[i:i + clap_len] += b * rng.uniform(0.3, 1.0) * np.sin(np.pi * min(rel, 1.0)) ** 0.5
    return out


def room(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Ventilation rumble, hiss and a faint murmur of a crowd (babble-like modulated noise)."""
    n = int(seconds * RATE)
    x = colored_noise(n, rng, rng.uniform(1.0, 2.0))
    x += rng.uniform(0.05, 0.5) * colored_noise(n, rng, 0.0)
    murmur = colored_noise(n, rng, 1.0)
    mod = np.abs(colored_noise(n, rng, 2.0))
    x += rng.uniform(0.0, 0.7) * murmur * mod / (mod.max() + 1e-9)
    return x


def hum_noise(seconds: float, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * RATE)
    return hum(n, rng) + rng.uniform(0.01, 0.3) * colored_noise(n, rng, rng.uniform(0.0, 1.5))


def silence(seconds: float, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * RATE)
    return colored_noise(n, rng, rng.uniform(0.0, 2.0)) * 10 ** (rng.uniform(-90.0, -55.0) / 20)


def knocks(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Knocks and thumps (decaying low resonances) and page turns (swishes of noise)."""
    n = int(seconds * RATE)
    out = 0.02 * colored_noise(n, rng, 1.5)
    t = np.arange(int(0.4 * RATE)) / RATE
    for _ in range(int(rng.integers(2, 4 + int(seconds)))):
        i = int(rng.uniform(0.0, seconds - 0.5) * RATE)
        if rng.random() < 0.6:  # knock / thump / chair
            f = rng.uniform(60.0, 400.0)
            k = np.sin(2 * np.pi * f * t) * np.exp(-t / rng.uniform(0.01, 0.08))
            k += 0.3 * rng.standard_normal(len(t)) * np.exp(-t / 0.005)
        else:  # page turn: a band of noise swelling and fading
            m = int(rng.uniform(0.15, 0.4) * RATE)
            k = np.diff(rng.standard_normal(m), prepend=0.0) * np.hanning(m) * 0.3
        out[i:i + len(k)] += (k * rng.uniform(0.2, 1.0))[: n - i]
    return out


def make_none(kind: str, seconds: float, seed: int, *, split: str = "train",
              augment: bool = True) -> np.ndarray:
    """One ``none`` clip of ``kind`` at 16 kHz, optionally through a room and a mic with
    background noise, at a random level."""
    rng = np.random.default_rng(seed)
    if kind == "speech":
        x = speech(seconds, rng, split=split)
    elif kind == "applause":
        x = applause(seconds, rng)
    elif kind == "room":
        x = room(seconds, rng)
    elif kind == "hum":
        x = hum_noise(seconds, rng)
    elif kind == "silence":
        x = silence(seconds, rng)
    elif kind == "knocks":
        x = knocks(seconds, rng)
    else:
        raise ValueError(f"unknown none kind {kind!r}; known: {KINDS}")
    x = np.asarray(x, dtype=np.float32)
    if not augment or kind == "silence":
        return np.clip(x, -1.0, 1.0).astype(np.float32)
    if kind in ("speech", "applause", "knocks"):
        x = _fft_filter(x, room_ir(rng), mic_eq(rng))
    x = _norm(x)
    bg = colored_noise(len(x), rng, rng.uniform(0.0, 2.0))
    if rng.random() < 0.5:
        bg = bg + rng.uniform(0.1, 1.0) * hum(len(x), rng)
    x = x + _norm(bg) * 10 ** (-rng.uniform(10.0, 40.0) / 20)
    level = rng.uniform(-55.0, -12.0)
    x = _norm(x) * 10 ** (level / 20)
    return np.clip(x, -1.0, 1.0).astype(np.float32)
