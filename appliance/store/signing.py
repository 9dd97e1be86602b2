"""Ed25519 signatures over a bundle's manifest (PyNaCl).

The manifest holds the sha256 of every other file, so one signature over its exact bytes
covers the whole bundle. Three small text files:

``NAME.pub``      ``ed25519 <base64 public key> <signer name>`` (one line; trusted keys live
                  in ``/etc/appliance/trusted_keys/``)
``NAME.key``      ``ed25519-secret <base64 seed> <signer name>`` (mode 0600; the technician's
                  laptop or the maintainer's vault, never a box or the repository)
``manifest.sig``  JSON ``{"algorithm": "ed25519", "key": KEY_ID, "signature": BASE64}``
                  beside ``manifest.json``

A key's id is the first 16 hex digits of the sha256 of its raw public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from appliance.listen.bundle import SIGNATURE

log = logging.getLogger("appliance.store")

ALGORITHM = "ed25519"
_PUBLIC_TAG = "ed25519"
_SECRET_TAG = "ed25519-secret"


class SignatureError(Exception):
    """A signature or key that cannot be used; the message says why in plain words."""


@dataclass(frozen=True)
class PublicKey:
    key_id: str
    name: str
    raw: bytes
    path: Path | None = None


@dataclass(frozen=True)
class Signer:
    """Who signed a bundle, as this box's trusted keys name them."""

    key_id: str
    name: str


def key_id(raw_public: bytes) -> str:
    return hashlib.sha256(raw_public).hexdigest()[:16]


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    return name or "unnamed"


def generate_keypair(out_dir: Path, name: str) -> tuple[Path, Path]:
    """Write ``NAME.key`` (0600) and ``NAME.pub`` into ``out_dir``; never overwrites."""
    stem = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-.") or "key"
    out_dir.mkdir(parents=True, exist_ok=True)
    secret_path, public_path = out_dir / f"{stem}.key", out_dir / f"{stem}.pub"
    for p in (secret_path, public_path):
        if p.exists():
            raise SignatureError(f"{p} already exists; keys are never overwritten "
                                 "(choose another --name or folder)")
    sk = SigningKey.generate()
    seed = base64.b64encode(bytes(sk)).decode()
    pub = base64.b64encode(bytes(sk.verify_key)).decode()
    fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{_SECRET_TAG} {seed} {_clean_name(name)}\n")
    public_path.write_text(f"{_PUBLIC_TAG} {pub} {_clean_name(name)}\n")
    return secret_path, public_path


def _parse_line(path: Path, tag: str, size: int) -> tuple[bytes, str]:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise SignatureError(f"{path}: cannot read the key ({e})") from e
    parts = text.split(None, 2)
    if len(parts) < 2 or parts[0] != tag:
        raise SignatureError(f"{path}: not an {tag} key file (expected '{tag} <base64> <name>')")
    try:
        raw = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError) as e:
        raise SignatureError(f"{path}: the key is not valid base64") from e
    if len(raw) != size:
        raise SignatureError(f"{path}: the key has {len(raw)} bytes, an ed25519 key has {size}")
    return raw, _clean_name(parts[2] if len(parts) > 2 else "")


def read_public_key(path: Path) -> PublicKey:
    raw, name = _parse_line(path, _PUBLIC_TAG, 32)
    return PublicKey(key_id(raw), name, raw, path)


def trusted_keys(folders: list[Path]) -> dict[str, PublicKey]:
    """Every ``*.pub`` in ``folders``, by key id. A file that is not a key is skipped with a
    warning: a botched key file must not make the box trust less than it did, nor more."""
    keys: dict[str, PublicKey] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.pub")):
            try:
                k = read_public_key(path)
            except SignatureError as e:
                log.warning("ignoring trusted key file: %s", e)
                continue
            keys[k.key_id] = k
    return keys


def sign_manifest(bundle: Path, secret_key_file: Path) -> Signer:
    """Sign ``bundle/manifest.json`` with the key in ``secret_key_file``; writes
    ``manifest.sig`` (atomically) and returns who signed."""
    seed, name = _parse_line(secret_key_file, _SECRET_TAG, 32)
    sk = SigningKey(seed)
    raw_pub = bytes(sk.verify_key)
    manifest = (bundle / "manifest.json").read_bytes()
    sig = sk.sign(manifest).signature
    doc = {"algorithm": ALGORITHM, "key": key_id(raw_pub),
           "signature": base64.b64encode(sig).decode()}
    tmp = bundle / f".{SIGNATURE}.tmp"
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, bundle / SIGNATURE)
    return Signer(key_id(raw_pub), name)


def read_signature(bundle: Path) -> dict | None:
    """The parsed ``manifest.sig``, or None when the bundle carries none."""
    path = bundle / SIGNATURE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        if doc.get("algorithm") != ALGORITHM:
            raise ValueError(f"algorithm {doc.get('algorithm')!r} is not {ALGORITHM}")
        base64.b64decode(str(doc["signature"]), validate=True)
        str(doc["key"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, binascii.Error) as e:
        raise SignatureError(f"{path}: unreadable signature file ({e})") from e
    return doc


def verify_manifest(bundle: Path, keys: dict[str, PublicKey]) -> Signer:
    """Check ``manifest.sig`` against the trusted ``keys``. Raises SignatureError naming the
    cause: no signature, a key this box does not trust, or a signature that does not match."""
    doc = read_signature(bundle)
    if doc is None:
        raise SignatureError(f"{bundle}: the bundle is not signed (no {SIGNATURE})")
    kid = str(doc["key"])
    key = keys.get(kid)
    if key is None:
        trusted = ", ".join(f"{k.key_id} ({k.name})" for k in keys.values()) or "none"
        raise SignatureError(f"{bundle}: signed by key {kid}, which this box does not trust "
                             f"(trusted: {trusted})")
    signature = base64.b64decode(str(doc["signature"]))
    try:
        VerifyKey(key.raw).verify((bundle / "manifest.json").read_bytes(), signature)
    except (BadSignatureError, ValueError) as e:
        raise SignatureError(
            f"{bundle}: the signature does not match the manifest (key {kid}, {key.name}): "
            "the manifest was changed after signing, or the signature is forged") from e
    return Signer(kid, key.name)
