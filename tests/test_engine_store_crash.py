"""Crash consistency: `appliance engine install`, `activate` and `rollback` are killed with
SIGKILL at every step they reach (APPLIANCE_TEST_CRASH_AT=N, the store's test-only hook, like
the daemon's APPLIANCE_TEST_STALL), once per step, until a run gets through. After each kill:

- the store opens a complete engine, exactly as the daemon opens it (files, hashes, nothing
  extra, signature, then the engine itself), and it is the old one or the new one; every
  bundle under its own name is complete and was checked on this device;
- the next command cleans up what the killed one left (staging, temporary links, an
  unfinished switch) and leaves current and previous consistent;
- a later install succeeds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from appliance.cli import main
from appliance.store import Policy, Store
from tests.conftest import make_signed_band_bundle

OPS = {
    # op: (command after `engine`, current before, current after)
    "install": (["install", "{v2}"], "bands-1", "bands-2"),
    "activate": (["activate", "bands-2"], "bands-1", "bands-2"),
    "rollback": (["rollback"], "bands-2", "bands-1"),
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory, signing_key):
    secret, keys = signing_key
    root = tmp_path_factory.mktemp("crash")
    b = {v: make_signed_band_bundle(root / f"bands-{v}", secret, name="bands", version=v)
         for v in ("1", "2", "3")}
    config = root / "appliance.toml"
    config.write_text(f'[listen]\ntrusted_keys = "{keys}"\n[service]\ncontrol_socket = ""\n')
    policy = Policy(trusted_keys=(keys,))
    templates = {}
    for op in OPS:  # the store each command starts from
        t = root / f"template-{op}"
        s = Store(t, policy)
        s.install(b["1"])
        if op == "activate":
            s.install(b["2"], activate=False)
        if op == "rollback":
            s.install(b["2"])
        templates[op] = t
    return b, config, policy, templates


SCRATCH = (".staging-", ".tmp-", ".trash-", ".switch")


def _scratch(store: Path) -> list[str]:
    """What only an unfinished command leaves in the store, by kind."""
    return sorted(k for p in store.iterdir() for k in SCRATCH if p.name.startswith(k))


def _opens(store: Path, policy: Policy) -> str:
    """Open the current engine the way the daemon does; return its id."""
    s = Store(store, policy)
    bundle, _signer, record = s.open_current()
    engine, _check = s.open_engine(bundle, record)
    probs, _ = engine.infer(np.zeros((1, 1, bundle.frontend.n_mels, bundle.n_frames),
                                     np.float32))
    assert probs.shape == (1, len(bundle.labels))
    return bundle.label


def test_sigkill_at_every_step_leaves_a_complete_engine(setup, tmp_path, capsys):
    b, config, policy, templates = setup
    steps_seen: dict[str, list[str]] = {}
    left_behind: set[str] = set()
    for op, (args, before, after) in OPS.items():
        args = [a.format(v2=b["2"]) for a in args]
        steps_seen[op] = []
        for n in range(1, 60):
            store = tmp_path / f"{op}-{n}"
            shutil.copytree(templates[op], store, symlinks=True)
            r = subprocess.run(
                [sys.executable, "-m", "appliance", "engine", *args, "--store", str(store),
                 "--config", str(config), "--no-reload"],
                env={**os.environ, "APPLIANCE_TEST_CRASH_AT": str(n)},
                capture_output=True, text=True, timeout=120)
            if r.returncode == 0:  # got through: every step before it has been killed once
                assert os.readlink(store / "current") == after
                break
            assert r.returncode == -signal.SIGKILL, (op, n, r.stderr)
            m = re.search(rf"crash hook: SIGKILL at step {n} \(([a-z-]+)\)", r.stderr)
            assert m, r.stderr
            steps_seen[op].append(m.group(1))
            # 1. straight after the kill, before anything cleans up
            left_behind.update(_scratch(store))
            assert _opens(store, policy) in (before, after), (op, m.group(1))
            s = Store(store, policy)
            for ident in s.installed():  # nothing half-checked ever sits under its name
                s.open_installed(ident)
                assert s.verified_here(ident), (op, m.group(1), ident)
            # 2. the next command cleans up and leaves the links consistent
            capsys.readouterr()
            assert main(["engine", "list", "--store", str(store), "--config", str(config),
                         "--json"]) == 0
            listed = json.loads(capsys.readouterr().out)
            assert _scratch(store) == [], (op, m.group(1))
            assert listed["current"] in (before, after)
            assert listed["previous"] != listed["current"]
            for link in ("current", "previous"):
                if (store / link).is_symlink():
                    Store(store, policy).open_installed(os.readlink(store / link))
            # 3. and a later install succeeds
            assert main(["engine", "install", str(b["3"]), "--store", str(store), "--config",
                         str(config), "--no-reload"]) == 0, capsys.readouterr().err
            assert os.readlink(store / "current") == "bands-3"
            assert _opens(store, policy) == "bands-3"
            shutil.rmtree(store)
        else:
            pytest.fail(f"{op} never got through")
    distinct = {s for names in steps_seen.values() for s in names}
    assert len(distinct) >= 10, steps_seen
    assert steps_seen["install"][:3] == ["locked", "staging-created", "partly-unpacked"]
    for op in OPS:
        assert {"journal-written", "previous-linked", "current-linked"} <= set(steps_seen[op])
    # the kills really left work half done for the next command to clean up
    assert {".staging-", ".tmp-", ".switch"} <= left_behind, left_behind
