"""The files that go onto the box: systemd unit, example config, install script."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "firmware_config" / "systemd" / "appliance.service"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_unit_verifies_and_is_hardened(tmp_path):
    # verify checks that ExecStart exists: point it at this checkout's command
    exe = Path(sys.executable).with_name("appliance")
    assert exe.exists()
    text = UNIT.read_text().replace("/opt/appliance/venv/bin/appliance", str(exe))
    unit = tmp_path / "appliance.service"
    unit.write_text(text)
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert r.returncode == 0 and "appliance.service" not in r.stderr, r.stderr
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=30",
                        str(unit)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:]
    for must in ("Type=notify", "WatchdogSec=", "Restart=always", "ExecReload=/bin/kill -HUP",
                 "appliance-admin"):
        assert must in text


@pytest.mark.parametrize("name", ["appliance.toml", "appliance-dev.toml"])
def test_example_configs_are_valid(name):
    r = subprocess.run([sys.executable, "-m", "appliance", "check-config", "--config",
                        str(REPO / "firmware_config" / name)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "config OK" in r.stdout


def test_box_refuses_unsigned_engines_and_the_dev_desk_allows_them():
    from appliance.config import load_config

    box, _ = load_config(REPO / "firmware_config" / "appliance.toml")
    dev, _ = load_config(REPO / "firmware_config" / "appliance-dev.toml")
    assert box.listen.allow_unsigned is False and dev.listen.allow_unsigned is True
    assert dev.listen.trusted_keys == REPO / "firmware_config" / "trusted_keys"
    assert box.service.control_socket == Path("/run/appliance/control.sock")


def test_check_config_names_every_problem_with_its_line(tmp_path):
    bad = tmp_path / "appliance.toml"
    bad.write_text('[audio]\nrat = 44100\nchannels = "two"\n[display]\noutput = "hdmi"\n')
    r = subprocess.run([sys.executable, "-m", "appliance", "check-config", "--config", str(bad)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    out = r.stdout
    assert "appliance.toml:2:" in out and "did you mean 'audio.rate'" in out
    assert "appliance.toml:3:" in out and "audio.channels" in out
    assert "appliance.toml:5:" in out and "display.output" in out
    assert "3 problem(s)" in out


def test_check_show_names_missing_media(tmp_path):
    from tests.conftest import make_tiny_show

    show = make_tiny_show(tmp_path / "show")
    (show / "overlays" / "jazz.mp4").unlink()
    r = subprocess.run([sys.executable, "-m", "appliance", "check-show", str(show)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "overlays/jazz.mp4" in r.stdout and "show playable" in r.stdout
    (show / "film.mp4").unlink()
    r = subprocess.run([sys.executable, "-m", "appliance", "check-show", str(show)],
                       capture_output=True, text=True)
    assert "film.mp4" in r.stdout and "NOT playable" in r.stdout


def test_install_script_parses_and_explains_itself():
    r = subprocess.run(["bash", "-n", str(REPO / "install.sh")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["bash", str(REPO / "install.sh"), "--bogus"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "unknown option" in r.stderr
