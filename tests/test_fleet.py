"""fleet/: the real ansible-playbook against two real SSH boxes on this machine.

Each box is an sshd of its own on a loopback port (its own host key, the test's client key
in authorized_keys, run as this user), with the appliance installed by fleet/install.yml
into a scratch root (`install.sh --root DIR`) over SSH. On them: install twice (the second
run changes nothing), roll out an engine, roll out a tampered one (the canary refuses, the
second box is never reached, both keep the engine they had), roll back, collect reports.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, make_signed_band_bundle

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
PLAYBOOK = (str(Path(sys.executable).parent / "ansible-playbook")
            if (Path(sys.executable).parent / "ansible-playbook").exists()
            else shutil.which("ansible-playbook"))
FLEET = REPO / "fleet"

pytestmark = [
    pytest.mark.skipif(SSHD is None, reason="no sshd here (apt-get install openssh-server; "
                                            "./install.sh --dev installs it)"),
    pytest.mark.skipif(PLAYBOOK is None, reason="no ansible-playbook here (pip install -e "
                                                ".[fleet]; ./install.sh --dev installs it)"),
    pytest.mark.skipif(shutil.which("ssh") is None, reason="no ssh client here"),
]

BOXES = ("box1", "box2")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited: {proc.stderr.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"sshd never listened on {port}")


def _release(out: Path) -> Path:
    """The working tree's files as a release tarball (what `git archive` makes from a commit)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, capture_output=True, check=True).stdout.split(b"\0")
    with tarfile.open(out, "w:gz") as tar:
        for name in sorted({f.decode() for f in files if f}):
            path = REPO / name
            if path.is_file() and not path.is_symlink():
                tar.add(path, arcname=name)
            elif path.is_symlink():  # engines/current
                tar.add(path, arcname=name, recursive=False)
    return out


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, signing_key):
    tmp = tmp_path_factory.mktemp("fleet")
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True,
                                                    text=True).stdout.strip()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "id")],
                   check=True)
    (tmp / "authorized_keys").write_text((tmp / "id.pub").read_text())
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    procs, known, hosts = [], [], []
    try:
        for name in BOXES:
            box = tmp / name
            (box / "root").mkdir(parents=True, exist_ok=True)
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                            str(box / "host_key")], check=True)
            port = _free_port()
            (box / "sshd_config").write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {box / 'host_key'}
PidFile {box / 'sshd.pid'}
AuthorizedKeysFile {tmp / 'authorized_keys'}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
LogLevel ERROR
""")
            proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(box / "sshd_config")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            procs.append(proc)
            _wait_port(port, proc)
            known.append(f"[127.0.0.1]:{port} {(box / 'host_key.pub').read_text().strip()}")
            hosts.append(f"{name} ansible_host=127.0.0.1 ansible_port={port} "
                         f"appliance_root={box / 'root'}")
        (tmp / "known_hosts").write_text("\n".join(known) + "\n")
        _secret, trusted = signing_key
        pub = next(trusted.glob("*.pub"))
        python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else "python3"
        ssh_args = (f"-o UserKnownHostsFile={tmp / 'known_hosts'} -o StrictHostKeyChecking=yes "
                    "-o IdentitiesOnly=yes")
        (tmp / "inventory.ini").write_text(f"""\
[boxes]
{chr(10).join(hosts)}

[boxes:vars]
ansible_user={user}
ansible_ssh_private_key_file={tmp / 'id'}
ansible_ssh_common_args='{ssh_args}'
ansible_python_interpreter={python}
appliance_become=false
appliance_release={_release(tmp / 'release.tar.gz')}
appliance_trusted_keys=["{pub}"]
appliance_mic_card=Loopback
appliance_display=offscreen
appliance_require_show=false
# a test box only: skip compiling the installed packages to .pyc (a real box compiles them)
appliance_install_env={{"PIP_NO_COMPILE": "1"}}
""")
        yield tmp
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()


def play(fleet: Path, playbook: str, *extra: str, timeout: float = 1200) -> tuple[int, str]:
    """ansible-playbook, its output (stdout and stderr). A first install runs pip on both
    boxes: about a minute on 2 idle cores, much longer on a loaded machine."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(FLEET / "ansible.cfg"),
           "ANSIBLE_HOME": str(fleet / "ansible-home"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCAL_TEMP": str(fleet / "ansible-tmp"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([PLAYBOOK, "-i", str(fleet / "inventory.ini"),
                             str(FLEET / playbook), *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=FLEET,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its forks and ssh clients too
        out, _ = proc.communicate()
        pytest.fail(f"ansible-playbook {playbook} took over {timeout:g} s:\n{out}")
    return proc.returncode, out


def recap(out: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP: {host: {ok, changed, failed, …}} (a host never reached is absent)."""
    rows = {}
    for m in re.finditer(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", out, re.M):
        rows[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return rows


def store(fleet: Path, box: str) -> tuple[str | None, str | None]:
    engines = fleet / box / "root" / "var" / "lib" / "appliance" / "engines"

    def link(name: str) -> str | None:
        p = engines / name
        return os.readlink(p) if p.is_symlink() else None

    return link("current"), link("previous")


def test_a_fleet_of_two_ssh_boxes_installs_rolls_out_refuses_rolls_back_and_reports(
        fleet, signing_key, tmp_path):
    # install, then again: the second run changes nothing
    rc, out = play(fleet, "install.yml")
    assert rc == 0, out
    first = recap(out)
    assert set(first) == set(BOXES) and all(first[b]["changed"] > 0 for b in BOXES), out
    for b in BOXES:
        root = fleet / b / "root"
        assert (root / "opt/appliance/venv/bin/appliance").exists()
        config = (root / "etc/appliance/appliance.toml").read_text()
        assert f'store = "{root}/var/lib/appliance/engines"' in config
        assert 'output = "offscreen"' in config
        assert "CARD=Loopback" in (root / "etc/asound.conf").read_text()
    rc, out = play(fleet, "install.yml")
    assert rc == 0, out
    assert all(recap(out)[b]["changed"] == 0 for b in BOXES), out
    rc, out = play(fleet, "install.yml", "--check", "--diff")  # says nothing would change
    assert rc == 0 and all(recap(out)[b]["changed"] == 0 for b in BOXES), out

    # three bundles signed with the test technician's key (trusted by install.yml)
    from appliance.store import pack

    secret, _trusted = signing_key
    tarballs = {}
    for version in ("1", "2", "3"):
        bundle = make_signed_band_bundle(tmp_path / f"bands-fleet-{version}", secret,
                                         name="bands-fleet", version=version)
        if version == "3":  # tampered after signing: its listener retuned in the manifest
            manifest = json.loads((bundle / "manifest.json").read_text())
            manifest["listener"]["tau_s"] = 9.0
            (bundle / "manifest.json").write_text(json.dumps(manifest))
        tarballs[version] = pack(bundle, tmp_path / f"bands-fleet-{version}.tar.gz")

    for version in ("1", "2"):
        rc, out = play(fleet, "engine.yml", "-e", f"bundle={tarballs[version]}", "-e", "batch=1")
        assert rc == 0, out
        assert all(recap(out)[b]["failed"] == 0 for b in BOXES), out
        # the canary alone ran the self-test's engine check (and passed it)
        checks = re.findall(r"TASK \[The engine check[^\n]*\n((?:\w+: \[\w+\]\n)+)", out)
        assert checks == ["ok: [box1]\n"], out
    assert {b: store(fleet, b) for b in BOXES} == {
        b: ("bands-fleet-2", "bands-fleet-1") for b in BOXES}

    # the tampered bundle: the canary refuses it, the second box is never reached
    rc, out = play(fleet, "engine.yml", "-e", f"bundle={tarballs['3']}", "-e", "batch=1")
    assert rc != 0, out
    rows = recap(out)
    assert rows["box1"]["failed"] == 1, out
    assert "box2" not in rows, out
    assert "install refused at step signature" in out and "does not match" in out, out
    assert {b: store(fleet, b) for b in BOXES} == {
        b: ("bands-fleet-2", "bands-fleet-1") for b in BOXES}
    assert not list((fleet / "box2/root/var/lib/appliance").glob("incoming/*")), \
        "the bundle reached box2"
    assert not (fleet / "box1/root/var/lib/appliance/engines/bands-fleet-3").exists()

    # roll the fleet back
    rc, out = play(fleet, "engine.yml", "-e", "action=rollback")
    assert rc == 0, out
    assert {b: store(fleet, b) for b in BOXES} == {
        b: ("bands-fleet-1", "bands-fleet-2") for b in BOXES}

    # last night on box1: one show with a jazz ending, three frames dropped
    events = fleet / "box1/root/var/lib/appliance/events"
    events.mkdir(parents=True, exist_ok=True)
    night = [{"t": 0.0, "event": "state", "state": "attract"},
             {"t": 5.0, "event": "state", "state": "main"},
             {"t": 9.0, "event": "ending", "genre": "jazz", "evidence": {"reason": "clear"}},
             {"t": 12.0, "event": "state", "state": "rest"},
             {"t": 20.0, "event": "stats", "presented": 200, "late": 1, "dropped": 3}]
    (events / "tiny.jsonl").write_text("".join(json.dumps(e) .replace(", ", ",")
                                               .replace(": ", ":") + "\n" for e in night)
                                       + '{"t":21.0,"event":"hea')  # cut off by a power cut
    reports = tmp_path / "reports"
    rc, out = play(fleet, "collect.yml", "-e", f"reports={reports}")
    assert rc == 0, out
    for b in BOXES:
        status = json.loads((reports / b / "status.json").read_text())
        assert status["running"] is False
        assert json.loads((reports / b / "engines.json").read_text())["current"] == \
            "bands-fleet-1"
    assert (reports / "box1/events/tiny.jsonl").exists()
    table = (reports / "fleet.md").read_text()
    row = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
           for line in table.splitlines() if line.startswith("| box")}
    assert all(row[b][0].startswith("bands-fleet-1 (ONNX Runtime") for b in BOXES), table
    assert row["box1"][2:5] == ["1", "jazz 1", "3"], table  # shows, endings, drops
    assert row["box2"][2] == "0", table
    assert row["box1"][5].startswith("not running"), table


@pytest.mark.parametrize("playbook", ["install.yml", "engine.yml", "collect.yml"])
def test_the_playbooks_parse_with_the_example_inventory(playbook, tmp_path):
    env = {**os.environ, "ANSIBLE_CONFIG": str(FLEET / "ansible.cfg"),
           "ANSIBLE_HOME": str(tmp_path), "ANSIBLE_NOCOLOR": "1"}
    r = subprocess.run([PLAYBOOK, "--syntax-check", "-i", str(FLEET / "inventory.example.ini"),
                        str(FLEET / playbook)], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    listed = subprocess.run([PLAYBOOK, "--list-hosts", "-i", str(FLEET / "inventory.example.ini"),
                             str(FLEET / playbook)], capture_output=True, text=True, env=env,
                            timeout=120)
    assert "kettles-yard" in listed.stdout and "hamburger-bhf" in listed.stdout, listed.stdout
