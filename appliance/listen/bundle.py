"""Engine bundles: a folder with models, a manifest and test vectors, verified on load.

Layout of ``engines/<name>-<version>/``::

    manifest.json      labels, front end, window/hop, files + sha256, metrics, licenses
    model.onnx         FP32 ONNX (input "features" [N,1,n_mels,n_frames];
                       outputs "probs" [N,labels] and "embedding" [N,D])
    model.int8.onnx    the same network with explicit Q/DQ (what TensorRT builds INT8 from)
    test_vectors.npz   inputs and expected outputs, so a device can check its own build
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from appliance.listen.frontend import FrontEnd

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"  # signs the manifest, so the manifest cannot list it
FORMAT = 1


class BundleError(Exception):
    """A bundle that must not be used; the message says why in plain words."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    name: str
    version: str
    labels: tuple[str, ...]
    frontend: FrontEnd
    window_s: float
    hop_s: float
    models: dict[str, str]  # precision ("fp32", "int8") -> file name
    manifest: dict

    @property
    def window_samples(self) -> int:
        return int(round(self.window_s * self.frontend.sample_rate))

    @property
    def hop_samples(self) -> int:
        return int(round(self.hop_s * self.frontend.sample_rate))

    @property
    def n_frames(self) -> int:
        return self.frontend.frames_for(self.window_samples)

    def model_path(self, precision: str) -> Path:
        return self.path / self.models[precision]

    @property
    def label(self) -> str:
        return f"{self.name}-{self.version}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_bundle(path: Path | str, *, verify: bool = True) -> Bundle:
    """Read and check a bundle. Raises BundleError naming the file and what is wrong."""
    path = Path(path)
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"{path}: no {MANIFEST} here — is this an engine bundle folder?")
    try:
        m = json.loads(mpath.read_text())
    except (OSError, ValueError) as e:
        raise BundleError(f"{mpath}: cannot read the manifest ({e})") from e
    if not isinstance(m, dict):
        raise BundleError(f"{mpath}: the manifest is not a JSON object")
    try:
        labels = tuple(m["labels"])
        fe = FrontEnd.from_dict(m["frontend"])
        window_s, hop_s = float(m["window_s"]), float(m["hop_s"])
        models = dict(m["models"])
        files = dict(m["files"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise BundleError(f"{mpath}: manifest lacks or mangles {e}") from e
    if not labels or not all(isinstance(x, str) for x in labels):
        raise BundleError(f"{mpath}: 'labels' must be a list of names")
    for key, table in (("models", models), ("files", files)):
        for k, v in table.items():
            if not (isinstance(k, str) and isinstance(v, str)):
                raise BundleError(f"{mpath}: '{key}' must map names to text, not {v!r}")
    for name in [*models.values(), *files]:
        if not name or Path(name).name != name:  # no folders, no "..", nothing outside
            raise BundleError(f"{mpath}: file name {name!r} must be a plain name in the bundle")
    if not (math.isfinite(window_s) and math.isfinite(hop_s) and 0 < hop_s <= window_s):
        raise BundleError(f"{mpath}: window_s {window_s} and hop_s {hop_s} must be positive, "
                          "with the hop no longer than the window")
    if m.get("format", FORMAT) != FORMAT:
        raise BundleError(f"{mpath}: bundle format {m.get('format')} is not {FORMAT}")
    if not models:
        raise BundleError(f"{mpath}: names no model")
    if verify:
        for name, want in files.items():
            f = path / name
            if not f.is_file():
                raise BundleError(f"{path}: file {name} listed in the manifest is missing")
            got = sha256_file(f)
            if got != want:
                raise BundleError(
                    f"{f}: checksum mismatch (manifest {want[:12]}…, file {got[:12]}…): "
                    "the file is corrupt or was changed after the bundle was made")
        for prec, name in models.items():
            if name not in files:
                raise BundleError(f"{mpath}: model {name} ({prec}) has no sha256 in 'files'")
    return Bundle(path=path, name=str(m.get("name", path.name)), version=str(m.get("version", "0")),
                  labels=labels, frontend=fe, window_s=window_s, hop_s=hop_s, models=models,
                  manifest=m)


def write_manifest(path: Path | str, manifest: dict) -> dict:
    """Fill in format and sha256 of every file in the folder (but the manifest and its
    signature), then write. A signature made before no longer matches: sign again."""
    path = Path(path)
    files = {p.name: sha256_file(p) for p in sorted(path.iterdir())
             if p.is_file() and p.name not in (MANIFEST, SIGNATURE)}
    out = {"format": FORMAT, **manifest, "files": files}
    (path / MANIFEST).write_text(json.dumps(out, indent=2, sort_keys=False) + "\n")
    return out
