"""The soak benchmark's short version: 50 shows through the daemon's own loops on an
accelerated clock (tests/benchmarks/soak.py; the month of 1,000 shows is the benchmark)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "benchmarks"))

import soak  # noqa: E402


def test_fifty_shows_end_by_the_rules_with_flat_fds_threads_and_memory(tmp_path):
    result = soak.soak(50, seed=1, work=tmp_path)
    assert not result["wrong"], result["wrong"]
    assert result["targets"]["fds flat"], [s["fds"] for s in result["samples"]]
    assert result["targets"]["threads flat"], [s["threads"] for s in result["samples"]]
    assert result["rss_growth_mb"] <= soak.RSS_GROWTH_MAX_MB, result["samples"]
    kinds = result["outcomes"]
    assert any(k.startswith("silence") for k in kinds) and any("+" in k for k in kinds)
    assert result["bad_windows"] > 0  # the engine faults really happened
    # the events stayed bounded: 256 KiB files, three kept
    assert len(result["events_files"]) <= 4


def test_the_targets_catch_a_leak():
    """What the soak's judge says of samples that grow (one fd and a megabyte every 10 shows)."""
    samples = [{"shows": i * 10, "rss_mb": 150.0 + i, "fds": 13 + i, "threads": 15}
               for i in range(40)]
    t = soak.judge([], samples)["targets"]
    assert not t["fds flat"] and not t[f"RSS growth <= {soak.RSS_GROWTH_MAX_MB:g} MB after warm-up"]
    assert t["threads flat"]


def test_threads_that_come_and_go_are_not_a_leak():
    """One decoder thread more in the later samples of a short run (seen in CI), or a thread
    that comes and goes all month, is flat; a slow climb of one thread per 50 shows is not."""
    def judge(values, every=10):
        samples = [{"shows": i * every, "rss_mb": 150.0, "fds": 13, "threads": v}
                   for i, v in enumerate(values)]
        return soak.judge([], samples)["targets"]["threads flat"]

    assert judge([3, 15, 14, 14, 15, 15])
    assert judge([14 + (i % 2) for i in range(100)])
    assert not judge([14 + i // 5 for i in range(100)])
