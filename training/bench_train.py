"""Training speed of the style network: one optimiser step, per device.

    python -m training.bench_train [--widths 32,64,128,192] [--batch 64] [--steps 30]
                                   [--windows 62938] [--budget 2700] [--devices cpu,cuda]

Times ``training.train``'s own step (splice, feature-space augmentation, forward, backward,
AdamW) on random windows of the shipped 3 s shape, after a few warm-up steps, on each device
asked for that PyTorch can use. Windows, splicing and augmentation stay on the CPU, as in
``train``; only the network moves. Prints milliseconds per step and what a build's time
budget buys at that speed: steps, and epochs of ``--windows`` (genre-1.3's training set by
default, drawn class-balanced as ``train`` does).

The figures say how much a lent GPU shortens the recipe, not how accurate the result is.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from torch import nn

from appliance.listen.frontend import FrontEnd
from training.model import make_model
from training.train import Augment, splice

LABELS = 5


def step_ms(device: str, *, widths: tuple[int, ...], batch: int, steps: int,
            warmup: int = 5, splice_p: float = 0.25) -> float:
    """Median milliseconds per training step on ``device`` (random data, real shapes)."""
    fe = FrontEnd()
    n_frames = fe.frames_for(int(round(3.0 * fe.sample_rate)))
    gen = torch.Generator().manual_seed(0)
    pool_n = 2048
    pool_x = torch.randn(pool_n, 1, fe.n_mels, n_frames, generator=gen) - 9.0
    pool_y = torch.arange(pool_n) % LABELS
    aug = Augment(pool_x[pool_y == LABELS - 1], gen)
    model = make_model(fe.n_mels, n_frames, LABELS, widths=widths).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        b = torch.randint(pool_n, (batch,), generator=gen)
        xb, yb = splice(pool_x[b], pool_y[b], pool_x, pool_y, gen, LABELS - 1, splice_p)
        xb = aug(xb, yb, LABELS - 1)
        loss = loss_fn(model.logits(xb.to(device)), yb.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()  # waits for the device, as train's running loss does
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return 1000.0 * float(np.median(times))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training.bench_train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", default="32,64,128,192")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--windows", type=int, default=62938)
    ap.add_argument("--budget", type=float, default=2700.0, help="training seconds")
    ap.add_argument("--devices", default="cpu,cuda")
    a = ap.parse_args(argv)
    widths = tuple(int(w) for w in a.widths.split(","))
    # train() draws every class as often as the largest: about 1.1 x the windows per epoch
    per_epoch = math.ceil(1.1 * a.windows / a.batch)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, batch {a.batch}, "
          f"widths {widths}")
    for dev in a.devices.split(","):
        if dev.startswith("cuda") and not torch.cuda.is_available():
            print(f"{dev}: no CUDA GPU seen by PyTorch, skipped")
            continue
        name = torch.cuda.get_device_name(dev) if dev.startswith("cuda") else "cpu"
        ms = step_ms(dev, widths=widths, batch=a.batch, steps=a.steps)
        steps = a.budget / (ms / 1000.0)
        print(f"{dev} ({name}): {ms:.1f} ms per step; {a.budget:.0f} s buys {steps:.0f} steps "
              f"= {steps / per_epoch:.1f} epochs of {a.windows} windows")


if __name__ == "__main__":
    main()
