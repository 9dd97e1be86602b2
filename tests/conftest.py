"""Shared test fixtures: real files, real models, made small."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
LABELS = ["baroque", "classical", "ragtime", "jazz", "none"]

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


def make_band_bundle(folder: Path, *, window_s: float = 1.0, hop_s: float = 0.5,
                     name: str = "bands-test", version: str = "1",
                     order: tuple[int, ...] = (0, 1, 2, 3, 4)) -> Path:
    """A real ONNX bundle whose 'genre' is decided by where the energy sits in the spectrum:
    the mean log-mel of five equal mel bands, through a softmax (band k → label order[k]).

    Small and fully understood, so listener/simulate tests can predict its answers from the
    audio they synthesise: a tone in band k is label k (or order[k]).
    """
    import onnx
    from onnx import TensorProto, helper

    from appliance.listen.bundle import write_manifest
    from appliance.listen.frontend import FrontEnd

    fe = FrontEnd()
    n_frames = fe.frames_for(int(round(window_s * fe.sample_rate)))
    m = fe.n_mels
    # averaging matrix: mel bins → 5 bands
    w = np.zeros((m, 5), np.float32)
    edges = np.linspace(0, m, 6).astype(int)
    for k in range(5):
        w[edges[k]:edges[k + 1], order[k]] = 1.0 / (edges[k + 1] - edges[k])
    nodes = [
        helper.make_node("ReduceMean", ["features", "axes_t"], ["per_mel"], keepdims=0),
        helper.make_node("MatMul", ["per_mel", "band_w"], ["bands"]),
        helper.make_node("Mul", ["bands", "temp"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
        helper.make_node("Identity", ["bands"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes, "bands",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 1, m, n_frames])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 5]),
         helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 5])],
        initializer=[
            helper.make_tensor("axes_t", TensorProto.INT64, [2], [1, 3]),
            helper.make_tensor("band_w", TensorProto.FLOAT, [m, 5], w.flatten().tolist()),
            helper.make_tensor("temp", TensorProto.FLOAT, [], [2.0]),
        ])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / "model.onnx")
    rng = np.random.default_rng(0)
    feats = rng.normal(-5, 2, size=(4, 1, m, n_frames)).astype(np.float32)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    probs, emb = sess.run(["probs", "embedding"], {"features": feats})
    np.savez(folder / "test_vectors.npz", features=feats, probs_fp32=probs, embedding_fp32=emb)
    write_manifest(folder, {
        "name": name, "version": version, "labels": LABELS,
        "frontend": fe.to_dict(), "window_s": window_s, "hop_s": hop_s,
        "models": {"fp32": "model.onnx"},
        "listener": {"tau_s": 0.5},
    })
    return folder


def band_tone_hz(k: int) -> float:
    """A frequency whose energy lands in the middle of the test bundle's band k."""
    from appliance.listen.frontend import FrontEnd, _hz_to_mel, _mel_to_hz

    fe = FrontEnd()
    lo, hi = _hz_to_mel(np.array([fe.fmin, fe.fmax]))
    mels = np.linspace(lo, hi, fe.n_mels + 2)[1:-1]
    centre = mels[int((k + 0.5) * fe.n_mels / 5)]
    return float(_mel_to_hz(np.array([centre]))[0])


@pytest.fixture(scope="session")
def band_bundle(tmp_path_factory) -> Path:
    return make_band_bundle(tmp_path_factory.mktemp("bundle") / "bands-1")


def make_film(path: Path, seconds: float, fps: int = 10, size: tuple[int, int] = (32, 32),
              colour: tuple[int, int, int] = (80, 80, 80)) -> Path:
    """A small solid-colour MPEG-4 film, encoded by FFmpeg through PyAV."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        image = np.zeros((size[1], size[0], 3), np.uint8)
        image[:] = colour
        for _ in range(round(seconds * fps)):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_tiny_show(folder: Path, *, main_s: float = 6.0, ending_s: float = 2.0, fps: int = 10,
                   listen_s: float = 3.0, rest_s: float = 1.0, start_after_music_s: float = 1.0,
                   min_confidence: float = 0.45) -> Path:
    """A complete show small enough to simulate in a second: each film a different colour."""
    films = {"attract.mp4": (0, 0, 0), "film.mp4": (80, 80, 80)}
    for i, g in enumerate(["baroque", "classical", "ragtime", "jazz", "default"]):
        films[f"endings/{g}.mp4"] = (40 * i, 200, 40)
    for i, g in enumerate(["baroque", "classical", "ragtime", "jazz"]):
        films[f"overlays/{g}.mp4"] = (0, 0, 60 + 40 * i)
    for name, colour in films.items():
        secs = main_s if name == "film.mp4" else ending_s if name.startswith("endings") else 1.0
        make_film(folder / name, secs, fps, colour=colour)
    genres = ["baroque", "classical", "ragtime", "jazz"]
    (folder / "show.toml").write_text(f"""\
[show]
title = "tiny"
fps = {fps}
size = [32, 32]
[attract]
film = "attract.mp4"
start_after_music_s = {start_after_music_s}
[main]
film = "film.mp4"
idle_return_s = 0.0
[overlays]
blend = "add"
fade_s = 0.5
min_dwell_s = 1.0
{chr(10).join(f'{g} = "overlays/{g}.mp4"' for g in genres)}
[decision]
listen_s = {listen_s}
min_confidence = {min_confidence}
min_music_fraction = 0.5
[endings]
fade_s = 0.2
{chr(10).join(f'{g} = "endings/{g}.mp4"' for g in [*genres, "default"])}
[after_ending]
then = "attract"
rest_s = {rest_s}
""")
    return folder


def write_wav(path: Path, audio: np.ndarray, rate: int = 16000, channels: int = 1) -> Path:
    """16-bit PCM WAV from float audio in [-1, 1] (interleaved if channels > 1)."""
    import wave

    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def sine_fit(x: np.ndarray, rate: int, freq: float) -> tuple[float, float]:
    """Least-squares amplitude of a ``freq`` sine in x, and the residual RMS relative to it.

    A dropped, repeated or shifted chunk anywhere in x makes the residual large."""
    t = np.arange(x.size) / rate
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
    amp = float(np.hypot(*coef))
    resid = x - basis @ coef
    return amp, float(np.sqrt(np.mean(resid**2)) / (amp / np.sqrt(2)))


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory) -> tuple[Path, Path]:
    """A real ed25519 key pair made by `appliance engine keygen`'s code: (secret, keys dir)."""
    from appliance.store import generate_keypair

    root = tmp_path_factory.mktemp("keys")
    secret, public = generate_keypair(root / "secret", "test technician")
    trusted = root / "trusted"
    trusted.mkdir()
    (trusted / public.name).write_bytes(public.read_bytes())
    return secret, trusted


def make_signed_band_bundle(folder: Path, secret: Path, **kw) -> Path:
    """A band bundle signed with ``secret`` (see make_band_bundle for ``kw``)."""
    from appliance.store import sign_manifest

    make_band_bundle(folder, **kw)
    sign_manifest(folder, secret)
    return folder


DEMO_PREVIEW_SIZE = (320, 180)


@pytest.fixture(scope="session")
def demo_jazz_preview(tmp_path_factory) -> tuple[dict, list[dict], Path]:
    """The demo show simulated once with its jazz performance, recorded small: (stats,
    events, preview MP4). Shared by the demo end-to-end and the frame-by-frame tests, so CI
    pays for one 90 s show, not two."""
    import json

    from appliance.config import demo_show_dir
    from appliance.simulate import simulate

    demo = demo_show_dir()
    tmp = tmp_path_factory.mktemp("demo-jazz")
    log, out = tmp / "events.jsonl", tmp / "preview.mp4"
    stats = simulate(demo / "audio" / "jazz.flac", demo, None, log, out,
                     record_size=DEMO_PREVIEW_SIZE)
    events = [json.loads(x) for x in log.read_text().splitlines()]
    return stats, events, out
