"""The shape of the code and the docs around the people-facing commands: stages import only
downwards, the daemon never loads the terminal or plotting libraries, and each audience's
page says what the code does."""

from __future__ import annotations

import ast
import subprocess
import sys

from appliance.service.selftest import NAMES
from appliance.service.selftest_screen import KEYS
from appliance.show.showfile import SCHEMA
from tests.conftest import REPO

# lower first; a module may import its own stage and those below it
RANKS = {"audio": 0, "listen": 1, "show": 2, "player": 3, "store": 3, "service": 4}
NEUTRAL = {"appliance.config", "appliance.schema"}


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n for n in names if n.startswith("appliance")}


def _rank(module: str) -> int:
    parts = module.split(".")
    if module in NEUTRAL:
        return -1
    return RANKS.get(parts[1], 9) if len(parts) > 1 else 9


def test_no_stage_imports_from_a_stage_above_it():
    wrong = []
    for stage, rank in RANKS.items():
        for path in (REPO / "appliance" / stage).rglob("*.py"):
            for m in _imports(path):
                if _rank(m) > rank:
                    wrong.append(f"{path.relative_to(REPO)} imports {m}")
    assert not wrong, wrong


def test_the_daemon_never_loads_rich_or_matplotlib():
    code = ("import sys, appliance.service.daemon, appliance.simulate; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'matplotlib')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True).stdout.strip()
    assert out == "[]"


def test_each_audience_has_its_page_linked_from_the_readme():
    readme = (REPO / "README.md").read_text()
    for page in ("docs/gallery-staff.md", "docs/technicians.md", "docs/artists.md",
                 "docs/report-example.png"):
        assert f"({page})" in readme and (REPO / page).is_file(), page


def test_the_artists_page_shows_every_show_key():
    page = (REPO / "docs" / "artists.md").read_text()
    sections = page.split("```toml", 1)[1].split("```", 1)[0]
    for section, fields in SCHEMA.items():
        assert f"[{section}]" in sections, section
        block = sections.split(f"[{section}]", 1)[1].split("\n[", 1)[0]
        for key in fields:
            assert f"\n{key} = " in block, f"{section}.{key}"


def test_the_staff_and_technician_pages_name_the_real_keys_and_checks():
    staff = (REPO / "docs" / "gallery-staff.md").read_text()
    assert all(f"**{k.upper()}**" in staff for k in KEYS)
    tech = (REPO / "docs" / "technicians.md").read_text()
    for name in NAMES:
        assert f"\n| {name} |" in tech, name
