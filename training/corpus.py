"""Both corpora as one table of pieces, each with the work it belongs to and that work's split.

``../shared/data`` holds two corpora: ``midi/`` (the first: scores, split in ``manifest.csv``
with the work key in ``provenance.csv``) and ``more/`` (``baroque``, ``classical``,
``ragtime``, ``jazz``, ``performances``; one csv each with its own ``work`` and ``split``).

The manifests name works in their own ways: the same sonata is ``craigsapp-mozart:sonata01``
in one, ``mozart:k279`` in another; the same suite is ``dcml-bachsuites:BWV808`` and
``bach:bwv808``. Their splits do not always agree (K.279 is val as a score and train as a
performance). ``canonical_work`` maps every key to one name per work (catalogue numbers where
the composer has a catalogue, the normalised title for rags), and a work's split is then the
strictest of its copies: **val if any copy is val**, so no val work ever reaches training by
another name. A share of the remaining train works (``DEV_FRACTION``, by a salted hash of the
canonical name) becomes ``dev``: music the engine never trains on, for choosing engines and
smoothing without touching val.

Works the team reserves for its own evaluation (``../shared/data/README.md``) are dropped
wherever a copy turns up (``RESERVED``).

Second-class material (chamber and orchestral works, chorales, solo strings: the title's
trailing tag says so) is marked ``tier == "second"`` so the sampler can weigh it below
keyboard works.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from training import DATA, hash_share

DEV_FRACTION = 0.15  # share of the train works held out as dev
SCORE_GENRES = ("baroque", "classical", "ragtime")
MORE_SETS = ("baroque", "classical", "ragtime", "jazz", "performances")

# trailing title tags of material that was not written for a keyboard
SECOND_CLASS_TAGS = (
    "trio sonata", "chorale", "chamber", "violin and continuo", "concerto grosso",
    "solo cello", "solo violin", "solo flute", "concerto", "quartet", "symphony", "sextet",
    "violin sonata", "cello sonata", "violin and orchestra", "clarinet trio", "oboe and bassoon",
    "orchestra", "string quintet", "wind ensemble", "cello and piano", "string quartet",
)

# craigsapp's numbering of the Mozart sonatas (Alte Mozart-Ausgabe) -> Koechel
_MOZART_SONATA_K = {1: "279", 2: "280", 3: "281", 4: "282", 5: "283", 6: "284", 7: "309",
                    8: "310", 9: "311", 10: "330", 11: "331", 12: "332", 13: "333", 14: "457",
                    15: "533", 16: "545", 17: "570", 18: "576"}
# Beethoven's piano sonatas by number -> opus (only those a manifest names by number)
_BEETHOVEN_SONATA_OP = {6: "10-2", 19: "49-1", 20: "49-2"}
# works a manifest names by a description instead of a catalogue number
ALIASES = {
    "haydn:sonata-in-c-minor-first-movement": "haydn:hob16-20",  # the C minor sonata
    "scarlatti:sonata-in-b-minor-l-33": "scarlatti:k87",  # L. 33 = K. 87
    "handel:chaconne-in-g": "handel:hwv435",
}


def _reserved(canon: str, logged: frozenset[str] = frozenset()) -> str | None:
    """Why a canonical work is reserved for the team's evaluation, or None. ``logged``: the
    works ``more/``'s logs name (a jazz tune also matches by prefix: "It Could Happen" is
    "It Could Happen to You")."""
    if canon in logged or (canon.startswith("jazz:") and any(
            canon.startswith(k) for k in logged if k.startswith("jazz:") and len(k) > 9)):
        return "named reserved in more/'s logs"
    comp, _, rest = canon.partition(":")
    num = re.match(r"[a-z]*(\d+)", rest)
    n = int(num.group(1)) if num else -1
    if comp == "bach" and rest.startswith("bwv") and rest[3:].isdigit() and (
            846 <= n <= 893 or n == 971):
        return "Bach WTC / Italian Concerto"
    if comp == "mozart" and rest in ("k310", "k331", "k332", "k475"):
        return "Mozart K.310/331/332/475"
    if comp == "beethoven" and rest.startswith("sonata") and n != 6:
        return "Beethoven piano sonatas 1-5, 7-32"
    if comp == "beethoven" and rest in ("op2-1", "op2-2", "op2-3", "op7", "op10-1", "op10-3",
                                        "op13", "op14-1", "op14-2", "op22", "op26", "op27-1",
                                        "op27-2", "op28", "op31-1", "op31-2", "op31-3",
                                        "op49-1", "op49-2", "op53", "op54", "op57", "op78",
                                        "op79", "op81a", "op90", "op101", "op106", "op109",
                                        "op110", "op111"):
        return "Beethoven piano sonatas 1-5, 7-32"
    if comp == "haydn" and rest in {f"hob16-{k}" for k in (6, 31, 32, 39, 46, 48, 49, 50)}:
        return "Haydn Hob. XVI:6/31/32/39/46/48/49/50"
    if comp == "schubert":
        return "Schubert"
    return None


@lru_cache(maxsize=4)
def _log_reserved(data: Path) -> frozenset[str]:
    """Canonical works that ``more/``'s logs say are reserved for the team's evaluation. The
    logs name source files; any other copy of the same work is left out as well."""
    out: set[str] = set()
    for s in MORE_SETS:
        log = data / "more" / f"{s}_log.csv"
        if not log.is_file():
            continue
        with open(log, newline="") as f:
            for r in csv.DictReader(f):
                if "reserved" not in r.get("reason", ""):
                    continue
                src = r["path"]
                low = src.lower()
                if s == "jazz":
                    name = Path(src.split(":", 1)[-1]).stem
                    while (shorter := re.sub(r"\s*-\s+.*$|\s+v?\d+$|\s*\(.*\)$", "",
                                             name.strip(), flags=re.I)) != name:
                        name = shorter
                    out.add(jazz_key(name))
                elif m := re.search(r"bwv(\d+)", low):
                    out.add(f"bach:bwv{int(m.group(1))}")
                elif m := re.search(r"haydn-piano-sonatas:kern/sonata(\d+)", low):
                    out.add(f"haydn:hob16-{int(m.group(1))}")
                elif m := re.search(r"mozartwa/kv(\d+)", low):
                    out.add(f"mozart:k{int(m.group(1))}")
                elif m := re.search(r"beethovenlv/o(\d+)/", low):
                    no = re.search(r"_\d+no(\d+)_", low)
                    sub = no.group(1) if no else ("2" if "moonlight" in low else None)
                    out.add(f"beethoven:op{int(m.group(1))}" + (f"-{int(sub)}" if sub else ""))
    return frozenset(out)


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def jazz_key(title: str) -> str:
    """One name per jazz tune, whatever the spelling: "The Days of Wine and Roses",
    "Days Of Wine & Roses" and "Days of Wine and Roses, The" are one tune; so are the piano
    files, the chord charts and the horn solos over it."""
    t = title.lower().replace("&", " and ")
    t = re.sub(r"\([^)]*\)", " ", t)
    t = re.sub(r",\s*(the|a|an)\s*$", "", t.strip())
    t = re.sub(r"^\s*(the|a|an)\s+", "", t)
    return "jazz:" + _norm(t)


def canonical_work(genre: str, key: str, title: str = "", composer: str = "") -> str:
    """One name per work across both corpora (see the module docstring)."""
    low = key.strip().lower()
    low = ALIASES.get(low, low)
    ns, _, rest = low.partition(":")
    text = f"{low} {title.lower()}"
    if genre == "jazz":
        return jazz_key(title or rest or low)
    if genre == "ragtime":
        if ns == "craigsapp-joplin":
            return low
        name = re.sub(r"\([^)]*\)", "", title).lower() if title else (rest or low)
        name = re.sub(r"^\s*the\s+", "", name)
        return "rag:" + _norm(name)
    # Bach (J.S.): BWV numbers wherever they appear
    if ns in ("bach", "dcml-bachsuites", "mutopia") and ("bachjs" in low or ns != "mutopia"):
        m = re.search(r"bwv\s*\.?\s*(anh\.?\s*)?(\d+)([a-z]?)", text)
        if m:
            return f"bach:bwv{'anh' if m.group(1) else ''}{int(m.group(2))}{m.group(3)}"
    if ns in ("mozart", "craigsapp-mozart", "dcml-mozart") or low.startswith("mutopia:mozartwa/"):
        m = re.match(r"sonata(\d+)$", rest)
        if ns == "craigsapp-mozart" and m:
            return f"mozart:k{_MOZART_SONATA_K[int(m.group(1))]}"
        m = re.search(r"kv?\s*\.?\s*0*(\d+)([a-z]?)", rest.replace("mozartwa/", ""))
        if m:
            return f"mozart:k{int(m.group(1))}{m.group(2)}"
    if ns in ("scarlatti", "dcml-scarlatti") or low.startswith("mutopia:scarlattid/"):
        m = re.search(r"k\s*\.?\s*0*(\d+)$", rest.replace("scarlattid/", ""))
        if m:
            return f"scarlatti:k{int(m.group(1))}"
    if ns == "haydn" or low.startswith("mutopia:haydnfj/"):
        m = re.search(r"hob[-.\s]*(xvi|16)[-:\s]*0*(\d+)", rest.replace("haydnfj/", ""))
        if m:
            return f"haydn:hob16-{int(m.group(2))}"
    if ns in ("beethoven", "craigsapp-beethoven") or low.startswith("mutopia:beethovenlv/"):
        m = re.match(r"sonata(\d+)$", rest)
        if ns == "craigsapp-beethoven" and m:
            n = int(m.group(1))
            return f"beethoven:op{_BEETHOVEN_SONATA_OP[n]}" if n in _BEETHOVEN_SONATA_OP \
                else f"beethoven:sonata{n}"
        m = re.search(r"woo\s*\.?\s*(\d+)", text)
        if m:
            return f"beethoven:woo{int(m.group(1))}"
        m = re.search(r"op\.?\s*(\d+)([a-z]?)(?:\s*no\.?\s*(\d+)|-(\d+))?", text)
        if m is None:
            m = re.search(r"/o(\d+)()(?:-(\d+))?()", low)
        if m:
            sub = m.group(3) or m.group(4)
            return f"beethoven:op{int(m.group(1))}{m.group(2)}" + (f"-{int(sub)}" if sub else "")
    if ns == "handel" or low.startswith("mutopia:handelgf/"):
        m = re.search(r"hwv\s*\.?\s*(\d+)", text)
        if m:
            return f"handel:hwv{int(m.group(1))}"
    return low


@dataclass(frozen=True)
class Piece:
    """One MIDI file of either corpus."""

    path: Path             # absolute path of the MIDI file
    rel: str               # "midi/<manifest path>" or "more/<csv path>": unique, for display
    genre: str
    corpus: str            # "midi" or "more/<set>"
    kind: str              # "score", "performance" (human playing) or "pianist" (more/jazz)
    tier: str              # "keyboard" or "second" (chamber/orchestral/chorale on the piano)
    source_work: str       # the manifest's own work key
    work: str              # canonical work name: the split key across both corpora
    manifest_split: str    # "train" or "val" as the manifest says
    split: str             # "train", "dev" or "val" after canonicalisation
    license: str
    duration_s: float
    composer: str
    title: str


def tier_of(title: str) -> str:
    """``second`` when the title's trailing tag names non-keyboard forces, else ``keyboard``."""
    m = re.search(r"\(([^()]*)\)\s*$", title)
    tag = m.group(1).lower() if m else ""
    return "second" if any(tag.startswith(t) for t in SECOND_CLASS_TAGS) else "keyboard"


def _raw_rows(data: Path) -> list[dict]:
    rows: list[dict] = []
    midi = data / "midi"
    work: dict[str, str] = {}
    with open(midi / "provenance.csv", newline="") as f:
        for r in csv.DictReader(f):
            work[r["path"]] = r["work"]
    with open(midi / "manifest.csv", newline="") as f:
        for r in csv.DictReader(f):
            rows.append({"path": midi / r["path"], "rel": f"midi/{r['path']}",
                         "genre": r["genre"], "corpus": "midi", "kind": "score",
                         "source_work": work.get(r["path"], r["path"]), "split": r["split"],
                         "license": r["license"], "duration_s": float(r["duration_s"]),
                         "composer": r["composer"], "title": r["title"]})
    more = data / "more"
    for s in MORE_SETS:
        f_csv = more / f"{s}.csv"
        if not f_csv.is_file():
            continue
        with open(f_csv, newline="") as f:
            for r in csv.DictReader(f):
                kind = {"performances": "performance", "jazz": "pianist"}.get(s, "score")
                rows.append({"path": more / r["path"], "rel": f"more/{r['path']}",
                             "genre": r["genre"], "corpus": f"more/{s}", "kind": kind,
                             "source_work": r["work"], "split": r["split"],
                             "license": r["license"], "duration_s": float(r["duration_s"]),
                             "composer": r["composer"], "title": r["title"]})
    return rows


def dev_share(work: str) -> float:
    """Where a canonical work falls for the dev split (salted: the manifests' own val split
    already took the works whose plain hash is low)."""
    return hash_share(f"dev:{work}")


@lru_cache(maxsize=4)
def pieces(data: Path = DATA) -> tuple[Piece, ...]:
    """Every usable piece of both corpora, with canonical works and splits.

    A work is val when any of its copies is val in its manifest; train works whose canonical
    name hashes below ``DEV_FRACTION`` become dev. Reserved works are left out."""
    rows = _raw_rows(data)
    logged = _log_reserved(data)
    canon = [canonical_work(r["genre"], r["source_work"], r["title"], r["composer"])
             for r in rows]
    val_works = {c for c, r in zip(canon, rows, strict=True) if r["split"] == "val"}
    out: list[Piece] = []
    for c, r in zip(canon, rows, strict=True):
        if _reserved(c, logged):
            continue
        split = "val" if c in val_works else ("dev" if dev_share(c) < DEV_FRACTION else "train")
        out.append(Piece(path=r["path"], rel=r["rel"], genre=r["genre"], corpus=r["corpus"],
                         kind=r["kind"], tier=tier_of(r["title"]), source_work=r["source_work"],
                         work=c, manifest_split=r["split"], split=split, license=r["license"],
                         duration_s=r["duration_s"], composer=r["composer"], title=r["title"]))
    return tuple(out)


def reserved_found(data: Path = DATA) -> list[tuple[str, str]]:
    """(piece, why) for every manifest row that names a reserved work (and is dropped)."""
    out = []
    logged = _log_reserved(data)
    for r in _raw_rows(data):
        why = _reserved(canonical_work(r["genre"], r["source_work"], r["title"], r["composer"]),
                        logged)
        if why:
            out.append((r["rel"], why))
    return out


JAZZ_VAL_FRACTION = 0.15  # tunes known only from charts and horn solos: share put in val


@lru_cache(maxsize=4)
def _pianist_tunes(data: Path) -> dict[str, str]:
    return {p.work: p.split for p in pieces(data) if p.genre == "jazz"}


def jazz_split(title: str, data: Path = DATA) -> str | None:
    """Split of a jazz tune for every source that plays it (the jazz pianist's files, chord
    charts, horn solos): the pianist manifest's split where it has the tune, else by a hash of
    the tune; None for a tune reserved for the team's evaluation."""
    key = jazz_key(title)
    if _reserved(key, _log_reserved(data)):
        return None
    known = _pianist_tunes(data)
    if key in known:
        return known[key]
    if hash_share(key) < JAZZ_VAL_FRACTION:
        return "val"
    return "dev" if dev_share(key) < DEV_FRACTION else "train"


def works(split: str, genre: str | None = None, data: Path = DATA) -> set[str]:
    """Canonical works of a split (optionally of one genre)."""
    return {p.work for p in pieces(data) if p.split == split and genre in (None, p.genre)}


__all__ = ["Piece", "pieces", "works", "canonical_work", "tier_of", "reserved_found",
           "jazz_key", "jazz_split",
           "DEV_FRACTION", "SECOND_CLASS_TAGS"]
