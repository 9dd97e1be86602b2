"""Both corpora as one table: canonical works, their splits, reserved works, the sampler.

The manifests name works in their own ways and do not always agree on a work's split; these
tests pin the rule that keeps every copy of a val work out of training whatever it is called.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from training import DATA, corpus, jazz
from training.corpus import Piece, canonical_work, jazz_key
from training.dataset import plan, sample_works, works_of

needs_data = pytest.mark.skipif(not (DATA / "more" / "baroque.csv").exists(),
                                reason="shared corpus (with more/) not present")


@pytest.mark.parametrize("a, b", [
    (("classical", "craigsapp-mozart:sonata01", "Sonata 1 mvt 1"),
     ("classical", "mozart:k279", "Piano Sonata K. 279, movement 1")),
    (("classical", "mutopia:MozartWA/KV545", "Sonata in C"), ("classical", "mozart:k545", "")),
    (("baroque", "dcml-bachsuites:BWV808", "English Suite 3"), ("baroque", "bach:bwv808", "")),
    (("baroque", "dcml-scarlatti:K087", "Sonata K.87"),
     ("baroque", "scarlatti:sonata-in-b-minor-l-33", "Sonata in B minor, L. 33")),
    (("classical", "mutopia:HaydnFJ/HOB-XVI-27", ""), ("classical", "haydn:hob16-27", "")),
    (("classical", "mutopia:BeethovenLv/O129", "Rondo a capriccio"),
     ("classical", "beethoven:op129", "")),
    (("classical", "craigsapp-beethoven:sonata19", ""),
     ("classical", "beethoven:quartetxx", "Sonata Op. 49 No. 1")),
    (("ragtime", "castle house rag", "Castle House Rag"),
     ("ragtime", "europe:castle-house-rag", "Castle House Rag")),
    (("jazz", "tune:days-of-wine", "The Days of Wine & Roses"),
     ("jazz", "x", "Days Of Wine And Roses, The")),
])
def test_one_work_has_one_name_across_the_corpora(a: tuple, b: tuple) -> None:
    assert canonical_work(*a) == canonical_work(*b)


@pytest.mark.parametrize("a, b", [
    (("baroque", "scarlatti:K009", ""), ("baroque", "scarlatti:K096", "")),
    (("classical", "mozart:k280", ""), ("classical", "mozart:k28", "")),
    (("baroque", "bach:BWV924", ""), ("baroque", "bach:BWV924a", "")),
    (("classical", "beethoven:op10-2", ""), ("classical", "beethoven:op10-1", "")),
])
def test_different_works_keep_different_names(a: tuple, b: tuple) -> None:
    assert canonical_work(*a) != canonical_work(*b)


@needs_data
def test_no_work_in_two_splits_and_val_copies_win() -> None:
    """Over both corpora: a canonical work sits in one split only, and a work any manifest
    puts in val is val everywhere (so a score in val never trains as a performance)."""
    ps = corpus.pieces()
    splits: dict[str, set[str]] = defaultdict(set)
    for p in ps:
        splits[p.work].add(p.split)
    assert all(len(s) == 1 for s in splits.values())
    val_somewhere = {p.work for p in ps if p.manifest_split == "val"}
    assert all(p.split == "val" for p in ps if p.work in val_somewhere)
    # the rule matters: some work really is val in one manifest and train in another
    moved = {p.work for p in ps if p.manifest_split == "train" and p.split == "val"}
    assert "mozart:k279" in moved
    # dev is carved from train works only, whole works, in every style
    for g in ("baroque", "classical", "ragtime", "jazz"):
        train = {p.work for p in ps if p.genre == g and p.split == "train"}
        dev = {p.work for p in ps if p.genre == g and p.split == "dev"}
        assert 0 < len(dev) < 0.3 * (len(train) + len(dev))
    assert all(p.manifest_split == "train" for p in ps if p.split == "dev")


@needs_data
def test_reserved_works_never_reach_any_split() -> None:
    works = {p.work for p in corpus.pieces()}
    for w in ("bach:bwv846", "bach:bwv971", "mozart:k331", "beethoven:op13", "beethoven:op49-1",
              "haydn:hob16-52"):
        assert w not in works
    dropped = {rel for rel, _ in corpus.reserved_found()}
    assert dropped and not dropped & {p.rel for p in corpus.pieces()}
    # a jazz tune the logs reserve in one version is not played in another
    assert corpus.jazz_split("It Could Happen to You") is None
    assert not [i for s in ("train", "dev", "val") for i in jazz.jazz_items(s)
                if jazz_key(i["title"]).startswith("jazz:itcouldhappen")]


@needs_data
def test_jazz_tunes_keep_one_side_for_every_source() -> None:
    """The pianist's files, the chord charts and the horn solos over a tune share a split."""
    pianist = {p.work: p.split for p in corpus.pieces() if p.genre == "jazz"}
    sides: dict[str, set[str]] = defaultdict(set)
    for split in ("train", "dev", "val"):
        for it in jazz.jazz_items(split):
            sides[jazz_key(it["title"])].add(split)
            if it.get("chart"):
                sides[jazz_key(jazz.parse_chart(Path(it["chart"])).title)].add(split)
    assert all(len(s) == 1 for s in sides.values())
    shared = [k for k in pianist if k in sides]
    assert shared, "no chart or solo matches a pianist tune: the title key is broken"
    assert all(sides[k] == {pianist[k]} for k in shared)


def _piece(work: str, tier: str = "keyboard", kind: str = "score",
           duration: float = 120.0) -> Piece:
    return Piece(path=Path(work), rel=work, genre="baroque", corpus="midi", kind=kind,
                 tier=tier, source_work=work, work=work, manifest_split="train",
                 split="train", license="PD", duration_s=duration, composer="", title="")


def test_sampler_bounds_every_work_and_weighs_second_class_below_keyboard() -> None:
    works = {f"k{i}": [_piece(f"k{i}")] for i in range(30)}
    works |= {f"s{i}": [_piece(f"s{i}", tier="second")] for i in range(30)}
    rng = np.random.default_rng(0)
    picks = sample_works(works, target_s=1e9, clip_s=10.0, rng=rng, per_work=4,
                         second_weight=0.5)
    n = Counter(p.work for p, _, _ in picks)
    assert max(n[w] for w in works if w.startswith("k")) == 4
    assert all(n[w] <= math.ceil(4 * 0.5) for w in works if w.startswith("s"))
    assert sum(n[w] for w in n if w.startswith("k")) > sum(n[w] for w in n if w.startswith("s"))
    # a budget smaller than one round spreads over distinct works, none twice
    picks = sample_works(works, target_s=200.0, clip_s=10.0, rng=np.random.default_rng(1),
                         per_work=4, second_weight=0.5)
    assert 20 <= len(picks) <= 21 and len({p.work for p, _, _ in picks}) == len(picks)
    for p, start, length in picks:
        assert 0.0 <= start <= p.duration_s - length and length == 10.0


@needs_data
def test_training_plan_respects_the_per_work_bound_and_the_splits() -> None:
    clips = plan("train", minutes_per_class=60, clip_s=10, seed=0, per_work=3)
    per = Counter(c["work"] for c in clips if c["genre"] != "none")
    assert max(per.values()) <= 3
    held = works_of("val") | works_of("dev")
    assert not {c["work"] for c in clips} & held
    assert {c["source"] for c in clips if c["genre"] == "jazz"} >= {"pianist", "jazz-solo"}
    pianist = sum(c["length"] for c in clips if c["source"] == "pianist")
    jazz_s = sum(c["length"] for c in clips if c["genre"] == "jazz")
    assert 0.6 < pianist / jazz_s < 0.8
