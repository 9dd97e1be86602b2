"""The `appliance` command."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

GENRE_AUDIO = ("baroque", "classical", "ragtime", "jazz")


def _setup_logging(level: str = "info") -> None:
    lvl = getattr(logging, level.upper(), logging.INFO)
    handler: logging.Handler
    if os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"):
        try:  # under systemd: structured entries in the journal
            from systemd.journal import JournalHandler

            handler = JournalHandler(SYSLOG_IDENTIFIER="appliance")
        except ImportError:
            handler = logging.StreamHandler()
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                               "%H:%M:%S"))
    logging.basicConfig(level=lvl, handlers=[handler], force=True)


def _demo_dir() -> Path:
    from appliance.config import demo_show_dir

    return demo_show_dir()


def cmd_run(args: argparse.Namespace) -> int:
    from appliance.config import load_config
    from appliance.service.daemon import run

    config, problems = load_config(Path(args.config) if args.config else None)
    _setup_logging(config.service.log_level)
    for p in problems:  # reported, then the box goes on with defaults for those keys
        logging.getLogger("appliance.config").error("%s", p)
    return run(config)


def cmd_simulate(args: argparse.Namespace) -> int:
    from appliance.simulate import simulate

    _setup_logging("warning" if not args.verbose else "info")
    from appliance.audio.file import check_audio_file

    wrong = check_audio_file(args.audio, min_s=0.5)
    if wrong:
        print(f"appliance: {args.audio}: {wrong}", file=sys.stderr)
        return 2
    stats = simulate(Path(args.audio), Path(args.show) if args.show else _demo_dir(),
                     Path(args.engine) if args.engine else None,
                     Path(args.log) if args.log else None,
                     Path(args.out) if args.out else None, realtime=args.realtime,
                     backend=args.backend, hud=args.hud, compositor=args.compositor)
    print(json.dumps(stats))
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from appliance.audio import open_source
    from appliance.listen import Listener, open_listener
    from appliance.listen.estimate import NONE
    from appliance.simulate import audio_duration

    _setup_logging("warning")
    engine = open_listener(args.engine, backend=args.backend).engine
    hop = engine.bundle.hop_samples
    rate = engine.bundle.frontend.sample_rate
    from appliance.audio.file import check_audio_file

    failed = 0
    for name in args.files:
        wrong = check_audio_file(name, min_s=engine.bundle.hop_samples / rate)
        if wrong:  # said in words, the next file still classified, the exit status non-zero
            print(f"appliance: {name}: {wrong}", file=sys.stderr)
            failed += 1
            continue
        listener = Listener(engine)  # each file from its start, as a box that starts listening
        src = open_source(f"file:{name}", rate=rate)
        length = audio_duration(Path(name))
        counts: dict[str, int] = {}
        while listener.time + hop / rate <= length + 1e-9:
            for e in listener.feed(src.read(hop)):
                probs = e.probs if args.smoothed else e.raw_probs
                if args.smoothed:
                    genre, conf, music = e.genre, e.confidence, e.music_present
                else:
                    genre = max(probs, key=probs.get)
                    conf, music = probs[genre], genre != NONE
                counts[genre] = counts.get(genre, 0) + 1
                row = {"file": name, "t": round(e.t, 3), "genre": genre,
                       "confidence": round(conf, 4),
                       "probs": {k: round(v, 4) for k, v in probs.items()},
                       "music": music, "ms": round(listener.last_engine_ms, 3)}
                if args.json:
                    print(json.dumps(row), flush=True)
                else:
                    print(f"{name}  {e.t:7.1f}s  {genre:<9} {conf:5.2f}")
        src.close()
        if not args.json and counts:
            top = max(counts, key=counts.get)
            print(f"{name}: mostly {top} ({counts[top]} of {sum(counts.values())} windows)")
    return 2 if failed else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from appliance.simulate import simulate

    _setup_logging("warning")
    demo = _demo_dir()
    genre = args.genre
    audio = demo / "audio" / f"{genre}.flac"
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if has_display and not args.out:
        print(f"playing the demo show with the {genre} performance in a window…")
        stats = simulate(audio, demo, None, None, None, realtime=True, output="window")
        out = None
    else:
        out = Path(args.out or f"demo-{genre}.mp4").resolve()
        log = out.with_suffix(".events.jsonl")
        log.unlink(missing_ok=True)
        print(f"no display here: rendering the demo show with the {genre} performance to {out}")
        stats = simulate(audio, demo, None, log, out)
    ending = stats.get("ending")
    print(f"ending played: {ending}")
    if out:
        print(f"preview: {out} ({stats['frames']} frames, {stats['speed_x']}x real time)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import time

    from appliance.report import write_report
    from appliance.service.performances import read_events

    files = [Path(f) for f in args.events]
    if not files:
        from appliance.config import load_config

        config, _ = load_config(Path(args.config) if args.config else None)
        since = time.time() - args.hours * 3600
        files = sorted(p for p in Path(config.service.events_dir).glob("*.jsonl")
                       if p.stat().st_mtime >= since)
        if not files:
            print(f"appliance: no show events in {config.service.events_dir} from the last "
                  f"{args.hours:g} hours", file=sys.stderr)
            return 1
    read = [read_events(f) for f in files]
    out = Path(args.out)
    write_report(read, out)
    shows = [p for f in read for p in f.performances]
    endings = [p.ending for p in shows if p.ending]
    print(f"{out}: {len(shows)} show(s) from {len(read)} file(s)"
          + (f"; endings {', '.join(endings)}" if endings else ""))
    for f in read:
        if f.unreadable:
            print(f"note: {f.path}: {f.unreadable} unreadable line(s) skipped", file=sys.stderr)
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from appliance.config import load_config

    _, problems = load_config(Path(args.config) if args.config else None)
    for p in problems:
        print(p)
    print("config OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


def cmd_check_show(args: argparse.Namespace) -> int:
    from appliance.player.mediacheck import check_show_media, format_table
    from appliance.show.showfile import load_show

    _setup_logging("error")
    show, problems = load_show(Path(args.show) if args.show else _demo_dir())
    for p in problems:
        print(p)
    rows = check_show_media(show)  # every film decoded end to end, not just opened
    if rows:
        print(format_table(rows, show.folder))
    bad = len(problems) + sum(len(r.problems) for r in rows)
    ok = getattr(show, "playable", True)
    print(("show playable" if ok else "show NOT playable")
          + (f", {bad} problem(s)" if bad else ""))
    return 0 if ok and not bad else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from appliance.player.bench import main as bench_player

    _setup_logging("warning")
    comps = ["software", "gpu"] if args.compositor == "both" else [args.compositor]
    return bench_player(Path(args.show) if args.show else _demo_dir(), comps, args.cores,
                        args.json)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="appliance", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="the daemon (systemd starts this)")
    r.add_argument("--config", help="config file (default /etc/appliance/appliance.toml)")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("simulate", help="run the show against an audio file, faster than real time")
    s.add_argument("--audio", required=True)
    s.add_argument("--show", help="show folder (default: the demo show)")
    s.add_argument("--engine", help="engine bundle folder (default: the shipped engine)")
    s.add_argument("--log", help="write show events as JSON lines here")
    s.add_argument("--out", help="write a preview MP4 here")
    s.add_argument("--realtime", action="store_true", help="pace to real time")
    s.add_argument("--hud", action="store_true",
                   help="draw style bars, the show's state and the time to the decision over "
                        "the preview")
    s.add_argument("--backend", default="auto", choices=["auto", "tensorrt", "onnxruntime"])
    s.add_argument("--compositor", default="software", choices=["software", "gpu", "auto"],
                   help="pygame blits (software), SDL's renderer (gpu), or gpu where a GPU is")
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(func=cmd_simulate)

    c = sub.add_parser("classify", help="name the style of audio files, window by window")
    c.add_argument("files", nargs="+")
    c.add_argument("--engine")
    c.add_argument("--json", action="store_true", help="one JSON line per window")
    c.add_argument("--smoothed", action="store_true",
                   help="report the listener's smoothed reading instead of each window's own")
    c.add_argument("--backend", default="auto", choices=["auto", "tensorrt", "onnxruntime"])
    c.set_defaults(func=cmd_classify)

    d = sub.add_parser("demo", help="play the demo show with a bundled performance")
    d.add_argument("--genre", default="jazz", choices=GENRE_AUDIO)
    d.add_argument("--out", help="render to this MP4 instead of a window")
    d.set_defaults(func=cmd_demo)

    rp = sub.add_parser("report", help="a picture of the shows in event files (PNG or HTML)")
    rp.add_argument("events", nargs="*", help="events files (.jsonl; default: the config's "
                                              "events folder, the last --hours)")
    rp.add_argument("--out", required=True, help="FILE.png or FILE.html")
    rp.add_argument("--hours", type=float, default=24.0,
                    help="without files: the events of the last this many hours (default 24)")
    rp.add_argument("--config", help="config file (for its events folder)")
    rp.set_defaults(func=cmd_report)

    cc = sub.add_parser("check-config", help="validate a config file, all problems at once")
    cc.add_argument("--config")
    cc.set_defaults(func=cmd_check_config)

    cs = sub.add_parser("check-show", help="validate a show folder and its media")
    cs.add_argument("show", nargs="?")
    cs.set_defaults(func=cmd_check_show)

    b = sub.add_parser("bench", help="measure a part of the box (player: per-frame costs)")
    b.add_argument("what", choices=["player"])
    b.add_argument("--show", help="show folder (default: the demo show, 1080p30)")
    b.add_argument("--compositor", default="both", choices=["both", "software", "gpu"])
    b.add_argument("--cores", default="both", choices=["both", "all", "1"],
                   help="1: pinned to one CPU, as taskset -c 0 (default: all, then 1)")
    b.add_argument("--json", action="store_true", help="one JSON line per run")
    b.set_defaults(func=cmd_bench)

    from appliance.engine_cli import add_commands

    add_commands(sub)  # engine install/list/activate/rollback/verify/remove/pack/sign/check
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # plain words for people; the traceback only when debugging
        from appliance.listen.bundle import BundleError
        from appliance.show.showfile import ShowError

        known = (BundleError, ShowError, FileNotFoundError, ValueError)
        if isinstance(e, known) and not os.environ.get("APPLIANCE_DEBUG"):
            print(f"appliance: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
