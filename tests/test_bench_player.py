"""`appliance bench player` on a tiny show: it runs the scene with both compositors, on all
cores and pinned to one, and reports every stage (the figures themselves belong in
docs/BENCHMARKS.md, not in a test)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import make_tiny_show


def test_bench_player_reports_every_stage_per_compositor_and_core_setting(tmp_path):
    show = make_tiny_show(tmp_path / "show", main_s=12.0, ending_s=5.0)
    r = subprocess.run([sys.executable, "-m", "appliance", "bench", "player", "--show",
                        str(show), "--json"], capture_output=True, text=True, timeout=300,
                       env={"SDL_VIDEODRIVER": "dummy", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["compositor"] for x in rows] == ["software", "software", "gpu", "gpu"]
    assert rows[1]["cores"] == rows[3]["cores"] == 1  # the runs pinned to one CPU
    for row in rows:
        assert row["frames"] == 120 and row["dropped"] == 0  # 12 s at the show's 10 fps
        for stage in ("decode_ms", "frames_ms", "composite_ms", "present_ms"):
            assert row[stage]["n"] > 0 and row[stage]["p99"] >= row[stage]["median"] >= 0
        assert row["cpu_s_per_film_s"] >= 0 and row["speed_x"] > 0  # a tiny show: ~0 CPU
