"""Calibration to the venue (`appliance calibrate`), as a technician uses it: a real store, a
real ONNX Runtime engine (the band bundle of conftest, whose answers the audio below decides),
takes from audio files, the daemon's own EngineSource opening the listener afterwards.

The "venue" here is a boomy room: a loud rumble fills the lowest band, so the band engine
hears every style as its band-0 label (baroque) although each style's tones still lift its
own band, which the embedding shows. A calibration can learn that; the engine alone cannot.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from appliance.cli import main
from tests.conftest import band_tone_hz, make_signed_band_bundle, write_wav

LABELS = ["baroque", "classical", "ragtime", "jazz", "none"]
STYLES = {"classical": 1, "ragtime": 2, "jazz": 3}  # style -> the band its tones lift


def venue_audio(band: int | None, seconds: float, seed: int, *, rumble: float = 0.2) -> np.ndarray:
    """The boomy venue: low rumble (band 0) plus, for a style, tones a quarter second each at
    random pitches within ``band``; ``band=None`` is the room alone."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    spec = np.fft.rfft(rng.standard_normal(n))
    spec *= np.fft.rfftfreq(n, 1 / 16000) < band_tone_hz(0) * 1.3
    x = np.fft.irfft(spec, n)
    x = rumble * x / np.sqrt(np.mean(x**2)) if rumble else np.zeros(n)
    if band is not None:
        t = np.arange(n) / 16000
        step = 4000
        for i in range(0, n, step):
            f = band_tone_hz(band) * rng.uniform(0.85, 1.15)
            x[i:i + step] += 0.05 * np.sin(2 * np.pi * f * t[i:i + step])
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, signing_key) -> dict[str, Path]:
    secret, _ = signing_key
    root = tmp_path_factory.mktemp("cal-bundles")
    return {"v1": make_signed_band_bundle(root / "bands-1", secret, name="bands", version="1"),
            "v2": make_signed_band_bundle(root / "bands-2", secret, name="bands", version="2",
                                          order=(4, 3, 2, 1, 0))}


@pytest.fixture(scope="module")
def takes_audio(tmp_path_factory) -> dict[str, Path]:
    """A minute per style and of the room in the venue; and other music in it to check on."""
    root = tmp_path_factory.mktemp("takes")
    out = {s: write_wav(root / f"{s}.wav", venue_audio(b, 60, seed=10 + b))
           for s, b in STYLES.items()}
    out["none"] = write_wav(root / "room.wav", venue_audio(None, 60, seed=9))
    for s, b in STYLES.items():  # new notes and new rumble: not what the fit saw
        out[f"later-{s}"] = write_wav(root / f"later-{s}.wav", venue_audio(b, 8, seed=100 + b))
    return out


class Box:
    """A store with bands-1 current, and `appliance …` run in this process."""

    def __init__(self, root: Path, keys: Path, capsys) -> None:
        self.root, self.capsys = root, capsys
        self.store = root / "store"
        self.config = root / "appliance.toml"
        self.config.write_text(f'[listen]\nstore = "{self.store}"\ntrusted_keys = "{keys}"\n'
                               '[service]\ncontrol_socket = ""\n')

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        rc = main([*args, "--config", str(self.config)])
        out = self.capsys.readouterr()
        return rc, out.out, out.err

    def json(self, *args: str) -> tuple[int, dict]:
        rc, out, err = self(*args, "--json")
        return rc, json.loads(out)

    def loaded(self):
        """What the daemon would run now (its own EngineSource)."""
        from appliance.config import load_config
        from appliance.service.hotswap import EngineSource

        return EngineSource(load_config(self.config)[0]).open_initial()


@pytest.fixture()
def box(tmp_path, signing_key, bundles, capsys) -> Box:
    _, keys = signing_key
    b = Box(tmp_path, keys, capsys)
    rc, out, err = b("engine", "install", str(bundles["v1"]))
    assert rc == 0, err
    return b


def readings(listener, path: Path) -> list[dict]:
    """Every estimate of ``path`` through ``listener``: raw and smoothed probabilities."""
    from appliance.audio import open_source

    src = open_source(f"file:{path}", rate=listener.fe.sample_rate)
    out = []
    while not src.ended:
        for e in listener.feed(src.read(listener.bundle.hop_samples)):
            out.append({"raw": e.raw_probs, "probs": e.probs, "genre": e.genre})
    src.close()
    return out


def named(rows: list[dict], style: str) -> float:
    """Share of windows whose own (raw) reading is ``style``, after the first second."""
    rows = rows[2:]
    return float(np.mean([max(r["raw"], key=r["raw"].get) == style for r in rows]))


def record_all(box: Box, takes_audio: dict[str, Path]) -> None:
    for style in (*STYLES, "none"):
        rc, doc = box.json("calibrate", "record", "--style", style, "--from",
                           str(takes_audio[style]))
        assert rc == 0, doc
        assert doc["style"] == style and doc["usable_s"] >= 50, doc


def test_record_fit_apply_round_trip_through_the_real_listener(box, takes_audio):
    """Takes from files → fit (cross-validated, accepted) → the daemon's listener, opened from
    the store, names music it never saw in this venue; without the calibration it cannot."""
    before = {s: named(readings(box.loaded().listener, takes_audio[f"later-{s}"]), s)
              for s in STYLES}
    assert max(before.values()) < 0.2, before  # the boomy venue defeats the engine alone

    rc, out, err = box("calibrate", "record", "--style", "ragtime", "--from",
                       str(takes_audio["ragtime"]))
    assert rc == 0, err
    assert "60 s of it loud enough to use" in out and "baroque 100%" in out, out
    rc, out, err = box("calibrate", "fit")
    assert rc == 1 and "no take of the room" in err  # the room comes first
    for style in ("classical", "jazz", "none"):
        rc, _doc = box.json("calibrate", "record", "--style", style, "--from",
                            str(takes_audio[style]))
        assert rc == 0
    rc, doc = box.json("calibrate", "fit")
    assert rc == 0 and doc["accepted"], doc
    rep = doc["report"]
    assert rep["after"] >= rep["before"] + 0.3, rep  # on held-back blocks of the takes
    assert rep["styles_without_take"] == ["baroque"]
    assert (box.store / ".calibration" / "calibration.json").is_file()

    loaded = box.loaded()
    assert loaded.calibration and loaded.listener.calibration is not None
    assert "calibrated to the venue" in loaded.describe()
    after = {s: named(readings(loaded.listener, takes_audio[f"later-{s}"]), s) for s in STYLES}
    assert min(after.values()) > 0.8, (before, after)

    rc, out, err = box("calibrate", "show")
    assert rc == 0 and "applies to bands-1" in out
    assert "ragtime-1" in out and "engine 0% -> calibrated" in out, out
    # the installed bundle itself is untouched: the store still verifies it
    rc, out, err = box("engine", "verify")
    assert rc == 0, err


def test_a_fit_that_does_not_help_is_refused_with_its_numbers(box, tmp_path):
    """In a quiet venue the engine already names every take; calibration cannot beat it, so
    fit refuses, says by how much, changes nothing and exits non-zero."""
    for style, band in [*STYLES.items(), ("none", 4)]:  # the band engine's "none" is band 4
        wav = write_wav(tmp_path / f"clean-{style}.wav", venue_audio(band, 40, 3, rumble=0))
        rc, doc = box.json("calibrate", "record", "--style", style, "--from", str(wav))
        assert rc == 0, doc
    rc, out, err = box("calibrate", "fit")
    assert rc == 1
    assert "calibration refused: it does not beat the engine on held-back takes" in err
    assert "the engine alone 100.0%" in err and "nothing was changed" in err, err
    rc, doc = box.json("calibrate", "fit")
    assert rc == 1 and not doc["ok"] and not doc["accepted"]
    assert doc["report"]["before"] == 1.0 and doc["report"]["after"] <= 1.0
    assert not (box.store / ".calibration" / "calibration.json").exists()
    assert box.loaded().calibration == ""


def test_a_calibration_made_for_another_engine_is_refused(box, bundles, takes_audio):
    """A new engine runs without the old engine's calibration (the daemon says why), `show`
    says it is not used, a listener refuses it outright, and the next fit hears the kept
    takes again with the new engine. A hand-edited calibration is refused too."""
    import logging

    from appliance.listen import Listener
    from appliance.listen.calibration import CalibrationError, CalibrationStore

    record_all(box, takes_audio)
    rc, doc = box.json("calibrate", "fit")
    assert rc == 0 and doc["accepted"]
    cal_v1 = CalibrationStore(box.store).read()
    rc, out, err = box("engine", "install", str(bundles["v2"]))
    assert rc == 0, err

    logger = logging.getLogger("appliance.service")
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda r: seen.append(r.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        loaded = box.loaded()
    finally:
        logger.removeHandler(handler)
    assert loaded.label == "bands-2"
    assert loaded.calibration == "" and loaded.listener.calibration is None
    assert any("runs without the venue calibration: the calibration was made for bands-1" in m
               for m in seen), seen
    with pytest.raises(CalibrationError, match="made for bands-1 .* not for bands-2"):
        Listener(loaded.listener.engine, calibration=cal_v1)
    rc, out, err = box("calibrate", "show")
    assert rc == 0 and "calibration: NOT USED" in out and "recorded with bands-1" in out, out

    rc, doc = box.json("calibrate", "fit")  # the takes' audio, heard by bands-2
    assert rc == 0, doc
    assert CalibrationStore(box.store).read().engine == "bands-2"
    rc, out, err = box("calibrate", "show")
    assert "applies to bands-2" in out and "recorded with" not in out

    f = box.store / ".calibration" / "calibration.json"
    d = json.loads(f.read_text())
    d["bias"][2] += 1.0
    f.write_text(json.dumps(d))
    assert box.loaded().listener.calibration is None
    rc, out, err = box("calibrate", "show")
    assert rc == 1 and "does not match its own checksum" in out + err


def test_reset_restores_the_engines_outputs_exactly(box, takes_audio):
    """After `calibrate reset` the daemon's listener gives, window by window, exactly what
    it gave before there was any calibration (not merely close)."""
    song = takes_audio["later-jazz"]
    first = readings(box.loaded().listener, song)
    record_all(box, takes_audio)
    rc, doc = box.json("calibrate", "fit")
    assert rc == 0
    calibrated = readings(box.loaded().listener, song)
    assert calibrated != first  # the calibration changed what the show hears
    rc, out, err = box("calibrate", "reset")
    assert rc == 0 and "removed the calibration" in out
    assert readings(box.loaded().listener, song) == first
    rc, out, err = box("calibrate", "show")
    assert "calibration: none" in out and "jazz-1" in out  # takes kept for the next fit
    rc, doc = box.json("calibrate", "reset", "--takes")
    assert rc == 0 and doc["removed"] == ["4 take(s)"]
    assert not list((box.store / ".calibration" / "takes").glob("*.npz"))


def test_record_from_the_configured_source_and_plain_refusals(box, tmp_path):
    """Without --from the take comes from the config's audio source (here a file standing in
    for the mic, paced in real time); too little music is not kept; unknown styles and a
    store with no engine are refused in words."""
    quiet = write_wav(tmp_path / "mic.wav", venue_audio(2, 4, 5))
    cfg = box.config.read_text().replace("[service]",
                                         f'[audio]\nsource = "file:{quiet}"\n[service]')
    box.config.write_text(cfg)
    rc, doc = box.json("calibrate", "record", "--style", "ragtime", "--seconds", "3")
    assert rc == 1 and doc["seconds"] == pytest.approx(3.0, abs=0.05)
    assert "not kept: only 2 s of usable ragtime (at least 10 s needed)" in doc["error"]
    rc, out, err = box("calibrate", "record", "--style", "polka", "--from", str(quiet))
    assert rc == 1 and "'polka' is not a style bands-1 knows" in err
    rc, out, err = box("calibrate", "fit", "--store", str(tmp_path / "empty"))
    assert rc == 1 and "no current engine" in err


def test_a_reload_takes_up_a_new_calibration_and_drops_a_removed_one(box, takes_audio):
    """The running show's reload (HotSwap, as `calibrate fit` / `reset` ask for it) switches
    when only the calibration changed, and not when nothing did."""
    import queue

    from appliance.config import load_config
    from appliance.service.hotswap import EngineSource, HotSwap

    class ListenThread:  # the daemon's listen thread, taking over at once
        heard: queue.SimpleQueue = queue.SimpleQueue()

        def swap_to(self, new, done) -> None:
            done(True, "")

    source = EngineSource(load_config(box.config)[0])
    hs = HotSwap(source, source.open_initial(), ListenThread())

    def reload() -> dict:
        ticket = hs.request()
        assert ticket.done.wait(60)
        return ticket.outcome

    assert reload()["switched"] is False
    record_all(box, takes_audio)
    assert box.json("calibrate", "fit")[0] == 0
    out = reload()
    assert out["switched"] and out["calibrated"], out
    assert hs.running.listener.calibration is not None
    assert "calibrated to the venue" in hs.status()
    assert reload()["switched"] is False
    assert box("calibrate", "reset")[0] == 0
    out = reload()
    assert out["switched"] and not out["calibrated"], out
    assert hs.running.listener.calibration is None
