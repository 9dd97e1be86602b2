"""The model report's writer (``training.evaluate``): ``OUT/MODEL.md`` in words and tables,
the known weaknesses, the targets-vs-measured summary and the PNG plots, all from the results
dict that ``training.evaluate`` measured. Nothing here measures anything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.metrics import ECE_BINS, LEAD_S, ROBUST_HOP_S, RT60S, SNRS_DB, TARGETS, met


def _tuning_key_speed(rob: dict) -> str:
    """The weakness line for another piano's tuning, another key and another speed."""
    def lowest(group: str, unit: str) -> str:
        k, r = min(rob[group].items(), key=lambda kr: kr[1]["accuracy"])
        return f"lowest {r['accuracy']:.2f} (at {k}{unit})"

    return (f"Tuning, key and speed (the same {rob['clips']} clips, dry): 4-style accuracy "
            f"{rob['clean']['accuracy']:.2f} as rendered; detuned by up to "
            f"{max(abs(float(k)) for k in rob['detune_cents']):g} cents, "
            f"{lowest('detune_cents', ' cents')}; transposed by up to "
            f"{max(abs(int(k)) for k in rob['transpose_semitones'])} semitones, "
            f"{lowest('transpose_semitones', ' semitones')}; played "
            f"{min(map(float, rob['speed'])):g}-{max(map(float, rob['speed'])):g}x as fast, "
            f"{lowest('speed', 'x')}.")


def smoothing_words(sm: dict) -> str:
    """The listener's smoothing in words, for the report."""
    rule = (f"evidence switch at {sm['switch_evidence']:g} nats, at most "
            f"{sm['evidence_cap']:g} per window" if sm["switch_evidence"] > 0
            else f"switch margin {sm['switch_margin']:g}")
    return f"tau {sm['tau_s']:g} s, {rule}"


def plots(res: dict, labels: list[str], outdir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir.mkdir(parents=True, exist_ok=True)
    made = []
    cm = np.array(res["val"]["confusion"], dtype=float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{int(cm[i, j])}\n{norm[i, j]:.0%}", ha="center", va="center",
                    fontsize=8, color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=30)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted (INT8, argmax)")
    ax.set_ylabel("true")
    ax.set_title(f"{res['engine']}: val windows (n={res['val']['n_windows']})")
    fig.tight_layout()
    fig.savefig(outdir / "confusion.png", dpi=110)
    plt.close(fig)
    made.append("confusion.png")

    rob = res["robustness"]
    for key, xlab, fname, order in (("snr", "SNR (dB)", "robustness_snr.png", SNRS_DB),
                                    ("reverb", "RT60 (s)", "robustness_reverb.png", RT60S)):
        xs = list(order)
        acc = [rob[key][f"{v:g}"]["accuracy"] for v in xs]
        non = [rob[key][f"{v:g}"]["called_none"] for v in xs]
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        ax.plot(xs, acc, "o-", label="4-style accuracy")
        ax.plot(xs, non, "s--", label="music called none")
        ax.axhline(rob["clean"]["accuracy"], color="grey", lw=0.8, ls=":",
                   label="dry, no noise")
        ax.axhline(TARGETS["window_accuracy_4style"][1], color="red", lw=0.8, ls="-.",
                   label="target 0.90")
        if key == "snr":
            ax.invert_xaxis()
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(xlab)
        ax.set_ylabel("share of windows")
        what = "noise" if key == "snr" else "reverb"
        ax.set_title(f"{res['engine']}: {rob['clips']} val clips, {what}")
        ax.legend(fontsize=8, loc="lower left")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(outdir / fname, dpi=110)
        plt.close(fig)
        made.append(fname)

    bins = res["val"]["ece_bins"]
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    centers = [(b_["lo"] + b_["hi"]) / 2 for b_ in bins]
    accs = [b_["accuracy"] if b_["n"] else 0 for b_ in bins]
    ax.bar(centers, accs, width=1 / len(bins), edgecolor="k", alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], "r--", label="perfect calibration")
    ax.set_xlabel("top-1 confidence (INT8)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"reliability, ECE = {res['val']['ece']:.3f}")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(outdir / "reliability.png", dpi=110)
    plt.close(fig)
    made.append("reliability.png")
    return made


def _f(v, fmt="{:.3f}") -> str:
    if v is None or (isinstance(v, float) and (np.isnan(v) or np.isinf(v))):
        return "—" if v is None or np.isnan(v) else "never"
    return fmt.format(v)


def summary(res: dict) -> dict:
    v, r, c = res["val"], res["responsiveness"], res["cost"]
    vals = {
        "window_accuracy_4style": v["window_accuracy_4style"],
        "clip_accuracy_4style": v["clip_accuracy_4style"],
        "none_rejected": v["none_rejected"],
        "music_called_none": v["music_called_none"],
        "change_delay_median_s": r["change_delay_median_s"],
        "change_delay_p95_s": r["change_delay_p95_s"],
        "first_style_median_s": r["first_style_median_s"],
        "spurious_per_10min": r["spurious_per_10min"],
        "cost_ms_per_window": c.get("cost_ms_per_window"),
        "int8_fp32_agreement": v.get("int8_fp32_agreement"),
    }
    return {k: {"target": f"{TARGETS[k][0]} {TARGETS[k][1]}", "measured": val,
                "met": met(k, val)} for k, val in vals.items()}


def write_markdown(res: dict, out: Path) -> None:
    m = res["manifest"]
    labels = res["labels"]
    v, rob, r, c = res["val"], res["robustness"], res["responsiveness"], res["cost"]
    s = res["summary"]
    L = []
    a = L.append
    a(f"# Genre engine `{res['engine']}`: model report")
    a("")
    a(f"Generated by `python -m training.evaluate {res['engine_dir']}"
      f"{' --quick' if res['quick'] else ''}` on {res['date']} ({res['seconds']:.0f} s). "
      "Every number below is measured on the **validation split** (val pieces/tunes/seeds "
      "only; "
      f"{res['leak_works']} works shared with the training plan). Nothing was tuned on these "
      "numbers: the engine, its window/hop and the listener's smoothing are taken as they are "
      "in the bundle. Windows are made as the listener makes them "
      f"({m['window_s']:g} s, the bundle's front end) and run through ONNX Runtime INT8 on one "
      "thread.")
    if res["quick"]:
        a("")
        a("> **--quick run**: a handful of clips and one short medley. Not a measurement.")
    if res.get("note"):
        a("")
        a(f"> {res['note']}")
    a("")
    a("## Targets (issue 3) vs measured")
    a("")
    a("| target | wanted | measured | met? |")
    a("|---|---|---|---|")
    names = {
        "window_accuracy_4style": f"4-style accuracy, {m['window_s']:g} s windows",
        "clip_accuracy_4style": "4-style accuracy, 30 s clips (majority of windows)",
        "none_rejected": "no-music windows rejected (called none)",
        "music_called_none": "music windows called none",
        "change_delay_median_s": "style change → new style named, median (s)",
        "change_delay_p95_s": "style change → new style named, p95 (s)",
        "first_style_median_s": "music start → first style named, median (s)",
        "spurious_per_10min": "spurious changes per 10 min of steady playing",
        "cost_ms_per_window": "front end + INT8 engine per window, one core (ms)",
        "int8_fp32_agreement": "INT8 vs FP32 top-1 agreement (val windows)",
    }
    for k, row in s.items():
        meas = _f(row["measured"], "{:.2f}" if k.endswith("_s") or k.startswith(("cost", "spur"))
                  else "{:.3f}")
        if k == "first_style_median_s":
            meas += f" (max {_f(r['first_style_max_s'], '{:.2f}')})"
        if k == "change_delay_p95_s":
            meas += f" (max {_f(r['change_delay_max_s'], '{:.2f}')}, missed {r['missed_changes']})"
        if k == "spurious_per_10min":
            meas += f" ({r['spurious_changes']} in {r['steady_minutes']} min)"
        ok = {True: "yes", False: "**no**", None: "—"}[row["met"]]
        a(f"| {names[k]} | {row['target']} | {meas} | {ok} |")
    a("")
    a("## Data per class")
    a("")
    td = m.get("training_data", {})
    a("From the bundle manifest's training summary (minutes of distinct rendered audio, "
      "distinct pieces — jazz: tunes, none: generated clips — and windows).")
    a("")
    a("| class | train min | train pieces | train windows | val min | val pieces | val windows |")
    a("|---|---|---|---|---|---|---|")
    for lab in labels:
        t_, w_ = td.get("train", {}).get(lab, {}), td.get("val", {}).get(lab, {})
        a(f"| {lab} | {t_.get('minutes', '—')} | {t_.get('pieces', '—')} | "
          f"{t_.get('windows', '—')} | {w_.get('minutes', '—')} | {w_.get('pieces', '—')} | "
          f"{w_.get('windows', '—')} |")
    a("")
    a(f"Timbres: {', '.join(td.get('timbres', []))}. Rendering: {td.get('rendering', '—')}. "
      f"None kinds: {td.get('none_kinds', '—')}. Split: {td.get('split', '—')}.")
    a("")
    tr = m.get("training") or {}
    keep = ("epochs", "best_epoch", "kept", "params", "widths", "lr_schedule",
            "stopped_by_budget", "seconds_data", "seconds_train", "host")
    a(f"Built by `{m.get('built_by', '?')}`; training: "
      + ", ".join(f"{k} {tr[k]}" for k in keep if k in tr) + ".")
    bm = m.get("metrics") or {}
    if "val_accuracy_int8" in bm:
        a("")
        a(f"The build's own check (val windows every {td.get('val_hop_s', '?')} s, all five "
          f"classes): INT8 {bm['val_accuracy_int8']:.3f}, FP32 "
          f"{bm.get('val_accuracy_fp32', float('nan')):.3f}, agreement "
          f"{bm.get('int8_fp32_top1_agreement', float('nan')):.3f}.")
    a("")
    a("## Validation windows")
    a("")
    a(f"{v['n_windows']} windows ({m['window_s']:g} s, hop {m['hop_s']:g} s) from "
      f"{v['n_clips']} val clips; music windows more than 20 dB below their clip's median "
      "level (gaps, release tails) are left out, as in training. Accuracy over all five "
      f"classes {v['window_accuracy_all']:.3f} (FP32 {_f(v.get('window_accuracy_all_fp32'))}); "
      f"4-style (music windows, argmax over all five labels) {v['window_accuracy_4style']:.3f}; "
      "argmax over the four styles only (as if none could never win) "
      f"{v['window_accuracy_4style_genre_argmax']:.3f}.")
    a("")
    a("| class | precision | recall | F1 | windows |")
    a("|---|---|---|---|---|")
    for lab, row in v["per_class"].items():
        a(f"| {lab} | {_f(row['precision'])} | {_f(row['recall'])} | {_f(row['f1'])} | "
          f"{row['support']} |")
    a("")
    a("![confusion matrix](model/confusion.png)")
    a("")
    joined = (f" Val excerpts are shorter than 30 s, so up to {v['clips_joined']} excerpts of "
              "the same class (same piece/tune first) are joined into one clip."
              if v["clips_joined"] > 1 else "")
    a(f"**30 s clips** (majority of windows; median clip {v['clip_seconds_median']:.0f} s): "
      f"4-style {v['clip_accuracy_4style']:.3f} over {v['n_music_clips']} music clips; all "
      f"five classes {v['clip_accuracy_all']:.3f}.{joined}")
    a("")
    a(f"**No music**: {v['none_rejected']:.3f} of none windows called none, "
      f"{v['music_called_none']:.3f} of music windows called none (engine argmax alone). With "
      "the listener's silence gate (windows below the level floor are none whatever the "
      f"engine says): {v['none_rejected_with_gate']:.3f} and "
      f"{v['music_called_none_with_gate']:.3f}.")
    a("")
    a("Accuracy by piano timbre / none kind and by source (all five classes):")
    a("")
    a("| group | value | accuracy | windows |")
    a("|---|---|---|---|")
    for grp, d in v["by"].items():
        for k_, row in d.items():
            a(f"| {grp} | {k_} | {row['accuracy']:.3f} | {row['windows']} |")
    a("")
    a("## Robustness")
    a("")
    a(f"{rob['clips']} val clips ({rob['clips_per_genre']} per style, distinct pieces where "
      "the plan has them) rendered **dry** (same performance, timbre and source rate as the "
      "val clip, no stage-mic treatment), then one condition at a time. Windows every "
      f"{ROBUST_HOP_S:g} s. Dry, no noise: accuracy {rob['clean']['accuracy']:.3f}. "
      f"Noise: {rob['noise']}. Reverb: {rob['reverb_how']}.")
    a("")
    a("| SNR (dB) | 4-style accuracy | music called none | windows |")
    a("|---|---|---|---|")
    for k_, row in rob["snr"].items():
        a(f"| {k_} | {row['accuracy']:.3f} | {row['called_none']:.3f} | {row['windows']} |")
    a("")
    a("| RT60 (s) | 4-style accuracy | music called none | windows |")
    a("|---|---|---|---|")
    for k_, row in rob["reverb"].items():
        a(f"| {k_} | {row['accuracy']:.3f} | {row['called_none']:.3f} | {row['windows']} |")
    a("")
    a("![accuracy vs SNR](model/robustness_snr.png) "
      "![accuracy vs reverb](model/robustness_reverb.png)")
    a("")
    if "speed" in rob:
        a("Another piano and pianist, each change on its own, dry and clean: the whole "
          "recording detuned (replayed faster or slower by 2^(cents/1200), as from a piano "
          "tuned away from A440; the speed changes by under 3 %), the performance transposed "
          "(notes kept on the 88 keys) or played faster or slower (on top of the humanised "
          "tempo, which already varies by up to ±15 %), then rendered as the clip was. "
          "Training already covers some of this: performances at tempos within ±15 %, and "
          "feature-space shifts of up to 1.5 mel bands and time stretches of up to ±15 % "
          "(training.train).")
        a("")
        a("| change | value | 4-style accuracy | music called none | windows |")
        a("|---|---|---|---|---|")
        a(f"| none (dry, clean) | | {rob['clean']['accuracy']:.3f} | "
          f"{rob['clean']['called_none']:.3f} | {rob['clean']['windows']} |")
        for grp, name, unit in (("detune_cents", "detune", " cents"),
                                ("transpose_semitones", "transpose", " semitones"),
                                ("speed", "speed", "x")):
            for k_, row in rob[grp].items():
                a(f"| {name} | {k_}{unit} | {row['accuracy']:.3f} | {row['called_none']:.3f} "
                  f"| {row['windows']} |")
        a("")
    a("## Calibration")
    a("")
    a(f"ECE ({ECE_BINS} equal-width bins, top-1 INT8 probability vs correctness, all five "
      f"classes, val windows): **{v['ece']:.3f}**; mean confidence {v['mean_confidence']:.3f} "
      f"against accuracy {v['window_accuracy_all']:.3f}.")
    a("")
    a("![reliability diagram](model/reliability.png)")
    a("")
    a("## Responsiveness (the box's own listener)")
    a("")
    a(f"{r['medleys']} medleys ({r['audio_minutes']} min) built from val pieces only: each "
      "a random order of the four styles plus one more (no style twice in a row), segments of "
      f"{res['seg_s'][0]:g}–{res['seg_s'][1]:g} s, one piano timbre per medley, "
      f"{LEAD_S:g} s of room noise first; the dry segments are joined back to back and the "
      "whole medley goes through one stage-mic treatment (one room, mic, noise bed, gain). "
      "Fed hop by hop to `Listener` (as `appliance simulate` feeds it) with the bundle's "
      f"smoothing ({r['smoothing']['from']}: "
      + ", ".join(f"{k} {v_}" for k, v_ in r["smoothing"].items() if k != "from")
      + "). A change's delay is the time from the change to the "
      "first estimate (end of its window) whose smoothed genre is the new style; a change "
      "not named before the next one counts as the whole segment. Spurious: any change of "
      "the smoothed genre (none included) inside a segment after its style was first named.")
    a("")
    a(f"- {r['changes']} changes: median {_f(r['change_delay_median_s'], '{:.2f}')} s, p95 "
      f"{_f(r['change_delay_p95_s'], '{:.2f}')} s, max {_f(r['change_delay_max_s'], '{:.2f}')} s, "
      f"missed {r['missed_changes']}. Counting a change only once the new style then stays "
      f"named for {r['held_s']:g} s: median {_f(r['held_change_delay_median_s'], '{:.2f}')} s, "
      f"p95 {_f(r['held_change_delay_p95_s'], '{:.2f}')} s.")
    a(f"- Music start → first style named: median {_f(r['first_style_median_s'], '{:.2f}')} s, "
      f"max {_f(r['first_style_max_s'], '{:.2f}')} s; → the right style: median "
      f"{_f(r['first_correct_style_median_s'], '{:.2f}')} s, max "
      f"{_f(r['first_correct_style_max_s'], '{:.2f}')} s.")
    a(f"- Spurious changes: {r['spurious_changes']} in {r['steady_minutes']} min of steady "
      f"playing = {_f(r['spurious_per_10min'], '{:.2f}')} per 10 min.")
    a("")
    a("| medley | timbre | styles | change delays (s) | first style (s) | spurious |")
    a("|---|---|---|---|---|---|")
    for i, md in enumerate(r["per_medley"]):
        a(f"| {i + 1} | {md['timbre']} | {' → '.join(md['styles'])} | "
          f"{', '.join('missed' if d is None else f'{d:.1f}' for d in md['delays'])} | "
          f"{_f(md['first_any'], '{:.1f}')} | {md['spurious']} |")
    a("")
    a("## Cost")
    a("")
    a(f"`training.bench_engine` on this machine, one thread: front end "
      f"{_f(c.get('frontend_ms'), '{:.2f}')} ms + INT8 engine {_f(c.get('int8_ms'), '{:.2f}')} ms "
      f"= **{_f(c.get('cost_ms_per_window'), '{:.2f}')} ms per window** (FP32 engine "
      f"{_f(c.get('fp32_ms'), '{:.2f}')} ms); {c.get('params')} parameters, INT8 model "
      f"{(c.get('int8_bytes') or 0) / 1024:.0f} KiB. The streaming listener (incremental front "
      f"end) averaged {_f(r['listener_ms_per_window_mean'], '{:.2f}')} ms per window over the "
      "medleys."
      + (f" Peer (Cnn14-sized, random weights, FP32): {c['peer_fp32_ms']:.1f} ms per window, "
         f"{c['peer_params'] / 1e6:.0f} M parameters." if "peer_fp32_ms" in c else "")
      + f" {res.get('cost_note', '')}")
    a("")
    a("## Licenses")
    a("")
    for split in ("train", "val"):
        lic = m.get("licenses", {}).get(split, {})
        a(f"**{split}**:")
        a("")
        for k_, v_ in lic.items():
            a(f"- {k_}: {v_}" + (" pieces" if isinstance(v_, int) else ""))
        a("")
    a("## Known weaknesses")
    a("")
    for w in res["weaknesses"]:
        a(f"- {w}")
    a("")
    out.write_text("\n".join(L) + "\n")


def weaknesses(res: dict) -> list[str]:
    v, rob = res["val"], res["robustness"]
    labels = res["labels"]
    cm = np.array(v["confusion"])
    off = cm.copy()
    np.fill_diagonal(off, 0)
    i, j = np.unravel_index(off.argmax(), off.shape)
    worst = min(v["per_class"], key=lambda k: v["per_class"][k]["recall"])
    r = res["responsiveness"]
    from training.render import TIMBRES

    tim = {k: row["accuracy"] for k, row in v["by"]["timbre (none: kind)"].items()
           if k in {t.name for t in TIMBRES}} or {"?": float("nan")}
    tmin = min(tim.items(), key=lambda kv: kv[1])
    tmax = max(tim.items(), key=lambda kv: kv[1])
    dry = rob["clean"]["accuracy"]
    snr_drop = next((k for k, row in rob["snr"].items() if row["accuracy"] < dry - 0.05), None)
    rt_drop = next((k for k, row in rob["reverb"].items() if row["accuracy"] < dry - 0.05), None)
    from collections import Counter

    from training.dataset import manifest_rows

    rag = "; ".join(
        f"{sp} " + ", ".join(f"{n} {c.split(',')[0]}" for c, n in Counter(
            r["composer"] for r in manifest_rows()
            if r["genre"] == "ragtime" and r["split"] == sp).most_common())
        for sp in ("train", "val")) + " pieces"
    out = [
        "**Rendered-only data.** Every training and validation window is MIDI rendered "
        "through five General-MIDI soundfont pianos (FluidR3, TimGM6mb, MuseScore) with "
        "synthetic rooms and noise. Validation shares that synthesis chain with training, so "
        "these numbers are an upper bound for a real instrument: no real piano, real room, "
        "real microphone or real pianist was ever heard. Sampled soundfonts lack sympathetic "
        "resonance, real pedal noise, hammer/action noise and the tuning of an actual piano.",
        "**Jazz is a construction.** Jazz 'piano' is right-hand lines transcribed from horn "
        "solos (Weimar Jazz Database; folded into the piano range) or generated lines, over "
        "left-hand comping generated by mma from chord charts. A real jazz pianist's voicings, "
        "block chords, stride or solo-ballad playing are not in the data; the model may be "
        "keying on mma's comping patterns.",
        f"**Ragtime is nearly all Joplin**: {rag}. Novelty rags, stride and modern ragtime "
        "players are missing, and 'ragtime' vs 'jazz' for stride-like playing is undefined "
        "by this data.",
        "**Classical vs baroque** are scored pieces humanised by rules (tempo drift, rubato, "
        "velocity shaping, pedal). Real performances of the same pieces differ in pedalling "
        "and articulation more than the rules model.",
        f"Largest confusion on val windows: true **{labels[i]}** called **{labels[j]}** "
        f"({int(off[i, j])} windows); lowest recall: **{worst}** "
        f"({v['per_class'][worst]['recall']:.2f}).",
        f"Noise: 4-style accuracy {rob['clean']['accuracy']:.2f} dry, "
        f"{rob['snr']['20']['accuracy']:.2f} at 20 dB, {rob['snr']['10']['accuracy']:.2f} at "
        f"10 dB, {rob['snr']['0']['accuracy']:.2f} at 0 dB SNR"
        + (f" (more than 5 points below dry from {snr_drop} dB)" if snr_drop else "")
        + f"; reverb: {rob['reverb']['0.8']['accuracy']:.2f} at RT60 0.8 s, "
        f"{rob['reverb']['2.5']['accuracy']:.2f} at 2.5 s"
        + (f" (more than 5 points below dry from {rt_drop} s)" if rt_drop else "")
        + ". The noise and room models are the synthetic ones training also used (the babble "
        "aside), so real rooms may well be harder than these curves.",
        *([_tuning_key_speed(rob)] if "speed" in rob else []),
        "**What this evaluation cannot say**: accuracy on real pianos, real rooms and real "
        "microphones (the issue's held-out human recordings); behaviour with a singer, another "
        "instrument or an audience singing along; pieces outside the corpus' composers; "
        "styles played 'in between' (a classical pianist improvising, ragtime played with swing); "
        "latency on the Jetson itself (TensorRT) — cost here is this x86 machine's CPU.",
        *([f"**The smoothed genre flickers**: {r['spurious_per_10min']:.0f} changes per 10 min "
           "of steady playing against a target of 1, with the listener's smoothing "
           f"({r['smoothing']['from']}: {smoothing_words(r['smoothing'])}). With about one "
           f"window in {1 / max(1e-9, 1 - v['window_accuracy_4style']):.0f} wrong, and wrong "
           "windows coming in runs (a passage that sounds like another style), smoothing "
           "that still names a change within 3 s cannot hold every style; a better window "
           "model is needed. Smoothing is chosen on dev medleys, never on these."]
          if (r.get("spurious_per_10min") or 0) > 1 else []),
        f"**Timbre dependence**: window accuracy ranges from {tmin[1]:.2f} ({tmin[0]}) to "
        f"{tmax[1]:.2f} ({tmax[0]}) across the five soundfont pianos; a real piano is a sixth "
        "timbre the model never heard.",
        f"Jazz is the easiest class (recall {v['per_class'].get('jazz', {}).get('recall', 0):.2f})"
        " — possibly because its construction (horn lines, mma comping patterns) is easy to "
        "spot rather than because the model understands swing; do not expect the same on "
        "real jazz pianists.",
        "Medleys join segments with a hard cut under one room; a pianist segueing through a "
        f"transition is slower to call. Only {res['responsiveness']['changes']} changes were "
        "measured, so the p95 delay is a rough figure.",
    ]
    return out
