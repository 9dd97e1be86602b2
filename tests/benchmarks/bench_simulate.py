"""`appliance simulate` speed as a multiple of real time on the demo show (1080p30), with and
without a preview MP4; optionally also on a 720p copy generated into a temp folder.

    python tests/benchmarks/bench_simulate.py [--genre jazz] [--720p]
    python tests/benchmarks/bench_simulate.py --minutes 10 [--compositor software gpu]

``--minutes N``: a performance N minutes long instead (the four demo performances in turn,
room noise between them, repeated): several whole shows at 1080p30, with the speed and the
dropped frames of each compositor. Prints figures for docs/BENCHMARKS.md; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from appliance.config import demo_show_dir  # noqa: E402
from appliance.simulate import simulate  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def run(label: str, audio: Path, show: Path, out: Path | None,
        compositor: str = "software") -> None:
    stats = simulate(audio, show, None, None, out, compositor=compositor)
    print(f"{label:<38} {stats['t']:6.1f} s of show in {stats['wall_s']:6.1f} s = "
          f"{stats['speed_x']:5.2f}x real time (frames {stats['frames']}, dropped "
          f"{stats['dropped']}, late {stats['late']}, endings {stats['endings']})", flush=True)


def long_performance(path: Path, minutes: float) -> Path:
    """The demo performances in turn with 30 s of room noise between, to ``minutes``."""
    import wave

    import numpy as np

    from appliance.audio import open_source

    rate = 16000
    audio = demo_show_dir() / "audio"

    def read(name: str, seconds: float | None = None) -> np.ndarray:
        import av

        with av.open(str(audio / f"{name}.flac")) as c:
            length = float(c.duration / 1e6)
        src = open_source(f"file:{audio / f'{name}.flac'}", rate=rate)
        x = src.read(int((seconds or length) * rate))
        src.close()
        return x

    noise = read("room_noise")
    parts, total = [], 0
    while total < minutes * 60 * rate:
        for genre in ("baroque", "classical", "ragtime", "jazz"):
            for x in (read(genre), np.resize(noise, 30 * rate)):
                parts.append(x)
                total += len(x)
    x = np.concatenate(parts)[: int(minutes * 60 * rate)]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--genre", default="jazz")
    ap.add_argument("--720p", dest="hd720", action="store_true")
    ap.add_argument("--minutes", type=float, help="a long performance instead (see above)")
    ap.add_argument("--compositor", nargs="+", default=["software"],
                    choices=["software", "gpu"])
    args = ap.parse_args()
    demo = demo_show_dir()
    audio = demo / "audio" / f"{args.genre}.flac"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.minutes:
            take = long_performance(tmp / "long.wav", args.minutes)
            for comp in args.compositor:
                run(f"{args.minutes:g} min, {comp} compositor", take, demo, None, comp)
            return
        shows = [("demo show", demo)]
        if args.hd720:
            small = tmp / "demo720"
            subprocess.run([sys.executable, str(REPO / "media" / "make_demo.py"), "--size",
                            "1280x720", "--out", str(small)], check=True,
                           stdout=subprocess.DEVNULL)
            shows.append(("720p30 copy", small))
        for name, show in shows:
            run(f"{name}, offscreen", audio, show, None)
            run(f"{name}, offscreen + preview MP4", audio, show, tmp / "preview.mp4")


if __name__ == "__main__":
    main()
