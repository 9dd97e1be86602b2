"""The weight soup (training.soup): its model is the mean of two bundles' weights,
runs like either, and two different networks are refused."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from appliance.config import repo_root
from training.soup import soup
from training.warm_start import bundle_weights

ENGINES = repo_root() / "engines"


def _weights(path):
    return {k: v.numpy() for k, v in bundle_weights(path).items()}


def test_soup_is_the_mean_of_both_bundles(tmp_path):
    a, b = ENGINES / "genre-2.1", ENGINES / "genre-2.2"
    out = soup(a, b, tmp_path / "soup", weight_b=0.25)
    wa, wb, ws = (_weights(p / "model.onnx") for p in (a, b, out))
    assert ws.keys() == wa.keys()
    for k in wa:
        np.testing.assert_allclose(ws[k], 0.75 * wa[k] + 0.25 * wb[k], rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(ws[k], wa[k]) for k in wa)  # it really moved
    assert json.loads((out / "manifest.json").read_text())["soup_of"]["weight_b"] == 0.25
    # the soup is a model ONNX Runtime runs, on the bundles' own input shape
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 2 for d in inp.shape]
    y = sess.run(None, {inp.name: np.random.default_rng(0).normal(size=shape)
                        .astype(np.float32)})[0]
    assert y.shape[0] == 2 and np.isfinite(y).all()


def test_soup_refuses_two_different_networks(tmp_path):
    with pytest.raises(SystemExit, match="not the same network"):
        soup(ENGINES / "genre-2.1", ENGINES / "placeholder-0.1", tmp_path / "soup")
    assert not (tmp_path / "soup").exists()
