"""The box's metrics for a fleet's Prometheus: a text-format file for node_exporter's textfile
collector, written atomically by the real daemon, read back with prometheus-client's own
parser while a show plays (a tone as the mic, SDL offscreen)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from appliance.config import load_config
from appliance.service.metrics import Metrics, Snapshot
from tests.boxes import make_box
from tests.test_daemon import Daemon


def read_metrics(path: Path) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}}, through prometheus-client's parser."""
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def one(m: dict, name: str, **labels: str) -> float:
    return m[name][tuple(sorted(labels.items()))]


def current(m: dict, name: str, label: str) -> str | None:
    """The label value whose sample is 1 in a one-hot family (state, style heard)."""
    on = [dict(k)[label] for k, v in m[name].items() if v == 1.0]
    return on[0] if on else None


def test_the_metrics_file_follows_a_show_played_by_the_real_daemon(tmp_path, band_bundle):
    config = make_box(tmp_path, band_bundle, seconds=90.0)  # band 3: the engine hears jazz
    path = tmp_path / "metrics" / "appliance.prom"
    d = Daemon(config, tmp_path, WATCHDOG_USEC="2000000", WATCHDOG_PID="")
    done = threading.Event()
    reader = threading.Thread(target=lambda: [d.collect(0.3) for _ in iter(done.is_set, True)],
                              daemon=True)
    seen: list[dict] = []
    try:
        d.wait_for("READY=1", timeout=60)
        reader.start()
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if path.exists():
                m = read_metrics(path)  # read while the daemon rewrites it: never half a file
                seen.append(m)
                if (one(m, "appliance_endings_total", style="jazz") == 1
                        and current(m, "appliance_state", "state") in ("rest", "attract")):
                    break
            time.sleep(0.2)
    finally:
        done.set()
        if reader.is_alive():
            reader.join()
        d.close()
    assert seen, "the daemon never wrote its metrics file"
    states = [current(m, "appliance_state", "state") for m in seen]
    # the show's course, in order: attract loop → film → jazz ending → rest
    order = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]
    assert order[-3:] in (["main", "ending", "rest"], ["main", "ending", "attract"]) or \
        order[-4:-1] == ["main", "ending", "rest"], order
    first_main = next(m for m in seen if current(m, "appliance_state", "state") == "main")
    assert one(first_main, "appliance_shows_total") == 1
    assert one(first_main, "appliance_endings_total", style="jazz") == 0
    last = seen[-1]
    assert one(last, "appliance_shows_total") == 1
    assert one(last, "appliance_endings_total", style="jazz") == 1
    assert sum(last["appliance_endings_total"].values()) == 1
    assert current(last, "appliance_style_heard", "style") == "jazz"
    assert one(last, "appliance_music_present") == 1
    assert one(last, "appliance_mic_up") == 1
    assert one(last, "appliance_watchdog_armed") == 1
    assert one(last, "appliance_watchdog_stalled_loops") == 0
    assert one(last, "appliance_engine_reload_failed") == 0
    assert "appliance_frames_dropped_total" in last and "appliance_frames_late_total" in last
    (engine, value), = last["appliance_engine_info"].items()
    labels = dict(engine)
    assert value == 1 and labels["engine"] == "bands-test-1"
    assert labels["backend"] == "onnxruntime" and labels["runs_on"].startswith("ONNX Runtime")
    assert abs(one(last, "appliance_start_time_seconds") - time.time()) < 300
    # no systemd here: its restart count is left out rather than reported as 0
    assert "appliance_restarts_total" not in last
    # write_to_textfile's temporary file was renamed into place, never left beside it
    assert [p.name for p in path.parent.iterdir()] == ["appliance.prom"]


def test_metrics_count_shows_and_endings_and_write_only_on_change(tmp_path):
    path = tmp_path / "m" / "appliance.prom"
    metrics = Metrics(path, restarts=3, started=1_700_000_000.0)
    assert metrics.update(Snapshot(engine="genre-1.3", backend="tensorrt",
                                   runs_on="TensorRT INT8", mic_up=True))
    assert not metrics.update(Snapshot(engine="genre-1.3", backend="tensorrt",
                                       runs_on="TensorRT INT8", mic_up=True)), \
        "an unchanged show rewrote the file"
    for event in ({"event": "state", "state": "main"}, {"event": "ending", "genre": "ragtime"},
                  {"event": "state", "state": "rest"}, {"event": "state", "state": "main"},
                  {"event": "ending", "genre": "default"}, {"event": "heard", "genre": "jazz"}):
        metrics.take(event)
    assert metrics.update(Snapshot(state="ending", hearing="none", engine="genre-1.3",
                                   backend="tensorrt", runs_on="TensorRT INT8", mic_up=False,
                                   frames={"dropped": 7, "late": 2}, stalled_loops=1,
                                   watchdog_armed=True, reload_failed=True))
    m = read_metrics(path)
    assert one(m, "appliance_shows_total") == 2
    assert one(m, "appliance_endings_total", style="ragtime") == 1
    assert one(m, "appliance_endings_total", style="default") == 1
    assert one(m, "appliance_endings_total", style="jazz") == 0
    assert current(m, "appliance_state", "state") == "ending"
    assert current(m, "appliance_style_heard", "style") == "none"
    assert one(m, "appliance_mic_up") == 0
    assert one(m, "appliance_frames_dropped_total") == 7
    assert one(m, "appliance_frames_late_total") == 2
    assert one(m, "appliance_watchdog_stalled_loops") == 1
    assert one(m, "appliance_engine_reload_failed") == 1
    assert one(m, "appliance_restarts_total") == 3
    assert one(m, "appliance_start_time_seconds") == 1_700_000_000.0
    assert metrics.writes == 2


def test_an_unwritable_metrics_folder_never_stops_the_show(tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    metrics = Metrics(blocker / "appliance.prom")
    assert not metrics.update(Snapshot(state="main"))
    assert not metrics.update(Snapshot(state="ending"))
    assert sum("cannot write metrics" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("value, want", [("", None), ("m/a.prom", "m/a.prom")])
def test_the_metrics_path_comes_from_the_config(tmp_path, value, want):
    (tmp_path / "a.toml").write_text(f'[service]\nmetrics_file = "{value}"\n')
    config, problems = load_config(tmp_path / "a.toml")
    assert not problems
    got = config.service.metrics_file
    assert (got is None) if want is None else got == tmp_path / want
    default, _ = load_config(tmp_path / "missing.toml")
    assert default.service.metrics_file == Path("/var/lib/appliance/metrics/appliance.prom")
