"""Average the weights of two bundles of one network into a third (a "weight soup").

    python -m training.soup engines/genre-2.1 engines/genre-2.2 --out /tmp/soup
    python -m training.build --init-from /tmp/soup --epochs 0 ...   # export it as a bundle

Why: genre-2.2 is genre-2.1 trained on, and on dev-real the two fail on different styles
(genre-2.1 on classical, genre-2.2 on ragtime). Networks fine-tuned from one another often
lie in one basin, where the mean of their weights scores at least as well as either; the
box still runs one network at one network's cost. The exported models have BatchNorm folded
into their convolutions, so the mean is taken over those folded weights; the build's warm
start then sets BatchNorm from real windows again. Writes only ``model.onnx`` and a manifest
(the first bundle's, with ``soup_of`` added), enough for ``--init-from``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from training.warm_start import bundle_weights


def soup(a: Path, b: Path, out: Path, weight_b: float = 0.5) -> Path:
    """Write ``out/model.onnx``: ``a``'s graph with every initializer the weighted mean of
    ``a``'s and ``b``'s (``weight_b`` on ``b``); refuses bundles of different networks."""
    ma = onnx.load(str(a / "model.onnx"))
    wb = {k: v.numpy() for k, v in bundle_weights(b / "model.onnx").items()}
    for init in ma.graph.initializer:
        x = numpy_helper.to_array(init)
        y = wb.get(init.name)
        if y is None or y.shape != x.shape:
            raise SystemExit(f"{b} has no weight {init.name!r} of shape {x.shape}: "
                             "not the same network")
        mean = ((1.0 - weight_b) * x.astype(np.float64) + weight_b * y).astype(x.dtype)
        init.CopyFrom(numpy_helper.from_array(mean, init.name))
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(ma, str(out / "model.onnx"))
    man = json.loads((a / "manifest.json").read_text())
    man["soup_of"] = {"a": str(a), "b": str(b), "weight_b": weight_b}
    (out / "manifest.json").write_text(json.dumps(man, indent=1))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training.soup",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--weight-b", type=float, default=0.5)
    a = ap.parse_args(argv)
    print(soup(a.a, a.b, a.out, a.weight_b))


if __name__ == "__main__":
    main()
