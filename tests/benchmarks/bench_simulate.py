"""`appliance simulate` speed as a multiple of real time on the demo show (1080p30), with and
without a preview MP4; optionally also on a 720p copy generated into a temp folder.

    python tests/benchmarks/bench_simulate.py [--genre jazz] [--720p]

Prints figures for docs/BENCHMARKS.md; asserts nothing.
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


def run(label: str, audio: Path, show: Path, out: Path | None) -> None:
    stats = simulate(audio, show, None, None, out)
    print(f"{label:<38} {stats['t']:6.1f} s of show in {stats['wall_s']:6.1f} s = "
          f"{stats['speed_x']:5.2f}x real time (frames {stats['frames']}, "
          f"ending {stats['ending']})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--genre", default="jazz")
    ap.add_argument("--720p", dest="hd720", action="store_true")
    args = ap.parse_args()
    demo = demo_show_dir()
    audio = demo / "audio" / f"{args.genre}.flac"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
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
