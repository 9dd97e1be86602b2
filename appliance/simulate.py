"""Simulation: the box's own listener, director and player, with the clock taken from an
audio file instead of the wall. Runs as fast as the machine allows (or paced, --realtime)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from appliance.audio import open_source
from appliance.listen import open_listener
from appliance.player import Player, open_output
from appliance.service.events import EventLog
from appliance.service.showloop import ShowLoop
from appliance.show.director import Director
from appliance.show.showfile import load_show_or_raise

log = logging.getLogger("appliance.simulate")


def audio_duration(path: Path) -> float:
    import av

    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        if s.duration is not None and s.time_base is not None:
            return float(s.duration * s.time_base)
        if c.duration is not None:
            return c.duration / 1e6
    raise ValueError(f"{path}: cannot tell how long this audio is")


def simulate(audio: Path, show_dir: Path, engine_dir: Path | None, log_path: Path | None,
             out: Path | None = None, *, realtime: bool = False, backend: str = "auto",
             output: str = "offscreen", hud: bool = False,
             record_size: tuple[int, int] | None = None,
             compositor: str = "software") -> dict:
    """Run a whole show against ``audio``; return the final stats event. ``hud``: draw the
    heads-up display (style bars, state, time to the decision) over every frame.
    ``record_size``: the preview MP4's size (default: the show's, capped at 1280x720).
    ``compositor``: "software" (pygame blits), "gpu" (SDL's renderer) or "auto".

    When the audio ends before the show does, silence follows until the performance's
    ending has played (or, with no performance under way, the show simply stops).
    """
    show, problems = load_show_or_raise(show_dir)
    for p in problems:
        log.warning("%s", p)
    listener = open_listener(engine_dir, backend=backend)
    rate = listener.fe.sample_rate
    hop = listener.bundle.hop_samples
    length_s = audio_duration(audio)
    source = open_source(f"file:{audio}", rate=rate, realtime=False)
    events = EventLog(log_path)
    player = Player(open_output(output, show.size, show.fps, record=str(out) if out else None,
                                record_size=record_size, compositor=compositor),
                    show.size, show.fps, realtime=realtime)
    loop = ShowLoop(Director(show), player, events)
    if hud:
        from appliance.hud import Hud

        player.on_top = Hud(loop).draw
    # a performance that starts at the very end of the audio still gets its film and ending
    longest_ending = max((m.duration_s for m in show.endings.values()), default=0.0)
    limit_s = length_s + show.main.duration_s + longest_ending + 60.0
    wall0 = time.perf_counter()
    engine_ms: list[float] = []
    frame = 0
    t = 0.0
    try:
        while True:
            t = frame / show.fps
            heard = []
            while listener.time + hop / rate <= t + 1e-9:
                new = listener.feed(source.read(hop))
                engine_ms.extend(listener.last_cost_ms for _ in new)
                heard += new
            loop.step(t, heard)
            frame += 1
            if realtime:
                lag = wall0 + frame / show.fps - time.perf_counter()
                if lag > 0:
                    time.sleep(lag)
            t_next = frame / show.fps
            if t_next >= length_s and not loop.performing:
                break
            if t_next >= limit_s:
                log.warning("stopping at %.1f s: the show did not settle", t_next)
                break
    finally:
        player.close()
        source.close()
    wall = time.perf_counter() - wall0
    sim_s = frame / show.fps
    stats = {"t": round(sim_s, 3), "event": "stats", **player.stats,
             "frames": frame, "audio_s": round(length_s, 3), "wall_s": round(wall, 3),
             "speed_x": round(sim_s / wall, 2) if wall > 0 else None,
             "endings": loop.endings, "ending": loop.endings[-1] if loop.endings else None,
             "windows": len(engine_ms),
             "listen_ms_mean": round(sum(engine_ms) / len(engine_ms), 3) if engine_ms else None,
             "engine": listener.bundle.label, "backend": listener.engine.backend,
             "compositor": player.output.compositor_name}
    events.write(stats)
    events.close()
    return stats
