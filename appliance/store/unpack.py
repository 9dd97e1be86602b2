"""Bringing a bundle into the store's staging folder, and packing one for the trip.

A bundle arrives as a folder, a ``.tar``/``.tar.gz`` file or a tar stream on stdin
(``ssh box sudo appliance engine install - < genre-2.0.tar.gz``). Tarballs are read member
by member and nothing is trusted: absolute paths, ``..``, links, device files, a member
named twice, too many members or more bytes than the limit (a tar bomb) are refused before
anything of theirs is written. Only plain files and folders come through.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from appliance.listen.bundle import MANIFEST, BundleError, load_bundle

MAX_MEMBERS = 1000
_CHUNK = 1 << 20


class UnpackError(Exception):
    """A source that cannot become a bundle; the message says why in plain words."""


def _mb(n: int) -> str:
    return f"{n / (1 << 20):.0f} MB" if n >= 1 << 20 else f"{n} bytes"


def _safe_relpath(name: str, what: str) -> PurePosixPath | None:
    """The member's path inside the bundle, or None for the archive's own root ("." or "")."""
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnpackError(f"{what} {name!r} has an absolute path; a bundle's files must stay "
                          "inside the bundle")
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if ".." in parts:
        raise UnpackError(f"{what} {name!r} climbs out of the bundle with '..'")
    return PurePosixPath(*parts) if parts else None


def _link_leaves(member: tarfile.TarInfo, rel: PurePosixPath) -> bool:
    target = PurePosixPath(member.linkname)
    if target.is_absolute():
        return True
    base = rel.parent if member.issym() else PurePosixPath()
    depth = 0
    for part in (*base.parts, *target.parts):
        depth = depth - 1 if part == ".." else depth + (part not in ("", "."))
        if depth < 0:
            return True
    return False


class _Budget:
    def __init__(self, max_bytes: int, first_file: Callable[[], None] | None) -> None:
        self.max_bytes, self.used, self.members = max_bytes, 0, 0
        self._first_file = first_file

    def member(self, name: str, size: int) -> None:
        self.members += 1
        if self.members > MAX_MEMBERS:
            raise UnpackError(f"more than {MAX_MEMBERS} entries: not an engine bundle "
                              "(a tar bomb?)")
        self.used += size
        if self.used > self.max_bytes:
            raise UnpackError(f"unpacking {name!r} would bring the bundle past the "
                              f"{_mb(self.max_bytes)} limit (a tar bomb?); nothing was kept")

    def written(self) -> None:
        if self._first_file is not None:
            self._first_file()
            self._first_file = None


def _write(dest: Path, rel: PurePosixPath, data: BinaryIO, size: int) -> None:
    path = dest.joinpath(*rel.parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        f = open(path, "xb")
    except FileExistsError as e:
        raise UnpackError(f"{rel} appears twice") from e
    with f:
        left = size
        while left > 0:
            block = data.read(min(_CHUNK, left))
            if not block:
                raise UnpackError(f"{rel} is cut short: the archive is truncated")
            f.write(block)
            left -= len(block)
    os.chmod(path, 0o644)


def _from_tar(stream: BinaryIO, dest: Path, budget: _Budget, label: str) -> None:
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for m in tar:
                rel = _safe_relpath(m.name, "entry")
                if m.issym() or m.islnk():
                    where = "outside the bundle" if rel is None or _link_leaves(m, rel) else \
                        "inside the bundle"
                    raise UnpackError(f"entry {m.name!r} is a link to {m.linkname!r} "
                                      f"({where}); bundles hold plain files only")
                if m.ischr() or m.isblk() or m.isfifo():
                    raise UnpackError(f"entry {m.name!r} is a device or pipe, not a file")
                if m.isdir():
                    budget.member(m.name, 0)
                    if rel is not None:
                        dest.joinpath(*rel.parts).mkdir(parents=True, exist_ok=True)
                    continue
                if not m.isreg():
                    raise UnpackError(f"entry {m.name!r} is not a plain file (tar type "
                                      f"{m.type!r})")
                if rel is None:
                    raise UnpackError(f"entry {m.name!r} has no file name")
                budget.member(m.name, m.size)
                src = tar.extractfile(m)
                assert src is not None  # a regular member always has data
                _write(dest, rel, src, m.size)
                budget.written()
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise UnpackError(f"{label} is not a readable .tar or .tar.gz ({e})") from e


def _from_folder(src: Path, dest: Path, budget: _Budget) -> None:
    for root, dirs, files in os.walk(src, followlinks=False):
        dirs.sort()
        base = Path(root)
        for name in [*dirs, *sorted(files)]:
            path = base / name
            rel = PurePosixPath(path.relative_to(src).as_posix())
            if path.is_symlink():
                raise UnpackError(f"{path} is a link; bundles hold plain files only")
            if path.is_dir():
                budget.member(str(rel), 0)
                dest.joinpath(*rel.parts).mkdir(parents=True, exist_ok=True)
                continue
            if not path.is_file():
                raise UnpackError(f"{path} is a device or pipe, not a file")
            size = path.stat().st_size
            budget.member(str(rel), size)
            with open(path, "rb") as f:
                _write(dest, rel, f, size)
            budget.written()


def receive(src: str | Path, dest: Path, *, max_bytes: int, stdin: BinaryIO | None = None,
            first_file: Callable[[], None] | None = None) -> Path:
    """Copy or unpack ``src`` (a folder, a tarball, or ``-`` for ``stdin``) into the empty
    folder ``dest`` and return the bundle's root inside it (``dest`` itself, or the one
    folder a tarball wraps the bundle in). ``first_file`` is called once the first file is
    written (a crash point for the store's tests)."""
    dest.mkdir()
    budget = _Budget(max_bytes, first_file)
    if str(src) == "-":
        _from_tar(stdin or sys.stdin.buffer, dest, budget, "standard input")
    else:
        path = Path(src)
        if path.is_dir():
            _from_folder(path, dest, budget)
        elif path.is_file():
            with open(path, "rb") as f:
                _from_tar(f, dest, budget, str(path))
        else:
            raise UnpackError(f"{path}: no such bundle folder or tarball")
    entries = list(dest.iterdir())
    if not (dest / MANIFEST).exists() and len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return dest


def pack(bundle_dir: Path, out: Path | None = None) -> Path:
    """Write ``<name>-<version>.tar.gz`` holding the bundle in a folder of that name, after
    checking its hashes (a broken bundle is never packed). Byte-for-byte reproducible."""
    try:
        b = load_bundle(bundle_dir)
    except BundleError as e:
        raise UnpackError(f"not packed: {e}") from e
    from appliance.store.signing import SIGNATURE

    names = [MANIFEST, *sorted(b.manifest.get("files", {}))]
    if (bundle_dir / SIGNATURE).is_file():
        names.append(SIGNATURE)
    out = out or Path.cwd() / f"{b.label}.tar.gz"
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                               filename="") as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            data = (bundle_dir / name).read_bytes()
            info = tarfile.TarInfo(f"{b.label}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, out)
    return out
