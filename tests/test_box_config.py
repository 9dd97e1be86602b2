"""The box's own configuration (firmware_config/box/box-config.sh, run by install.sh in box
mode): installed into a scratch root, every file checked, installed again with nothing
changed, uninstalled with nothing left but shows, engines and logs."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FW = REPO / "firmware_config"
SCRIPT = FW / "box" / "box-config.sh"

INSTALLED = {
    "etc/asound.conf": FW / "alsa/asound.conf",
    "etc/udev/rules.d/85-appliance-stage-mic.rules": FW / "udev/85-appliance-stage-mic.rules",
    "etc/systemd/journald.conf.d/appliance.conf": FW / "journald/appliance.conf",
    "etc/systemd/system/appliance-console.service": FW / "systemd/appliance-console.service",
    "etc/systemd/system/appliance-power.service": FW / "systemd/appliance-power.service",
    "etc/systemd/system/appliance.service.d/wait-for-hardware.conf":
        FW / "systemd/appliance.service.d/wait-for-hardware.conf",
}


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=60)


def _tree(root: Path) -> dict[str, str]:
    """Every file and link under root: path -> sha256 or link target, and its mtime."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() + f" {p.stat().st_mtime_ns}"
    return out


def test_install_checks_every_file_is_idempotent_and_uninstall_leaves_only_the_show(tmp_path):
    root = tmp_path / "root"
    kept = {"var/lib/appliance/shows/venue/show.toml": "[show]\n",
            "var/lib/appliance/engines/genre-1.3/manifest.json": "{}",
            "var/lib/appliance/events/demo.jsonl": '{"t":0}\n'}
    for rel, text in kept.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "etc/systemd/system").mkdir(parents=True)
    os.symlink("/lib/systemd/system/graphical.target", root / "etc/systemd/system/default.target")

    r = _run("install", str(root))
    assert r.returncode == 0, r.stderr
    for rel, src in INSTALLED.items():
        assert (root / rel).read_bytes() == src.read_bytes(), rel
    wants = root / "etc/systemd/system/multi-user.target.wants"
    for unit in ("appliance-console.service", "appliance-power.service"):
        assert os.readlink(wants / unit) == f"/etc/systemd/system/{unit}"
    assert os.readlink(root / "etc/systemd/system/default.target") == \
        "/lib/systemd/system/multi-user.target"
    if not shutil.which("nvpmodel"):
        assert "nvpmodel not found" in r.stdout and "jetson_clocks not found" in r.stdout

    before = _tree(root)
    r = _run("install", str(root))
    assert r.returncode == 0 and _tree(root) == before  # nothing rewritten, nothing added

    r = _run("uninstall", str(root))
    assert r.returncode == 0, r.stderr
    left = {k for k, v in _tree(root).items()}
    assert left == set(kept) | {"etc/systemd/system/default.target"}, left
    assert os.readlink(root / "etc/systemd/system/default.target") == \
        "/lib/systemd/system/graphical.target"  # what it was before


def test_a_venues_own_asound_conf_is_kept(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/asound.conf").write_text('pcm.stage_mic { type plug slave.pcm "hw:CARD=X" }\n')
    assert _run("install", str(root)).returncode == 0
    assert "CARD=X" in (root / "etc/asound.conf").read_text()
    assert _run("uninstall", str(root)).returncode == 0
    assert "CARD=X" in (root / "etc/asound.conf").read_text()


def _install_sh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "install.sh"), *args], capture_output=True,
                          text=True, timeout=900)


@pytest.mark.skipif(not shutil.which("rsync"), reason="rsync not installed (./install.sh --dev)")
def test_install_sh_box_mode_into_a_scratch_root_then_uninstall_keeps_only_the_show(tmp_path):
    """The whole box install (`install.sh --root`), not box-config.sh alone: code, venv,
    unit, config, keys, state folders and the box's own configuration; again with nothing of
    the box's files rewritten; then `--uninstall` leaves shows, engines, logs and a key a
    technician added, nothing else."""
    root = tmp_path / "box"
    kept = {"var/lib/appliance/shows/venue/show.toml": "[show]\n",
            "var/lib/appliance/engines/genre-1.3/manifest.json": "{}",
            "var/lib/appliance/events/demo.jsonl": '{"t":0}\n'}
    for rel, text in kept.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)

    r = _install_sh("--root", str(root))
    assert r.returncode == 0, r.stdout + r.stderr
    src, exe = root / "opt/appliance/src", root / "opt/appliance/venv/bin/appliance"
    daemon = "appliance/service/daemon.py"
    assert (src / daemon).read_bytes() == (REPO / daemon).read_bytes()
    assert not (src / ".git").exists() and not (src / ".venv").exists()
    assert (root / "etc/systemd/system/appliance.service").read_bytes() == \
        (FW / "systemd/appliance.service").read_bytes()
    assert (root / "etc/appliance/appliance.toml").read_bytes() == \
        (FW / "appliance.toml").read_bytes()
    for key in (FW / "trusted_keys").glob("*.pub"):
        assert (root / "etc/appliance/trusted_keys" / key.name).read_bytes() == key.read_bytes()
    for rel in ("engines", "shows", "events", "plans", "metrics"):
        assert (root / "var/lib/appliance" / rel).is_dir(), rel
    for rel, shipped in INSTALLED.items():
        assert (root / rel).read_bytes() == shipped.read_bytes(), rel
    # the installed command runs from its own venv and accepts the config it was given
    r = subprocess.run([str(exe), "check-config", "--config",
                        str(root / "etc/appliance/appliance.toml")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr

    def box_files() -> dict[str, str]:
        return {k: v for k, v in _tree(root).items() if k.startswith(("etc/", "var/"))}

    before = box_files()
    r = _install_sh("--root", str(root))
    assert r.returncode == 0, r.stdout + r.stderr
    assert box_files() == before  # config, unit, keys, box config: nothing rewritten or added

    (root / "etc/appliance/trusted_keys/venue.pub").write_text("a key added on the box\n")
    r = _install_sh("--uninstall", "--root", str(root))
    assert r.returncode == 0, r.stdout + r.stderr
    left = set(_tree(root))
    assert left == set(kept) | {"etc/appliance/trusted_keys/venue.pub"}, left
    assert not (root / "opt").exists() and not (root / "var/lib/appliance/metrics").exists()


def test_alsa_names_the_card_not_its_index_with_plug_over_dsnoop():
    conf = (FW / "alsa/asound.conf").read_text()
    assert "hw:CARD=StageMic" in conf and "type dsnoop" in conf and "type plug" in conf
    assert 'ATTR{id}="StageMic"' in (FW / "udev/85-appliance-stage-mic.rules").read_text()
    from appliance.config import load_config

    config, _ = load_config(FW / "appliance.toml")
    assert f"pcm.{config.audio.source.partition(':')[2]} " in conf  # the device the box opens


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_the_units_and_the_ordering_drop_in_verify(tmp_path):
    for name in ("appliance-console.service", "appliance-power.service"):
        shutil.copy(FW / "systemd" / name, tmp_path / name)
    exe = Path(sys.executable).with_name("appliance")
    (tmp_path / "appliance.service").write_text((FW / "systemd/appliance.service").read_text()
                                                .replace("/opt/appliance/venv/bin/appliance",
                                                         str(exe)))
    shutil.copytree(FW / "systemd/appliance.service.d", tmp_path / "appliance.service.d")
    r = subprocess.run(["systemd-analyze", "verify", *(str(p) for p in tmp_path.glob("*.service"))],
                       capture_output=True, text=True, env={**os.environ,
                                                            "SYSTEMD_UNIT_PATH": f"{tmp_path}:"})
    assert r.returncode == 0 and "appliance" not in r.stderr, r.stderr
    dropin = (FW / "systemd/appliance.service.d/wait-for-hardware.conf").read_text()
    assert "RequiresMountsFor=/var/lib/appliance" in dropin and "/proc/asound/StageMic" in dropin
    assert "-lt 40" in dropin  # 40 x 0.5 s: a time limit, never for ever
