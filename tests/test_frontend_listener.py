"""The front end and the listener: same features offline and streaming, right answers."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.listen import engine as engine_module
from appliance.listen import load_bundle
from appliance.listen.bundle import BundleError, write_manifest
from appliance.listen.engine import OnnxEngine, check_engine
from appliance.listen.frontend import FrontEnd, log_mel
from appliance.listen.listener import Listener
from tests.conftest import LABELS, band_tone_hz

SR = 16000


def tone(hz: float, seconds: float, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_front_end_matches_librosa_reference():
    librosa = pytest.importorskip("librosa")
    fe = FrontEnd()
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal(SR * 2) + tone(440, 2)).astype(np.float32)
    ref = librosa.feature.melspectrogram(
        y=x, sr=fe.sample_rate, n_fft=fe.n_fft, hop_length=fe.hop_length, n_mels=fe.n_mels,
        fmin=fe.fmin, fmax=fe.fmax, center=False, power=2.0, window="hann", htk=False)
    ours = log_mel(x, fe)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, np.log(ref + fe.log_floor), atol=1e-3)


def test_training_uses_the_runtime_front_end():
    """Training must not carry its own feature code: it imports the listener's function."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "training"
    users = []
    for py in root.glob("*.py"):
        tree = ast.parse(py.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "appliance.listen.frontend":
                users.append(py.name)
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in (
                    "melspectrogram", "stft"):
                pytest.fail(f"{py.name} computes its own spectrogram")
    assert users, "no training module imports appliance.listen.frontend"


class WindowRecorder(OnnxEngine):
    """The real ONNX engine, keeping a copy of every window it is given."""

    def __init__(self, bundle, seen: list[np.ndarray]) -> None:
        super().__init__(bundle)
        self.seen = seen

    def infer(self, features):
        self.seen.append(features[0, 0].copy())
        return super().infer(features)


def test_streaming_features_equal_offline_features(band_bundle):
    """What the listener feeds the engine is exactly log_mel of the same window."""
    seen: list[np.ndarray] = []
    b = load_bundle(band_bundle)
    lis = Listener(WindowRecorder(b, seen))
    rng = np.random.default_rng(2)
    audio = (0.2 * rng.standard_normal(SR * 3)).astype(np.float32)
    pos = 0
    for size in [1000, 37, 5000, 8000, 123, 20000, 13840]:  # odd chunk sizes, like a capture
        lis.feed(audio[pos:pos + size])
        pos += size
    assert pos == len(audio) and len(seen) >= 3
    # the last estimate came at 3.0 s; its window is the last window_samples samples
    want = log_mel(audio[-b.window_samples:], b.frontend)
    np.testing.assert_allclose(seen[-1], want, rtol=0, atol=1e-4)


def test_window_not_yet_heard_is_filled_with_what_was_heard(band_bundle):
    """Before a whole window is heard the engine sees the heard frames at the window's end
    and, before them, the same frames again: no cut from digital silence, which no training
    window has (docs/experiments/genre-2.md, "the listener's first seconds")."""
    seen: list[np.ndarray] = []
    b = load_bundle(band_bundle)
    lis = Listener(WindowRecorder(b, seen))
    audio = (0.2 * np.random.default_rng(3).standard_normal(b.hop_samples)).astype(np.float32)
    out = lis.feed(audio)
    assert len(out) == 1 and len(seen) == 1 and out[0].t == b.hop_s
    heard = log_mel(audio, b.frontend)
    k = heard.shape[1]
    assert 0 < 2 * k < b.n_frames
    window = seen[0]
    assert window.shape == (b.frontend.n_mels, b.n_frames)
    np.testing.assert_allclose(window[:, -k:], heard, rtol=0, atol=1e-4)
    # every earlier frame is the heard frame one period of k later
    np.testing.assert_array_equal(window[:, :-k], window[:, k:])
    silence = log_mel(np.zeros(b.hop_samples, np.float32), b.frontend)[:, 0]
    assert not np.any(np.all(window == silence[:, None], axis=0))


def test_level_gate_judges_the_heard_part_only(band_bundle):
    """A quiet room heard for one hop reads at its own level, not diluted by the unheard
    part of the window (which would read ~8 dB lower and could pass for digital silence)."""
    lis = Listener(OnnxEngine(load_bundle(band_bundle)))
    x = tone(band_tone_hz(1), 0.5)
    x = (x * 10 ** (-60 / 20) / np.sqrt(np.mean(x ** 2))).astype(np.float32)  # -60 dBFS
    lis.feed(x)
    assert abs(lis.last_window_db - (-60.0)) < 1.0


def test_first_estimate_alone_does_not_start_the_music(band_bundle):
    """The moving average starts from "no music": one window of a clear style, heard at
    start, is not yet music; the same sound a few hops on is."""
    lis = Listener(OnnxEngine(load_bundle(band_bundle)))
    out = lis.feed(tone(band_tone_hz(2), 0.5))
    assert len(out) == 1 and out[0].raw_probs["ragtime"] > 0.5
    assert not out[0].music_present and out[0].genre == "none"
    later = lis.feed(tone(band_tone_hz(2), 2.5))
    assert later[-1].music_present and later[-1].genre == "ragtime"


def test_listener_names_the_band_and_follows_a_change(band_bundle):
    lis = Listener(OnnxEngine(load_bundle(band_bundle)))
    first = lis.feed(tone(band_tone_hz(2), 4.0))      # band 2 → ragtime
    assert first and first[-1].genre == "ragtime" and first[-1].music_present
    later = lis.feed(tone(band_tone_hz(0), 4.0))      # band 0 → baroque
    assert later[-1].genre == "baroque"
    changed_at = next(e.t for e in later if e.genre == "baroque")
    assert 4.0 < changed_at <= 7.0
    # one reading per hop from the first hop on, before a whole window has been heard
    assert [round(e.t, 2) for e in first] == [0.5 + 0.5 * i for i in range(len(first))]


def test_digital_silence_is_no_music(band_bundle):
    lis = Listener(OnnxEngine(load_bundle(band_bundle)))
    out = lis.feed(tone(band_tone_hz(1), 3.0) * 0 + 1e-6)
    assert out and all(not e.music_present and e.genre == "none" for e in out)


def test_bundle_hashes_are_verified_on_load(band_bundle, tmp_path):
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(band_bundle, copy)
    load_bundle(copy)
    data = bytearray((copy / "model.onnx").read_bytes())
    data[-1] ^= 0xFF
    (copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum mismatch"):
        load_bundle(copy)
    (copy / "model.onnx").unlink()
    with pytest.raises(BundleError, match="missing"):
        load_bundle(copy)


def _copy_with_window_scaled(bundle_dir, tmp_path, factor: float):
    """A copy of the bundle whose manifest window_s is scaled, as a hand edit would; the
    manifest is rewritten so every file hash still matches."""
    import json
    import shutil

    copy = tmp_path / f"window-x{factor:g}"
    shutil.copytree(bundle_dir, copy)
    m = json.loads((copy / "manifest.json").read_text())
    m.pop("files")
    m["window_s"] = m["window_s"] * factor
    write_manifest(copy, m)
    return copy


def test_manifest_window_that_does_not_fit_the_model_is_refused(band_bundle, tmp_path):
    """An edited window_s still passes the file hashes (the manifest is not hashed), so the
    engine itself must notice that its model takes another window size."""
    b = load_bundle(_copy_with_window_scaled(band_bundle, tmp_path, 2.0))
    with pytest.raises(BundleError, match="frames.*does not belong to this model"):
        OnnxEngine(b)
    OnnxEngine(load_bundle(_copy_with_window_scaled(band_bundle, tmp_path, 1.0)))  # intact


def test_window_check_reads_tensorrt_shapes_stand_in(band_bundle, tmp_path):
    """Stand-in for TensorRT (not installable here): TensorRTEngine runs the same check on
    the shape TensorRT reports, where a free axis is -1 rather than a name. The shape is the
    real model's, written as TensorRT writes it. On the Jetson, `appliance engine check
    --backend tensorrt` on a bundle with an edited window_s must refuse it the same way."""
    import onnxruntime as ort

    b = load_bundle(band_bundle)
    path = b.model_path(next(iter(b.models)))
    shape = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]
                                 ).get_inputs()[0].shape
    trt_shape = [d if isinstance(d, int) else -1 for d in shape]
    assert trt_shape[0] == -1 and all(d > 0 for d in trt_shape[1:])
    engine_module._check_input_shape(b, path, trt_shape)  # the intact bundle fits
    engine_module._check_input_shape(b, path, [-1, 1, -1, -1])  # free axes fit any window
    edited = load_bundle(_copy_with_window_scaled(band_bundle, tmp_path, 2.0))
    with pytest.raises(BundleError, match="frames.*does not belong to this model"):
        engine_module._check_input_shape(edited, path, trt_shape)


def test_bundle_without_manifest_is_refused_in_plain_words(tmp_path):
    with pytest.raises(BundleError, match="no manifest.json"):
        load_bundle(tmp_path)


def test_engine_check_against_the_bundles_own_vectors(band_bundle, tmp_path):
    import shutil

    result = check_engine(OnnxEngine(load_bundle(band_bundle)))
    assert result["top1_agreement"] == 1.0 and result["vectors"] == 4
    # vectors that disagree with the model are caught
    copy = tmp_path / "b"
    shutil.copytree(band_bundle, copy)
    d = dict(np.load(copy / "test_vectors.npz"))
    d["probs_fp32"] = np.roll(d["probs_fp32"], 1, axis=1)
    np.savez(copy / "test_vectors.npz", **d)
    import json

    m = json.loads((copy / "manifest.json").read_text())
    m.pop("files")
    write_manifest(copy, m)
    assert check_engine(OnnxEngine(load_bundle(copy)))["top1_agreement"] < 1.0
    assert LABELS == list(load_bundle(copy).labels)


def test_auto_backend_falls_back_to_onnxruntime_without_tensorrt(band_bundle, caplog):
    """This machine has no TensorRT/pycuda (ENVIRONMENT.md), so this is the real fallback.
    On the Jetson the TensorRT path is checked with `appliance engine check --backend
    tensorrt`, which runs the bundle's test vectors through the built plan."""
    import importlib.util
    import logging

    from appliance.listen.engine import open_engine

    if importlib.util.find_spec("tensorrt") and importlib.util.find_spec("pycuda"):
        pytest.skip("TensorRT present: this is a Jetson; use `appliance engine check`")
    with caplog.at_level(logging.INFO, logger="appliance.listen"):
        engine = open_engine(load_bundle(band_bundle), "auto")
    assert engine.backend == "onnxruntime"
    assert "TensorRT not available" in caplog.text
    with pytest.raises(BundleError, match="TensorRT backend asked for but not usable"):
        open_engine(load_bundle(band_bundle), "tensorrt")
    with pytest.raises(ValueError, match="unknown engine backend"):
        open_engine(load_bundle(band_bundle), "cuda")


def test_evidence_rule_ignores_a_brief_rival_but_follows_a_real_change(band_bundle):
    """The CUSUM switch: 1.5 s of another style inside steady playing must not move the
    reading, a lasting change must, within a few hops of its windows turning."""
    from appliance.listen.listener import Smoothing

    sm = Smoothing(tau_s=1.0, switch_evidence=8.0, evidence_cap=2.0)
    steady, other = band_tone_hz(2), band_tone_hz(0)          # ragtime, baroque
    audio = np.concatenate([tone(steady, 6.0), tone(other, 1.5), tone(steady, 6.0),
                            tone(other, 8.0)])
    out = Listener(OnnxEngine(load_bundle(band_bundle)), sm).feed(audio)
    before_change = [e.genre for e in out if e.t <= 13.5]
    assert before_change[-1] == "ragtime" and "baroque" not in before_change
    switched = next(e.t for e in out if e.t > 13.5 and e.genre == "baroque")
    assert 13.5 < switched <= 13.5 + 4.0
    # the same audio under a loose margin rule does flip on the brief rival: the test's
    # burst is long enough to matter, so the evidence rule is what holds the reading
    loose = Listener(OnnxEngine(load_bundle(band_bundle)),
                     Smoothing(tau_s=0.5, switch_margin=0.05)).feed(audio)
    assert "baroque" in [e.genre for e in loose if e.t <= 13.5]
