"""Fuzzed config files, show files and engine manifests (Hypothesis): each is accepted, or
rejected with plain-words problems that carry line numbers, never a traceback.

CI runs 100 cases per test (600 in all, seeded, so CI is repeatable); the long run
(``python tests/benchmarks/fuzz.py``) sets APPLIANCE_FUZZ_EXAMPLES=1000 and runs the same
tests.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.config import SCHEMA as CONFIG_SCHEMA
from appliance.config import Config, load_config
from appliance.listen.bundle import Bundle, BundleError, load_bundle
from appliance.schema import Problem
from appliance.show.showfile import SCHEMA as SHOW_SCHEMA
from appliance.show.showfile import Show, load_show

EXAMPLES = int(os.environ.get("APPLIANCE_FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES < 1000,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

# --- TOML values and documents --------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
_scalar = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats(allow_nan=True),
    st.booleans(), _text, st.sampled_from(["", "auto", "alsa:default", "file:x.wav", "/tmp",
                                           "S16_LE", "kms", "../../etc/passwd", "jazz"]))
_value = st.recursive(_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True),
                                                 inner, max_size=3)), max_leaves=6)


def _toml(value) -> str:
    """A TOML literal for ``value`` (inline tables for dicts)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{_key(k)} = {_toml(v)}" for k, v in value.items()) + "}"


def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k, ensure_ascii=False)


def _documents(schema, base: dict[str, dict]):
    """TOML documents near ``base`` (a valid document as section -> key -> value): keys
    dropped, values swapped for random ones, misspelled and unknown keys and sections."""
    known = [(s, k) for s, keys in schema.items() for k in keys]
    names = st.one_of(st.sampled_from([k for _, k in known]),
                      st.from_regex(r"[a-z_]{1,12}", fullmatch=True), _text)
    sections = st.one_of(st.sampled_from(list(schema)), st.from_regex(r"[a-z]{1,8}",
                                                                      fullmatch=True))

    @st.composite
    def build(draw) -> str:
        doc = {s: dict(keys) for s, keys in base.items()}
        for s, k in draw(st.lists(st.sampled_from(known), max_size=6)):
            doc.get(s, {}).pop(k, None)  # dropped
        for s, k in draw(st.lists(st.sampled_from(known), max_size=6)):
            doc.setdefault(s, {})[k] = draw(_value)  # any value
        for _ in range(draw(st.integers(0, 4))):
            doc.setdefault(draw(sections), {})[draw(names)] = draw(_value)  # unknown keys
        top = draw(st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), _scalar,
                                   max_size=2))
        lines = [f"{_key(k)} = {_toml(v)}" for k, v in top.items()]
        for s, keys in doc.items():
            lines.append(f"[{_key(s)}]")
            lines += [f"{_key(k)} = {_toml(v)}" for k, v in keys.items()]
        return "\n".join(lines) + "\n"

    return build()


def _mangled(text: str):
    """Bytes near ``text``: cut, with bytes flipped, inserted or deleted, or any bytes."""
    data = text.encode()

    @st.composite
    def build(draw) -> bytes:
        how = draw(st.sampled_from(["cut", "flip", "insert", "delete", "random"]))
        if how == "random":
            return draw(st.binary(max_size=400))
        out = bytearray(data)
        if how == "cut":
            return bytes(out[:draw(st.integers(0, len(out)))])
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, max(0, len(out) - 1)))
            if how == "flip" and out:
                out[i] = draw(st.integers(0, 255))
            elif how == "insert":
                out[i:i] = draw(st.sampled_from([b"[", b"]", b"=", b'"', b"'''", b"\n", b"#",
                                                 b"\x00", b"\xff", b"{", b".", b"[[x]]\n"]))
            elif out:
                del out[i]
        return bytes(out)

    return build()


def _check_problems(problems: list[Problem], text: str, source: str) -> None:
    """Every problem is plain words, and one about a key written in the file (or about the
    TOML syntax) points at a line, which holds that key."""
    lines = text.splitlines()
    bad_toml = any(p.message.startswith("not valid TOML") for p in problems)
    for p in problems:
        s = str(p)
        assert s.startswith(source) and p.message and "Traceback" not in s, s
        if p.message.startswith("not valid TOML"):
            assert p.line is not None, s
        if p.line is not None:
            assert 1 <= p.line <= max(1, len(lines)), s
            if p.key and "." in p.key and not bad_toml:  # (else the defaults' consequences)
                section, _, leaf = p.key.partition(".")  # (a quoted key may hold dots)
                line = lines[p.line - 1]
                assert leaf in line or _key(leaf) in line or (  # a key not there: its section
                    line.strip().startswith("[") and section in line), f"{s}\n  line: {line!r}"


# --- config ---------------------------------------------------------------------------

_GOOD_CONFIG = {"audio": {"source": "alsa:stagemic", "rate": 48000},
                "listen": {"backend": "auto"}, "display": {"output": "offscreen"},
                "service": {"events_keep": 8, "log_level": "info"}}


@FUZZ
@given(text=_documents(CONFIG_SCHEMA, _GOOD_CONFIG))
def test_fuzzed_config_files_are_taken_or_refused_in_words(tmp_path, text):
    path = tmp_path / "appliance.toml"
    path.write_text(text, encoding="utf-8")
    config, problems = load_config(path)
    assert isinstance(config, Config)
    _check_problems(problems, text, str(path))


@FUZZ
@given(data=_mangled('[audio]\nsource = "alsa:stagemic"\nrate = 48000\n[display]\n'
                     'output = "kms"\n[service]\nevents_keep = 8\n'))
def test_mangled_config_bytes_never_raise(tmp_path, data):
    path = tmp_path / "appliance.toml"
    path.write_bytes(data)
    config, problems = load_config(path)
    assert isinstance(config, Config)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        assert problems and "cannot read" in problems[0].message
        return
    _check_problems(problems, text, str(path))


# --- show files -----------------------------------------------------------------------


_GOOD_SHOW: dict[str, dict] = {}


@pytest.fixture(scope="module")
def show_dir(tmp_path_factory) -> Path:
    import tomllib

    from tests.conftest import make_tiny_show

    folder = make_tiny_show(tmp_path_factory.mktemp("fuzzshow") / "show")
    _GOOD_SHOW.update(tomllib.loads((folder / "show.toml").read_text()))
    return folder


def _good_show(show_dir: Path) -> dict[str, dict]:
    """The tiny show's own show.toml, as read before any test wrote over it."""
    return _GOOD_SHOW


@FUZZ
@given(data=st.data())
def test_fuzzed_show_files_are_taken_or_refused_in_words(show_dir, data):
    text = data.draw(_documents(SHOW_SCHEMA, _good_show(show_dir)))
    (show_dir / "show.toml").write_text(text, encoding="utf-8")
    show, problems = load_show(show_dir)
    assert isinstance(show, Show)
    _check_problems(problems, text, str(show_dir / "show.toml"))
    if not show.playable:
        assert problems  # an unplayable show always says why


@FUZZ
@given(data=st.data())
def test_mangled_show_bytes_never_raise(show_dir, data):
    good = "\n".join(f"[{s}]\n" + "\n".join(f"{k} = {_toml(v)}" for k, v in keys.items())
                     for s, keys in _good_show(show_dir).items()) + "\n"
    raw = data.draw(_mangled(good))
    (show_dir / "show.toml").write_bytes(raw)
    show, problems = load_show(show_dir)
    assert isinstance(show, Show)
    try:
        _check_problems(problems, raw.decode("utf-8"), str(show_dir / "show.toml"))
    except UnicodeDecodeError:
        assert problems and "cannot read" in problems[0].message


# --- engine manifests -----------------------------------------------------------------

_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _text),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(_text, inner, max_size=4)), max_leaves=8)


@pytest.fixture(scope="module")
def manifest_base(band_bundle) -> dict:
    return json.loads((band_bundle / "manifest.json").read_text())


def _paths(d, prefix=()):
    """Every key path in a nested manifest."""
    for k, v in d.items():
        yield (*prefix, k)
        if isinstance(v, dict):
            yield from _paths(v, (*prefix, k))


@FUZZ
@given(data=st.data())
def test_fuzzed_manifests_load_or_are_refused_with_a_bundle_error(tmp_path, band_bundle,
                                                                    manifest_base, data):
    folder = tmp_path / "bundle"
    if not folder.exists():
        shutil.copytree(band_bundle, folder)
    m = json.loads(json.dumps(manifest_base))
    paths = list(_paths(m))
    for path in data.draw(st.lists(st.sampled_from(paths), max_size=4)):
        node = m
        for k in path[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, dict):
            if data.draw(st.booleans()):
                node.pop(path[-1], None)
            else:
                node[path[-1]] = data.draw(_json)
    for k, v in data.draw(st.dictionaries(_text, _json, max_size=2)).items():
        m[k] = v
    (folder / "manifest.json").write_text(json.dumps(m))
    try:
        bundle = load_bundle(folder)
    except BundleError as e:
        words = str(e)
        assert str(folder) in words and "Traceback" not in words
    else:
        assert isinstance(bundle, Bundle)


@FUZZ
@given(data=st.data())
def test_mangled_manifest_bytes_are_refused_with_a_bundle_error(tmp_path, band_bundle, data):
    folder = tmp_path / "bundle"
    if not folder.exists():
        shutil.copytree(band_bundle, folder)
    raw = data.draw(_mangled((band_bundle / "manifest.json").read_text()))
    (folder / "manifest.json").write_bytes(raw)
    try:
        load_bundle(folder)
    except BundleError as e:
        assert "manifest" in str(e) or str(folder) in str(e)
