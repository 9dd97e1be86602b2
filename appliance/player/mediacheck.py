"""Every film of a show decoded end to end, before the audience sees it.

``appliance check-show`` prints :func:`check_show_media`'s rows as a table. Loading a show
only opens each film and decodes its first frame; a file cut short or damaged in the middle
passes that and fails in front of people (where the player shows its "unavailable" card).
This finds it first, and says so in plain words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import av

from appliance.show.showfile import Show


@dataclass
class MediaRow:
    """One film: what it is for, what it is, and what is wrong with it."""

    path: Path
    role: str  # "main film", "overlay (jazz)", "ending (default)" ...
    duration_s: float = 0.0
    size: tuple[int, int] | None = None
    fps: float = 0.0
    alpha: bool | None = None
    alpha_needed: bool = False
    decoded_s: float = 0.0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check_media(path: Path, role: str, *, show_size: tuple[int, int], show_fps: float,
                alpha_needed: bool = False) -> MediaRow:
    """Open ``path`` and decode every frame; a row saying what it is and what is wrong."""
    row = MediaRow(path, role, alpha_needed=alpha_needed)
    if not path.is_file():
        row.problems.append("missing")
        return row
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        row.problems.append(f"cannot be opened as a video ({why})")
        return row
    with container:
        if not container.streams.video:
            row.problems.append("has no video in it")
            return row
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        row.fps = float(rate) if rate else 0.0
        if stream.duration is not None and stream.time_base is not None:
            row.duration_s = float(stream.duration * stream.time_base)
        elif container.duration:
            row.duration_s = container.duration / av.time_base
        cc = stream.codec_context
        row.size = (cc.width, cc.height) if cc.width else None
        try:
            fmt = av.VideoFormat(cc.pix_fmt) if cc.pix_fmt else None
            row.alpha = any(c.is_alpha for c in fmt.components) if fmt else None
        except (ValueError, TypeError):
            row.alpha = None
        t0 = float(stream.start_time * stream.time_base) if stream.start_time is not None \
            else 0.0
        frames, last = 0, 0.0
        try:
            for frame in container.decode(stream):
                frames += 1
                if frame.pts is not None and frame.time_base is not None:
                    last = float(frame.pts * frame.time_base) - t0
                if row.size is None:
                    row.size = (frame.width, frame.height)
        except (av.FFmpegError, OSError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            row.problems.append(f"stops decoding at {last:.1f} s of {row.duration_s:.1f} s "
                                f"({why}): damaged or cut short")
        step = 1.0 / row.fps if row.fps else 0.0
        row.decoded_s = last + step if frames else 0.0
    if frames == 0 and not row.problems:
        row.problems.append("has no frames that decode")
    elif not row.problems and row.duration_s - row.decoded_s > max(2 * step, 0.1):
        row.problems.append(f"ends at {row.decoded_s:.1f} s but says it lasts "
                            f"{row.duration_s:.1f} s: cut short")
    if alpha_needed and row.alpha is False:
        row.problems.append("has no alpha channel, but the show's blend = \"alpha\" needs "
                            "one: it would cover the film completely")
    if row.size is not None and tuple(row.size) != tuple(show_size):
        row.notes.append(f"scaled to {show_size[0]}x{show_size[1]} on every frame "
                         "(author at the show's size to save the box's CPU)")
    if row.fps and abs(row.fps - show_fps) > 0.01:
        row.notes.append(f"{row.fps:g} fps in a {show_fps:g} fps show: frames are repeated "
                         "or skipped")
    return row


def show_films(show: Show) -> list[tuple[Path, str, bool]]:
    """(path, role, alpha needed) of every film the loaded show will play."""
    films: list[tuple[Path, str, bool]] = []
    if show.main is not None:
        films.append((show.main.path, "main film", False))
    if show.attract is not None:
        films.append((show.attract.path, "attract film", False))
    for genre, info in show.overlays.items():
        films.append((info.path, f"overlay ({genre})", show.overlay_blend == "alpha"))
    for genre, info in show.endings.items():
        films.append((info.path, f"ending ({genre})", False))
    return films


def check_show_media(show: Show) -> list[MediaRow]:
    """Every film of ``show``, decoded end to end."""
    return [check_media(path, role, show_size=show.size, show_fps=show.fps,
                        alpha_needed=needed) for path, role, needed in show_films(show)]


def format_table(rows: list[MediaRow], folder: Path) -> str:
    """The rows as a plain-text table, then each film's problems and notes in words."""
    def name(p: Path) -> str:
        try:
            return str(p.relative_to(folder))
        except ValueError:
            return str(p)

    head = ("film", "for", "length", "size", "fps", "alpha", "decodes", "status")
    body = []
    for r in rows:
        alpha = "-" if r.alpha is None else ("yes" if r.alpha else "no")
        if r.alpha_needed:
            alpha += " (needed)"
        body.append((name(r.path), r.role, f"{r.duration_s:.1f} s" if r.duration_s else "-",
                     f"{r.size[0]}x{r.size[1]}" if r.size else "-",
                     f"{r.fps:g}" if r.fps else "-", alpha,
                     f"{r.decoded_s:.1f} s" if r.decoded_s else "-",
                     "PROBLEM" if r.problems else ("note" if r.notes else "ok")))
    widths = [max(len(x[i]) for x in (head, *body)) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
             for line in (head, *body)]
    for r in rows:
        lines += [f"{name(r.path)}: {p}" for p in r.problems]
        lines += [f"{name(r.path)}: note: {n}" for n in r.notes]
    return "\n".join(lines)
