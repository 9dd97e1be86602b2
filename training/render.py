"""Performance MIDI -> audio through several piano timbres, then "a stage mic in a room".

Rendering is Debian's ``fluidsynth`` (offline, faster than real time). Every clip is rendered
at a randomly drawn source rate and resampled to 16 kHz with the same libswresample path the
appliance uses, then augmented in numpy: a synthetic room (exponentially decaying noise
impulse response of varied size), mic colour and distance (high-pass, low-pass, a presence
bump), background noise and mains hum, gain from quiet to hot, and occasional clipping.
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.audio.resample import StreamResampler
from training.perform import Performance, write_midi

RATE = 16000
SOURCE_RATES = (22050, 32000, 44100, 48000)


@dataclass(frozen=True)
class Timbre:
    name: str
    soundfont: str
    program: int
    gain: float


TIMBRES: tuple[Timbre, ...] = (
    Timbre("fluidr3-grand", "/usr/share/sounds/sf2/FluidR3_GM.sf2", 0, 0.5),
    Timbre("fluidr3-bright", "/usr/share/sounds/sf2/FluidR3_GM.sf2", 1, 0.5),
    Timbre("fluidr3-honkytonk", "/usr/share/sounds/sf2/FluidR3_GM.sf2", 3, 0.45),
    Timbre("timgm6mb-grand", "/usr/share/sounds/sf2/TimGM6mb.sf2", 0, 0.6),
    Timbre("musescore-grand", "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3", 0, 0.6),
)


def timbre(name: str) -> Timbre:
    for t in TIMBRES:
        if t.name == name:
            return t
    raise KeyError(f"unknown timbre {name!r}; known: {[t.name for t in TIMBRES]}")


def read_wav(path: Path | str) -> tuple[np.ndarray, int]:
    """16-bit PCM WAV -> float32 mono in [-1, 1], rate."""
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        ch = w.getnchannels()
        width = w.getsampwidth()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError(f"{path}: want 16-bit PCM, got {8 * width}-bit")
    x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if ch > 1:
        x = x.reshape(-1, ch).mean(axis=1)
    return x, rate


def resample(x: np.ndarray, in_rate: int, out_rate: int = RATE) -> np.ndarray:
    """Whole-signal resampling with the appliance's own resampler (libswresample)."""
    if in_rate == out_rate:
        return x.astype(np.float32, copy=False)
    r = StreamResampler(in_rate, out_rate)
    y = np.concatenate([r.process(x.astype(np.float32, copy=False)), r.flush()])
    return y.astype(np.float32, copy=False)


def render_midi(midi_path: Path | str, tb: Timbre, rate: int) -> np.ndarray:
    """fluidsynth -> float32 mono at ``rate`` (the synth's own rate, not resampled)."""
    with tempfile.TemporaryDirectory(prefix="render-") as td:
        wav = Path(td) / "out.wav"
        cmd = ["fluidsynth", "-ni", "-q", "-T", "wav", "-O", "s16", "-F", str(wav),
               "-r", str(rate), "-g", str(tb.gain), "-o", "synth.reverb.active=0",
               "-o", "synth.chorus.active=0",
               # load only the samples the piano preset plays: the same audio, byte for byte,
               # and MuseScore's compressed sf3 loads in 2.3 s instead of 3.6 s per clip
               "-o", "synth.dynamic-sample-loading=1", tb.soundfont, str(midi_path)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        x, got = read_wav(wav)
    if got != rate:
        raise RuntimeError(f"fluidsynth wrote {got} Hz, asked for {rate}")
    return x


def render_performance(perf: Performance, tb: Timbre, *, source_rate: int = 44100,
                       out_rate: int = RATE) -> np.ndarray:
    """Performance -> dry float32 mono at ``out_rate`` (16 kHz) via ``source_rate``."""
    with tempfile.TemporaryDirectory(prefix="perf-") as td:
        mid = Path(td) / "perf.mid"
        write_midi(perf, mid, program=tb.program)
        x = render_midi(mid, tb, source_rate)
    return resample(x, source_rate, out_rate)


# --------------------------------------------------------------------------- room / mic


def _fft_filter(x: np.ndarray, ir: np.ndarray | None, gain_fn: np.ndarray | None,
                rate: int = RATE) -> np.ndarray:
    n = len(x) + (len(ir) if ir is not None else 0)
    nfft = 1 << int(np.ceil(np.log2(max(n, 2))))
    spec = np.fft.rfft(x, nfft)
    if ir is not None:
        spec *= np.fft.rfft(ir, nfft)
    if gain_fn is not None:
        f = np.linspace(0.0, rate / 2, len(spec))
        spec *= np.interp(f, gain_fn[0], gain_fn[1])
    return np.fft.irfft(spec, nfft)[: len(x)].astype(np.float32)


def room_ir(rng: np.random.Generator, *, rt60: float | None = None,
            rate: int = RATE) -> np.ndarray:
    """Synthetic room impulse response at ``rate``: direct sound, a few early reflections and
    an exponentially decaying noise tail whose highs die faster (air and wall absorption)."""
    rt60 = float(rng.uniform(0.2, 1.8)) if rt60 is None else rt60
    n = int(rate * min(rt60 * 1.2, 2.5))
    t = np.arange(n) / rate
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    # darker tail: blend with a smoothed copy whose share grows with time
    k = 8
    smooth = np.convolve(tail, np.ones(k) / k, mode="same")
    mix = np.clip(t / rt60, 0.0, 1.0)
    tail = (1 - mix) * tail + mix * smooth
    pre = int(rate * rng.uniform(0.005, 0.03))  # pre-delay before the diffuse tail
    tail[:pre] = 0.0
    ir = np.zeros(n)
    ir[0] = 1.0
    for _ in range(rng.integers(2, 7)):
        d = int(rate * rng.uniform(0.002, 0.04))
        ir[d] += rng.uniform(-0.5, 0.5)
    wet = rng.uniform(0.05, 0.6)  # distance: far mics hear more room
    tail *= wet / (np.sqrt(np.sum(tail**2)) + 1e-9)
    ir += tail
    return (ir / np.sqrt(np.sum(ir**2))).astype(np.float32)


def mic_eq(rng: np.random.Generator) -> np.ndarray:
    """A random mic/distance frequency response as (freqs, gains) for ``_fft_filter``."""
    f = np.array([0, 30, 60, 120, 250, 1000, 2500, 4000, 6000, 8000], dtype=float)
    hp = rng.uniform(40.0, 250.0)  # mic / stand rolloff
    lp = rng.uniform(3500.0, 9000.0)  # distance, cheap mic
    g = 1.0 / np.sqrt(1.0 + (hp / np.maximum(f, 1.0)) ** 4)
    g *= 1.0 / np.sqrt(1.0 + (f / lp) ** 4)
    g *= 10 ** (rng.uniform(-4, 6) / 20 * np.exp(-0.5 * ((f - 3000) / 1500) ** 2))  # presence
    g *= 10 ** (rng.uniform(-3, 5) / 20 * np.exp(-0.5 * ((f - 200) / 120) ** 2))  # boom
    return np.stack([f, g])


def colored_noise(n: int, rng: np.random.Generator, slope: float) -> np.ndarray:
    """Noise with power ∝ 1/f**slope (0 white, 1 pink, 2 brown), unit RMS."""
    nfft = 1 << int(np.ceil(np.log2(max(n, 2))))
    spec = np.fft.rfft(rng.standard_normal(nfft))
    f = np.arange(len(spec), dtype=float)
    f[0] = 1.0
    spec /= f ** (slope / 2)
    x = np.fft.irfft(spec, nfft)[:n]
    return (x / (np.std(x) + 1e-12)).astype(np.float32)


def hum(n: int, rng: np.random.Generator, rate: int = RATE) -> np.ndarray:
    """Mains hum (50 or 60 Hz) with a few harmonics, unit-ish RMS."""
    f0 = 50.0 if rng.random() < 0.5 else 60.0
    t = np.arange(n) / rate
    x = np.zeros(n)
    for h in range(1, 8):
        x += rng.uniform(0.0, 1.0 / h) * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.3))
    return (x / (np.std(x) + 1e-12)).astype(np.float32)


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12))


def stage_mic(x: np.ndarray, rng: np.random.Generator, *, strength: float = 1.0,
              rate: int = RATE) -> np.ndarray:
    """Room + mic + noise + gain augmentation of a dry signal at ``rate`` (16 kHz for
    training). ``strength`` < 1 gives the lighter treatment used for demo audio."""
    x = x.astype(np.float32)
    if rms_db(x) < -100:
        x = x + 1e-6 * rng.standard_normal(len(x)).astype(np.float32)
    ir = room_ir(rng, rt60=float(rng.uniform(0.2, 0.5 + 1.3 * strength)), rate=rate)
    y = _fft_filter(x, ir, mic_eq(rng) if rng.random() < 0.5 + 0.5 * strength else None,
                    rate=rate)
    y /= np.sqrt(np.mean(y**2)) + 1e-9
    n = len(y)
    snr = rng.uniform(12.0, 45.0) + (1.0 - strength) * 35.0  # dB music-to-noise
    noise = colored_noise(n, rng, float(rng.uniform(0.0, 2.0)))
    if rng.random() < 0.6:
        noise = noise + rng.uniform(0.1, 1.0) * hum(n, rng, rate)
    y = y + noise / (np.std(noise) + 1e-9) * 10 ** (-snr / 20)
    level = rng.uniform(-40.0, -10.0) if strength >= 1 else rng.uniform(-27.0, -24.0)
    y *= 10 ** (level / 20) / (np.sqrt(np.mean(y**2)) + 1e-9)
    if strength >= 1 and rng.random() < 0.15:  # a hot input stage
        drive = 10 ** (rng.uniform(6.0, 20.0) / 20)
        y = np.clip(y * drive, -1.0, 1.0) if rng.random() < 0.5 else np.tanh(y * drive)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def render_clip(perf: Performance, tb: Timbre, seed: int, *, augment: bool = True,
                strength: float = 1.0) -> np.ndarray:
    """Performance -> 16 kHz mono float32 as heard by a stage mic (random source rate)."""
    rng = np.random.default_rng(seed)
    src = int(rng.choice(SOURCE_RATES))
    x = render_performance(perf, tb, source_rate=src)
    return stage_mic(x, rng, strength=strength) if augment else x
