"""The engine store, as a technician uses it: real stores on disk, real ed25519 signatures,
real tarballs, the real `appliance engine` commands.

Every refusal must name its cause, exit non-zero, and leave the store byte for byte as it
was (every file's sha256, every link's target, and `engine list --json`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from appliance.cli import main
from appliance.listen.bundle import write_manifest
from appliance.listen.frontend import FrontEnd
from tests.conftest import REPO, make_band_bundle, make_signed_band_bundle

SHIPPED = REPO / "engines" / "genre-1.3"
PROJECT_KEYS = REPO / "firmware_config" / "trusted_keys"


def snapshot(store: Path) -> dict[str, str]:
    """The store, byte for byte: each file's sha256 and each link's target."""
    out = {}
    for p in sorted(store.rglob("*")):
        rel = p.relative_to(store).as_posix()
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = "folder"
    return out


def write_config(path: Path, store: Path, keys: Path, **listen) -> Path:
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in listen.items())
    path.write_text(f'[listen]\nstore = "{store}"\ntrusted_keys = "{keys}"\n{extra}'
                    '[service]\ncontrol_socket = ""\n')
    return path


class Cli:
    """`appliance engine …` run in this process (its real argument parsing and output)."""

    def __init__(self, capsys, config: Path) -> None:
        self.capsys, self.config = capsys, config

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        rc = main(["engine", *args, "--config", str(self.config)])
        out = self.capsys.readouterr()
        return rc, out.out, out.err

    def listing(self) -> str:
        rc, out, err = self("list", "--json")
        assert rc == 0, err
        return out


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, signing_key) -> dict[str, Path]:
    secret, _ = signing_key
    root = tmp_path_factory.mktemp("bundles")
    return {
        "v1": make_signed_band_bundle(root / "bands-1", secret, name="bands", version="1"),
        "v2": make_signed_band_bundle(root / "bands-2", secret, name="bands", version="2",
                                      order=(4, 3, 2, 1, 0)),
    }


@pytest.fixture
def store(tmp_path, signing_key, bundles, capsys) -> tuple[Path, Cli]:
    """A store holding bands-1 as its current engine."""
    _, keys = signing_key
    root = tmp_path / "store"
    cli = Cli(capsys, write_config(tmp_path / "appliance.toml", root, keys, max_bundle_mb=1))
    rc, _, err = cli("install", str(bundles["v1"]))
    assert rc == 0, err
    return root, cli


# --- installing the shipped bundle, three ways --------------------------------------------

def _appliance(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance", *args], input=stdin,
                          capture_output=True, timeout=300)


def test_shipped_bundle_installs_from_a_folder_a_tarball_and_stdin(tmp_path):
    """The shipped genre-1.3, signed by the project key whose public half ships in
    firmware_config/trusted_keys, through the real command line."""
    tarball = tmp_path / "genre-1.3.tar.gz"
    r = _appliance("engine", "pack", str(SHIPPED), "--out", str(tarball))
    assert r.returncode == 0, r.stderr
    stdin = tarball.read_bytes()
    for how, src in (("folder", str(SHIPPED)), ("tarball", str(tarball)), ("stdin", "-")):
        store = tmp_path / f"store-{how}"
        r = _appliance("engine", "install", src, "--store", str(store), "--trusted-keys",
                       str(PROJECT_KEYS), "--no-reload", "--json",
                       stdin=stdin if src == "-" else None)
        assert r.returncode == 0, (how, r.stderr.decode())
        doc = json.loads(r.stdout)
        assert doc["current"] == "genre-1.3" and doc["record"]["signer"]["name"] == \
            "appliance project"
        assert os.readlink(store / "current") == "genre-1.3"
        installed = store / "genre-1.3"
        for name in json.loads((SHIPPED / "manifest.json").read_text())["files"]:
            assert (installed / name).read_bytes() == (SHIPPED / name).read_bytes(), name
        r = _appliance("engine", "list", "--store", str(store), "--trusted-keys",
                       str(PROJECT_KEYS), "--json")
        (entry,) = json.loads(r.stdout)["engines"]
        assert entry["current"] and entry["verified_here"] and entry["runs_on"], entry
        assert entry["labels"] == ["baroque", "classical", "ragtime", "jazz", "none"]
        assert not [p for p in store.iterdir() if p.name.startswith(".staging")]
    r = _appliance("engine", "list", "--store", str(store), "--trusted-keys", str(PROJECT_KEYS))
    assert "genre-1.3" in r.stdout.decode() and "appliance project" in r.stdout.decode()


# --- refusals ------------------------------------------------------------------------------

def _copy(src: Path, tmp: Path, name: str = "b") -> Path:
    dst = tmp / name
    shutil.copytree(src, dst)
    return dst


def _remanifest(bundle: Path, secret: Path | None, **changes) -> None:
    m = json.loads((bundle / "manifest.json").read_text())
    m.pop("files")
    m.update(changes)
    write_manifest(bundle, m)
    if secret is not None:
        from appliance.store import sign_manifest

        sign_manifest(bundle, secret)


def _flip(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert data.count(old) >= 1 and len(old) == len(new)
    path.write_bytes(data.replace(old, new, 1))


def _tar(bundle: Path, out: Path, extra: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(out, "w:gz") as tar:
        for p in sorted(bundle.iterdir()):
            tar.add(p, arcname=f"bands-2/{p.name}")
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out


def _member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"x", link: str = ""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


def _case_byte(name: str):
    def make(v2, tmp, secret, other):
        b = _copy(v2, tmp)
        if name == "manifest.json":  # a one-byte edit that keeps it valid JSON
            _flip(b / name, b'"tau_s": 0.5', b'"tau_s": 0.9')
        elif name == "manifest.sig":
            doc = json.loads((b / name).read_text())
            sig = doc["signature"]
            doc["signature"] = ("B" if sig[0] != "B" else "C") + sig[1:]
            (b / name).write_text(json.dumps(doc))
        else:
            data = bytearray((b / name).read_bytes())
            data[len(data) // 2] ^= 0x01
            (b / name).write_bytes(bytes(data))
        return b
    return make


def _missing_file(v2, tmp, secret, other):
    b = _copy(v2, tmp)
    (b / "test_vectors.npz").unlink()
    return b


def _extra_file(v2, tmp, secret, other):
    b = _copy(v2, tmp)
    (b / "notes.txt").write_text("not in the manifest")
    return b


def _no_signature(v2, tmp, secret, other):
    b = _copy(v2, tmp)
    (b / "manifest.sig").unlink()
    return b


def _wrong_signature(v2, tmp, secret, other):
    b = _copy(v2, tmp)  # a real signature by the trusted key, but of another manifest
    _remanifest(b, secret, listener={"tau_s": 0.7})
    sig = (b / "manifest.sig").read_bytes()
    _remanifest(b, None, listener={"tau_s": 0.5})
    (b / "manifest.sig").write_bytes(sig)
    return b


def _unknown_key(v2, tmp, secret, other):
    b = _copy(v2, tmp)
    _remanifest(b, other)
    return b


def _wrong_labels(v2, tmp, secret, other):
    b = _copy(v2, tmp)
    _remanifest(b, secret, labels=["baroque", "classical", "ragtime", "swing", "none"])
    return b


def _input_shape(v2, tmp, secret, other):
    b = _copy(v2, tmp)
    _remanifest(b, secret, window_s=2.0)  # the model takes 1 s windows
    return b


def _vectors_disagree(v2, tmp, secret, other):
    b = _copy(v2, tmp)
    d = dict(np.load(b / "test_vectors.npz"))
    d["probs_fp32"] = np.roll(d["probs_fp32"], 1, axis=1)
    np.savez(b / "test_vectors.npz", **d)
    _remanifest(b, secret)
    return b


def _tar_case(*members):
    def make(v2, tmp, secret, other):
        return _tar(v2, tmp / "b.tar.gz", [_member(*m) for m in members])
    return make


def _oversized(v2, tmp, secret, other):  # 2 MB of zeros, gzipped to a few kB; limit 1 MB
    return _tar(v2, tmp / "b.tar.gz", [_member("bands-2/padding.bin", data=bytes(2 << 20))])


_FE = FrontEnd()  # the band bundles' front end: 1 s windows, edited to 2 s below
REFUSALS = [
    ("byte-model", _case_byte("model.onnx"), "files", r"model\.onnx: checksum mismatch"),
    ("byte-vectors", _case_byte("test_vectors.npz"), "files",
     r"test_vectors\.npz: checksum mismatch"),
    ("byte-manifest", _case_byte("manifest.json"), "signature",
     r"signature does not match the manifest"),
    ("byte-signature", _case_byte("manifest.sig"), "signature",
     r"signature does not match the manifest"),
    ("missing-file", _missing_file, "files",
     r"test_vectors\.npz listed in the manifest is missing"),
    ("extra-file", _extra_file, "files", r"notes\.txt is in the bundle but not in its manifest"),
    ("no-signature", _no_signature, "signature", r"not signed \(no manifest\.sig\)"),
    ("wrong-signature", _wrong_signature, "signature", r"signature does not match the manifest"),
    ("unknown-key", _unknown_key, "signature", r"signed by key [0-9a-f]{16}, which this box does "
                                               r"not trust"),
    ("wrong-labels", _wrong_labels, "compatibility", r"labels .* missing: jazz"),
    ("input-shape", _input_shape, "compatibility",
     rf"takes windows of {_FE.frames_for(_FE.sample_rate)} frames.*gives "
     rf"{_FE.frames_for(2 * _FE.sample_rate)}: the manifest does not belong to this model"),
    ("vectors-disagree", _vectors_disagree, "test vectors",
     r"ONNX Runtime FP32: failed its test vectors here \(failed: top-1 agreed on [0-3] of 4"),
    ("tar-dotdot", _tar_case(("bands-2/../../evil.txt",)), "unpack", r"climbs out .* '\.\.'"),
    ("tar-absolute", _tar_case(("/tmp/evil-absolute.txt",)), "unpack", r"absolute path"),
    ("tar-link-out", _tar_case(("bands-2/passwd", tarfile.SYMTYPE, b"", "../../../etc/passwd")),
     "unpack", r"link to '\.\./\.\./\.\./etc/passwd' \(outside the bundle\)"),
    ("tar-device", _tar_case(("bands-2/tty", tarfile.CHRTYPE, b"")), "unpack",
     r"'bands-2/tty' is a device"),
    ("tar-bomb", _oversized, "unpack", r"past the 1 MB limit \(a tar bomb\?\)"),
]


@pytest.mark.parametrize("make,step,cause", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_bad_bundles_are_refused_and_change_nothing(store, bundles, signing_key, tmp_path, make,
                                                    step, cause):
    import re

    from appliance.store import generate_keypair

    root, cli = store
    secret, _ = signing_key
    other, _ = generate_keypair(tmp_path / "untrusted", "someone else")
    src = make(bundles["v2"], tmp_path, secret, other)
    before, listed = snapshot(root), cli.listing()
    rc, out, err = cli("install", str(src))
    assert rc == 1 and out == ""
    assert f"install refused at step '{step}'" in err, err
    assert re.search(cause, err), err
    assert "the store is unchanged (current engine: bands-1)" in err
    assert snapshot(root) == before and cli.listing() == listed
    assert os.readlink(root / "current") == "bands-1"
    assert not Path("/tmp/evil-absolute.txt").exists() and not (tmp_path / "evil.txt").exists()
    rc, _, err = cli("install", str(bundles["v2"]))  # and the good one still goes in
    assert rc == 0, err
    assert os.readlink(root / "current") == "bands-2"


def test_json_refusal_names_the_step(store, bundles, tmp_path):
    root, cli = store
    b = _no_signature(bundles["v2"], tmp_path, None, None)
    rc, out, _ = cli("install", str(b), "--json")
    doc = json.loads(out)
    assert rc == 1 and doc["ok"] is False and doc["step"] == "signature"
    assert doc["current"] == "bands-1" and "not signed" in doc["error"]


# --- switching ------------------------------------------------------------------------------

def test_activate_rollback_downgrade_and_remove(store, bundles, signing_key, tmp_path):
    root, cli = store
    secret, _ = signing_key
    assert cli("install", str(bundles["v2"]))[0] == 0
    assert (os.readlink(root / "current"), os.readlink(root / "previous")) == ("bands-2",
                                                                               "bands-1")
    rc, out, _ = cli("rollback")
    assert rc == 0 and "rolled back to bands-1" in out
    assert (os.readlink(root / "current"), os.readlink(root / "previous")) == ("bands-1",
                                                                               "bands-2")
    assert cli("rollback")[0] == 0 and os.readlink(root / "current") == "bands-2"

    # an older version needs --allow-downgrade, to install or to activate
    old = make_signed_band_bundle(tmp_path / "bands-0.9", secret, name="bands", version="0.9")
    before = snapshot(root)
    rc, _, err = cli("install", str(old))
    assert rc == 1 and "step 'downgrade'" in err and "--allow-downgrade" in err
    assert snapshot(root) == before
    rc, _, err = cli("activate", "bands-1")
    assert rc == 1 and "older than the current bands-2" in err
    assert cli("install", str(old), "--allow-downgrade")[0] == 0
    assert os.readlink(root / "current") == "bands-0.9"
    assert cli("activate", "bands-2")[0] == 0  # newer: no flag needed
    for wrong in ("bands-7", "../store/bands-1", "current"):
        rc, _, err = cli("activate", wrong)
        assert rc == 1 and "is not installed" in err, wrong

    # the same bundle again is a no-op; changed contents under the same version are not
    rc, out, _ = cli("install", str(bundles["v2"]))
    assert rc == 0 and "already installed, identical" in out
    changed = _copy(bundles["v2"], tmp_path, "changed")
    _remanifest(changed, secret, listener={"tau_s": 0.8})
    rc, _, err = cli("install", str(changed))
    assert rc == 1 and "already installed with different contents" in err

    rc, _, err = cli("remove", "bands-2")
    assert rc == 1 and "is the current engine" in err
    assert os.readlink(root / "previous") == "bands-0.9"
    rc, out, _ = cli("remove", "bands-0.9")
    assert rc == 0 and "rollback target" in out
    assert not (root / "previous").exists() and not (root / "bands-0.9").exists()
    rc, _, err = cli("rollback")
    assert rc == 1 and "no previous engine" in err
    entries = json.loads(cli.listing())["engines"]
    assert [(e["id"], e["current"]) for e in entries] == [("bands-1", False), ("bands-2", True)]


def test_install_only_keeps_current(store, bundles):
    root, cli = store
    rc, out, _ = cli("install", str(bundles["v2"]), "--no-activate")
    assert rc == 0 and os.readlink(root / "current") == "bands-1"
    assert (root / "bands-2" / "manifest.json").is_file()
    assert cli("activate", "bands-2")[0] == 0 and os.readlink(root / "current") == "bands-2"


def test_unsigned_bundles_only_where_the_config_allows_them(tmp_path, signing_key, capsys):
    _, keys = signing_key
    unsigned = make_band_bundle(tmp_path / "unsigned", name="dev", version="1")
    box = Cli(capsys, write_config(tmp_path / "box.toml", tmp_path / "s1", keys))
    rc, _, err = box("install", str(unsigned))
    assert rc == 1 and "not signed" in err
    dev = Cli(capsys, write_config(tmp_path / "dev.toml", tmp_path / "s2", keys,
                                   allow_unsigned=True))
    rc, out, err = dev("install", str(unsigned))
    assert rc == 0 and "unsigned" in out, err
    # a signature that is there must still be right, even where unsigned is allowed
    bad = _copy(unsigned, tmp_path, "bad-sig")
    (bad / "manifest.sig").write_text(json.dumps({"algorithm": "ed25519", "key": "0" * 16,
                                                  "signature": "AAAA"}))
    rc, _, err = dev("install", str(bad))
    assert rc == 1 and "does not trust" in err


def test_verify_finds_a_bundle_damaged_after_install(store):
    root, cli = store
    rc, out, _ = cli("verify")
    assert rc == 0 and "bands-1: OK, runs on ONNX Runtime FP32" in out
    with open(root / "bands-1" / "model.onnx", "r+b") as f:
        f.seek(40)
        f.write(b"\xff")
    rc, _, err = cli("verify", "bands-1")
    assert rc == 1 and "FAILED" in err and "checksum mismatch" in err


# --- the device check: fastest backend that reproduces the vectors --------------------------

def _with_int8(tmp: Path, secret: Path, int8_from: Path, name: str) -> Path:
    """A band bundle with an 'INT8' model: ``int8_from``'s model, and int8 reference
    probabilities equal to the FP32 ones."""
    b = make_band_bundle(tmp / name, name=name, version="1")
    shutil.copy(int8_from / "model.onnx", b / "model.int8.onnx")
    d = dict(np.load(b / "test_vectors.npz"))
    d["probs_int8"] = d["probs_fp32"]
    np.savez(b / "test_vectors.npz", **d)
    _remanifest(b, secret, models={"fp32": "model.onnx", "int8": "model.int8.onnx"})
    return b


def test_device_check_prefers_int8_and_says_why_it_fell_back(store, bundles, signing_key,
                                                              tmp_path):
    root, cli = store
    secret, _ = signing_key
    good = _with_int8(tmp_path, secret, bundles["v1"], "good8")      # the same network
    bad = _with_int8(tmp_path, secret, bundles["v2"], "bad8")        # another network
    rc, out, err = cli("install", str(good), "--json")
    assert rc == 0, err
    check = json.loads(out)["record"]["check"]
    assert check["label"] == "ONNX Runtime INT8" and check["reference"] == "probs_int8"
    rc, out, err = cli("install", str(bad), "--json")
    assert rc == 0, err
    check = json.loads(out)["record"]["check"]
    assert check["label"] == "ONNX Runtime FP32"
    why = {t["backend"]: t["reason"] for t in check["not_faster"]}
    assert why["ONNX Runtime INT8"] == "failed its test vectors here", check
    rc, out, _ = cli("list")
    assert "ONNX Runtime INT8: failed its test vectors here" in out


class _Replay:
    """Gives back the bundle's reference probabilities, edited: a test of the judging rule
    alone (the real engines are tested above)."""

    backend, precision = "onnxruntime", "fp32"

    def __init__(self, bundle, probs: np.ndarray) -> None:
        self.bundle, self._probs, self._i = bundle, probs, 0

    def infer(self, x):
        self._i += 1
        return self._probs[self._i - 1:self._i], None


def test_tolerance_rule(band_bundle, tmp_path):
    from appliance.listen import load_bundle
    from appliance.listen.engine import FP32_TOLERANCE, check_engine, int8_tolerance

    b = load_bundle(band_bundle)
    ref = np.load(b.path / "test_vectors.npz")["probs_fp32"]
    assert check_engine(_Replay(b, ref))["passed"]
    assert check_engine(_Replay(b, ref + 0.5 * FP32_TOLERANCE))["passed"]
    r = check_engine(_Replay(b, ref + 2 * FP32_TOLERANCE))
    assert not r["passed"] and r["max_abs_diff"] > r["tolerance"] == FP32_TOLERANCE
    # a near-tie in the reference may be broken either way by a correct build
    copy = _copy(band_bundle, tmp_path)
    d = dict(np.load(copy / "test_vectors.npz"))
    p = d["probs_fp32"]
    top2 = np.argsort(p[0])[-2:]
    p[0, top2[0]] = p[0, top2[1]] - 0.5 * FP32_TOLERANCE
    np.savez(copy / "test_vectors.npz", **d)
    _remanifest(copy, None)
    tie = load_bundle(copy)
    swapped = p.copy()
    swapped[0, top2] = swapped[0, top2[::-1]]
    r = check_engine(_Replay(tie, swapped))
    assert r["passed"] and r["ties"] == 1 and r["top1_agreement"] < 1
    # the number itself, on real engines: FP32 reproduces its own vectors a hundred times
    # closer than allowed, and a 5 % change to one weight of the model is caught
    from appliance.listen.engine import OnnxEngine

    assert check_engine(OnnxEngine(b))["max_abs_diff"] < FP32_TOLERANCE / 100
    import onnx
    from onnx import numpy_helper

    edited = _copy(band_bundle, tmp_path, "edited")
    model = onnx.load(edited / "model.onnx")
    temp = next(t for t in model.graph.initializer if t.name == "temp")
    temp.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(temp) * 1.05, "temp"))
    onnx.save(model, edited / "model.onnx")
    _remanifest(edited, None)
    r = check_engine(OnnxEngine(load_bundle(edited)))
    assert not r["passed"] and r["top1_agreement"] == 1.0, r  # same answers, other numbers
    # INT8: twice the bundle's own quantization error, floored
    fp32 = np.full((2, 5), 0.2)
    assert int8_tolerance(fp32 + [[0.03, -0.03, 0, 0, 0]] * 2, fp32) == pytest.approx(0.06)
    assert int8_tolerance(fp32, fp32) == 0.01


# --- keys, signatures, tarballs -----------------------------------------------------------------

def test_keygen_sign_and_pack(tmp_path, capsys, band_bundle):
    rc = main(["engine", "keygen", "--out", str(tmp_path / "k"), "--name", "Ada Tech"])
    out = capsys.readouterr().out
    assert rc == 0 and "Ada Tech" in (tmp_path / "k" / "Ada-Tech.pub").read_text()
    assert (tmp_path / "k" / "Ada-Tech.key").stat().st_mode & 0o777 == 0o600
    assert main(["engine", "keygen", "--out", str(tmp_path / "k"), "--name", "Ada Tech"]) == 1
    assert "never overwritten" in capsys.readouterr().err
    b = _copy(band_bundle, tmp_path)
    rc = main(["engine", "sign", str(b), "--key", str(tmp_path / "k" / "Ada-Tech.key")])
    assert rc == 0 and "signed" in capsys.readouterr().out
    from appliance.store.signing import trusted_keys, verify_manifest

    assert verify_manifest(b, trusted_keys([tmp_path / "k"])).name == "Ada Tech"
    t1, t2 = tmp_path / "1.tar.gz", tmp_path / "2.tar.gz"
    assert main(["engine", "pack", str(b), "--out", str(t1)]) == 0
    assert main(["engine", "pack", str(b), "--out", str(t2)]) == 0
    assert t1.read_bytes() == t2.read_bytes()  # reproducible
    with tarfile.open(t1) as tar:
        assert sorted(tar.getnames()) == sorted(f"bands-test-1/{p.name}" for p in b.iterdir())
    # a bundle whose files do not match its manifest is neither signed nor packed
    (b / "model.onnx").write_bytes(b"garbage")
    capsys.readouterr()
    assert main(["engine", "sign", str(b), "--key", str(tmp_path / "k" / "Ada-Tech.key")]) == 1
    assert "checksum mismatch" in capsys.readouterr().err
    assert main(["engine", "pack", str(b), "--out", str(t1)]) == 1
    assert "secret key" in out and "public key" in out


def test_shipped_bundles_carry_the_project_signature():
    from appliance.store.signing import trusted_keys, verify_manifest

    keys = trusted_keys([PROJECT_KEYS])
    shipped = (REPO / "engines" / "current").resolve().name
    for name in sorted({shipped, "genre-1.3", "placeholder-0.1"}):
        # one of the project's keys (2026-12 since the first one's secret half was lost)
        assert verify_manifest(REPO / "engines" / name, keys).name in (
            "appliance project", "appliance project 2026-12"), name
    tracked = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                              "*.key"], cwd=REPO, capture_output=True, text=True).stdout
    assert tracked == "", f"a secret key must never be in the repository: {tracked}"
