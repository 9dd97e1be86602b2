"""`appliance bench player`: what one show frame costs, stage by stage, per compositor.

The scene is the player's hardest moment: a 1080p30 base film, one overlay fading in, a
second crossfading over it (two overlays on screen at once), then the cut into an ending
(prerolled, as the show does it). Frames run as fast as they can (as `simulate` runs), so
the figures are costs, not a frame rate capped at 30:

- decode: decoding + converting one frame to RGB on a decoder thread (all films together)
- frames: the render loop waiting for decoded frames (0 when decoding keeps ahead)
- composite: laying the layers together (pygame blits, or SDL's renderer: "gpu")
- present: handing the frame to the output (offscreen here; a flip or a page flip on a
  screen)
- CPU s per s of film: the process's CPU time (all threads) over the film time rendered;
  1.0 is one core kept busy, so it shows how much of a Jetson's cores the player would need.

``--cores 1`` pins the process to one CPU (as ``taskset -c 0`` does), the closest stand-in
here for a Jetson's slower ARM cores; the default runs both, each in its own process.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

from appliance.show.cues import PlayFilm, SetOverlay

SCENE_S = 12.0


def _stats(values: list[float]) -> dict:
    if not values:
        return {"median": None, "p99": None, "n": 0}
    a = np.asarray(values)
    return {"median": round(float(np.median(a)), 2), "p99": round(float(np.percentile(a, 99)), 2),
            "n": int(a.size)}


def scene(show_dir: Path) -> tuple[list, tuple[int, int], int, Path]:
    """The cues of the benchmark scene from a show: (cues, size, fps, ending path)."""
    from appliance.show.showfile import load_show_or_raise

    show, _ = load_show_or_raise(show_dir)
    overlays = list(show.overlays.values())
    if len(overlays) < 2:
        raise ValueError(f"{show_dir}: the benchmark needs a show with two overlays")
    ending = show.endings.get("default") or next(iter(show.endings.values()), None)
    if ending is None:
        raise ValueError(f"{show_dir}: the benchmark needs a show with an ending")
    fade = show.overlay_fade_s or 1.5
    blend = show.overlay_blend
    cues = [PlayFilm(0.0, show.main.path, "main", duration_s=show.main.duration_s),
            SetOverlay(1.0, overlays[0].path, "a", fade_s=fade, blend=blend),
            SetOverlay(5.0, overlays[1].path, "b", fade_s=fade, blend=blend),
            PlayFilm(8.0, ending.path, "ending", fade_s=show.ending_fade_s or 0.5,
                     duration_s=ending.duration_s)]
    return cues, show.size, show.fps, ending.path


def run_one(show_dir: Path, compositor: str, seconds: float = SCENE_S) -> dict:
    """Render the scene once with ``compositor``; the figures as a dict."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from appliance.player import Player, open_output
    from appliance.player.decoder import VideoDecoder

    cues, size, fps, ending = scene(show_dir)
    out = open_output("offscreen", size, fps, compositor=compositor)
    player = Player(out, size, fps, realtime=False)
    player.timing = {}
    VideoDecoder.decode_ms = []
    n = round(seconds * fps)
    pending = list(cues)
    try:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for i in range(n):
            t = i / fps
            if t >= 3.0:  # as the director names it, seconds before the cut
                player.preroll([(ending, False)])
            while pending and pending[0].t <= t:
                player.apply(pending.pop(0))
            player.present(t)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        decode = VideoDecoder.decode_ms
        VideoDecoder.decode_ms = None
        player.close()
    film_s = n / fps
    timing = player.timing
    return {
        "compositor": out.compositor_name, "cores": len(os.sched_getaffinity(0)),
        "size": f"{size[0]}x{size[1]}", "fps": fps, "frames": n,
        "decode_ms": _stats(decode), "frames_ms": _stats(timing.get("frames", [])),
        "composite_ms": _stats(timing.get("composite", [])),
        "present_ms": _stats(timing.get("present", [])),
        "cpu_s_per_film_s": round(cpu / film_s, 3), "speed_x": round(film_s / wall, 2),
        "late": player.stats["late"], "dropped": player.stats["dropped"],
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.machine()}, {cpu}, {os.cpu_count()} cores, {platform.system()}"


def format_rows(rows: list[dict]) -> str:
    head = ("compositor", "cores", "decode ms", "frames ms", "composite ms", "present ms",
            "CPU s/s", "speed")
    body = []
    for r in rows:
        def ms(key: str, r: dict = r) -> str:
            s = r[key]
            return "-" if s["median"] is None else f"{s['median']:.1f} / {s['p99']:.1f}"
        body.append((r["compositor"], str(r["cores"]), ms("decode_ms"), ms("frames_ms"),
                     ms("composite_ms"), ms("present_ms"), f"{r['cpu_s_per_film_s']:.2f}",
                     f"{r['speed_x']:.2f}x"))
    widths = [max(len(x[i]) for x in (head, *body)) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
             for line in (head, *body)]
    return "\n".join(lines) + "\n(ms: median / p99 per frame; speed: film time over wall time)"


def main(show_dir: Path, compositors: list[str], cores: str, as_json: bool) -> int:
    """Run the scene for each compositor (and core setting); print a table or JSON lines."""
    rows = []
    pinned = os.environ.get("APPLIANCE_BENCH_PIN")
    if pinned is not None:  # the one-core child: pinned before any thread starts
        os.sched_setaffinity(0, {int(pinned)})
        rows = [run_one(show_dir, comp) for comp in compositors]
    for comp in [] if pinned is not None else compositors:
        for setting in (["all", "1"] if cores == "both" else [cores]):
            if setting == "all":
                rows.append(run_one(show_dir, comp))
                continue
            # a fresh process pinned to CPU 0, like `taskset -c 0` (threads inherit it)
            cmd = [sys.executable, "-m", "appliance", "bench", "player", "--show",
                   str(show_dir), "--compositor", comp, "--json"]
            env = {**os.environ, "APPLIANCE_BENCH_PIN": "0"}
            r = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if r.returncode != 0:
                raise RuntimeError(r.stderr.strip() or "the one-core run failed")
            rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
    if as_json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(f"appliance bench player — {date.today().isoformat()}, {machine()}")
        print(f"show: {show_dir}, scene: {SCENE_S:g} s of film (1 overlay, then 2 crossfading, "
              "then the cut to the ending)")
        print(format_rows(rows))
    return 0
