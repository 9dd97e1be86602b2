"""Choose the listener's smoothing for a bundle on DEV-REAL medleys, never on val.

    python -m training.tune_listener engines/genre-2.0 [--medleys 24] [--set dev-real] [--write]

Dev works are train-split works that engines from genre-1.1 on never train on
(``training.corpus``), so the engine is about as wrong on them as on new music. ``dev-real``
(the default) plays them on pianos and in venues training never used (``training.venue``);
``--set dev`` plays them on the training pianos through the training stage mic, as the
genre-1.x engines were tuned. Each medley
is heard once by the engine; the recorded outputs are then replayed through the box's own
Listener for every candidate smoothing (margin rule and evidence rule, ``candidates()``), so
the grid costs little (``replay_grid``). The rule, fixed before looking at any result: among
candidates whose median change delay is <= 3 s and whose first style is named <= 2 s after
music starts, take the one with the fewest spurious changes per 10 minutes (ties: the
shorter p95 delay).
It also scores the engine alone on the same medleys (``window_accuracy``), so that engines can
be compared on dev for accuracy too. ``--write`` stores the choice, with those scores, in the
bundle manifest's ``listener`` section.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from unittest import mock

import numpy as np

import appliance.listen.listener as listener_module
from appliance.listen.bundle import load_bundle, write_manifest
from appliance.listen.engine import OnnxEngine
from appliance.listen.listener import Listener, Smoothing
from training.evaluate import medley_plan, render_medley
from training.metrics import change_delays, first_named, pct, spurious_changes

TAUS = (1.0, 1.5, 2.0, 3.0)
MARGINS = (0.1, 0.2, 0.3)
# the evidence (CUSUM) switch rule: tau then only sets the music gate and the first naming
EVIDENCE_TAUS = (1.0, 1.5)
EVIDENCE = (3.0, 4.0, 6.0, 8.0, 11.0, 15.0)
CAPS = (1.5, 3.0)
MEDIAN_MAX_S, FIRST_MAX_S = 3.0, 2.0  # the targets for change and first naming
FRONTIER_S = (3.0, 3.5, 4.0, 5.0, 6.0)  # median delays at which ``steadiest`` reports


def candidates() -> list[Smoothing]:
    """Every smoothing the tuner tries: the margin rule, then the evidence rule."""
    out = [Smoothing(tau_s=t, switch_margin=m) for t, m in itertools.product(TAUS, MARGINS)]
    out += [Smoothing(tau_s=t, switch_evidence=h, evidence_cap=c)
            for t, h, c in itertools.product(EVIDENCE_TAUS, EVIDENCE, CAPS)]
    return out


def choose(rows: list[tuple[Smoothing, dict]]) -> tuple[Smoothing, dict]:
    """The fixed rule: among settings that name a change within 3 s (median) and the first
    style within 2 s, the fewest spurious changes (then the lowest p95 delay). If none
    reaches 3 s, settings within 0.5 s of the fastest median stand in for them, so a slow
    engine still gets its quickest honest setting rather than the stickiest one."""
    pool = [sr for sr in rows if sr[1]["first_max_s"] <= FIRST_MAX_S] or rows
    ok = [sr for sr in pool if sr[1]["median_s"] <= MEDIAN_MAX_S]
    if not ok:
        fastest = min(r["median_s"] for _, r in pool)
        ok = [sr for sr in pool if sr[1]["median_s"] <= fastest + 0.5]
    return min(ok, key=lambda sr: (sr[1]["spurious_per_10min"], sr[1]["p95_s"]))


def steadiest(rows: list[tuple[Smoothing, dict]], caps: tuple[float, ...] = FRONTIER_S
              ) -> dict[float, float]:
    """The trade-off itself, free of ``choose``'s 3 s cut-off: for each allowed median delay,
    the fewest spurious changes per 10 min among settings that name the first style within
    2 s (NaN where none is that fast). It informs a product decision; ``choose`` decides."""
    return {cap: min((r["spurious_per_10min"] for _, r in rows
                      if r["median_s"] <= cap and r["first_max_s"] <= FIRST_MAX_S),
                     default=float("nan")) for cap in caps}


def inside_windows(outputs: list[tuple[np.ndarray, np.ndarray]], segs: list[dict],
                   hop_s: float, window_s: float) -> Iterator[tuple[dict, np.ndarray]]:
    """Per segment: the engine's argmax (label index) for each window wholly inside it.
    Output ``i`` is the window ending at ``(i + 1) * hop_s`` (the listener answers from the
    first hop); windows that reach across a change are left out, so it is not scored."""
    end = (np.arange(len(outputs)) + 1) * hop_s
    called = np.array([int(np.argmax(probs)) for probs, _ in outputs], dtype=int)
    for s in segs:
        yield s, called[(end - window_s >= s["t0"] - 1e-9) & (end <= s["t1"] + 1e-9)]


def window_accuracy(outputs: list[tuple[np.ndarray, np.ndarray]], segs: list[dict],
                    labels: list[str], hop_s: float, window_s: float) -> tuple[int, int, int, int]:
    """The engine's own argmax against the medley's segments, before any smoothing, on the
    windows ``inside_windows`` keeps: returns (windows right, windows, segments right by
    majority, segments)."""
    right = n = seg_right = n_segs = 0
    for s, called in inside_windows(outputs, segs, hop_s, window_s):
        if len(called):
            votes = Counter(labels[i] for i in called)
            right += votes[s["genre"]]
            n += len(called)
            seg_right += votes.most_common(1)[0][0] == s["genre"]
            n_segs += 1
    return right, n, seg_right, n_segs


class _Recorder:
    """Runs the real engine and keeps its outputs, in order."""

    def __init__(self, engine: OnnxEngine) -> None:
        self.engine, self.bundle, self.backend = engine, engine.bundle, "recorded"
        self.outputs: list[tuple[np.ndarray, np.ndarray]] = []

    def infer(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self.engine.infer(features)
        self.outputs.append(out)
        return out


class _Replay:
    """Gives back recorded engine outputs in the order they were made."""

    def __init__(self, bundle, outputs) -> None:
        self.bundle, self.backend, self._it = bundle, "replay", iter(outputs)

    def infer(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return next(self._it)


def hear(engine, smoothing: Smoothing, x: np.ndarray) -> list[tuple[float, str]]:
    lis = Listener(engine, smoothing)
    hop = engine.bundle.hop_samples
    return [(e.t, e.genre) for i in range(0, len(x), hop) for e in lis.feed(x[i:i + hop])]


@contextlib.contextmanager
def replaying() -> Iterator[None]:
    """While replaying recorded outputs: a replay ignores the features, so the Listener's
    log-mel is stubbed out (its level gate still reads the audio) and put back afterwards."""
    def no_log_mel(buf: np.ndarray, fe) -> np.ndarray:
        return np.zeros((fe.n_mels, fe.frames_for(len(buf))), np.float32)

    with mock.patch.object(listener_module, "log_mel", no_log_mel):
        yield


def replay_grid(b, heard: list[tuple[np.ndarray, list[dict], float, list]]
                ) -> list[tuple[Smoothing, dict]]:
    """Every ``candidates()`` smoothing scored on medleys already heard by an engine:
    ``heard`` holds (audio, segments, lead-in seconds, the engine's outputs in order).

    The grid then costs little more than the smoothing (``replaying``)."""
    rows = []
    with replaying():
        for sm in candidates():
            delays, firsts, spur, steady = [], [], 0, 0.0
            for x, segs, lead, outputs in heard:
                stream = hear(_Replay(b, outputs), sm, x)
                delays += [c["censored_delay"] for c in change_delays(stream, segs)]
                f = first_named(stream, lead, segs[0]["genre"])["any"]
                firsts.append(f if f is not None else float("inf"))
                n, st = spurious_changes(stream, segs)
                spur += n
                steady += st
            rows.append((sm, {**asdict(sm), "median_s": pct(delays, 50),
                              "p95_s": pct(delays, 95), "first_max_s": max(firsts),
                              "spurious_per_10min": spur / (steady / 600)}))
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("engine", type=Path)
    ap.add_argument("--medleys", type=int, default=24)
    ap.add_argument("--set", choices=("dev-real", "dev"), default="dev-real",
                    help="dev-real: unseen pianos and venues (default); dev: training pianos")
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args(argv)
    b = load_bundle(a.engine)
    plans = medley_plan(a.medleys, seed=77, split="dev", venue=a.set == "dev-real")
    assert all(s["split"] == "dev" for m in plans for s in m["segments"])
    heard = []
    for i, m in enumerate(plans):
        x, segs = render_medley(m)
        rec = _Recorder(OnnxEngine(b, precision="int8", threads=1))
        hear(rec, Smoothing(), x)
        heard.append((x, segs, m["lead_s"], rec.outputs))
        print(f"medley {i + 1}/{len(plans)} heard ({len(x) / b.frontend.sample_rate:.0f} s)",
              flush=True)
    rows = replay_grid(b, heard)
    for _, row in rows:
        print(json.dumps(row))
    # the engine alone on the same medleys, so engines can be compared on dev as well
    hop_s = b.hop_samples / b.frontend.sample_rate
    acc = [window_accuracy(out, segs, list(b.labels), hop_s, b.window_s)
           for _, segs, _, out in heard]
    right, n, seg_right, n_segs = (sum(c) for c in zip(*acc, strict=True))
    chosen, best = choose(rows)
    best = {**best, "dev_window_accuracy": right / n, "dev_segment_accuracy": seg_right / n_segs}
    print(f"engine alone on dev: windows {right}/{n} = {right / n:.3f}, "
          f"segments by majority {seg_right}/{n_segs}")
    print("chosen:", json.dumps(best))
    print("fewest spurious changes per 10 min with median delay <= "
          + ", ".join(f"{cap:g} s: {v:.1f}" for cap, v in steadiest(rows).items()))
    if a.write:
        m = json.loads((b.path / "manifest.json").read_text())
        m.pop("files", None)
        m["listener"] = {**asdict(chosen),
                         "tuned_on": f"{len(plans)} {a.set.upper()} medleys "
                                     f"(python -m training.tune_listener --set {a.set})",
                         "tuning_result": best}
        write_manifest(b.path, m)
        print(f"wrote the listener section of {b.path / 'manifest.json'}")


if __name__ == "__main__":
    main()
