"""What a bundle must pass before the store takes it, one function per step.

Each raises :class:`StepError` naming the step and the cause in plain words. The order is
the install transaction's: files and hashes → signature → compatibility → the device's own
engine on the bundle's test vectors.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from appliance.listen.bundle import FORMAT, MANIFEST, Bundle, BundleError, load_bundle
from appliance.listen.engine import DeviceCheck, Engine, OnnxEngine, open_checked_engine
from appliance.listen.estimate import GENRES, NONE
from appliance.listen.frontend import FrontEnd
from appliance.store.signing import SIGNATURE, PublicKey, SignatureError, Signer, verify_manifest

RECORD = ".record.json"
"""The store's own note inside an installed bundle (when, who signed, how it ran here)."""


class StepError(Exception):
    """A bundle refused at one step of the install transaction."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


def check_files(root: Path, *, installed: bool = False) -> Bundle:
    """Every file the manifest lists is there with its sha256, and nothing else is: a file the
    manifest does not list could be anything, and the signature would not cover it."""
    try:
        fmt = json.loads((root / MANIFEST).read_text(encoding="utf-8")).get("format")
    except (OSError, ValueError, AttributeError):
        fmt = FORMAT  # load_bundle names what is wrong with the manifest
    if fmt != FORMAT:
        raise StepError("compatibility",
                        f"{root / MANIFEST}: manifest format {fmt!r} is not one this box "
                        f"knows ({FORMAT}); update the appliance software first")
    try:
        bundle = load_bundle(root, verify=True)
    except BundleError as e:
        raise StepError("files", str(e)) from e
    m = bundle.manifest
    allowed = {MANIFEST, SIGNATURE, *m["files"]} | ({RECORD} if installed else set())
    for dirpath, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                raise StepError("files", f"{path} is a link; bundles hold plain files only")
            if path.is_dir():
                if not any(f.startswith(rel + "/") for f in allowed):
                    raise StepError("files", f"folder {rel}/ is not part of the manifest")
                continue
            if rel not in allowed:
                raise StepError("files", f"{rel} is in the bundle but not in its manifest, so "
                                         "neither hash nor signature covers it")
    return bundle


def check_signature(root: Path, keys: dict[str, PublicKey], *, allow_unsigned: bool,
                    key_dirs: tuple[Path, ...] = ()) -> Signer | None:
    """The signer, or None for an unsigned bundle the config allows. A signature that is
    present must verify even where unsigned bundles are allowed."""
    if allow_unsigned and not (root / SIGNATURE).exists():
        return None
    try:
        return verify_manifest(root, keys)
    except SignatureError as e:
        where = " or ".join(str(d) for d in key_dirs) or "trusted_keys"
        hint = f" — no .pub key in {where}: this box trusts nobody yet" if not keys else (
            "" if allow_unsigned else
            f" — sign it with `appliance engine sign`, with a key whose .pub is in {where}")
        raise StepError("signature", f"{e}{hint}") from e


def check_compatible(bundle: Bundle) -> None:
    """Labels, front end, window and the models' own input and output shapes fit this box."""
    where = bundle.path / MANIFEST
    labels = list(bundle.labels)
    missing = [x for x in (*GENRES, NONE) if x not in labels]
    if missing or len(set(labels)) != len(labels):
        raise StepError("compatibility",
                        f"{where}: labels {labels} must name each of "
                        f"{', '.join((*GENRES, NONE))} once; missing: {', '.join(missing) or '-'}")
    fe_keys = set(bundle.manifest["frontend"])
    known = set(FrontEnd.__dataclass_fields__)
    if fe_keys - known:
        raise StepError("compatibility",
                        f"{where}: front-end parameter(s) {', '.join(sorted(fe_keys - known))} "
                        "unknown to this box: it cannot compute the features this engine expects")
    if known - fe_keys:
        raise StepError("compatibility", f"{where}: front end lacks "
                                         f"{', '.join(sorted(known - fe_keys))}")
    fe = bundle.frontend
    if bundle.window_s <= 0 or bundle.hop_s <= 0 or bundle.n_frames < 1:
        raise StepError("compatibility", f"{where}: window_s {bundle.window_s} / hop_s "
                                         f"{bundle.hop_s} give no whole window of features")
    if bundle.hop_samples % fe.hop_length:
        raise StepError("compatibility",
                        f"{where}: hop_s {bundle.hop_s} is not a whole number of front-end "
                        f"frames ({fe.hop_length} samples at {fe.sample_rate} Hz)")
    declared = bundle.manifest.get("inputs", {}).get("features", {}).get("shape")
    want = [1, fe.n_mels, bundle.n_frames]
    if declared and [d for d in declared[1:]] != want:
        raise StepError("compatibility",
                        f"{where}: inputs.features.shape {declared} does not match the front "
                        f"end and window ([N, {', '.join(map(str, want))}])")
    for precision in bundle.models:
        try:  # the model file's own declared shapes, whatever backend runs it later
            OnnxEngine(bundle, precision=precision)
        except BundleError as e:
            raise StepError("compatibility", str(e)) from e


def check_on_device(bundle: Bundle, backend: str, threads: int) -> tuple[Engine, DeviceCheck]:
    """Open the bundle the way the daemon does and run its test vectors; the fastest backend
    that reproduces them wins, and the others' reasons are kept."""
    try:
        return open_checked_engine(bundle, backend, threads=threads)
    except BundleError as e:
        raise StepError("test vectors", str(e)) from e
