"""The live meter's picture: one reading → one screen that fits 80×24.

Input level, the five class probabilities as bars, the smoothed style, and what the show
would do with it now (the overlay, and the ending if the decision fell now). Pure drawing:
where readings come from is :mod:`appliance.listen_cli`'s job.
"""

from __future__ import annotations

from rich.console import Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from appliance.listen.estimate import GENRES, NONE

LABELS = (*GENRES, NONE)
BAR = 40
LEVEL_FLOOR_DB = -60.0
COLOURS = {"baroque": "yellow", "classical": "cyan", "ragtime": "magenta", "jazz": "green",
           "none": "bright_black"}
STATE_WORDS = {"attract": "attract loop", "main": "film", "ending": "ending",
               "rest": "resting after the ending"}


def bar(fraction: float, width: int = BAR, style: str = "") -> Text:
    """A bar of ``width`` cells, ``fraction`` of it filled (eighths of a cell resolved)."""
    fraction = min(1.0, max(0.0, fraction))
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")
    return Text(text.ljust(width, "·"), style=style)


def level_fraction(level_db: float | None) -> float:
    if level_db is None:
        return 0.0
    return (max(LEVEL_FLOOR_DB, min(0.0, level_db)) - LEVEL_FLOOR_DB) / -LEVEL_FLOOR_DB


def _bar_grid() -> Table:
    """Label, bar, number: fixed widths, so the bars line up and nothing is squeezed."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, style="bold", width=9, min_width=9)
    grid.add_column(no_wrap=True, width=BAR, min_width=BAR)
    grid.add_column(no_wrap=True, justify="right", min_width=11)
    return grid


def render(reading: dict | None, header: str, note: str = "") -> Group:
    """The meter's screen for ``reading`` (None: nothing heard yet)."""
    r = reading or {}
    level = r.get("level_db")
    inp = r.get("input", "ok")
    meter = _bar_grid()
    meter.add_row("input", bar(level_fraction(level), style="bold" if inp == "ok" else "red"),
                  f"{level:6.1f} dBFS" if isinstance(level, int | float) else "   - dBFS")
    # the input's status in full, wrapped under the level: when it fails, it says what to fix
    mic = Padding(Text("mic delivers" if inp == "ok" else inp,
                       style="" if inp == "ok" else "bold red"), (0, 0, 1, 10))
    rows = _bar_grid()
    probs = r.get("probs") or {}
    for label in LABELS:
        p = float(probs.get(label, 0.0))
        rows.add_row(label, bar(p, style=COLOURS[label]), f"{p:5.2f}")
    rows.add_row("", "", "")
    info = Table.grid(padding=(0, 1))
    info.add_column(no_wrap=True, style="bold", width=9)
    info.add_column(overflow="fold")  # the ending's evidence may take two lines
    if reading is None:
        info.add_row("style", "nothing heard yet")
    else:
        style = r.get("genre", "?")
        conf = r.get("confidence")
        info.add_row("style", Text(f"{style}" + (f" ({conf:.2f})" if conf is not None else "")
                                   + (", music" if r.get("music") else ", no music"),
                                   style=COLOURS.get(style, "")))
        if "state" in r:
            over, wanted = r.get("overlay"), r.get("wanted_overlay")
            info.add_row("overlay", f"{over or 'none'} on screen"
                         + (f"; the music asks for {wanted}" if wanted != over else ""))
            end = r.get("ending_now") or {}
            mean = (end.get("mean_probs") or {}).get(end.get("leading") or "", 0.0)
            info.add_row("ending", f"{end.get('genre', '?')} if decided now: "
                         f"{str(end.get('reason', '?')).replace('_', ' ')}, "
                         f"{end.get('leading') or 'nothing'} {mean:.2f}, "
                         f"music {100 * end.get('music_fraction', 0.0):.0f} % of "
                         f"{end.get('n_estimates', 0)} readings")
            due = r.get("decision_in")
            info.add_row("show", STATE_WORDS.get(r.get("state"), r.get("state") or "?")
                         + (f"; the ending is chosen in {due:.0f} s" if due is not None else ""))
    footer = Text(f"{note}  " if note else "", style="yellow")
    footer.append("Ctrl-C to quit", style="bright_black")
    if reading is not None:
        footer.append(f"   t {r.get('t', 0):.1f} s", style="bright_black")
    return Group(Text(header, style="bold", overflow="fold"), meter, mic, rows, info,
                 footer)
