"""Training data side: humanised performances, jazz split, rendering, leakage, none class."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from training import DATA, corpus, jazz
from training.dataset import (
    LABELS,
    build_windows,
    cache_write,
    manifest_rows,
    plan,
    works_of,
    works_subset,
)
from training.nomusic import KINDS, make_none
from training.perform import TEMPO_MAX, TEMPO_MIN, Note, excerpt, humanise, read_midi
from training.render import RATE, TIMBRES, render_clip, rms_db

needs_data = pytest.mark.skipif(not (DATA / "midi" / "manifest.csv").exists(),
                                reason="shared corpus not present")
needs_synth = pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="no fluidsynth")


def _score(n: int = 200) -> list[Note]:
    """A quantised, constant-velocity 'score': eighth notes at 120 bpm plus bass on beats."""
    notes = [Note(60 + (i * 5) % 24, i * 0.25, i * 0.25 + 0.2, 72) for i in range(n)]
    notes += [Note(36 + i % 12, i * 0.5, i * 0.5 + 0.45, 72) for i in range(n // 2)]
    return sorted(notes, key=lambda x: (x.start, x.pitch))


@pytest.mark.parametrize("seed", range(8))
def test_humanise_keeps_notes_and_tempo_bounds(seed: int) -> None:
    score = _score()
    perf = humanise(score, seed)
    assert len(perf.notes) == len(score)
    assert sorted(n.pitch for n in perf.notes) == sorted(n.pitch for n in score)
    assert TEMPO_MIN <= perf.tempo_min <= perf.tempo_max <= TEMPO_MAX
    # measured: score span / performed span is the mean tempo factor (jitter is tiny)
    span_score = max(n.start for n in score) - min(n.start for n in score)
    span_perf = max(n.start for n in perf.notes) - min(n.start for n in perf.notes)
    assert TEMPO_MIN - 0.02 <= span_score / span_perf <= TEMPO_MAX + 0.02
    # constant source velocity must not survive
    assert len({n.velocity for n in perf.notes}) > 10
    assert all(n.end > n.start for n in perf.notes)


def test_humanise_varies_with_seed_and_repeats_with_same_seed() -> None:
    a, b, c = humanise(_score(), 1), humanise(_score(), 1), humanise(_score(), 2)
    assert [(n.start, n.velocity) for n in a.notes] == [(n.start, n.velocity) for n in b.notes]
    assert [n.start for n in a.notes] != [n.start for n in c.notes]


@needs_data
def test_humanise_real_piece_keeps_note_count() -> None:
    row = next(r for r in manifest_rows() if r["genre"] == "ragtime")
    notes = excerpt(read_midi(DATA / "midi" / row["path"]), 5.0, 20.0)
    assert len(notes) > 20
    assert len(humanise(notes, 3).notes) == len(notes)


@needs_data
def test_jazz_split_has_no_tune_on_two_sides() -> None:
    tr, va, dv = jazz.jazz_items("train"), jazz.jazz_items("val"), jazz.jazz_items("dev")
    t_titles = {jazz.norm_title(i["title"]) for i in tr}
    v_titles = {jazz.norm_title(i["title"]) for i in va}
    d_titles = {jazz.norm_title(i["title"]) for i in dv}
    assert t_titles and v_titles and d_titles
    assert not t_titles & v_titles and not t_titles & d_titles and not d_titles & v_titles
    # solos over a tune share its side; charts used for comping too
    for side, items in (("train", tr), ("val", va), ("dev", dv)):
        for it in items:
            assert jazz.title_split(it["title"]) == side
            if it.get("chart"):
                title = jazz.parse_chart(Path(it["chart"])).title
                assert jazz.title_split(title) == side
    frac = len(v_titles) / (len(t_titles) + len(v_titles))
    assert 0.08 < frac < 0.25


@needs_synth
@needs_data
@pytest.mark.skipif(shutil.which("mma") is None, reason="no mma")
def test_jazz_performance_repeats_for_the_same_seed() -> None:
    """mma's grooves are humanised with an unseeded random unless told; a cold rebuild must
    play the same comping as the cached one."""
    item = next(i for i in jazz.jazz_items("train") if i["kind"] == "solo")
    a, info_a = jazz.jazz_performance(item, 11, length_s=20.0)
    b, info_b = jazz.jazz_performance(item, 11, length_s=20.0)
    assert info_a == info_b
    assert a.notes == b.notes
    c, _ = jazz.jazz_performance(item, 12, length_s=20.0)
    assert c.notes != a.notes


def test_rendered_audio_is_16k_mono_float32_not_silent() -> None:
    perf = humanise(_score(24), 0)
    for i, tb in enumerate((TIMBRES[0], TIMBRES[3])):
        x = render_clip(perf, tb, seed=i)
        assert x.dtype == np.float32 and x.ndim == 1
        assert np.isfinite(x).all()
        assert np.abs(x).max() <= 1.0
        # ~6 s of notes at 16 kHz (+ tails), never the synth's own rate
        assert 0.8 * perf.duration * RATE < len(x) < (perf.duration + 4.0) * RATE
        assert rms_db(x) > -60.0


@needs_data
def test_plan_keeps_val_and_dev_works_out_of_train() -> None:
    held = works_of("val") | works_of("dev")
    held_pieces = {p.rel for p in corpus.pieces() if p.split in ("val", "dev")}
    clips = plan("train", minutes_per_class=20, clip_s=30, seed=0)
    assert {c["genre"] for c in clips} == set(LABELS)
    assert {c["piece"] for c in clips} & {p.rel for p in corpus.pieces()}, "pieces not named by rel"
    for c in clips:
        assert c["piece"] not in held_pieces and c["work"] not in held
        if c["genre"] == "jazz" and "item" in c:
            assert jazz.title_split(c["item"]["title"]) == "train"
    dev_clips = plan("dev", minutes_per_class=5, clip_s=30, seed=0)
    assert {c["genre"] for c in dev_clips} == set(LABELS)
    assert not {c["work"] for c in dev_clips} & works_of("train")


def test_works_subset_keeps_whole_works_nested_and_all_no_music() -> None:
    """Learning-curve subsets: a work is in or out with all its windows, a smaller share keeps
    a subset of a larger one's works, and no-music windows are never dropped."""
    meta = [{"genre": "classical", "work": f"w{i}"} for i in range(400) for _ in range(3)]
    meta += [{"genre": "none", "work": f"none:room:{i}"} for i in range(50)]
    kept = {}
    for f in (0.25, 0.5, 1.0):
        mask = works_subset(meta, f)
        assert mask[-50:].all()
        music = mask[:-50].reshape(400, 3)
        assert (music == music[:, :1]).all()              # whole works
        kept[f] = set(np.flatnonzero(music[:, 0]))
    assert kept[0.25] <= kept[0.5] <= kept[1.0] and len(kept[1.0]) == 400
    # a hash share: binomial(400, f), so within 5 sd of f * 400
    assert abs(len(kept[0.5]) - 200) < 50 and abs(len(kept[0.25]) - 100) < 44


@needs_data
@needs_synth
def test_no_val_piece_in_train_windows() -> None:
    x, y, meta = build_windows("train", quick=True, seed=0)
    _, _, vmeta = build_windows("val", quick=True, seed=0)
    assert x.dtype == np.float32 and y.dtype == np.int64 and len(x) == len(y) == len(meta)
    assert set(np.unique(y)) == set(range(len(LABELS)))
    val_works = works_of("val")
    train_works = {m["work"] for m in meta}
    assert not train_works & val_works
    assert not train_works & {m["work"] for m in vmeta}
    assert all(m["split"] == "train" for m in meta)


@pytest.mark.parametrize("kind", KINDS)
def test_nomusic_generates_each_kind(kind: str) -> None:
    if kind == "speech" and shutil.which("espeak-ng") is None:
        pytest.skip("no espeak-ng")
    x = make_none(kind, 4.0, seed=5)
    assert x.dtype == np.float32 and x.ndim == 1 and len(x) == 4 * RATE
    assert np.isfinite(x).all() and np.abs(x).max() <= 1.0
    if kind == "silence":
        assert rms_db(x) < -50
    else:
        assert rms_db(x) > -70
    assert not np.array_equal(x, make_none(kind, 4.0, seed=6))


def test_a_cache_write_that_dies_midway_leaves_no_file(tmp_path: Path) -> None:
    """A build killed while saving (the machine restarted) must not leave a truncated cache
    file that the next build would load as data; a whole write lands under the real name."""
    path = tmp_path / "audio" / "clip.npy"

    def dies(f) -> None:
        f.write(b"\x93NUMPY half a header")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache_write(path, dies)
    assert not path.exists()
    assert list(path.parent.iterdir()) == []  # no temporary file left behind either

    x = np.arange(5, dtype=np.float16)
    cache_write(path, lambda f: np.save(f, x))
    assert np.array_equal(np.load(path), x)
    assert [p.name for p in path.parent.iterdir()] == ["clip.npy"]
