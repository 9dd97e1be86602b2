"""`appliance calibrate …`: tune the current engine to this venue's piano, room and mic.

    appliance calibrate record --style ragtime            # about a minute from the mic
    appliance calibrate record --style none               # the room, no music playing
    appliance calibrate record --style jazz --from take.flac
    appliance calibrate fit                               # refuses unless it helps
    appliance calibrate show
    appliance calibrate reset [--takes]

Takes and the calibration live in the engine store (``<store>/.calibration/``); the
calibration names the engine it was made for (its manifest's sha256), so a new engine runs
without it until ``calibrate fit`` is run again (the takes are kept as audio and heard again
by the new engine). The maths is in :mod:`appliance.listen.calibration`.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from appliance.engine_cli import _emit, _store, _tell_daemon


class _Refused(Exception):
    pass


def _open(args: argparse.Namespace):
    """(store, config, bundle, engine, calibration store) for the store's current engine."""
    from appliance.listen.calibration import CalibrationStore
    from appliance.store import StoreError

    store, config = _store(args)
    try:
        bundle, _signer, record = store.open_current()
        engine, _check = store.open_engine(bundle, record)
    except StoreError as e:
        raise _Refused(f"cannot open the current engine: {e}") from e
    return store, config, bundle, engine, CalibrationStore(store.root)


def _cannot_write(cs, e: OSError) -> str:
    return (f"appliance: cannot write {cs.root} ({e.strerror or e}); run the command with sudo; "
            "nothing was changed")


def _floor(bundle) -> float:
    from appliance.listen.listener import Smoothing

    return Smoothing.from_manifest(bundle.manifest).level_floor_db


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _reading(bundle, take, floor: float) -> dict[str, float]:
    """What the engine alone named the usable windows of ``take``, as shares."""
    u = take.usable(floor)
    if not u.any():
        return {}
    pred = take.probs[u].argmax(1)
    shares = np.bincount(pred, minlength=len(bundle.labels)) / len(pred)
    return {lab: float(v) for lab, v in zip(bundle.labels, shares, strict=True) if v > 0}


def _hear_take(engine, audio: np.ndarray, style: str, source: str):
    """A take of ``audio`` (float32 at the engine's rate) through a fresh listener with no
    calibration; windows that still hold the silence before the take began are left out."""
    from appliance.listen.calibration import Take, _now, hear, manifest_sha256
    from appliance.listen.listener import Listener

    b = engine.bundle
    w = hear(Listener(engine), audio)
    full = w["t"] >= b.window_s - 1e-9
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    return Take(style=style, probs=w["probs"][full], emb=w["emb"][full],
                level_db=w["level_db"][full], t=w["t"][full], engine=b.label,
                engine_sha256=manifest_sha256(b.path), source=source, created=_now(),
                audio=pcm, rate=b.frontend.sample_rate)


def cmd_record(args: argparse.Namespace) -> int:
    from appliance.audio import open_source
    from appliance.listen.calibration import MIN_USABLE_S

    try:
        _store_, config, bundle, engine, cs = _open(args)
    except _Refused as e:
        return _emit(args, {"action": "record", "error": str(e)}, [f"appliance: {e}"], False)
    style = args.style
    if style not in bundle.labels:
        msg = (f"{style!r} is not a style {bundle.label} knows; choose one of "
               f"{', '.join(bundle.labels)} (none = the room with no music)")
        return _emit(args, {"action": "record", "error": msg}, [f"appliance: {msg}"], False)
    rate = bundle.frontend.sample_rate
    if args.from_file:
        uri = f"file:{args.from_file}"
        src = open_source(uri, rate)  # FileNotFoundError/ValueError: main says it plainly
        seconds = args.seconds
    else:
        a = config.audio
        uri = a.source
        seconds = args.seconds or 60.0
        if not args.json:
            what = "the room, with no music playing" if style == "none" else f"{style}"
            print(f"recording {seconds:g} s of {what} from {uri}: start now…", file=sys.stderr)
        src = open_source(uri, rate, realtime=True, device_rate=a.rate, channels=a.channels,
                          period_frames=a.period_frames, sample_format=a.format)
    hop = bundle.hop_samples
    parts, got = [], 0
    want = None if seconds is None else int(round(seconds * rate))
    try:
        while want is None or got < want:
            n = hop if want is None else min(hop, want - got)
            x = src.read(n)
            if src.ended:  # past the end of a file: keep only what it held
                break
            if src.status != "ok":
                msg = f"no sound from {uri}: {src.status}"
                return _emit(args, {"action": "record", "error": msg},
                             [f"appliance: {msg}", "nothing was kept"], False)
            parts.append(x)
            got += len(x)
    finally:
        src.close()
    audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    take = _hear_take(engine, audio, style, uri)
    floor = _floor(bundle)
    u = take.usable(floor)
    usable_s = float(u.sum()) * bundle.hop_s
    level = float(np.median(take.level_db)) if len(take.level_db) else None
    reading = _reading(bundle, take, floor)
    doc = {"action": "record", "style": style, "engine": bundle.label, "source": uri,
           "seconds": round(take.seconds, 2), "windows": int(len(u)),
           "usable_windows": int(u.sum()),
           "usable_s": usable_s, "median_level_db": level, "level_floor_db": floor,
           "engine_reading": reading}
    heard = (f"heard {take.seconds:.1f} s from {uri}: {usable_s:.0f} s of it loud enough to use "
             f"(windows above {floor:g} dBFS; median level "
             + ("-" if level is None else f"{level:.0f} dBFS") + ")")
    if style != "none" and usable_s < MIN_USABLE_S:
        msg = (f"not kept: only {usable_s:.0f} s of usable {style} (at least {MIN_USABLE_S:g} s "
               "needed); play closer to the mic or longer, or check the input level "
               "(appliance listen)")
        return _emit(args, {**doc, "error": msg}, [heard, msg], False)
    try:
        path = cs.add_take(take)
    except OSError as e:
        return _emit(args, {**doc, "error": _cannot_write(cs, e)}, [heard, _cannot_write(cs, e)],
                     False)
    doc["take"] = take.name
    doc["path"] = str(path)
    top = sorted(reading.items(), key=lambda kv: -kv[1])[:3]
    words = [heard,
             f"kept as take {take.name} of {style}"
             + (f"; the engine alone heard it as {', '.join(f'{k} {_pct(v)}' for k, v in top)}"
                if top else "; all of it is below the silence floor (the box reads it as no "
                            "music already)"),
             "next: record the other styles and the room, then: appliance calibrate fit"]
    return _emit(args, doc, words, True)


def _current_takes(cs, engine, words: list[str]) -> list:
    """The takes, each heard by ``engine``: a take recorded with another engine is heard
    again from its audio (and saved so)."""
    from appliance.listen.calibration import manifest_sha256

    sha = manifest_sha256(engine.bundle.path)
    takes, again = [], []
    for path, take in zip(cs.take_paths(), cs.takes(), strict=True):
        if take.engine_sha256 != sha:
            if take.audio is None or not len(take.audio):
                words.append(f"take {take.name} was recorded with {take.engine} and holds no "
                             "audio to hear again; skipped")
                continue
            audio = take.audio.astype(np.float32) / 32767
            if take.rate != engine.bundle.frontend.sample_rate:
                words.append(f"take {take.name} is at {take.rate} Hz and {engine.bundle.label} "
                             "listens at another rate; skipped (record it again)")
                continue
            new = _hear_take(engine, audio, take.style, take.source)
            new.name, new.created = take.name, take.created
            try:
                new.save(path)
            except OSError:  # used as heard now; heard again next time
                pass
            again.append(f"{take.name} (recorded with {take.engine})")
            take = new
        takes.append(take)
    if again:
        words.append(f"heard {len(again)} take(s) again with {engine.bundle.label}: "
                     + ", ".join(again))
    return takes


def _style_lines(report: dict) -> list[str]:
    rows = [f"  {s:<10} {v['windows']:>4} windows   {_pct(v['before']):>4} -> "
            f"{_pct(v['after']):>4}" for s, v in report.get("per_style", {}).items()]
    a = report.get("anchors")
    if a:
        rows.append(f"  ordinary playing (the engine's {a['windows']} reference windows): "
                    f"{_pct(a['before'])} -> {_pct(a['after'])}")
    return ["  style      held-back windows named right: engine -> calibrated", *rows]


def cmd_fit(args: argparse.Namespace) -> int:
    from appliance.listen.calibration import Anchors, CalibrationError, fit, manifest_sha256

    try:
        _store_, config, bundle, engine, cs = _open(args)
    except _Refused as e:
        return _emit(args, {"action": "fit", "error": str(e)}, [f"appliance: {e}"], False)
    words: list[str] = []
    takes = _current_takes(cs, engine, words)
    try:
        anchors = Anchors.from_bundle(bundle)
        if anchors is None:
            words.append(f"{bundle.label} carries no anchors (reference windows of ordinary "
                         "playing), so the fit cannot check that ordinary playing is still "
                         "heard as before")
        fr = fit(takes, tuple(bundle.labels), engine=bundle.label,
                 engine_sha256=manifest_sha256(bundle.path), level_floor_db=_floor(bundle),
                 window_s=bundle.window_s, min_gain=args.min_gain, anchors=anchors)
    except CalibrationError as e:
        return _emit(args, {"action": "fit", "error": str(e)}, [*words, f"appliance: {e}"], False)
    rep = fr.report
    doc = {"action": "fit", "engine": bundle.label, "accepted": fr.accepted,
           "reason": fr.reason, "report": rep}
    if rep["styles_without_take"]:
        words.append("no take of " + ", ".join(rep["styles_without_take"])
                     + ": the fit could not check those")
    if not fr.accepted:
        old, _why = cs.load_for(bundle)
        keeps = ("the box keeps the calibration it had" if old is not None
                 else "the box keeps running the engine alone")
        words += [f"appliance: calibration refused: {fr.reason}", *_style_lines(rep),
                  f"nothing was changed; {keeps}"]
        return _emit(args, doc, words, False)
    try:
        path = cs.save(fr.calibration)
    except OSError as e:
        return _emit(args, {**doc, "error": _cannot_write(cs, e)}, [*words, _cannot_write(cs, e)],
                     False)
    doc["path"] = str(path)
    words += [f"calibrated {bundle.label} to this venue with {rep['chosen']}: held-back windows "
              f"{_pct(rep['before'])} -> {_pct(rep['after'])} (cross-validated over "
              f"{len(rep['takes'])} takes, {rep['windows']} windows)", *_style_lines(rep),
              f"saved {path}"]
    ok = _tell_daemon(args, config, doc, words)
    return _emit(args, doc, words, ok)


def cmd_show(args: argparse.Namespace) -> int:
    from appliance.listen.calibration import CalibrationError, manifest_sha256

    try:
        _store_, _config, bundle, _engine, cs = _open(args)
    except _Refused as e:
        return _emit(args, {"action": "show", "error": str(e)}, [f"appliance: {e}"], False)
    sha = manifest_sha256(bundle.path)
    floor = _floor(bundle)
    doc: dict = {"action": "show", "engine": bundle.label, "engine_sha256": sha,
                 "calibration": None, "applies": False, "takes": []}
    words = [f"current engine: {bundle.label}"]
    ok = True
    try:
        cal = cs.read()
    except CalibrationError as e:
        cal, ok = None, False
        doc["error"] = str(e)
        words.append(f"calibration: unusable ({e}); run appliance calibrate fit or reset")
    if cal is not None:
        doc["calibration"] = {k: v for k, v in cal.to_dict().items()
                              if k not in ("weights", "mean", "inv_std")}
        try:
            cal.check_for(bundle.label, sha, tuple(bundle.labels))
            doc["applies"] = True
            rep = cal.report
            words += [f"calibration: {cal.kind}, made {cal.created}; applies to {bundle.label}",
                      f"held-back windows named right: engine {_pct(rep.get('before'))} -> "
                      f"calibrated {_pct(rep.get('after'))}", *_style_lines(rep)]
        except CalibrationError as e:
            words.append(f"calibration: NOT USED — {e}")
    elif ok:
        words.append("calibration: none (the engine runs as shipped)")
    takes = cs.takes()
    for tk in takes:
        current = tk.engine_sha256 == sha
        u = tk.usable(floor)
        row = {"take": tk.name, "style": tk.style, "seconds": round(tk.seconds, 1),
               "usable_s": float(u.sum()) * bundle.hop_s, "recorded_with": tk.engine,
               "current_engine": current}
        if current and u.any():
            y = bundle.labels.index(tk.style)
            row["engine_right"] = float(np.mean(tk.probs[u].argmax(1) == y))
            if doc["applies"]:
                row["calibrated_right"] = float(np.mean(
                    cal.apply(tk.probs[u], tk.emb[u]).argmax(1) == y))
        doc["takes"].append(row)
    if takes:
        words.append("takes (all windows, the fit saw them: see the held-back figures above):")
        for r in doc["takes"]:
            line = (f"  {r['take']:<12} {r['seconds']:5.0f} s, {r['usable_s']:3.0f} s usable")
            if not r["current_engine"]:
                line += f"  recorded with {r['recorded_with']} (heard again by the next fit)"
            elif "engine_right" in r:
                line += f"  engine {_pct(r['engine_right'])}"
                if "calibrated_right" in r:
                    line += f" -> calibrated {_pct(r['calibrated_right'])}"
            words.append(line)
    else:
        words.append("takes: none (appliance calibrate record --style STYLE)")
    return _emit(args, doc, words, ok)


def cmd_reset(args: argparse.Namespace) -> int:
    from appliance.listen.calibration import CalibrationStore

    store, config = _store(args)
    cs = CalibrationStore(store.root)
    try:
        removed = cs.reset(takes=args.takes)
    except OSError as e:
        return _emit(args, {"action": "reset", "error": _cannot_write(cs, e)},
                     [_cannot_write(cs, e)], False)
    doc = {"action": "reset", "removed": removed}
    if not removed:
        return _emit(args, doc, ["nothing to remove: no calibration"
                                 + (" and no takes" if args.takes else "")], True)
    words = [f"removed {' and '.join(removed)}; the engine runs as shipped"]
    ok = _tell_daemon(args, config, doc, words)
    return _emit(args, doc, words, ok)


def add_command(sub: argparse._SubParsersAction, switch: argparse.ArgumentParser,
                store: argparse.ArgumentParser) -> None:
    c = sub.add_parser("calibrate", help="tune the current engine to this venue's piano, room "
                                         "and mic (record takes, fit, show, reset)")
    cs = c.add_subparsers(dest="calibrate_command", required=True)
    r = cs.add_parser("record", parents=[store],
                      help="record about a minute of one style (or the room: --style none)")
    r.add_argument("--style", required=True, help="baroque, classical, ragtime, jazz, or none "
                                                  "(the room with no music)")
    r.add_argument("--seconds", type=float, default=None,
                   help="how long (default 60 s from the mic; the whole file with --from)")
    r.add_argument("--from", dest="from_file", metavar="FILE",
                   help="take a recording instead of the mic")
    r.set_defaults(func=cmd_record)
    f = cs.add_parser("fit", parents=[switch],
                      help="fit the calibration on the takes; refused unless it helps")
    f.add_argument("--min-gain", type=float, default=0.01,
                   help="held-back accuracy it must add to be kept (default 0.01 = 1 point)")
    f.set_defaults(func=cmd_fit)
    s = cs.add_parser("show", parents=[store], help="the calibration and the takes, before "
                                                    "and after")
    s.set_defaults(func=cmd_show)
    z = cs.add_parser("reset", parents=[switch], help="remove the calibration (the engine runs "
                                                      "as shipped)")
    z.add_argument("--takes", action="store_true", help="remove the takes too")
    z.set_defaults(func=cmd_reset)
