"""The engine store: installed bundles on disk, ``current`` and ``previous`` links.

Layout of the store folder (``/var/lib/appliance/engines`` on the box)::

    genre-1.3/          one folder per installed bundle, named by its manifest name-version,
    genre-2.0/            never changed after install (but for the store's own .record.json)
    current -> genre-2.0
    previous -> genre-1.3
    .lock               held by every command that changes the store
    .switch             only between a switch's commit and its end (roll forward on recovery)
    .staging-*/ .trash-*/ .tmp-*   only while a command runs (cleaned on the next one)

Crash consistency rests on three rules. A bundle is unpacked, checked and fsynced in a
staging folder inside the store and appears under its name by one ``rename``. The pair of
links changes under a journal: ``.switch`` (written to a temporary name, fsynced, renamed)
is the commit point; each link is then replaced by renaming a new symlink over it, and
recovery finishes a switch whose journal it finds. Removal renames a folder to ``.trash-*``
before deleting it. So ``current`` always names a complete bundle, the old or the new.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from appliance.listen.bundle import MANIFEST, Bundle
from appliance.listen.engine import Engine, open_engine
from appliance.store import crashpoint
from appliance.store.checks import (
    RECORD,
    StepError,
    check_compatible,
    check_files,
    check_on_device,
    check_signature,
)
from appliance.store.signing import PublicKey, Signer, trusted_keys
from appliance.store.unpack import UnpackError, receive

log = logging.getLogger("appliance.store")

CURRENT, PREVIOUS = "current", "previous"
JOURNAL = ".switch"
LOCK = ".lock"
_SCRATCH = (".staging-", ".trash-", ".tmp-")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
LOCK_WAIT_S = 60.0


class StoreError(Exception):
    """A store command that did not happen; ``step`` names where it stopped."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


@dataclass(frozen=True)
class Policy:
    """What the box's config says about accepting and running bundles."""

    trusted_keys: tuple[Path, ...] = ()
    allow_unsigned: bool = False
    backend: str = "auto"
    threads: int = 1
    max_bytes: int = 256 << 20

    def keys(self) -> dict[str, PublicKey]:
        return trusted_keys(list(self.trusted_keys))


@dataclass
class Entry:
    """One installed bundle, as ``engine list`` shows it."""

    id: str
    labels: list[str]
    created: str | None
    size: int
    signer: str | None
    signer_key: str | None
    verified_here: bool
    runs_on: str | None
    not_faster: list[str]
    current: bool
    previous: bool
    problem: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Outcome:
    """What a store command did, for plain words and ``--json``."""

    action: str
    id: str | None = None
    current: str | None = None
    previous: str | None = None
    changed: bool = False
    notes: list[str] = field(default_factory=list)
    record: dict | None = None


def version_key(version: str) -> tuple[int, ...]:
    """"1.10" > "1.9" > "1.3.1" > "1.3": the numbers in a version, in order."""
    return tuple(int(x) for x in re.findall(r"\d+", version))


def device_id() -> str:
    """This box: its machine-id (the same across reboots, new for a new box) and CPU kind."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            mid = Path(path).read_text().strip()
        except OSError:
            continue
        if mid:
            return f"{mid[:16]}/{platform.machine()}"
    return f"{platform.node()}/{platform.machine()}"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _seal_tree(root: Path) -> None:
    """Readable by the daemon's user whatever the installer's umask (files 0644, folders
    0755), and on disk before the bundle is renamed into place."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            os.chmod(Path(dirpath) / name, 0o644)
            _fsync_path(Path(dirpath) / name)
        os.chmod(dirpath, 0o755)
        _fsync_path(Path(dirpath), directory=True)


def _write_json_atomic(path: Path, doc: dict, scratch: Path) -> None:
    """Write ``path`` whole or not at all. The temporary file lives in ``scratch`` (the store
    folder, where recovery looks), never inside a bundle, whose file set is checked."""
    tmp = scratch / f".tmp-{path.name.lstrip('.')}-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(json.dumps(doc, indent=2) + "\n")
        f.flush()
        os.fchmod(f.fileno(), 0o644)
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_path(path.parent, directory=True)


def _tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _manifest_sha(root: Path) -> str:
    return hashlib.sha256((root / MANIFEST).read_bytes()).hexdigest()


class Store:
    """One store folder. Every changing command holds ``.lock``, first finishes or cleans up
    whatever an interrupted command left, and either completes or leaves the store as it was.
    """

    def __init__(self, root: Path | str, policy: Policy | None = None) -> None:
        self.root = Path(root)
        self.policy = policy or Policy()

    # --- reading ------------------------------------------------------------------------

    def _link(self, name: str) -> str | None:
        try:
            target = os.readlink(self.root / name)
        except OSError:
            return None
        return Path(target).name

    def current_id(self) -> str | None:
        return self._link(CURRENT)

    def previous_id(self) -> str | None:
        return self._link(PREVIOUS)

    def installed(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))

    def record(self, ident: str) -> dict | None:
        try:
            return json.loads((self.root / ident / RECORD).read_text())
        except (OSError, ValueError):
            return None

    def verified_here(self, ident: str) -> bool:
        rec = self.record(ident)
        return bool(rec and rec.get("device") == device_id() and rec.get("check"))

    def entries(self) -> list[Entry]:
        cur, prev = self.current_id(), self.previous_id()
        out = []
        for ident in self.installed():
            path = self.root / ident
            rec = self.record(ident) or {}
            problem = None
            try:
                m = json.loads((path / MANIFEST).read_text())
                labels = list(m.get("labels", []))
                created = m.get("created") or rec.get("installed")
            except (OSError, ValueError) as e:
                labels, created, problem = [], rec.get("installed"), f"unreadable manifest ({e})"
            check = rec.get("check") or {}
            here = rec.get("device") == device_id() and bool(check)
            signer = rec.get("signer") or {}
            out.append(Entry(
                id=ident, labels=labels, created=created, size=_tree_size(path),
                signer=signer.get("name"), signer_key=signer.get("key"), verified_here=here,
                runs_on=check.get("label") if here else None,
                not_faster=[f"{x['backend']}: {x['reason']}" for x in check.get("not_faster", [])]
                if here else [],
                current=ident == cur, previous=ident == prev, problem=problem))
        return out

    def open_current(self) -> tuple[Bundle, Signer | None, dict | None]:
        """The current bundle, checked as the daemon needs it before every open: files and
        hashes, nothing extra, the signature under this box's policy. Also returns the
        store's record (how it ran on this device when installed)."""
        ident = self.current_id()
        if ident is None:
            raise StoreError("current", f"{self.root}: no current engine in the store")
        return self.open_installed(ident)

    def open_installed(self, ident: str) -> tuple[Bundle, Signer | None, dict | None]:
        path = self.root / ident
        if not _ID.match(ident) or path.is_symlink() or not path.is_dir():
            raise StoreError("installed", f"{ident!r} is not installed in {self.root} "
                                          "(see `appliance engine list`)")
        try:
            bundle = check_files(path, installed=True)
            signer = check_signature(path, self.policy.keys(),
                                     allow_unsigned=self.policy.allow_unsigned,
                                     key_dirs=self.policy.trusted_keys)
        except StepError as e:
            raise StoreError(e.step, str(e)) from e
        return bundle, signer, self.record(ident)

    def open_engine(self, bundle: Bundle, record: dict | None) -> tuple[Engine, dict]:
        """The engine for an installed bundle: as recorded for this device when there is a
        record (one ``open_engine`` call, no test run), else after a fresh device check."""
        check = (record or {}).get("check") if (record or {}).get("device") == device_id() \
            else None
        if check and (self.policy.backend in ("auto", check["backend"])):
            try:
                engine = open_engine(bundle, check["backend"], threads=self.policy.threads,
                                     precision=check["precision"])
                return engine, check
            except Exception as e:  # the device changed since: check again from the start
                log.warning("%s no longer opens as recorded (%s): checking it again",
                            bundle.label, e)
        try:
            engine, dc = check_on_device(bundle, self.policy.backend, self.policy.threads)
        except StepError as e:
            raise StoreError(e.step, str(e)) from e
        return engine, dc.to_dict()

    # --- locking and recovery ---------------------------------------------------------------

    @contextmanager
    def _locked(self, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            # read-only is enough for flock, so a lock file root made does not lock out the
            # daemon's user (which seeds an empty store)
            fd = os.open(self.root / LOCK, os.O_RDONLY | os.O_CREAT, 0o644)
        except PermissionError as e:
            raise StoreError("lock", f"cannot write the engine store {self.root} ({e.strerror});"
                                     " run the command with sudo") from e
        try:
            end = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > end:
                        raise StoreError("lock", f"another engine command is using {self.root}; "
                                                 "try again when it has finished") from e
                    time.sleep(0.1)
            crashpoint.step("locked")
            yield
        finally:
            os.close(fd)

    def recover(self) -> list[str]:
        """Finish or undo what an interrupted command left (call with the lock held)."""
        done = []
        journal = self.root / JOURNAL
        if journal.exists():
            try:
                doc = json.loads(journal.read_text())
                targets = [doc["current"], doc.get("previous")]
                if not all(t is None or (self.root / t).is_dir() for t in targets):
                    raise ValueError("a target is not installed")
                self._apply_switch(doc["current"], doc.get("previous"))
                done.append(f"finished the interrupted switch to {doc['current']}")
            except (OSError, ValueError, KeyError, TypeError) as e:
                journal.unlink(missing_ok=True)
                _fsync_path(self.root, directory=True)
                done.append(f"dropped an unusable switch journal ({e})")
        for p in sorted(self.root.iterdir()):
            if p.name.startswith(_SCRATCH):
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
                done.append(f"removed leftover {p.name}")
        if done:
            _fsync_path(self.root, directory=True)
            for line in done:
                log.info("engine store %s: %s", self.root, line)
        return done

    def try_recover(self) -> list[str]:
        """Recovery for read-only commands: only when the lock is free and the store writable;
        never touches another command's work in progress."""
        if not self.root.is_dir():
            return []
        try:
            with self._locked(wait_s=0.0):
                return self.recover()
        except (StoreError, OSError):
            return []

    # --- switching ---------------------------------------------------------------------------

    def _set_link(self, name: str, target: str | None) -> None:
        link = self.root / name
        if target is None:
            link.unlink(missing_ok=True)
        else:
            tmp = self.root / f".tmp-{name}-{os.getpid()}"
            tmp.unlink(missing_ok=True)
            os.symlink(target, tmp)
            crashpoint.step(f"{name}-link-staged")
            os.replace(tmp, link)
        _fsync_path(self.root, directory=True)

    def _apply_switch(self, current: str, previous: str | None) -> None:
        self._set_link(PREVIOUS, previous)
        crashpoint.step("previous-linked")
        self._set_link(CURRENT, current)
        crashpoint.step("current-linked")
        (self.root / JOURNAL).unlink(missing_ok=True)
        _fsync_path(self.root, directory=True)
        crashpoint.step("switch-done")

    def _switch(self, current: str, previous: str | None) -> None:
        """Make ``current``/``previous`` point at these, all or nothing: the journal is the
        commit point, recovery rolls it forward."""
        _write_json_atomic(self.root / JOURNAL, {"current": current, "previous": previous},
                           self.root)
        crashpoint.step("journal-written")
        self._apply_switch(current, previous)

    def _check_not_older(self, bundle_id: str, version: str, allow_downgrade: bool) -> None:
        cur = self.current_id()
        if cur is None or allow_downgrade or cur == bundle_id:
            return
        try:
            cur_version = json.loads((self.root / cur / MANIFEST).read_text())["version"]
        except (OSError, ValueError, KeyError):
            return
        if version_key(version) < version_key(str(cur_version)):
            raise StoreError("downgrade",
                             f"{bundle_id} (version {version}) is older than the current {cur} "
                             f"(version {cur_version}); if that is what you want, add "
                             "--allow-downgrade (or use `appliance engine rollback`)")

    # --- commands ----------------------------------------------------------------------------

    def install(self, src: str | Path, *, activate: bool = True, allow_downgrade: bool = False,
                stdin: BinaryIO | None = None) -> Outcome:
        """The install transaction: unpack into staging → hashes → signature → compatibility
        → the device's engine on the test vectors → fsync → rename into place → switch."""
        with self._locked():
            self.recover()
            return self._install(src, activate=activate, allow_downgrade=allow_downgrade,
                                 stdin=stdin)

    def _install(self, src: str | Path, *, activate: bool, allow_downgrade: bool,
                 stdin: BinaryIO | None) -> Outcome:
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        crashpoint.step("staging-created")
        out = Outcome("install")
        try:
            try:
                root = receive(src, staging / "in", max_bytes=self.policy.max_bytes,
                               stdin=stdin,
                               first_file=lambda: crashpoint.step("partly-unpacked"))
            except (UnpackError, OSError) as e:
                raise StoreError("unpack", str(e)) from e
            (root / RECORD).unlink(missing_ok=True)  # the store's own note is never taken in
            crashpoint.step("unpacked")
            # messages name what the technician sent, not the staging folder
            origin = "stdin" if str(src) == "-" else str(src)

            def refuse(e: StepError) -> StoreError:
                return StoreError(e.step, str(e).replace(str(root), origin))

            try:
                bundle = check_files(root)
                crashpoint.step("hashes-checked")
                signer = check_signature(root, self.policy.keys(),
                                         allow_unsigned=self.policy.allow_unsigned,
                                         key_dirs=self.policy.trusted_keys)
                crashpoint.step("signature-checked")
                check_compatible(bundle)
            except StepError as e:
                raise refuse(e) from e
            crashpoint.step("compatible")
            ident = bundle.label
            if not _ID.match(ident) or ident in (CURRENT, PREVIOUS):
                raise StoreError("compatibility", f"{ident!r} (manifest name-version) cannot "
                                 "name a store folder: use letters, digits, '.', '_', '+', '-'")
            out.id = ident
            target = self.root / ident
            if activate:
                self._check_not_older(ident, bundle.version, allow_downgrade)
            if target.exists():
                if _manifest_sha(target) != _manifest_sha(root):
                    raise StoreError("install",
                                     f"{ident} is already installed with different contents; "
                                     "a changed bundle needs a new version number")
                out.notes.append(f"{ident} was already installed, identical")
                if activate:
                    self._ready_to_run(ident)
            else:
                try:
                    _engine, dc = check_on_device(bundle, self.policy.backend,
                                                  self.policy.threads)
                except StepError as e:
                    raise refuse(e) from e
                crashpoint.step("device-checked")
                out.record = {
                    "id": ident, "installed": _now(),
                    "source": origin if origin == "stdin" else str(Path(origin).resolve()),
                    "manifest_sha256": _manifest_sha(root),
                    "signer": {"key": signer.key_id, "name": signer.name} if signer else None,
                    "device": device_id(), "check": dc.to_dict(), "checked": _now()}
                with open(root / RECORD, "w") as f:
                    json.dump(out.record, f, indent=2)
                crashpoint.step("record-written")
                _seal_tree(root)
                crashpoint.step("synced")
                os.rename(root, target)
                _fsync_path(self.root, directory=True)
                crashpoint.step("renamed-into-place")
                out.changed = True
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        out.record = out.record or self.record(ident)
        if activate and self.current_id() != ident:
            self._switch(ident, self.current_id())
            out.changed = True
        out.current, out.previous = self.current_id(), self.previous_id()
        return out

    def activate(self, ident: str, *, allow_downgrade: bool = False) -> Outcome:
        """Switch to an installed bundle after checking it again (files, hashes, signature;
        its test vectors too where it has not yet run on this device)."""
        with self._locked():
            self.recover()
            out = Outcome("activate", id=ident)
            if self.current_id() == ident:
                out.notes.append(f"{ident} is already the current engine")
            else:
                bundle, _signer, _rec = self._ready_to_run(ident)
                self._check_not_older(ident, bundle.version, allow_downgrade)
                self._switch(ident, self.current_id())
                out.changed = True
            out.current, out.previous = self.current_id(), self.previous_id()
            out.record = self.record(ident)
            return out

    def rollback(self) -> Outcome:
        """Make ``previous`` current again (and the current one previous)."""
        with self._locked():
            self.recover()
            cur, prev = self.current_id(), self.previous_id()
            if prev is None or prev == cur:
                raise StoreError("rollback", f"{self.root}: no previous engine to roll back to "
                                             f"(current: {cur or 'none'})")
            self._ready_to_run(prev)
            self._switch(prev, cur)
            return Outcome("rollback", id=prev, current=prev, previous=cur, changed=True,
                           record=self.record(prev))

    def _ready_to_run(self, ident: str) -> tuple[Bundle, Signer | None, dict | None]:
        bundle, signer, rec = self.open_installed(ident)
        if not self.verified_here(ident):
            try:
                check_compatible(bundle)
                _engine, dc = check_on_device(bundle, self.policy.backend, self.policy.threads)
            except StepError as e:
                raise StoreError(e.step, str(e)) from e
            rec = {**(rec or {"id": ident}), "device": device_id(), "check": dc.to_dict(),
                   "checked": _now()}
            _write_json_atomic(self.root / ident / RECORD, rec, self.root)
        return bundle, signer, rec

    def verify(self, ident: str | None = None) -> list[tuple[str, str | None, dict | None]]:
        """Check installed bundles again, all the way to the test vectors on this device;
        ``(id, problem or None, record)`` each. The record is updated for those that pass."""
        with self._locked():
            self.recover()
            ids = [ident] if ident else self.installed()
            results = []
            for i in ids:
                try:
                    bundle, signer, rec = self.open_installed(i)
                    check_compatible(bundle)
                    _engine, dc = check_on_device(bundle, self.policy.backend,
                                                  self.policy.threads)
                except (StepError, StoreError) as e:
                    results.append((i, f"{e.step}: {e}", self.record(i)))
                    continue
                rec = {**(rec or {"id": i}), "device": device_id(), "check": dc.to_dict(),
                       "checked": _now(),
                       "signer": {"key": signer.key_id, "name": signer.name} if signer else None}
                _write_json_atomic(self.root / i / RECORD, rec, self.root)
                results.append((i, None, rec))
            return results

    def remove(self, ident: str) -> Outcome:
        """Delete an installed bundle; never the current one."""
        with self._locked():
            self.recover()
            if ident == self.current_id():
                raise StoreError("remove", f"{ident} is the current engine; activate another "
                                           "(or roll back) before removing it")
            path = self.root / ident
            if not _ID.match(ident) or not path.is_dir() or path.is_symlink():
                raise StoreError("remove", f"{ident} is not installed in {self.root}")
            out = Outcome("remove", id=ident, changed=True)
            if ident == self.previous_id():
                self._set_link(PREVIOUS, None)
                out.notes.append("it was the rollback target; there is none now")
            crashpoint.step("unlinked")
            trash = self.root / f".trash-{ident}-{os.getpid()}"
            os.rename(path, trash)
            _fsync_path(self.root, directory=True)
            crashpoint.step("moved-to-trash")
            shutil.rmtree(trash)
            out.current, out.previous = self.current_id(), self.previous_id()
            return out

    def seed(self, shipped: Path) -> Outcome | None:
        """Install and activate the shipped bundle when the store has no current engine (a
        fresh box), so the box always has one; None when there was nothing to do."""
        if self.current_id() is not None and (self.root / CURRENT).is_dir():
            return None
        with self._locked():
            self.recover()
            if self.current_id() is not None and (self.root / CURRENT).is_dir():
                return None
            out = self._install(shipped.resolve(), activate=True, allow_downgrade=True,
                                stdin=None)
            out.action = "seed"
            return out
