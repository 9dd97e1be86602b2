"""`appliance report` on real event files written by `appliance simulate` (the box's own
listener, director and player on a medley of tones the test bundle hears as baroque,
classical and jazz). The figure is read back element by element (each carries a gid) and
checked against the raw event lines — not against pixels.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.report import make_report, write_report
from appliance.service.performances import read_events
from tests.boxes import appliance
from tests.conftest import band_tone_hz, make_tiny_show, write_wav

LABELS = ["baroque", "classical", "ragtime", "jazz", "none"]


def _tones(path: Path, parts: list[tuple[int | None, float]]) -> Path:
    chunks = []
    for band, secs in parts:
        t = np.arange(int(16000 * secs)) / 16000
        chunks.append(np.zeros_like(t) if band is None else
                      0.3 * np.sin(2 * np.pi * band_tone_hz(band) * t))
    return write_wav(path, np.concatenate(chunks))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_show(tmp_path_factory.mktemp("show") / "show", main_s=16.0, listen_s=6.0)


def _simulate(tmp: Path, audio: Path, show: Path, bundle: Path, name: str) -> list[dict]:
    log = tmp / f"{name}.jsonl"
    r = appliance("simulate", "--audio", str(audio), "--show", str(show), "--engine",
                  str(bundle), "--log", str(log))
    assert r.returncode == 0, r.stderr
    return [json.loads(x) for x in log.read_text().splitlines()]


def _by_gid(fig, prefix: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for ax in fig.axes:
        for artist in [*ax.collections, *ax.patches, *ax.texts]:
            gid = artist.get_gid() or ""
            if gid.startswith(prefix):
                out.setdefault(gid, []).append(artist)
    return out


def _xs(collection) -> tuple[float, float]:
    v = np.concatenate([p.vertices for p in collection.get_paths()])
    return float(v[:, 0].min()), float(v[:, 0].max())


def test_one_performance_shows_every_element_from_the_events(tmp_path, tiny, band_bundle):
    medley = _tones(tmp_path / "medley.wav", [(0, 6), (1, 5), (3, 9), (None, 4)])
    lines = _simulate(tmp_path, medley, tiny, band_bundle, "medley")
    fig = write_report([read_events(tmp_path / "medley.jsonl")], tmp_path / "one.png")
    assert (tmp_path / "one.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the performance, found in the raw lines
    t0 = next(e["t"] for e in lines if e.get("state") == "main")
    end = next(e["t"] for e in lines if e.get("state") == "attract" and e["t"] > t0)
    ending = next(e for e in lines if e["event"] == "ending")
    # (a reading taken at the very moment it is back in attract belongs to no show)
    heard = [e for e in lines if e["event"] == "heard" and t0 - 15 <= e["t"] < end]
    assert heard and ending["genre"] == "jazz"

    # five stacked areas: at each reading, each layer's top is the running sum of the probs
    areas = _by_gid(fig, "probs:")
    assert sorted(areas) == sorted(f"probs:{g}" for g in LABELS)
    for e in heard:
        top = 0.0
        for g in LABELS:
            top += e["probs"][g]
            v = np.concatenate([p.vertices for p in areas[f"probs:{g}"][0].get_paths()])
            near = np.hypot(v[:, 0] - (e["t"] - t0), v[:, 1] - top)
            assert near.min() < 1e-6, (g, e)

    # the smoothed style and the overlay: one bar per reading in the events, where it starts
    for strip, kind in (("style", "genre"), ("overlay", "overlay")):
        changes = [(e["t"] - t0, e["genre"]) for e in lines
                   if e["event"] == kind and t0 - 15 <= e["t"] <= end]
        bars = _by_gid(fig, f"{strip}:")
        drawn = sorted((_xs(c)[0], gid.split(":")[1]) for gid, cs in bars.items() for c in cs)
        want = [(t, g) for (t, g), (t2, _) in zip(changes, [*changes[1:], (end - t0, None)],
                                                   strict=True) if g not in (None, "none")
                and t2 > t]
        assert [(round(t, 6), g) for t, g in drawn] == [(round(t, 6), g) for t, g in want]
    assert {g for _t, g in want} == {"baroque", "classical", "jazz"}  # the overlays it showed
    switches = _by_gid(fig, "overlay-switch")["overlay-switch"]
    assert len(switches) == len([e for e in lines if e["event"] == "overlay"
                                 and t0 <= e["t"] <= end])

    # the show's states, the decision window and the chosen ending with its evidence
    assert {"show:main", "show:ending", "show:rest"} <= set(_by_gid(fig, "show:"))
    (window,) = _by_gid(fig, "decision-window")["decision-window"]
    assert window.get_x() == pytest.approx(ending["evidence"]["from"] - t0)
    assert window.get_width() == pytest.approx(ending["t"] - ending["evidence"]["from"])
    (text,) = _by_gid(fig, "ending-text")["ending-text"]
    mean = ending["evidence"]["mean_probs"]["jazz"]
    assert text.get_text().startswith(f"ending: jazz (confident) — jazz {mean:.2f} on average")
    assert f"{ending['evidence']['n_estimates']} readings" in text.get_text()


def test_a_night_of_shows_counts_endings_and_minutes_of_each_style(tmp_path, tiny, band_bundle):
    nights = {"jazz-1": [(3, 18), (None, 6)], "jazz-2": [(3, 18), (None, 6)],
              "baroque": [(0, 18), (None, 6)], "empty": [(None, 6)]}
    lines = {n: _simulate(tmp_path, _tones(tmp_path / f"{n}.wav", parts), tiny, band_bundle, n)
             for n, parts in nights.items()}
    files = [read_events(tmp_path / f"{n}.jsonl") for n in nights]
    fig = make_report(files)

    counts: dict[str, int] = {}
    for ls in lines.values():
        for e in ls:
            if e["event"] == "ending":
                counts[e["genre"]] = counts.get(e["genre"], 0) + 1
    assert counts == {"jazz": 2, "baroque": 1}
    bars = _by_gid(fig, "ending-count:")
    assert {gid.split(":")[1]: c[0].get_height() for gid, c in bars.items()} == counts

    # minutes of each style: against the hop-by-hop readings (0.5 s each) while music played
    heard: dict[str, float] = {}
    for ls in lines.values():
        for e in ls:
            if e["event"] == "heard" and e["music"]:
                heard[e["genre"]] = heard.get(e["genre"], 0.0) + 0.5
    styles = _by_gid(fig, "style-minutes:")
    drawn = {gid.split(":")[1]: c[0].get_width() * 60 for gid, c in styles.items()}
    assert set(drawn) == set(heard) == {"jazz", "baroque"}
    for g, seconds in heard.items():
        assert drawn[g] == pytest.approx(seconds, abs=2.0)

    timelines = [ax for ax in fig.axes if any((c.get_gid() or "").startswith("probs:")
                                              for c in ax.collections)]
    assert len(timelines) == 3  # one per show; the empty night has none
    write_report(files, tmp_path / "night.html")
    page = (tmp_path / "night.html").read_text()
    assert 'src="data:image/png;base64,' in page
    assert page.count("<tr><td>") == 3 and "ending: baroque (confident)" in page


def test_a_cut_off_last_line_is_counted_not_fatal(tmp_path, tiny, band_bundle):
    _simulate(tmp_path, _tones(tmp_path / "a.wav", [(3, 18), (None, 6)]), tiny, band_bundle, "a")
    path = tmp_path / "a.jsonl"
    path.write_text(path.read_text() + '{"t": 99.0, "event": "sta')
    f = read_events(path)
    assert f.unreadable == 1 and len(f.performances) == 1
    r = appliance("report", str(path), "--out", str(tmp_path / "a.png"))
    assert r.returncode == 0 and "1 show(s) from 1 file(s); endings jazz" in r.stdout
    assert "1 unreadable line(s) skipped" in r.stderr


_event = st.fixed_dictionaries(
    {"t": st.floats(0, 500, allow_nan=False), "event": st.sampled_from(
        ["state", "genre", "overlay", "ending", "heard", "stats", "engine", "x"])},
    optional={"state": st.sampled_from(["attract", "main", "ending", "rest", None, 3]),
              "genre": st.sampled_from([*LABELS, "default", None, 7]),
              "probs": st.dictionaries(st.sampled_from(LABELS), st.floats(0, 1)),
              "evidence": st.one_of(st.none(), st.fixed_dictionaries(
                  {}, optional={"from": st.floats(-10, 500, allow_nan=False),
                                "reason": st.text(max_size=5),
                                "mean_probs": st.dictionaries(st.sampled_from(LABELS),
                                                              st.floats(0, 1)),
                                "music_fraction": st.floats(0, 1),
                                "leading": st.sampled_from([*LABELS, None])})),
              "wall": st.text(max_size=20)})


@pytest.mark.filterwarnings("ignore:Glyph")  # control characters in fuzzed words: drawn as boxes
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(events=st.lists(_event, max_size=30), garbage=st.lists(
    st.sampled_from(['{"t": "x"}', "[1, 2]", "not json", '{"event": "state"}', '{"t": 1}']),
    max_size=4))
def test_any_event_file_is_drawn_or_refused_in_words_never_a_traceback(tmp_path, events,
                                                                       garbage):
    """Fuzzed: events in any order with missing, odd or wrong-typed fields, and lines that are
    not events at all."""
    events = sorted(events, key=lambda e: e["t"])
    path = tmp_path / "fuzz.jsonl"
    path.write_text("\n".join([*(json.dumps(e) for e in events), *garbage]) + "\n")
    f = read_events(path)
    assert f.unreadable == len(garbage)
    fig = make_report([f])
    assert fig.axes
    fig.savefig(io.BytesIO(), format="png", dpi=30)  # laid out and drawn, too
    for p in f.performances:
        assert p.start_t <= (p.end_t if p.end_t is not None else math.inf)
