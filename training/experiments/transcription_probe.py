"""Experiment: does a piano-transcription front end help the style network? (not shipped)

    pip download --no-deps basic-pitch==0.4.0 -d /tmp/bp        # the wheel carries nmp.onnx
    unzip /tmp/bp/basic_pitch-0.4.0-*.whl 'basic_pitch/saved_models/*' -d /tmp/bpx
    python -m training.experiments.transcription_probe probe --nmp /tmp/bpx/.../nmp.onnx  # ~35 min
    python -m training.experiments.transcription_probe full --nmp /tmp/bpx/.../nmp.onnx   # ~75 min

The input is basic-pitch's note posteriors (Spotify, Apache-2.0; trained on real recordings),
88 keys at 86 frames/s, max-pooled to 43 frames/s and taken as ``ln(p + 1e-3)``: a 3 s
window is 88 x 129. The network, training loop and augmentation are genre-1.3's, unchanged.
Results and the reasoning are in ``docs/experiments/transcription.md``.

``probe``: 30 % of genre-1.3's training clips, without the ``musescore-grand`` timbre; a
log-mel and a roll network trained for the same 900 s on one thread each; scored on the dev
medleys' windows inside a segment, in their own timbres and re-rendered in the held-out one.
``full``: all of genre-1.3's training windows, genre-1.3's recipe (2700 s, splice 0.25),
then the dev medleys replayed through the box's Listener for every smoothing
``tune_listener`` tries, for genre-1.3 (INT8, as shipped), the roll network, and the average of
both. Nothing here touches val. Work files go to ``training/cache/transcription/``.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing as mp
import time

import numpy as np
import onnxruntime as ort

from training.dataset import CACHE, LABELS, build_windows, cache_write

OUT = CACHE / "transcription"
N_IN, OLAP = 43844, 30 * 256        # nmp.onnx input samples; overlap as basic-pitch uses it
HOP_IN = N_IN - OLAP
FPS = 22050 / 256                   # roll frames per second
WF = int(round(3.0 * FPS))          # roll frames per 3 s window (258)
HELD = "musescore-grand"            # the timbre the probe trains without
WIDTHS = (32, 64, 128, 192)

NMP_PATH = ""  # set by main(); forked transcription workers inherit it


@functools.cache
def _session() -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    return ort.InferenceSession(NMP_PATH, so, providers=["CPUExecutionProvider"])


def transcribe(x16: np.ndarray) -> np.ndarray:
    """Note posteriors ``[frames, 88]`` (float16, 86 frames/s, frame 0 at t=0) of 16 kHz
    audio: resampled to 22.05 kHz, cut into overlapping 2 s windows, the 15 frames at each
    window edge dropped, as basic-pitch's own inference does."""
    from training.render import resample
    x = resample(np.asarray(x16, np.float32), 16000, 22050)
    n = len(x)
    x = np.concatenate([np.zeros(OLAP // 2, np.float32), x])
    wins = [np.pad(x[i:i + N_IN], (0, max(0, N_IN - len(x[i:i + N_IN]))))
            for i in range(0, len(x), HOP_IN)]
    notes = [_session().run(["StatefulPartitionedCall:1"],
                            {"serving_default_input_2:0": np.stack(wins[j:j + 16])[:, :, None]})[0]
             for j in range(0, len(wins), 16)]
    roll = np.concatenate(notes)[:, 15:-15].reshape(-1, 88)
    return roll[: int(round(n / 256))].astype(np.float16)


def feat(roll_win: np.ndarray) -> np.ndarray:
    """``[258, 88]`` posteriors -> ``[88, 129]`` network input (max over frame pairs, log)."""
    r = roll_win.astype(np.float32)
    r = r[: (len(r) // 2) * 2].reshape(-1, 2, 88).max(1)
    return np.log(r.T + 1e-3).astype(np.float32)


def window(roll: np.ndarray, start_s: float) -> np.ndarray:
    s = int(round(start_s * FPS))
    w = roll[s:s + WF]
    return feat(np.pad(w, ((0, WF - len(w)), (0, 0))) if len(w) < WF else w)


def clip_roll(key: str) -> np.ndarray:
    """The roll of one cached training clip (cached too)."""
    p = OUT / "clips" / f"{key}.npy"
    if p.exists():
        return np.load(p)
    r = transcribe(np.load(CACHE / "audio" / f"{key}.npy").astype(np.float32))
    cache_write(p, lambda f: np.save(f, r))
    return r


def transcribe_clips(keys: list[str]) -> None:
    t = time.monotonic()
    with mp.get_context("fork").Pool(2) as pool:
        for i, _ in enumerate(pool.imap_unordered(clip_roll, keys, chunksize=4)):
            if (i + 1) % 500 == 0:
                print(f"transcribed {i + 1}/{len(keys)} {time.monotonic() - t:.0f}s", flush=True)
    print(f"transcription {time.monotonic() - t:.0f} s for {len(keys)} clips", flush=True)


def train_windows() -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """genre-1.3's training windows (log-mel), from the build cache."""
    return build_windows("train", quick=False, seed=0, minutes_per_class=200.0, clip_s=15.0)


def dev_medleys(held: bool) -> list[tuple[np.ndarray, list[dict], float]]:
    from training.evaluate import medley_plan, render_medley
    plans = medley_plan(8, seed=77, split="dev")
    if held:
        for m in plans:
            m["timbre"] = HELD
    return [(*render_medley(m), m["lead_s"]) for m in plans]


def dev_windows(held: bool) -> dict[str, np.ndarray]:
    """Log-mel and roll windows every 0.5 s wholly inside a dev-medley segment, with labels."""
    p = OUT / f"dev{'-held' if held else ''}.npz"
    if p.exists():
        return dict(np.load(p))
    from appliance.listen.frontend import FrontEnd, log_mel
    fe = FrontEnd()
    xm, xr, ys = [], [], []
    for x, segs, _ in dev_medleys(held):
        r = transcribe(x)
        for s in segs:
            for end in np.arange(s["t0"] + 3.0, s["t1"] + 1e-9, 0.5):
                e = int(round(end * 16000))
                xm.append(log_mel(x[e - 48000:e], fe))
                xr.append(window(r, end - 3.0))
                ys.append(LABELS.index(s["genre"]))
    out = {"xm": np.stack(xm), "xr": np.stack(xr), "y": np.array(ys)}
    cache_write(p, lambda f: np.savez(f, **out))
    return out


def _accuracy(model, x: np.ndarray, y: np.ndarray) -> dict:
    import torch
    model.eval()
    xx = torch.from_numpy(x).unsqueeze(1)
    with torch.no_grad():
        pred = torch.cat([model.logits(xx[i:i + 256]).argmax(1)
                          for i in range(0, len(xx), 256)]).numpy()
    return {"all": float((pred == y).mean()),
            **{LABELS[c]: float((pred[y == c] == c).mean()) for c in np.unique(y)}}


def probe(budget_s: float) -> None:
    """Log-mel against roll, same windows, same time, one held-out timbre."""
    import torch

    from training.train import train
    xt, yt, mt = train_windows()
    rng = np.random.default_rng(1)
    clips = sorted({m["clip"] for m in mt if m.get("timbre", "") != HELD})
    keep = set(rng.choice(clips, size=int(0.3 * len(clips)), replace=False).tolist())
    idx = np.array([i for i, m in enumerate(mt) if m["clip"] in keep])
    print(f"probe: {len(idx)} windows {np.bincount(yt[idx])} from {len(keep)} clips", flush=True)
    transcribe_clips(sorted(keep))
    xr = np.stack([window(clip_roll(mt[i]["clip"]), mt[i]["offset"]) for i in idx])
    dev, held = dev_windows(False), dev_windows(True)
    torch.set_num_threads(1)
    for kind, x, key in (("mel", xt[idx], "xm"), ("roll", xr, "xr")):
        model, hist = train(x, yt[idx], dev[key], dev["y"], labels=LABELS, epochs=60,
                            time_budget_s=budget_s, widths=WIDTHS, keep="last",
                            lr_follows_budget=True)
        print(kind, json.dumps({"dev": _accuracy(model, dev[key], dev["y"]),
                                "held_out_timbre": _accuracy(model, held[key], held["y"]),
                                "epochs": len(hist["val_acc"])}), flush=True)


def _roll_outputs(model, x: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """What the roll network would answer at each hop of a medley, as the Listener asks: the
    window ending at ``(i + 1) * 0.5`` s, its unheard part silent."""
    import torch
    r = transcribe(x)
    pad = np.zeros((WF, 88), np.float16)
    rr = np.concatenate([pad, r, pad])
    ends = [int(round((i + 1) * 0.5 * FPS)) + WF for i in range(len(x) // 8000)]
    xx = torch.from_numpy(np.stack([feat(rr[e - WF:e]) for e in ends])).unsqueeze(1)
    with torch.no_grad():
        out = [model(xx[i:i + 256]) for i in range(0, len(xx), 256)]
    p, e = torch.cat([o[0] for o in out]).numpy(), torch.cat([o[1] for o in out]).numpy()
    return [(p[i:i + 1], e[i:i + 1]) for i in range(len(ends))]


def full(budget_s: float) -> None:
    """genre-1.3's recipe on roll input, then a listener replay on the dev medleys."""
    import torch

    from appliance.listen.bundle import load_bundle
    from appliance.listen.engine import OnnxEngine
    from appliance.listen.listener import Smoothing
    from training.model import make_model
    from training.train import train
    from training.tune_listener import _Recorder, choose, hear, replay_grid, window_accuracy

    pt = OUT / "full-roll.pt"
    if not pt.exists():
        xt, yt, mt = train_windows()
        del xt
        transcribe_clips(sorted({m["clip"] for m in mt}))
        xr = np.stack([window(clip_roll(m["clip"]), m["offset"]) for m in mt])
        dev = dev_windows(False)
        torch.set_num_threads(2)
        model, hist = train(xr, yt, dev["xr"], dev["y"], labels=LABELS, epochs=80,
                            time_budget_s=budget_s, widths=WIDTHS, keep="last",
                            lr_follows_budget=True, splice_p=0.25)
        torch.save(model.state_dict(), pt)
        print("dev accuracy per epoch", json.dumps(hist["val_acc"]), flush=True)
    model = make_model(88, WF // 2, len(LABELS), widths=WIDTHS)
    model.load_state_dict(torch.load(pt))
    model.eval()
    b = load_bundle("engines/genre-1.3")
    heard = []
    for x, segs, lead in dev_medleys(False):
        rec = _Recorder(OnnxEngine(b, precision="int8", threads=1))
        hear(rec, Smoothing(), x)
        roll = _roll_outputs(model, x)
        avg = [((a[0] + c[0]) / 2, a[1]) for a, c in zip(rec.outputs, roll, strict=True)]
        heard.append((x, segs, lead, {"genre-1.3": rec.outputs, "roll": roll, "average": avg}))
    grids = {kind: replay_grid(b, [(x, segs, lead, outs[kind]) for x, segs, lead, outs in heard])
             for kind in ("genre-1.3", "roll", "average")}
    for kind, rows in grids.items():
        acc = [window_accuracy(h[3][kind], h[1], list(b.labels), 0.5, 3.0) for h in heard]
        right, n, seg_right, n_segs = (sum(c) for c in zip(*acc, strict=True))
        _, best = choose(rows)
        print(kind, f"windows {right}/{n} = {right / n:.3f}, segments {seg_right}/{n_segs}",
              json.dumps(best), flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=("probe", "full"))
    ap.add_argument("--nmp", required=True, help="basic-pitch's nmp.onnx")
    ap.add_argument("--budget", type=float, default=None,
                    help="training seconds (probe: 900 per network; full: 2700)")
    a = ap.parse_args(argv)
    global NMP_PATH
    NMP_PATH = a.nmp
    if a.stage == "probe":
        probe(a.budget or 900.0)
    else:
        full(a.budget or 2700.0)


if __name__ == "__main__":
    main()
