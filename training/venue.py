"""Audio of an unseen venue: the audio side of the dev-real evaluation set.

Everything here is chosen to lie outside what the training recipe renders, so that a score
on this audio says something about pianos, rooms, mics and noises the engine never heard:

* **Pianos** (``UNSEEN_TIMBRES``, ``render_unseen``): Debian's ``freepats`` acoustic grand
  played by ``timidity`` (training renders only soundfonts through fluidsynth), and a modal
  piano synthesised here in numpy (no samples at all). Debian's ``csound-soundfont`` was
  tried and rejected: its piano presets play the same recordings as TimGM6mb's piano (same
  sample names; waveform correlation 0.998 after 2:1 decimation), which training uses.
* **Venue** (``draw_venue``, ``apply_venue``, ``venue``): a hall, a mic and a transmission
  chain drawn from ranges beyond ``training.render.stage_mic``:

  ======================  ==================================  ===============================
  stage                   training (``render.stage_mic``)     venue (here)
  ======================  ==================================  ===============================
  room model              noise tail x exp, one decay rate,   image-like sparse reflections
                          2-6 random early taps <= 40 ms      by path length + tail decaying
                                                              per octave band
  RT60 (mid band)         0.2-1.8 s                           2.0-3.5 s (lows x1.05-1.4,
                                                              highs x0.3-0.9)
  tail / direct energy    -26 ... -4.4 dB (wet 0.05-0.6)      +3 ... +18 dB (mic far away)
  mic high-pass           40-250 Hz, 12 dB/oct                distant 260-450 Hz 18 dB/oct;
                                                              phone 300-420 Hz 24 dB/oct;
                                                              boomy 20-35 Hz
  mic low-pass            3.5-9 kHz, 12 dB/oct                phone 2.8-3.4 kHz 24 dB/oct;
                                                              distant 4-7 kHz; boomy none
  presence (2-6 kHz)      -4 ... +6 dB at 3 kHz               distant -12 ... -6 dB dip;
                                                              boomy +8 ... +12 dB at 4.5-6.5k
  boom (low mids)         -3 ... +5 dB at 200 Hz              boomy +8 ... +14 dB at 80-160 Hz
  mid bump                none                                phone +4 ... +9 dB at 1-2 kHz
  compressor / limiter    none                                75 %: thr -18 ... +6 dB re RMS,
                                                              ratio 3-20, att 1-10 ms,
                                                              rel 50-400 ms
  lossy codec             none                                50 %: AAC or MP3, 32-64 kbit/s
  noise                   coloured + hum, SNR 12-45 dB        modulated audience bed,
                                                              SNR 10-35 dB (similar)
  level (RMS)             -40 ... -10 dBFS, 15 % clipped      -45 ... -8 dBFS, lowered where
                                                              peaks would pass -0.5 dBFS
  ======================  ==================================  ===============================

* **No-music kinds** (``VENUE_NONE_KINDS``, ``make_venue_none``): crowd murmur, HVAC,
  traffic, coughs, a phone ringing, glasses and cutlery. None is one of
  ``training.nomusic.KINDS``; the crowd speaks sentences and voices nomusic never uses.

All audio is 16 kHz mono float32 and seeded: the same seed gives the same samples.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from training.perform import Performance, write_midi
from training.render import RATE, SOURCE_RATES, colored_noise, read_wav, resample, rms_db

try:  # small matrix products: BLAS threads only contend (4x slower on a busy 2-core box)
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - optional, speed only
    threadpool_limits = None

# ------------------------------------------------------------------------------ pianos

FREEPATS_CFG = "/etc/timidity/freepats.cfg"
FREEPATS_GRAND = "/usr/share/midi/freepats/Tone_000/000_Acoustic_Grand_Piano.pat"
SYNTH_RATE = 22050  # the numpy piano's own rate (partials kept below 0.45 of it)


@dataclass(frozen=True)
class UnseenTimbre:
    name: str
    renderer: str  # "timidity" or "numpy"
    samples: str | None  # the sample file it plays; None for the synthetic piano
    config: str | None = None  # timidity: the only config file it reads


UNSEEN_TIMBRES: tuple[UnseenTimbre, ...] = (
    UnseenTimbre("freepats-grand-timidity", "timidity", FREEPATS_GRAND, FREEPATS_CFG),
    UnseenTimbre("modal-synth-grand", "numpy", None),
)


def unseen_timbre(name: str) -> UnseenTimbre:
    for t in UNSEEN_TIMBRES:
        if t.name == name:
            return t
    raise KeyError(f"unknown unseen timbre {name!r}; known: {[t.name for t in UNSEEN_TIMBRES]}")


def available(name: str) -> bool:
    """Whether this machine can render ``name`` (timidity and freepats installed)."""
    tb = unseen_timbre(name)
    if tb.renderer == "numpy":
        return True
    return (shutil.which("timidity") is not None and Path(tb.config or "").is_file()
            and Path(tb.samples or "").is_file())


def timidity_command(tb: UnseenTimbre, midi: Path | str, wav: Path | str, rate: int) -> list[str]:
    """timidity with only ``tb.config`` (``-c`` replaces Debian's default config, which would
    load FluidR3_GM.sf2, a training soundfont), mono 16-bit WAV, no reverb/chorus/delay."""
    return ["timidity", "-c", str(tb.config), "-idqq", "-OwM1sl", "-s", str(rate),
            "-EFreverb=d", "-EFchorus=d", "-EFdelay=d", "-o", str(wav), str(midi)]


def _render_timidity(perf: Performance, tb: UnseenTimbre, rate: int) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="venue-tim-") as td:
        mid = Path(td) / "perf.mid"
        wav = Path(td) / "out.wav"
        write_midi(perf, mid, program=0)
        subprocess.run(timidity_command(tb, mid, wav, rate), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        x, got = read_wav(wav)
    if got != rate:
        raise RuntimeError(f"timidity wrote {got} Hz, asked for {rate}")
    return x


def _damper_times(perf: Performance, ends: np.ndarray) -> np.ndarray:
    """When each note's damper falls: at key release, or later when the sustain pedal
    (CC64 >= 64) is down then, at the next pedal release."""
    if not perf.pedal:
        return ends.copy()
    ev = sorted(perf.pedal)
    times = np.array([t for t, _ in ev])
    down = np.array([v >= 64 for _, v in ev])
    idx = np.searchsorted(times, ends, side="right") - 1
    out = ends.copy()
    for i, j in enumerate(idx):
        if j >= 0 and down[j]:
            ups = np.nonzero(~down[j + 1:])[0]
            out[i] = times[j + 1 + ups[0]] if len(ups) else np.inf
    return out


def _damped_sum(coef: np.ndarray, s: np.ndarray, n: int, block: int = 256) -> np.ndarray:
    """Re(sum_k coef_k * exp(s_k * i)) for i in 0..n-1, each component only until it has
    decayed by ~70 dB.

    A sum of damped complex exponentials is low-rank in blocks: sample ``j*block + m`` is
    ``sum_k (coef_k e^{s_k j block}) e^{s_k m}``, so a group of components costs K*block +
    K*J exponentials and one (J x K) @ (K x block) product instead of K*n sines. Components
    are grouped by lifetime (powers of two) so short-lived ones are not carried to the end.
    """
    y = np.zeros(-(-n // block) * block, dtype=np.float32)
    life = 8.0 / np.maximum(-s.real, 1e-9)  # samples to ~70 dB
    bucket = np.ceil(np.log2(np.maximum(life, block))).astype(int)
    for b in np.unique(bucket):
        sel = bucket == b
        m = min(n, int(2.0**b))
        jn = -(-m // block)
        base = _powers(np.exp(s[sel]), block)  # block x K: z^m (complex exp is slow)
        step = _powers(base[-1] * np.exp(s[sel]), jn)  # J x K: z^(j block)
        c = step * coef[sel]
        # only the real part is wanted: Re(C B) = [Re C, -Im C] @ [Re B; Im B], half the flops
        lhs = np.concatenate([c.real, -c.imag], axis=1).astype(np.float32)
        rhs = np.concatenate([base.real.T, base.imag.T], axis=0).astype(np.float32)
        y[: jn * block] += (lhs @ rhs).reshape(-1)
    return y[:n]


def _powers(z: np.ndarray, n: int) -> np.ndarray:
    """Rows z^0 .. z^(n-1) for a vector z, by running products (|z| <= 1: stable)."""
    out = np.empty((n, len(z)), dtype=np.complex128)
    out[0] = 1.0
    if n > 1:
        out[1:] = z
        np.cumprod(out, axis=0, out=out)
    return out


def synth_piano(perf: Performance, seed: int, *, rate: int = SYNTH_RATE) -> np.ndarray:
    """A modal piano in numpy: float32 mono at ``rate``.

    Per note: partials f_n = n f0 sqrt(1 + B n^2) / sqrt(1 + B) (inharmonic, fundamental in
    tune), B rising from ~1.6e-4 in the bass to ~2e-2 at the top; one to three strings per
    note detuned by fractions of a cent (beating); each string-partial has a prompt and an
    aftersound component (two-stage decay); decay is faster for higher notes and higher
    partials; brightness grows with velocity; the hammer position notches partials; a short
    hammer-noise thump; dampers (none above F6) stop a note at key release unless the
    sustain pedal holds it; a soft soundboard of a few low modes colours the mix. ``seed``
    draws the instrument (inharmonicity scale, detuning, hammer position, aftersound) and
    the per-note phases.
    """
    limit = threadpool_limits(1, "blas") if threadpool_limits else contextlib.nullcontext()
    with limit:
        return _synth_piano(perf, seed, rate)


def _synth_piano(perf: Performance, seed: int, rate: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    b_scale = rng.uniform(0.7, 1.4)
    detune_cents = rng.uniform(0.2, 1.0)
    hammer_pos = rng.uniform(1 / 9, 1 / 7)
    after_level = rng.uniform(0.12, 0.3)
    after_slower = rng.uniform(2.0, 4.0)
    bright = rng.uniform(0.8, 1.25)
    damp_t60 = rng.uniform(0.12, 0.35)
    hi = 0.45 * rate
    notes = perf.notes
    last = max([n.end for n in notes] + [t for t, _ in perf.pedal] + [0.0])
    total = int((last + 1.0) * rate)
    out = np.zeros(total + rate, dtype=np.float32)
    thumps = np.zeros_like(out)
    if not notes:
        return out[:total]
    starts = np.array([n.start for n in notes])
    ends = np.array([n.end for n in notes])
    dampers = _damper_times(perf, ends)
    thump_len = int(0.025 * rate)
    tt = np.arange(thump_len) / rate
    for note, t0, td in zip(notes, starts, dampers, strict=True):
        p = note.pitch
        v = note.velocity / 127.0
        f0 = 440.0 * 2.0 ** ((p - 69) / 12)
        b = b_scale * 10 ** (-3.4 + 0.035 * max(p - 60, 0) - 0.01 * max(60 - p, 0))
        nmax = min(60, int(hi / f0))
        if nmax < 1:
            continue
        n = np.arange(1, nmax + 1, dtype=float)
        fn = n * f0 * np.sqrt(1 + b * n**2) / np.sqrt(1 + b)
        keep = fn < hi
        n, fn = n[keep], fn[keep]
        fc = bright * (500.0 + 5000.0 * v**2)  # velocity -> brightness
        amp = (np.abs(np.sin(np.pi * n * hammer_pos)) + 0.05) / n**0.8
        amp /= 1.0 + (fn / fc) ** 2
        amp /= np.sqrt(1.0 + (90.0 / fn) ** 2)  # the soundboard radiates little deep bass
        # loudness: velocity^1.8, slightly softer upwards (-0.1 dB per semitone)
        amp *= v**1.8 * 10 ** (-0.005 * (p - 60)) / np.sqrt(np.sum(amp**2))
        # fundamental's aftersound T60: 25 s at A0 down to 5 s at C8; partials faster
        t60_after = 25.0 * (5.0 / 25.0) ** ((p - 21) / 87)
        sig_after = 6.91 / t60_after + 2e-4 * fn + 2.5e-7 * fn**2
        sig_prompt = sig_after * after_slower
        ns = 1 if p < 31 else (2 if p < 45 else 3)
        cents = np.concatenate([[0.0], rng.normal(0.0, detune_cents, ns - 1)])
        ratio = 2.0 ** (cents / 1200)
        f_all = (fn[None, :] * ratio[:, None]).reshape(-1)  # strings x partials
        a_all = np.tile(amp, ns) / ns
        ph = np.tile(np.exp(1j * rng.uniform(0, 2 * np.pi, len(fn))), ns)  # struck together
        sig = np.concatenate([np.tile(sig_prompt, ns), np.tile(sig_after, ns)])
        f2 = np.concatenate([f_all, f_all])
        coef = np.concatenate([a_all * (1 - after_level) * ph, a_all * after_level * ph])
        alive = np.abs(coef) > 1e-3 * np.abs(coef).max()  # -60 dB
        sig, f2, coef = sig[alive], f2[alive], coef[alive]
        s = (-sig + 2j * np.pi * f2) / rate
        i0 = int(t0 * rate)
        room = total - i0
        if room <= 0:
            continue
        ring = int(rate * 7.0 / sig.min())  # ~60 dB on the slowest component
        if p >= 89:  # no dampers in the top octave and a half
            td = np.inf
        n1 = min(room, ring, max(1, int((td - t0) * rate)) if np.isfinite(td) else room)
        seg = _damped_sum(coef, s, n1)
        if n1 < room and n1 < ring:  # damper falls: every mode dies within a few tenths
            n2 = min(room - n1, int(rate * damp_t60 * 1.2))
            coef2 = coef * np.exp(s * n1)
            s2 = s - (6.91 / damp_t60) * (1 + 0.3 * np.log2(f2 / f0 + 1)) / rate
            seg = np.concatenate([seg, _damped_sum(coef2, s2, n2)])
        ramp = min(len(seg), 24)
        seg[:ramp] *= np.linspace(0.0, 1.0, ramp, dtype=np.float32)
        out[i0:i0 + len(seg)] += seg
        # hammer thump: a few ms of noise, brighter and louder when struck harder
        burst = rng.standard_normal(thump_len) * np.exp(-tt / rng.uniform(0.002, 0.005))
        if v < 0.6:
            burst = np.convolve(burst, np.ones(4) / 4, mode="same")
        thumps[i0:i0 + thump_len] += (0.04 * v**2 * burst).astype(np.float32)[: total - i0]
    y = out[:total] + _soundboard(thumps[:total], rng, rate)
    y = y + 0.25 * _soundboard(y, rng, rate)
    peak = float(np.max(np.abs(y)))
    y *= 0.3 if peak < 1e-9 else min(0.3, 0.9 / peak)  # fixed gain, loud passages kept in range
    return y.astype(np.float32)


def _soundboard(x: np.ndarray, rng: np.random.Generator, rate: int) -> np.ndarray:
    """``x`` through a few damped low modes (soundboard and case), unit-ish gain."""
    n = int(0.15 * rate)
    t = np.arange(n) / rate
    ir = np.zeros(n)
    for _ in range(8):
        f = rng.uniform(80.0, 600.0)
        tau = rng.uniform(0.01, 0.05)
        ir += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * f * t) * np.exp(-t / tau)
    ir /= np.sqrt(np.sum(ir**2)) + 1e-12
    nfft = 1 << int(np.ceil(np.log2(len(x) + n)))
    y = np.fft.irfft(np.fft.rfft(x, nfft) * np.fft.rfft(ir, nfft), nfft)[: len(x)]
    return y.astype(np.float32)


def render_unseen(perf: Performance, name: str, seed: int) -> np.ndarray:
    """Performance -> dry 16 kHz mono float32 through an unseen piano, via a seeded source
    rate and the same libswresample path as ``training.render``."""
    tb = unseen_timbre(name)
    rng = np.random.default_rng(seed)
    if tb.renderer == "timidity":
        src = int(rng.choice(SOURCE_RATES))
        x = _render_timidity(perf, tb, src)
    elif tb.renderer == "numpy":
        src = SYNTH_RATE
        x = synth_piano(perf, int(rng.integers(2**31)), rate=src)
    else:  # pragma: no cover - the table above is the only source of renderers
        raise ValueError(f"unknown renderer {tb.renderer!r}")
    return resample(x, src, RATE)


# ------------------------------------------------------------------------------ venue

TRAINING_RT60_MAX = 1.8  # render.room_ir's upper draw
RT60_RANGE = (2.0, 3.5)
LEVEL_RANGE = (-45.0, -8.0)
PEAK_CEILING = 10 ** (-0.5 / 20)
MICS = ("distant", "telephone", "boomy")
CODECS = ("aac", "mp3")
_BAND_EDGES = (0.0, 177.0, 354.0, 707.0, 1414.0, 2828.0, 5657.0, RATE / 2)  # octaves 125-8k


@dataclass(frozen=True)
class Venue:
    """One drawn venue: the impulse response and everything the chain does after it."""

    rt60: float  # mid-band (500 Hz-1 kHz) RT60 of the tail, s
    ir: np.ndarray  # 16 kHz impulse response (direct sound at sample 0)
    mic: str
    eq: np.ndarray  # (freqs, gains) for the mic
    snr_db: float
    compressor: tuple[float, float, float, float] | None  # thr dB re RMS, ratio, att s, rel s
    codec: tuple[str, int] | None  # (codec, bit/s)
    level_db: float


def venue_ir(rng: np.random.Generator, rt60: float | None = None) -> np.ndarray:
    """A hall impulse response unlike ``render.room_ir``: the direct sound from a distant
    source, sparse early reflections placed by path length (delay = extra path / c, gain =
    distance / path x wall reflectance), and a diffuse tail whose decay is set per octave
    band (long lows, short highs), louder than the direct sound (+3 ... +18 dB)."""
    rt60 = float(rng.uniform(*RT60_RANGE)) if rt60 is None else rt60
    c = 343.0
    d = rng.uniform(6.0, 25.0)  # source to mic, m
    factors = np.array([rng.uniform(1.1, 1.4), rng.uniform(1.05, 1.25), 1.0, 1.0,
                        rng.uniform(0.75, 0.9), rng.uniform(0.5, 0.7), rng.uniform(0.3, 0.5)])
    band_rt = rt60 * factors
    n = int(RATE * min(1.25 * band_rt.max(), 5.5))
    t = np.arange(n) / RATE
    # diffuse tail: one noise, split into octave bands with complementary raised-cosine
    # masks, each band decaying at its own rate
    noise = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    lf = np.log2(np.maximum(f, 1.0))
    centres = np.log2([125, 250, 500, 1000, 2000, 4000, 8000])
    tail = np.zeros(n)
    for k in range(len(centres)):
        w = np.clip(1.0 - np.abs(lf - centres[k]), 0.0, 1.0)  # triangles in log f, sum to 1
        if k == 0:
            w[lf <= centres[0]] = 1.0
        if k == len(centres) - 1:
            w[lf >= centres[-1]] = 1.0
        band = np.fft.irfft(noise * np.sin(0.5 * np.pi * w) ** 2, n)
        tail += band * np.exp(-6.91 * t / band_rt[k]) / np.sqrt(2.0) ** k  # pinkish start
    pre = int(RATE * (rng.uniform(15.0, 40.0) / 1000 + d / c * 0.3))
    build = int(RATE * rng.uniform(0.02, 0.06))
    env = np.clip((np.arange(n) - pre) / max(build, 1), 0.0, 1.0)
    tail *= env
    early = np.zeros(n)
    for _ in range(int(rng.integers(8, 21))):
        extra = rng.uniform(1.0, 35.0)  # m of extra path
        i = int(RATE * extra / c)
        early[i] += (d / (d + extra)) * rng.uniform(0.5, 0.85) * rng.choice([-1.0, 1.0])
    tail_db = rng.uniform(3.0, 18.0)
    tail *= 10 ** (tail_db / 20) / (np.sqrt(np.sum(tail**2)) + 1e-12)
    ir = early + tail
    ir[0] += 1.0
    return (ir / np.sqrt(np.sum(ir**2))).astype(np.float32)


def schroeder_rt60(ir: np.ndarray, rate: int = RATE, *, lo_db: float = -5.0,
                   hi_db: float = -35.0) -> float:
    """RT60 from Schroeder backward integration: a line fitted to the energy decay curve
    between ``lo_db`` and ``hi_db`` (T30), extrapolated to 60 dB."""
    e = np.cumsum(np.square(ir.astype(np.float64))[::-1])[::-1]
    edc = 10 * np.log10(e / e[0] + 1e-300)
    sel = np.nonzero((edc <= lo_db) & (edc >= hi_db))[0]
    if len(sel) < 2:
        raise ValueError("impulse response too short for a T30 estimate")
    t = sel / rate
    slope = np.polyfit(t, edc[sel], 1)[0]
    return float(-60.0 / slope)


def _mic_eq(mic: str, rng: np.random.Generator) -> np.ndarray:
    f = np.linspace(0.0, RATE / 2, 257)
    fs = np.maximum(f, 1.0)

    def bell(db: float, fc: float, width: float) -> np.ndarray:
        return 10 ** (db / 20 * np.exp(-0.5 * ((f - fc) / width) ** 2))

    if mic == "distant":
        hp = rng.uniform(260.0, 450.0)
        lp = rng.uniform(4000.0, 7000.0)
        g = 1 / np.sqrt(1 + (hp / fs) ** 6) / np.sqrt(1 + (f / lp) ** 4)
        g *= bell(rng.uniform(-12.0, -6.0), rng.uniform(2000.0, 4000.0), 900.0)
    elif mic == "telephone":
        hp = rng.uniform(300.0, 420.0)
        lp = rng.uniform(2800.0, 3400.0)
        g = 1 / np.sqrt(1 + (hp / fs) ** 8) / np.sqrt(1 + (f / lp) ** 8)
        g *= bell(rng.uniform(4.0, 9.0), rng.uniform(1000.0, 2000.0), 400.0)
    elif mic == "boomy":
        hp = rng.uniform(20.0, 35.0)
        g = 1 / np.sqrt(1 + (hp / fs) ** 4)
        g *= bell(rng.uniform(8.0, 14.0), rng.uniform(80.0, 160.0), 60.0)
        g *= bell(rng.uniform(8.0, 12.0), rng.uniform(4500.0, 6500.0), 800.0)
    else:
        raise ValueError(f"unknown mic {mic!r}; known: {MICS}")
    g[0] = 0.0  # no DC through any mic
    return np.stack([f, g])


def draw_venue(rng: np.random.Generator) -> Venue:
    """Draw a venue (hall, mic, chain) from the ranges in the module docstring."""
    rt60 = float(rng.uniform(*RT60_RANGE))
    ir = venue_ir(rng, rt60)
    mic = str(rng.choice(MICS))
    eq = _mic_eq(mic, rng)
    snr = float(rng.uniform(10.0, 35.0))
    comp = None
    if rng.random() < 0.75:
        comp = (float(rng.uniform(-18.0, 6.0)), float(rng.uniform(3.0, 20.0)),
                float(rng.uniform(0.001, 0.010)), float(rng.uniform(0.05, 0.4)))
    codec = None
    if rng.random() < 0.5:
        codec = (str(rng.choice(CODECS)), int(rng.choice([32000, 40000, 48000, 56000, 64000])))
    level = float(rng.uniform(*LEVEL_RANGE))
    return Venue(rt60, ir, mic, eq, snr, comp, codec, level)


def _filter(x: np.ndarray, ir: np.ndarray | None, eq: np.ndarray | None) -> np.ndarray:
    n = len(x) + (len(ir) if ir is not None else 0)
    nfft = 1 << int(np.ceil(np.log2(max(n, 2))))
    spec = np.fft.rfft(x.astype(np.float64), nfft)
    if ir is not None:
        spec *= np.fft.rfft(ir, nfft)
    if eq is not None:
        spec *= np.interp(np.fft.rfftfreq(nfft, 1 / RATE), eq[0], eq[1])
    return np.fft.irfft(spec, nfft)[: len(x)]


def compress(x: np.ndarray, threshold_db: float, ratio: float, attack_s: float,
             release_s: float, frame: int = 32) -> np.ndarray:
    """Broadband feed-forward compressor (``ratio`` >= 10 acts as a limiter). The threshold is
    relative to the signal's own RMS, so it bites whatever the input level; the gain is
    computed on 2 ms RMS frames and smoothed with attack/release time constants."""
    nf = -(-len(x) // frame)
    pad = np.zeros(nf * frame)
    pad[: len(x)] = x
    ref = rms_db(x)
    env = 10 * np.log10(np.mean(pad.reshape(nf, frame) ** 2, axis=1) + 1e-20) - ref
    want = np.minimum(0.0, (threshold_db - env) * (1.0 - 1.0 / ratio))
    a_att = np.exp(-frame / (RATE * attack_s))
    a_rel = np.exp(-frame / (RATE * release_s))
    g = np.empty(nf)
    cur = float(want[0]) if nf else 0.0  # as if it had been running before the clip
    for i, w in enumerate(want.tolist()):
        a = a_att if w < cur else a_rel
        cur = a * cur + (1 - a) * w
        g[i] = cur
    centres = (np.arange(nf) + 0.5) * frame
    gain = 10 ** (np.interp(np.arange(len(x)), centres, g) / 20)
    return x * gain


def codec_roundtrip(x: np.ndarray, codec: str, bitrate: int) -> np.ndarray:
    """Encode to AAC (ADTS) or MP3 in memory with PyAV and decode back to 16 kHz float32 of
    the same length, aligned (the encoder's priming delay found by cross-correlation)."""
    fmt, enc = {"aac": ("adts", "aac"), "mp3": ("mp3", "libmp3lame")}[codec]
    if len(x) == 0:
        return np.zeros(0, np.float32)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    scale = 0.5 / peak if peak > 0 else 1.0  # keep the encoder away from its clip point
    pcm = (x * scale).astype(np.float32)
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        st = out.add_stream(enc, rate=RATE, layout="mono")
        st.bit_rate = bitrate
        fs = st.codec_context.frame_size or 1152
        for i in range(0, len(pcm), fs):
            fr = av.AudioFrame.from_ndarray(pcm[None, i:i + fs], format="flt", layout="mono")
            fr.sample_rate = RATE
            for pkt in st.encode(fr):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    buf.seek(0)
    parts = []
    with av.open(buf, "r", format=fmt) as inp:
        rs = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        for fr in inp.decode(audio=0):
            for r in rs.resample(fr):
                parts.append(r.to_ndarray().reshape(-1))
        for r in rs.resample(None):
            parts.append(r.to_ndarray().reshape(-1))
    y = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    lag = _delay(pcm, y, max_lag=4096)
    y = y[lag:lag + len(x)]
    if len(y) < len(x):
        y = np.concatenate([y, np.zeros(len(x) - len(y), np.float32)])
    return (y / scale).astype(np.float32)


def _delay(ref: np.ndarray, y: np.ndarray, max_lag: int) -> int:
    """Lag (0..max_lag) at which ``y`` best matches ``ref``."""
    n = min(len(ref), len(y), 8 * RATE)
    if n == 0:
        return 0
    nfft = 1 << int(np.ceil(np.log2(n + max_lag + 1)))
    xc = np.fft.irfft(np.conj(np.fft.rfft(ref[:n], nfft)) * np.fft.rfft(y[: n + max_lag], nfft),
                      nfft)
    return int(np.argmax(xc[: max_lag + 1]))


def audience_bed(n: int, rng: np.random.Generator) -> np.ndarray:
    """The noise floor of an occupied hall: pink-brown noise, slowly breathing, unit RMS."""
    x = colored_noise(n, rng, float(rng.uniform(1.0, 1.8)))
    mod = colored_noise(n, rng, 2.0)
    mod = 1.0 + 0.5 * mod / (np.max(np.abs(mod)) + 1e-9)
    y = x * mod
    return (y / (np.sqrt(np.mean(y**2)) + 1e-12)).astype(np.float32)


def apply_venue(x: np.ndarray, v: Venue, rng: np.random.Generator) -> np.ndarray:
    """``x`` (16 kHz) through hall, mic, audience noise, compressor, codec, then set to
    ``v.level_db`` RMS."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return np.zeros(0, np.float32)
    if rms_db(x) < -100:
        x = x + 1e-6 * rng.standard_normal(len(x))
    y = _filter(x, v.ir, v.eq)
    y /= np.sqrt(np.mean(y**2)) + 1e-12
    bed = _filter(audience_bed(len(y), rng), None, v.eq)
    y += bed / (np.sqrt(np.mean(bed**2)) + 1e-12) * 10 ** (-v.snr_db / 20)
    if v.compressor is not None:
        y = compress(y, *v.compressor)
    y = _set_level(y, v.level_db)
    if v.codec is not None:
        y = _set_level(codec_roundtrip(y.astype(np.float32), *v.codec).astype(np.float64),
                       v.level_db)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def _set_level(y: np.ndarray, level_db: float) -> np.ndarray:
    """Scale to ``level_db`` RMS, or lower where that would push peaks past -0.5 dBFS (a
    recordist sets the gain so the take does not clip)."""
    g = 10 ** (level_db / 20) / (np.sqrt(np.mean(y**2)) + 1e-12)
    peak = float(np.max(np.abs(y))) * g
    return y * g * min(1.0, PEAK_CEILING / peak) if peak > 0 else y * g


def venue(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 16 kHz signal as heard in an unseen venue (draws a venue, then applies it)."""
    return apply_venue(x, draw_venue(rng), rng)


# ------------------------------------------------------------------------------ no music

VENUE_NONE_KINDS: tuple[str, ...] = ("crowd", "hvac", "traffic", "coughs", "phone", "glasses")

# espeak-ng voices and sentences that training/nomusic.py never uses
CROWD_VOICES = ("en+m1", "en+m5", "en+f2", "en+f5", "en-us+m2", "en-us+f1", "en+klatt2",
                "nl+m4", "pt+f2", "sv+m7", "pl+f1", "da+m2")
CROWD_SENTENCES: dict[str, tuple[str, ...]] = {
    "en": (
        "Did you try the little cakes near the window? They are gone already.",
        "My sister moved to the coast last spring and she loves it there.",
        "I told him the parking garage closes at midnight but he never listens.",
        "Honestly the second room was my favourite, the one with the red lights.",
        "We should book the train early this time, it was so full in August.",
        "Are you still working at the bakery or did you finally quit?",
        "No, no, the other one, with the long scarf and the funny hat.",
        "I can never remember whether it starts at eight or half past.",
        "That reminds me, we still owe them dinner from last winter.",
        "Oh look who is here, I have not seen you in ages!",
    ),
    "nl": ("Zullen we straks nog iets gaan drinken aan de overkant?",
           "Ik vond de eerste zaal eerlijk gezegd veel mooier."),
    "pt": ("Você viu onde eu deixei o meu casaco?",
           "Amanhã vamos almoçar na casa da minha avó."),
    "sv": ("Jag tror att vi borde ta taxi hem i kväll.",
           "Har du smakat på osten? Den är fantastisk."),
    "pl": ("Widziałaś, gdzie poszedł Tomek? Szukam go od godziny.",
           "Ta wystawa jest dużo ciekawsza niż poprzednia."),
    "da": ("Skal vi gå ud og få lidt frisk luft?",
           "Jeg har glemt mine nøgler i bilen igen."),
}


def crowd_sentences() -> list[str]:
    return [s for group in CROWD_SENTENCES.values() for s in group]


def _espeak(text: str, voice: str, speed: int, pitch: int, wav: Path) -> np.ndarray:
    cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav), text]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    x, r = read_wav(wav)
    return resample(x, r, RATE)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / (np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12)


def _add(out: np.ndarray, x: np.ndarray, i: int) -> None:
    """Add ``x`` into ``out`` at sample ``i`` (either may hang over an edge)."""
    a, b = max(i, 0), min(i + len(x), len(out))
    if b > a:
        out[a:b] += x[a - i:b - i]


def _laugh(rng: np.random.Generator) -> np.ndarray:
    """A laugh: 3-8 breathy voiced 'ha' syllables at 4-6 per second, pitch falling."""
    syl = rng.uniform(0.16, 0.25)
    k = int(rng.integers(3, 9))
    n = int(k * syl * RATE)
    t = np.arange(n) / RATE
    f0 = rng.uniform(180.0, 380.0) * (1 - 0.25 * t / t[-1])
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    formants = ((rng.uniform(650, 900), 90.0), (rng.uniform(1100, 1400), 120.0),
                (rng.uniform(2400, 2800), 200.0))
    y = np.zeros(n)
    for h in range(1, 20):
        fh = h * f0.mean()
        g = sum(1.0 / (1 + ((fh - fc) / bw) ** 2) for fc, bw in formants) / h**0.5
        y += g * np.sin(h * phase)
    y += 0.3 * rng.standard_normal(n)  # breath
    env = np.sin(np.pi * ((t / syl) % 1.0)) ** 2 * np.exp(-t / (k * syl))
    return y * env


def crowd(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Many overlapping talkers (espeak-ng, varied voice, pitch and speed, near and far)
    and a few laughs."""
    n = int(seconds * RATE)
    out = np.zeros(n)
    sentences = {lang: list(s) for lang, s in CROWD_SENTENCES.items()}
    with tempfile.TemporaryDirectory(prefix="venue-crowd-") as td:
        wav = Path(td) / "s.wav"
        for _ in range(int(rng.integers(6, 13))):
            voice = str(rng.choice(CROWD_VOICES))
            lang = voice.split("+")[0].split("-")[0]
            pool = sentences[lang]
            k = max(1, int(seconds / 2.5))
            text = " ".join(str(s) for s in rng.choice(pool, size=k))
            x = _espeak(text, voice, int(rng.uniform(140, 230)), int(rng.uniform(10, 90)), wav)
            gain = 10 ** (rng.uniform(-14.0, 0.0) / 20)
            _add(out, _unit(x) * gain, int(rng.uniform(-0.5 * len(x), n * 0.6)))
    for _ in range(int(rng.poisson(seconds / 5.0))):
        _add(out, _unit(_laugh(rng)) * rng.uniform(0.5, 1.5), int(rng.uniform(0, n)))
    return out


def hvac(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A ventilation unit: fan blade-pass tone and harmonics with slow wobble, broadband
    airflow, both slowly modulated."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    bpf = rng.integers(5, 10) * rng.uniform(600.0, 1500.0) / 60.0  # blades x rpm / 60
    wobble = 1 + 0.004 * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t + rng.uniform(0, 6.3))
    phase = 2 * np.pi * bpf * np.cumsum(wobble) / RATE
    tone = np.zeros(n)
    for h in range(1, 6):
        tone += rng.uniform(0.2, 1.0) / h * np.sin(h * phase + rng.uniform(0, 6.3))
    air = _filter(colored_noise(n, rng, float(rng.uniform(0.5, 1.5))), None,
                  np.array([[0, 100, 400, 1500, 4000, RATE / 2], [0, 1, 1, 0.6, 0.2, 0.05]]))
    air = _unit(air)
    mod = 1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.03, 0.2) * t + rng.uniform(0, 6.3))
    return (_unit(tone) * 10 ** (rng.uniform(-12.0, 0.0) / 20) + air) * mod


def traffic(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Street outside: low rumble, cars passing (engine harmonics and tyre noise heard at the
    retarded time, so Doppler and 1/r swell come out of the geometry), a distant horn."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    out = _unit(_filter(colored_noise(n, rng, 2.0), None,
                        np.array([[0, 20, 60, 200, 500, RATE / 2], [0, 1, 1, 0.3, 0.05, 0.0]])))
    c = 343.0
    for _ in range(int(rng.integers(1, 3 + int(seconds / 4)))):
        t0 = rng.uniform(-1.0, seconds + 1.0)  # time of closest approach
        speed = rng.uniform(8.0, 22.0)
        d0 = rng.uniform(8.0, 40.0)
        dist = np.sqrt(d0**2 + (speed * (t - t0)) ** 2)
        tr = t - dist / c  # retarded time: what left the car when
        fe = rng.uniform(25.0, 70.0)  # engine firing frequency
        src = sum(np.sin(2 * np.pi * h * fe * tr + rng.uniform(0, 6.3)) / h for h in range(1, 5))
        tyre = colored_noise(n + RATE, rng, 1.0)
        idx = np.clip((tr - t[0]) * RATE + RATE / 2, 0, n + RATE - 1)
        tyre_r = np.interp(idx, np.arange(n + RATE), tyre)
        car = (0.4 * src + tyre_r) * (d0 / dist)
        out += car * rng.uniform(1.0, 4.0)
    if rng.random() < 0.5:  # a distant horn: two detuned squarish tones
        hl = int(rng.uniform(0.3, 1.0) * RATE)
        th = np.arange(hl) / RATE
        f1 = rng.uniform(350.0, 450.0)
        horn = np.tanh(3 * np.sin(2 * np.pi * f1 * th)) + np.tanh(3 * np.sin(2 * np.pi * f1
                                                                               * 1.26 * th))
        horn *= np.minimum(1.0, np.minimum(th, th[-1] - th) / 0.02)
        _add(out, horn * rng.uniform(0.1, 0.4), int(rng.uniform(0, max(1, n - hl))))
    return out


def _formant_noise(n: int, rng: np.random.Generator, formants: list[tuple[float, float]],
                   ) -> np.ndarray:
    """White noise shaped by resonance peaks (centre Hz, bandwidth Hz) in the spectrum."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    g = sum(1.0 / (1 + ((f - fc) / (bw / 2)) ** 2) for fc, bw in formants)
    return np.fft.irfft(spec * (g + 0.02), n)


def coughs(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Coughs over a quiet room: each event 1-3 explosive noise bursts through formants."""
    n = int(seconds * RATE)
    out = 0.01 * colored_noise(n, rng, 1.5).astype(np.float64)
    for _ in range(int(rng.integers(1, 2 + int(seconds / 3)))):
        pos = int(rng.uniform(0.0, max(0.1, seconds - 0.8)) * RATE)
        formants = [(rng.uniform(400, 800), 250.0), (rng.uniform(1100, 1800), 300.0),
                    (rng.uniform(2300, 3200), 400.0)]
        gain = rng.uniform(0.3, 1.0)
        for _ in range(int(rng.integers(1, 4))):
            m = int(rng.uniform(0.15, 0.35) * RATE)
            tb = np.arange(m) / RATE
            env = (1 - np.exp(-tb / 0.004)) * np.exp(-tb / rng.uniform(0.04, 0.1))
            burst = _unit(_formant_noise(m, rng, formants)) * env * gain
            _add(out, burst, pos)
            pos += m + int(rng.uniform(0.05, 0.25) * RATE)
            gain *= rng.uniform(0.5, 0.9)
    return out


def phone(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A phone ringing somewhere: a North-American (440+480 Hz, 2 s on / 4 s off) or UK
    (400+450 Hz, 0.4/0.2/0.4 on, 2 s off) dual tone, or an electronic trill ringer."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    style = int(rng.integers(0, 3))
    start = rng.uniform(0.0, min(2.0, seconds / 3))
    tt = t - start
    if style == 0:
        tone = np.sin(2 * np.pi * 440 * t) + np.sin(2 * np.pi * 480 * t)
        on = (tt >= 0) & ((tt % 6.0) < 2.0)
    elif style == 1:
        tone = np.sin(2 * np.pi * 400 * t) + np.sin(2 * np.pi * 450 * t)
        ph = tt % 3.0
        on = (tt >= 0) & ((ph < 0.4) | ((ph >= 0.6) & (ph < 1.0)))
    else:  # trill: two tones alternating at 16-25 Hz, 1-1.5 s bursts every 3-4 s
        fa, fb = rng.uniform(900, 1200), rng.uniform(1250, 1600)
        rate_hz = rng.uniform(16.0, 25.0)
        sel = (t * rate_hz) % 1.0 < 0.5
        square = np.tanh(4 * np.sin(2 * np.pi * np.where(sel, fa, fb) * t))  # piezo buzz
        tone = square
        period, burst = rng.uniform(3.0, 4.0), rng.uniform(1.0, 1.5)
        on = (tt >= 0) & ((tt % period) < burst)
    gate = np.convolve(on.astype(float), np.ones(80) / 80, mode="same")  # 5 ms edges
    room_noise = 0.02 * colored_noise(n, rng, 1.0)
    return tone * gate + room_noise


def glasses(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Glasses clinking (inharmonic damped partials 1.5-6 kHz) and cutlery (short bright
    metallic ticks) at random times over a quiet room."""
    n = int(seconds * RATE)
    out = 0.01 * colored_noise(n, rng, 1.2).astype(np.float64)
    m = int(1.2 * RATE)
    tm = np.arange(m) / RATE
    for _ in range(int(rng.integers(2, 4 + int(seconds)))):
        if rng.random() < 0.6:  # a glass: partials ~ 1 : 2.3 : 4.1 : 6.2 over a 1.5-2.5 kHz base
            base = rng.uniform(1500.0, 2500.0)
            ratios = np.array([1.0, 2.32, 4.1, 6.2]) * rng.uniform(0.97, 1.03, 4)
            fr = base * ratios[base * ratios < 6000.0]
            taus = rng.uniform(0.15, 0.6, len(fr)) / (fr / base) ** 0.5
            x = sum(rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * f * tm + rng.uniform(0, 6.3))
                    * np.exp(-tm / tau) for f, tau in zip(fr, taus, strict=True))
        else:  # cutlery: a few high partials dying in tens of ms plus a click
            fr = rng.uniform(3000.0, 7500.0, 5)
            x = sum(np.sin(2 * np.pi * f * tm) * np.exp(-tm / rng.uniform(0.01, 0.05))
                    for f in fr)
            x = x + 0.5 * rng.standard_normal(m) * np.exp(-tm / 0.002)
        _add(out, np.asarray(x) * rng.uniform(0.2, 1.0), int(rng.uniform(0, n - 0.05 * RATE)))
    return out


_KIND_FNS = {"crowd": crowd, "hvac": hvac, "traffic": traffic, "coughs": coughs,
             "phone": phone, "glasses": glasses}


def make_venue_none(kind: str, seconds: float, seed: int) -> np.ndarray:
    """One unseen no-music clip of ``kind``: 16 kHz mono float32, ``seconds`` long, through a
    drawn venue (so its level lies in ``LEVEL_RANGE``)."""
    if kind not in _KIND_FNS:
        raise ValueError(f"unknown venue none kind {kind!r}; known: {VENUE_NONE_KINDS}")
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    x = np.asarray(_KIND_FNS[kind](seconds, rng), dtype=np.float64)[:n]
    if len(x) < n:
        x = np.concatenate([x, np.zeros(n - len(x))])
    return venue(x, rng)
