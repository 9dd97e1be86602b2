"""`appliance report`: a picture of what happened, from the show's own event files.

One performance: a timeline — the five probabilities as stacked areas, the smoothed style,
the overlay on screen and its switches, the show's state, the decision window and the chosen
ending with its evidence. Several: a night's summary (how often each ending played, how long
each style was heard) above the last performances' timelines. PNG, or an HTML page with the
picture and a table of the shows.

Every element carries a ``gid`` naming what it shows, so a test can read the figure back
and check it against the events it came from.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from appliance.listen.estimate import GENRES, NONE
from appliance.service.performances import EventFile, Performance, style_seconds

LABELS = (*GENRES, NONE)
COLOURS = {"baroque": "#c9a227", "classical": "#4a90d9", "ragtime": "#d9534f",
           "jazz": "#4cae4c", "none": "#c8c8c8", "default": "#8c8c8c"}
STATE_COLOURS = {"attract": "#eeeeee", "main": "#9e9e9e", "ending": "#555555", "rest": "#d5d5d5"}
MAX_TIMELINES = 6
_STRIPS = {"style": 1.03, "overlay": 1.13, "show": 1.23}  # y of each strip above the areas
_STRIP_H = 0.08


def _intervals(changes: list[tuple[float, str | None]], end: float
               ) -> list[tuple[float, float, str | None]]:
    """[(t, value), …] changes → [(start, length, value), …] up to ``end``."""
    out: list[tuple[float, float, str | None]] = []
    if not changes:
        return out
    for (t, v), nxt in zip(changes, [*changes[1:], (end, None)], strict=True):
        if nxt[0] > t:
            out.append((t, nxt[0] - t, v))
    return out


def _when(p: Performance) -> str:
    if p.start_wall:
        return p.start_wall.replace("T", " ")[:16]
    return f"{p.source}, film started at t={p.start_t:.1f} s"


def ending_words(p: Performance) -> str:
    if p.ending is None:
        return "no ending: the room fell silent, back to the attract loop" if p.complete \
            else "no decision yet (the file ends here)"
    ev = p.evidence
    lead = ev.get("leading")
    mean = (ev.get("mean_probs") or {}).get(lead or "", 0.0)
    return (f"ending: {p.ending} ({str(ev.get('reason', '?')).replace('_', ' ')}) — "
            f"{lead or 'no style'} {mean:.2f} on average, music in "
            f"{100 * ev.get('music_fraction', 0.0):.0f} % of {ev.get('n_estimates', 0)} readings")


def draw_performance(ax: Axes, p: Performance, *, detail: bool = True) -> None:
    """One performance's timeline on ``ax``; x is seconds since its film started."""
    t0 = p.start_t
    events = p.events
    end = (p.end_t if p.end_t is not None else max((e["t"] for e in events), default=t0)) - t0
    start = min((e["t"] for e in events), default=t0) - t0
    heard = [e for e in events if e.get("event") == "heard" and isinstance(e.get("probs"), dict)]
    xs = [e["t"] - t0 for e in heard]
    below = [0.0] * len(heard)
    for label in LABELS:  # stacked areas, baroque at the bottom, "none" on top
        ys = [b + float(e["probs"].get(label, 0.0)) for b, e in zip(below, heard, strict=True)]
        ax.fill_between(xs, below, ys, step="post", color=COLOURS[label], linewidth=0,
                        label=label, gid=f"probs:{label}")
        below = ys
    strips = {
        "style": _intervals([(e["t"] - t0, e.get("genre")) for e in events
                             if e.get("event") == "genre"], end),
        "overlay": _intervals([(e["t"] - t0, e.get("genre")) for e in events
                               if e.get("event") == "overlay"], end),
        "show": _intervals([(e["t"] - t0, e.get("state")) for e in events
                            if e.get("event") == "state"], end),
    }
    for strip, spans in strips.items():
        y = _STRIPS[strip]
        for s, length, value in spans:
            if value is None or (strip != "show" and value == NONE):
                continue
            colour = (STATE_COLOURS if strip == "show" else COLOURS).get(value, "#777777")
            ax.broken_barh([(s, length)], (y, _STRIP_H), facecolors=colour,
                           gid=f"{strip}:{value}")
            if detail and length > (end - start) / 25:
                words = {"main": "film"}.get(value, value) if strip == "show" else value
                ax.text(s + length / 2, y + _STRIP_H / 2, words, ha="center", va="center",
                        fontsize=7, color="white" if value in ("main", "ending") else "black",
                        clip_on=True)
    top = _STRIPS["overlay"] + _STRIP_H
    for e in events:
        if e.get("event") == "overlay":
            ax.vlines(e["t"] - t0, 0, top, colors="black", linewidth=0.6, linestyles=":",
                      gid="overlay-switch")
    if p.ending_t is not None:
        frm = p.evidence.get("from")
        frm = p.ending_t - 20.0 if not isinstance(frm, int | float) else frm
        ax.add_patch(Rectangle((frm - t0, 0.0), p.ending_t - frm, 1.0, facecolor="none",
                               edgecolor="black", hatch="//", linewidth=0.8,
                               gid="decision-window"))
        ax.vlines(p.ending_t - t0, 0, top, colors="black", linewidth=1.5, gid="decision")
        ax.text((frm + p.ending_t) / 2 - t0, 0.97, "decision window", ha="center", va="top",
                fontsize=7, bbox={"facecolor": "white", "linewidth": 0, "pad": 1},
                clip_on=True)
        right = (p.ending_t - t0 - start) > 0.5 * (end - start)
        ax.annotate(ending_words(p) if detail else f"ending: {p.ending}",
                    xy=(p.ending_t - t0, top), xytext=(p.ending_t - t0, 1.40),
                    ha="right" if right else "left", fontsize=9 if detail else 8,
                    arrowprops={"arrowstyle": "->", "linewidth": 0.8}, gid="ending-text")
    ax.set_xlim(start, max(end, start + 1))
    ax.set_ylim(0, 1.5 if detail else 1.45)
    ax.set_yticks([0, 0.5, 1.0, *[y + _STRIP_H / 2 for y in _STRIPS.values()]],
                  ["0", "0.5", "1", *_STRIPS])
    ax.set_xlabel("seconds since the film started")
    ax.set_title(f"{_when(p)} — ending {p.ending or 'none'}", loc="left", fontsize=10)
    ax.grid(axis="x", linewidth=0.3)
    if not detail:
        ax.tick_params(axis="y", labelsize=7)


def draw_summary(ax_endings: Axes, ax_styles: Axes, performances: Sequence[Performance],
                 files: Sequence[EventFile]) -> None:
    counts: dict[str, int] = {}
    for p in performances:
        if p.complete or p.ending:
            key = p.ending or "silence"
            counts[key] = counts.get(key, 0) + 1
    order = [k for k in (*GENRES, "default", "silence") if k in counts]
    for i, k in enumerate(order):
        ax_endings.bar(i, counts[k], color=COLOURS.get(k, "#bbbbbb"), gid=f"ending-count:{k}")
    ax_endings.set_xticks(range(len(order)), order)
    ax_endings.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_endings.set_title("how often each ending played", loc="left", fontsize=10)
    ax_endings.set_ylabel("shows")
    seconds: dict[str, float] = {}
    for f in files:
        for k, v in style_seconds(f.events).items():
            seconds[k] = seconds.get(k, 0.0) + v
    styles = [g for g in GENRES if g in seconds]
    for i, g in enumerate(styles):
        ax_styles.barh(i, seconds[g] / 60, color=COLOURS[g], gid=f"style-minutes:{g}")
    ax_styles.set_yticks(range(len(styles)), styles)
    ax_styles.set_xlabel("minutes")
    ax_styles.set_title("how long each style was heard", loc="left", fontsize=10)


def make_report(files: Sequence[EventFile]) -> Figure:
    """The figure for these event files (one performance: its timeline; several: a night)."""
    performances = [p for f in files for p in f.performances]
    if not performances:
        fig = Figure(figsize=(10, 2.5))
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, "no performance in these events: nobody played long enough to start "
                "the film", ha="center", va="center", gid="no-performance")
        return fig
    if len(performances) == 1:
        fig = Figure(figsize=(13, 6), layout="constrained")
        ax = fig.add_subplot()
        draw_performance(ax, performances[0])
        ax.legend(loc="lower left", ncols=5, fontsize=8, framealpha=0.9)
        ax.set_ylabel("probability (stacked)")
        return fig
    shown = performances[-MAX_TIMELINES:]
    fig = Figure(figsize=(13, 3.2 + 2.6 * len(shown)), layout="constrained")
    grid = fig.add_gridspec(1 + len(shown), 2, height_ratios=[1.2] + [1.0] * len(shown))
    draw_summary(fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), performances, files)
    for i, p in enumerate(shown):
        ax = fig.add_subplot(grid[1 + i, :])
        draw_performance(ax, p, detail=False)
    fig.axes[2].legend(loc="lower left", ncols=5, fontsize=7, framealpha=0.9)
    more = len(performances) - len(shown)
    fig.suptitle(f"{len(performances)} shows"
                 + (f" (the last {len(shown)} drawn, {more} earlier ones counted above)"
                    if more else ""), x=0.01, ha="left", fontsize=12)
    return fig


def write_report(files: Sequence[EventFile], out: Path) -> Figure:
    """Draw and save as ``out`` (.png, or .html with the picture inside)."""
    fig = make_report(files)
    suffix = out.suffix.lower()
    if suffix == ".png":
        fig.savefig(out, dpi=110)
    elif suffix in (".html", ".htm"):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        out.write_text(_html(files, base64.b64encode(buf.getvalue()).decode()),
                       encoding="utf-8")
    else:
        raise ValueError(f"{out}: the report is written as .png or .html")
    return fig


def _html(files: Sequence[EventFile], png_b64: str) -> str:
    rows = []
    for f in files:
        for p in f.performances:
            rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (
                _when(p), p.ending or "—", ending_words(p),
                "…" if p.end_t is None else f"{p.end_t - p.start_t:.0f} s")) + "</tr>")
    skipped = sum(f.unreadable for f in files)
    note = f"<p>{skipped} unreadable line(s) skipped.</p>" if skipped else ""
    names = ", ".join(html.escape(f.path.name) for f in files)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>appliance report</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .8em;text-align:left}}
img{{max-width:100%}}</style></head><body>
<h1>What the box played</h1><p>From {names}.</p>{note}
<img alt="timeline of the shows" src="data:image/png;base64,{png_b64}">
<table><tr><th>started</th><th>ending</th><th>why</th><th>length</th></tr>
{''.join(rows)}
</table></body></html>
"""
