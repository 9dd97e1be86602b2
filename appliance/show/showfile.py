"""The show an artist writes: a folder with ``show.toml`` and its films.

:func:`load_show` checks the file against :data:`SCHEMA` and probes every film with PyAV, so
all the director needs (absolute paths, durations) is known before the show starts and the
director itself does no I/O. The show "keeps playing what it can": a missing overlay just
leaves that genre without one, a missing genre ending falls back to the default ending, and
only a missing main film makes the show unplayable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av

from appliance.listen.estimate import GENRES
from appliance.schema import Field, Problem, Schema, key_lines, validate

SHOW_FILE = "show.toml"
DEFAULT_ENDING = "default"

_SECONDS = {"minimum": 0.0, "maximum": 3600.0}

SCHEMA: Schema = {
    "show": {
        "title": Field("str", "", "shown in logs and status"),
        "fps": Field("int", 30, "output frame rate", minimum=1, maximum=240),
        "size": Field("list", [1280, 720], "output size [width, height]",
                      length=2, item="int", minimum=16, maximum=8192),
    },
    "attract": {
        "film": Field("path", "", "loops while nobody plays"),
        "start_after_music_s": Field("float", 2.0,
                                     "continuous music needed before the main film starts",
                                     **_SECONDS),
    },
    "main": {
        "film": Field("path", "", "the main film", required=True),
        "idle_return_s": Field("float", 30.0,
                               "silence this long during the film -> back to attract (0 = never)",
                               **_SECONDS),
    },
    "overlays": {
        "blend": Field("str", "add", "how overlays are composited",
                       choices=("add", "screen", "alpha")),
        "fade_s": Field("float", 1.5, "crossfade time", minimum=0.0, maximum=60.0),
        "min_dwell_s": Field("float", 4.0, "an overlay stays at least this long", **_SECONDS),
        **{g: Field("path", "", f"overlay while {g} is heard") for g in GENRES},
    },
    "decision": {
        "at_s": Field("float", 0.0, "seconds into the main film; 0 = at the film's end",
                      minimum=0.0, maximum=86400.0),
        "listen_s": Field("float", 20.0, "music weighed before the decision",
                          minimum=0.1, maximum=3600.0),
        "min_confidence": Field("float", 0.45, "mean probability the leading genre needs",
                                minimum=0.0, maximum=1.0),
        "min_music_fraction": Field("float", 0.5, "share of the stretch that must be music",
                                    minimum=0.0, maximum=1.0),
    },
    "endings": {
        "fade_s": Field("float", 0.5, "crossfade into the ending", minimum=0.0, maximum=60.0),
        **{g: Field("path", "", f"ending when the music was {g}") for g in GENRES},
        DEFAULT_ENDING: Field("path", "", "ending when no genre was clear"),
    },
    "after_ending": {
        "then": Field("str", "attract", "after the ending and the rest",
                      choices=("attract", "hold")),
        "rest_s": Field("float", 10.0, "music is ignored this long after the ending",
                        **_SECONDS),
    },
}


class ShowError(Exception):
    """The show cannot be played; ``problems`` says every reason at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("show is unplayable:\n" + "\n".join(f"  {p}" for p in self.problems))


@dataclass(frozen=True)
class MediaInfo:
    """One probed film: where it is and what the player will get from it."""

    path: Path
    duration_s: float
    fps: float
    size: tuple[int, int]
    has_alpha: bool = False


@dataclass(frozen=True)
class Show:
    """A loaded show. Paths are absolute; missing optional media are simply absent."""

    folder: Path
    title: str
    fps: int
    size: tuple[int, int]
    attract: MediaInfo | None  # None: the director loops the main film instead
    start_after_music_s: float
    main: MediaInfo | None  # None: unplayable
    idle_return_s: float
    overlay_blend: str
    overlay_fade_s: float
    overlay_min_dwell_s: float
    overlays: Mapping[str, MediaInfo]  # genre -> overlay film; genres without one are absent
    decision_at_s: float
    listen_s: float
    min_confidence: float
    min_music_fraction: float
    ending_fade_s: float
    endings: Mapping[str, MediaInfo]  # genre or "default" -> ending film; missing are absent
    then: str  # "attract" | "hold"
    rest_s: float
    problems: tuple[Problem, ...] = field(default=())

    @property
    def playable(self) -> bool:
        return self.main is not None


def probe_media(path: Path) -> MediaInfo:
    """Open ``path`` with PyAV, decode its first frame and measure it.

    Raises ``ValueError`` with a plain-words reason when the file is missing, has no video
    or does not decode.
    """
    if not path.is_file():
        raise ValueError("not found")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError("has no video stream")
            stream = container.streams.video[0]
            first = None
            for frame in container.decode(stream):
                first = frame
                break
            if first is None:
                raise ValueError("has no decodable frames")
            rate = stream.average_rate or stream.guessed_rate or Fraction(0)
            fps = float(rate)
            duration = 0.0
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            elif stream.frames and fps:
                duration = stream.frames / fps
            pix_fmt = stream.codec_context.pix_fmt or first.format.name
            has_alpha = any(c.is_alpha for c in av.VideoFormat(pix_fmt).components)
            size = (stream.codec_context.width or first.width,
                    stream.codec_context.height or first.height)
    except (av.FFmpegError, OSError) as error:  # before ValueError: some FFmpegErrors are both
        reason = getattr(error, "strerror", None) or str(error)
        raise ValueError(f"cannot be decoded ({reason})") from error
    if duration <= 0:
        raise ValueError("has no duration")
    return MediaInfo(path=path, duration_s=duration, fps=fps, size=size, has_alpha=has_alpha)


def load_show(folder: Path) -> tuple[Show, list[Problem]]:
    """Load ``folder/show.toml`` and probe its films. Never raises for a bad show.

    Check ``show.playable``; :func:`load_show_or_raise` does that for you.
    """
    folder = Path(folder).expanduser().resolve()
    show_file = folder / SHOW_FILE
    name = str(show_file)
    try:
        text = show_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        text, problems = "", [Problem(name, None, "", "show file not found")]
    except (OSError, UnicodeDecodeError) as error:
        text, problems = "", [Problem(name, None, "", f"cannot read show file: {error}")]
    else:
        problems = []
    values, more = validate(text, SCHEMA, name)
    problems.extend(more)
    lines = key_lines(text)

    def media(section: str, key: str, consequence: str) -> MediaInfo | None:
        value = values[section][key]
        if not value:
            return None
        path = value if value.is_absolute() else folder / value
        try:
            return probe_media(path)
        except ValueError as why:
            problems.append(Problem(name, lines.get((section, key)), f"{section}.{key}",
                                    f"film '{value}' {why}{consequence}"))
            return None

    main = media("main", "film", " — the show cannot be played")
    attract = media("attract", "film", " — the main film loops in its place")
    overlays = {}
    for genre in GENRES:
        info = media("overlays", genre, f" — {genre} will have no overlay")
        if info is None:
            continue
        overlays[genre] = info
        if values["overlays"]["blend"] == "alpha" and not info.has_alpha:
            problems.append(Problem(name, lines.get(("overlays", genre)), f"overlays.{genre}",
                                    f"film '{info.path.name}' has no alpha channel, so "
                                    "blend = 'alpha' will cover the film completely"))
    endings = {}
    for genre in GENRES:
        info = media("endings", genre, f" — the default ending plays for {genre}")
        if info is not None:
            endings[genre] = info
    default = media("endings", DEFAULT_ENDING,
                    " — without it, an unclear show ends by going back to attract")
    if default is not None:
        endings[DEFAULT_ENDING] = default
    elif not values["endings"][DEFAULT_ENDING]:
        problems.append(Problem(name, lines.get(("endings",)), "endings.default",
                                "no default ending set — an unclear show ends by going back "
                                "to attract"))

    shown, decision, after = values["show"], values["decision"], values["after_ending"]
    ov = values["overlays"]
    show = Show(
        folder=folder,
        title=shown["title"] or folder.name,
        fps=shown["fps"],
        size=(int(shown["size"][0]), int(shown["size"][1])),
        attract=attract,
        start_after_music_s=values["attract"]["start_after_music_s"],
        main=main,
        idle_return_s=values["main"]["idle_return_s"],
        overlay_blend=ov["blend"],
        overlay_fade_s=ov["fade_s"],
        overlay_min_dwell_s=ov["min_dwell_s"],
        overlays=overlays,
        decision_at_s=decision["at_s"],
        listen_s=decision["listen_s"],
        min_confidence=decision["min_confidence"],
        min_music_fraction=decision["min_music_fraction"],
        ending_fade_s=values["endings"]["fade_s"],
        endings=endings,
        then=after["then"],
        rest_s=after["rest_s"],
        problems=tuple(problems),
    )
    return show, problems


def load_show_or_raise(folder: Path) -> tuple[Show, list[Problem]]:
    """Like :func:`load_show`, but raise :class:`ShowError` (with every problem) if unplayable.

    The returned problems are the ones the show can live with; log them.
    """
    show, problems = load_show(folder)
    if not show.playable:
        raise ShowError(problems)
    return show, problems
