"""Calibration to the venue: a small adaptation of one engine's outputs, learnt on site.

A technician plays about a minute of each style on the venue's piano (and records the room
with no music); every window of those **takes** keeps the engine's own probabilities, its
penultimate-layer **embedding** and its level. ``fit`` then learns, in numpy and in
seconds, a correction of the engine's logits::

    z = scale * log(p_engine) + bias + W @ standardise(embedding)
    p = softmax(z)

which is exactly the engine when ``scale = 1``, ``bias = 0`` and ``W = 0``; every candidate
starts there and is shrunk towards it (L2 on ``W``, ``bias`` and ``scale - 1``). The
candidates — per-label bias; bias and temperature; bias, temperature and an embedding
layer at a few strengths of shrinkage — are compared by cross-validation over the takes
(each take cut into contiguous blocks, a block held back in turn, windows that overlap it
left out of the fit), and the winner is kept only when it beats the engine on the held-back
windows by ``min_gain``; otherwise ``fit`` refuses with the numbers.

An engine bundle may carry **anchors** (``anchors.npz``): windows of ordinary, training-like
playing from works outside its validation set, with the engine's outputs and the true style.
When it does, every fit also learns to leave the engine's answers on them as they were (a
soft-target term beside the takes, tried at ``ANCHOR_WEIGHTS`` from light to heavy), and a fit
that at every weight would name fewer of them right than the engine by more than
``max_anchor_drop`` is refused: a venue's calibration must not cost the box what it already
hears well.

A calibration is bound to one engine: the sha256 of its manifest (which lists the sha256 of
every model file). A new engine never runs with an old calibration; ``load`` says why. The
file carries a sha256 of its own contents, so a damaged or hand-edited file is refused too.

Applying it costs one (D x labels) matrix-vector product per window (see
``training/bench_calibration.py``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

FORMAT = 1
FOLDER = ".calibration"      # inside the engine store folder (hidden: not an engine)
FILE = "calibration.json"
TAKES = "takes"
EPS = 1e-6
MIN_USABLE_S = 10.0          # a take with less usable audio than this is refused
FOLDS = 5
ANCHORS = "anchors.npz"       # in the engine bundle, listed (and hashed) in its manifest
# the anchors' share of the fit's loss (the takes' being 1), tried from light to heavy until
# a fit keeps them; on the measured venues (docs/experiments/calibration.md) see which it took
ANCHOR_WEIGHTS = (1.0, 3.0, 10.0)
MAX_ANCHOR_DROP = 0.01        # a fit may lose at most this much accuracy on the anchors


class CalibrationError(Exception):
    """A calibration that cannot be made or used; the message says why in plain words."""


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def manifest_sha256(bundle_path: Path | str) -> str:
    """What a calibration is bound to: the engine's manifest, byte for byte."""
    return hashlib.sha256((Path(bundle_path) / "manifest.json").read_bytes()).hexdigest()


# --------------------------------------------------------------------------- the adaptation


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class Calibration:
    """A fitted correction for one engine (see the module docstring)."""

    engine: str                  # name-version, for people
    engine_sha256: str           # the manifest it was made for
    labels: tuple[str, ...]
    kind: str                    # "bias", "temperature+bias", "embedding"
    scale: float
    bias: np.ndarray             # [K]
    weights: np.ndarray | None   # [K, D] on the standardised embedding, or None
    mean: np.ndarray | None      # [D]
    inv_std: np.ndarray | None   # [D]
    report: dict = field(default_factory=dict)
    created: str = ""

    def logits(self, probs: np.ndarray, emb: np.ndarray | None) -> np.ndarray:
        z = self.scale * np.log(np.asarray(probs, np.float64) + EPS) + self.bias
        if self.weights is not None:
            if emb is None:
                raise CalibrationError("this calibration needs the engine's embedding output")
            e = (np.asarray(emb, np.float64) - self.mean) * self.inv_std
            z = z + e @ self.weights.T
        return z

    def apply(self, probs: np.ndarray, emb: np.ndarray | None) -> np.ndarray:
        """Calibrated probabilities, same shape as ``probs`` ([K] or [N, K])."""
        return _softmax(self.logits(probs, emb))

    # --- the file ---------------------------------------------------------------------

    def to_dict(self) -> dict:
        body = {
            "format": FORMAT, "engine": self.engine, "engine_sha256": self.engine_sha256,
            "labels": list(self.labels), "kind": self.kind, "scale": float(self.scale),
            "bias": [float(x) for x in self.bias],
            "weights": None if self.weights is None else self.weights.tolist(),
            "mean": None if self.mean is None else self.mean.tolist(),
            "inv_std": None if self.inv_std is None else self.inv_std.tolist(),
            "report": self.report, "created": self.created,
        }
        return {**body, "sha256": _digest(body)}

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        body = {k: v for k, v in d.items() if k != "sha256"}
        if d.get("format") != FORMAT:
            raise CalibrationError(f"calibration format {d.get('format')!r} is not {FORMAT}")
        if d.get("sha256") != _digest(body):
            raise CalibrationError("the calibration file does not match its own checksum "
                                   "(damaged or edited by hand)")
        try:
            w = d["weights"]
            return cls(engine=str(d["engine"]), engine_sha256=str(d["engine_sha256"]),
                       labels=tuple(d["labels"]), kind=str(d["kind"]), scale=float(d["scale"]),
                       bias=np.asarray(d["bias"], np.float64),
                       weights=None if w is None else np.asarray(w, np.float64),
                       mean=None if w is None else np.asarray(d["mean"], np.float64),
                       inv_std=None if w is None else np.asarray(d["inv_std"], np.float64),
                       report=dict(d.get("report") or {}), created=str(d.get("created", "")))
        except (KeyError, TypeError, ValueError) as e:
            raise CalibrationError(f"the calibration file lacks or mangles {e}") from e

    def check_for(self, engine: str, engine_sha256: str, labels: tuple[str, ...]) -> None:
        """Raise unless this calibration was made for exactly this engine."""
        if self.engine_sha256 != engine_sha256:
            raise CalibrationError(
                f"the calibration was made for {self.engine} "
                f"(manifest {self.engine_sha256[:12]}…), not for {engine} "
                f"(manifest {engine_sha256[:12]}…): a new engine needs a new calibration "
                "(appliance calibrate fit; the takes are kept and heard again)")
        if tuple(self.labels) != tuple(labels):
            raise CalibrationError(f"the calibration's labels {list(self.labels)} are not the "
                                   f"engine's {list(labels)}")


def _digest(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


# --------------------------------------------------------------------------- takes


@dataclass
class Take:
    """One recording of one style (or of the room, ``none``), window by window."""

    style: str
    probs: np.ndarray        # [n, K] the engine's own probabilities
    emb: np.ndarray          # [n, D]
    level_db: np.ndarray     # [n] window level, as the listener's silence gate sees it
    t: np.ndarray            # [n] end time of each window in the take, s
    engine: str = ""
    engine_sha256: str = ""
    source: str = ""
    created: str = ""
    audio: np.ndarray | None = None  # int16 at ``rate``, so a new engine can hear it again
    rate: int = 16000
    name: str = ""

    @property
    def seconds(self) -> float:
        return 0.0 if self.audio is None else len(self.audio) / self.rate

    def usable(self, floor_db: float) -> np.ndarray:
        return self.level_db >= floor_db

    def save(self, path: Path) -> None:
        meta = {"style": self.style, "engine": self.engine, "engine_sha256": self.engine_sha256,
                "source": self.source, "created": self.created, "rate": self.rate}
        tmp = path.with_name(f".tmp-{path.name}")
        with open(tmp, "wb") as f:
            np.savez(f, probs=self.probs.astype(np.float32), emb=self.emb.astype(np.float32),
                     level_db=self.level_db.astype(np.float32), t=self.t.astype(np.float32),
                     audio=(self.audio if self.audio is not None
                            else np.zeros(0, np.int16)).astype(np.int16),
                     meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Take:
        try:
            with np.load(path) as d:
                meta = json.loads(bytes(d["meta"]).decode())
                return cls(style=meta["style"], probs=d["probs"].astype(np.float64),
                           emb=d["emb"].astype(np.float64),
                           level_db=d["level_db"].astype(np.float64),
                           t=d["t"].astype(np.float64), engine=meta.get("engine", ""),
                           engine_sha256=meta.get("engine_sha256", ""),
                           source=meta.get("source", ""), created=meta.get("created", ""),
                           audio=d["audio"], rate=int(meta.get("rate", 16000)),
                           name=path.stem)
        except (OSError, ValueError, KeyError) as e:
            raise CalibrationError(f"{path}: cannot read this take ({e})") from e


def hear(listener, samples: np.ndarray) -> dict[str, np.ndarray]:
    """Every window of ``samples`` through ``listener`` (its raw engine outputs, before any
    calibration): probs, embedding, window level and time."""
    probs, emb, lvl, t = [], [], [], []
    hop = listener.bundle.hop_samples
    for i in range(0, len(samples), hop):
        for _e in listener.feed(samples[i:i + hop]):
            probs.append(listener.last_engine_probs)
            emb.append(listener.last_embedding)
            lvl.append(listener.last_window_db)
            t.append(listener.time)
    k = len(listener.labels)
    return {"probs": np.array(probs).reshape(-1, k),
            "emb": np.array(emb).reshape(len(emb), -1),
            "level_db": np.array(lvl), "t": np.array(t)}


# --------------------------------------------------------------------------- fitting


@dataclass(frozen=True)
class Anchors:
    """Ordinary playing the engine already hears: its outputs and the true labels."""

    probs: np.ndarray   # [n, K] the engine's own probabilities
    emb: np.ndarray     # [n, D]
    y: np.ndarray       # [n] label indices

    @classmethod
    def from_bundle(cls, bundle) -> Anchors | None:
        """The anchors of a loaded bundle (``appliance.listen.bundle.Bundle``), or None if
        its manifest lists none; the loader has checked the file against its sha256."""
        if ANCHORS not in bundle.manifest.get("files", {}):
            return None
        path = Path(bundle.path) / ANCHORS
        try:
            with np.load(path) as d:
                a = cls(probs=d["probs"].astype(np.float64), emb=d["emb"].astype(np.float64),
                        y=d["y"].astype(np.int64))
        except (OSError, ValueError, KeyError) as e:
            raise CalibrationError(f"{path}: cannot read the engine's anchors ({e})") from e
        if not (len(a.probs) == len(a.emb) == len(a.y)) or a.probs.ndim != 2:
            raise CalibrationError(f"{path}: the engine's anchors are inconsistent")
        return a


@dataclass(frozen=True)
class Candidate:
    kind: str
    lam: float = 0.0   # L2 on W: lam * sum(W**2), against a mean cross-entropy

    @property
    def name(self) -> str:
        return self.kind if self.kind != "embedding" else f"embedding (shrinkage {self.lam:g})"


# Chosen on two tuning venues (dev works scored, train works for the takes; see
# docs/experiments/calibration.md): weaker shrinkage (0.1, 0.01) overfitted the takes of one
# or two pieces and lowered some draws by up to 6 points; these never lowered one.
CANDIDATES = (Candidate("bias"), Candidate("temperature+bias"),
              Candidate("embedding", 10.0), Candidate("embedding", 1.0))
REG_BIAS = 1e-3
REG_SCALE = 1e-2


def _fit_one(cand: Candidate, logp: np.ndarray, e: np.ndarray | None, y: np.ndarray,
             w: np.ndarray, free: np.ndarray, steps: int = 300, lr: float = 0.05,
             anchor: tuple[np.ndarray, np.ndarray, float] | None = None,
             ) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Weighted cross-entropy + shrinkage towards the engine, by Adam from the engine.
    ``free`` marks the labels the takes cover; the others keep the engine's logit.
    ``anchor``: (log-probs, standardised embeddings, weight) of windows whose target is the
    engine's own answer."""
    k = logp.shape[1]
    onehot = np.eye(k)[y]
    if anchor is not None:
        a_logp, a_e, a_w = anchor
        logp = np.concatenate([logp, a_logp])
        e = np.concatenate([e, a_e]) if e is not None else None
        onehot = np.concatenate([onehot, _softmax(a_logp)])
        w = np.concatenate([w, np.full(len(a_logp), a_w / max(1, len(a_logp)))])
    s = 1.0
    b = np.zeros(k)
    W = np.zeros((k, e.shape[1])) if (cand.kind == "embedding" and e is not None) else None
    params = [np.array([s]), b] + ([W] if W is not None else [])
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    mask = free.astype(np.float64)
    for it in range(1, steps + 1):
        s_, b_ = params[0][0], params[1]
        z = s_ * logp + b_
        if W is not None:
            z = z + e @ params[2].T
        p = _softmax(z)
        g = (p - onehot) * w[:, None]           # dL/dz, weights sum to 1
        grads = []
        gs = float(np.sum(g * logp)) + 2 * REG_SCALE * (s_ - 1.0)
        grads.append(np.array([gs if cand.kind != "bias" else 0.0]))
        grads.append((g.sum(0) + 2 * REG_BIAS * b_) * mask)
        if W is not None:
            grads.append((g.T @ e + 2 * cand.lam * params[2]) * mask[:, None])
        for i, gr in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * gr
            v[i] = 0.999 * v[i] + 0.001 * gr * gr
            mh = m[i] / (1 - 0.9 ** it)
            vh = v[i] / (1 - 0.999 ** it)
            params[i] = params[i] - lr * mh / (np.sqrt(vh) + 1e-8)
    return float(params[0][0]), params[1], (params[2] if W is not None else None)


def _standardise(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = emb.mean(0)
    std = emb.std(0)
    inv = np.where(std > 1e-6, 1.0 / np.maximum(std, 1e-6), 0.0)
    return mean, inv


def _folds(takes_t: list[np.ndarray], n_folds: int, guard_s: float) -> list[tuple[np.ndarray,
                                                                                  np.ndarray]]:
    """(train mask, test mask) per fold over the concatenated windows: each take is cut into
    ``n_folds`` contiguous blocks; fold f holds back block f of every take, and leaves out of
    its fit the windows within ``guard_s`` of that block (they share audio with it)."""
    total = sum(len(t) for t in takes_t)
    out = []
    for f in range(n_folds):
        train = np.zeros(total, bool)
        test = np.zeros(total, bool)
        off = 0
        for t in takes_t:
            n = len(t)
            if n:
                lo_i, hi_i = (n * f) // n_folds, (n * (f + 1)) // n_folds
                if hi_i > lo_i:
                    lo, hi = t[lo_i], t[hi_i - 1]
                    te = np.zeros(n, bool)
                    te[lo_i:hi_i] = True
                    near = (t > lo - guard_s - 1e-9) & (t < hi + guard_s + 1e-9)
                    test[off:off + n] = te
                    train[off:off + n] = ~near
                else:
                    train[off:off + n] = True
            off += n
        out.append((train, test))
    return out


def _accuracy(pred: np.ndarray, y: np.ndarray, labels_present: list[int]) -> float:
    """Mean over the recorded labels of each label's window accuracy (so a long room take
    counts as much as a minute of ragtime)."""
    return float(np.mean([np.mean(pred[y == c] == c) for c in labels_present]))


def _nll(p: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    return float(-np.sum(w * np.log(p[np.arange(len(y)), y] + 1e-12)) / np.sum(w))


@dataclass
class FitResult:
    calibration: Calibration | None   # None: refused
    accepted: bool
    reason: str
    report: dict


def _class_weights(y: np.ndarray, k: int) -> np.ndarray:
    counts = np.bincount(y, minlength=k).astype(np.float64)
    w = np.where(counts[y] > 0, 1.0 / np.maximum(counts[y], 1), 0.0)
    return w / w.sum()


def _one_blas_thread(fn):
    """Run ``fn`` with BLAS on one thread. The fit's products are small: on a busy box (the
    show playing beside it) BLAS threads spin waiting for each other, and a fit measured at
    5.6 CPU seconds on one thread took 118 across the development machine's threads."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)
    return wrapped


@_one_blas_thread
def fit(takes: list[Take], labels: tuple[str, ...], *, engine: str, engine_sha256: str,
        level_floor_db: float = -65.0, window_s: float = 3.0, min_gain: float = 0.01,
        candidates: tuple[Candidate, ...] = CANDIDATES, folds: int = FOLDS,
        require_room: bool = True, rule: str = "min", anchors: Anchors | None = None,
        anchor_weights: tuple[float, ...] = ANCHOR_WEIGHTS,
        max_anchor_drop: float = MAX_ANCHOR_DROP) -> FitResult:
    """Choose and fit a calibration on ``takes`` (see the module docstring)."""
    labels = tuple(labels)
    usable = [(tk, tk.usable(level_floor_db)) for tk in takes]
    usable = [(tk, u) for tk, u in usable if u.any()]
    styles = sorted({tk.style for tk, _ in usable}, key=labels.index)
    if require_room and "none" in labels and "none" not in {tk.style for tk in takes}:
        raise CalibrationError("there is no take of the room: record one with no music "
                               "playing first (appliance calibrate record --style none), so "
                               "the fit can keep the room reading as no music")
    if len([s for s in styles if s != "none"]) < 1:
        raise CalibrationError("there is no usable take of any style yet: record at least "
                               "one (appliance calibrate record --style STYLE)")
    for tk, _ in usable:
        if tk.style not in labels:
            raise CalibrationError(f"a take of {tk.style!r} is not a label of {engine} "
                                   f"({', '.join(labels)})")
    k = len(labels)
    logp = np.concatenate([np.log(tk.probs[u] + EPS) for tk, u in usable])
    emb = np.concatenate([tk.emb[u] for tk, u in usable])
    y = np.concatenate([np.full(int(u.sum()), labels.index(tk.style)) for tk, u in usable])
    ts = [tk.t[u] for tk, u in usable]
    present = [labels.index(s) for s in styles]
    free = np.zeros(k, bool)
    free[present] = True
    # labels without a take keep the engine's logit, but still compete in the softmax
    cv = _folds(ts, folds, window_s)
    engine_pred = logp.argmax(1)

    w_all = _class_weights(y, k)
    if anchors is not None and anchors.probs.shape[1] != k:
        raise CalibrationError(f"the engine's anchors have {anchors.probs.shape[1]} labels, "
                               f"the engine {k}")
    a_logp = np.log(anchors.probs + EPS) if anchors is not None else None

    def anchor_term(mean: np.ndarray, inv: np.ndarray, weight: float) -> tuple | None:
        if anchors is None or weight <= 0:
            return None
        return a_logp, (anchors.emb - mean) * inv, weight

    def cv_scores(cand: Candidate | None,
                  weight: float = 0.0) -> tuple[float, float, np.ndarray, float]:
        """Held-back accuracy, log loss, predictions, and the log loss's standard error
        over the folds."""
        probs = np.zeros((len(y), k))
        for train, test in cv:
            if not test.any():
                continue
            if cand is None:
                probs[test] = np.exp(logp[test])
                continue
            ytr = y[train]
            mean, inv = _standardise(emb[train])
            e_tr = (emb[train] - mean) * inv
            s, b, W = _fit_one(cand, logp[train], e_tr, ytr, _class_weights(ytr, k), free,
                               anchor=anchor_term(mean, inv, weight))
            z = s * logp[test] + b
            if W is not None:
                z = z + ((emb[test] - mean) * inv) @ W.T
            probs[test] = _softmax(z)
        pred = probs.argmax(1)
        per_fold = [_nll(probs[test], y[test], w_all[test]) for _tr, test in cv if test.any()]
        se = float(np.std(per_fold) / np.sqrt(max(1, len(per_fold) - 1)))
        return _accuracy(pred, y, present), _nll(probs, y, w_all), pred, se

    base_acc, base_nll, base_pred, _se = cv_scores(None)
    common = {"rule": rule, "before": base_acc, "log_loss_before": base_nll,
              "min_gain": min_gain, "windows": int(len(y)), "folds": folds,
              "takes": [tk.name for tk, _ in usable],
              "styles_without_take": [lab for lab in labels if lab not in styles],
              "engine_alone_in_sample": _accuracy(engine_pred, y, present)}
    a_present = sorted(set(anchors.y.tolist())) if anchors is not None else []
    a_before = (_accuracy(anchors.probs.argmax(1), anchors.y, a_present)
                if anchors is not None else None)

    def attempt(weight: float) -> FitResult:
        """Choose a candidate by cross-validation and fit it, the anchors weighing
        ``weight``; refused if it does not help, or if it costs the anchors too much."""
        rows = [{"model": "engine alone", "cv_accuracy": base_acc, "cv_log_loss": base_nll}]
        scored = []
        for cand in candidates:
            acc, nll, pred, se = cv_scores(cand, weight)
            rows.append({"model": cand.name, "cv_accuracy": acc, "cv_log_loss": nll,
                         "cv_log_loss_se": se})
            scored.append((cand, acc, nll, pred, se))
        best = min(scored, key=lambda r: r[2])
        if rule == "1se":  # the simplest candidate within one standard error of the best
            best = next(r for r in scored if r[2] <= best[2] + best[4])
        cand, acc, nll, pred, _se = best
        per_style = {labels[c]: {"windows": int(np.sum(y == c)),
                                 "before": float(np.mean(base_pred[y == c] == c)),
                                 "after": float(np.mean(pred[y == c] == c))} for c in present}
        report = {"chosen": cand.name, **common, "after": acc, "log_loss_after": nll,
                  "per_style": per_style, "candidates": rows}
        if acc < base_acc + min_gain or nll >= base_nll:
            why = (f"it does not beat the engine on held-back takes: the best adaptation "
                   f"({cand.name}) names {acc:.1%} of held-back windows right, the engine "
                   f"alone {base_acc:.1%} (needs at least {min_gain:.0%} more"
                   + (", and a lower log loss" if nll >= base_nll else "") + ")")
            return FitResult(None, False, why, report)
        mean, inv = _standardise(emb)
        s, b, W = _fit_one(cand, logp, (emb - mean) * inv, y, _class_weights(y, k), free,
                           anchor=anchor_term(mean, inv, weight))
        cal = Calibration(engine=engine, engine_sha256=engine_sha256, labels=labels,
                          kind=cand.kind, scale=s, bias=b, weights=W,
                          mean=mean if W is not None else None,
                          inv_std=inv if W is not None else None, report=report,
                          created=_now())
        if anchors is not None:
            a_after = _accuracy(cal.apply(anchors.probs, anchors.emb).argmax(1), anchors.y,
                                a_present)
            report["anchors"] = {"windows": int(len(anchors.y)), "before": a_before,
                                 "after": a_after, "max_drop": max_anchor_drop,
                                 "weight": weight}
            if a_after < a_before - max_anchor_drop - 1e-12:
                why = (f"it would change what the engine hears in ordinary playing: of the "
                       f"engine's {len(anchors.y)} reference windows of ordinary piano it "
                       f"names {a_after:.1%} right, the engine alone {a_before:.1%} (it may "
                       f"lose at most {max_anchor_drop:.0%}); record longer or more varied "
                       "takes and fit again")
                return FitResult(None, False, why, report)
        return FitResult(cal, True,
                         f"{cand.name}: held-back windows {base_acc:.1%} -> {acc:.1%}", report)

    # the lightest hold on the anchors that keeps them: the venue gains most from it
    weights = anchor_weights if anchors is not None else (0.0,)
    for weight in weights:
        result = attempt(weight)
        if result.accepted or "anchors" not in result.report:
            return result
    return result


# --------------------------------------------------------------------------- on disk


class CalibrationStore:
    """``<engine store>/.calibration/``: the takes and the calibration (one for the store's
    current engine; it names the engine it was made for)."""

    def __init__(self, store_root: Path | str) -> None:
        self.root = Path(store_root) / FOLDER

    @property
    def file(self) -> Path:
        return self.root / FILE

    @property
    def takes_dir(self) -> Path:
        return self.root / TAKES

    def take_paths(self) -> list[Path]:
        if not self.takes_dir.is_dir():
            return []
        return sorted(self.takes_dir.glob("*.npz"))

    def takes(self) -> list[Take]:
        return [Take.load(p) for p in self.take_paths()]

    def add_take(self, take: Take) -> Path:
        self.takes_dir.mkdir(parents=True, exist_ok=True)
        n = 1 + sum(1 for p in self.take_paths() if p.stem.startswith(take.style + "-"))
        path = self.takes_dir / f"{take.style}-{n}.npz"
        while path.exists():
            n += 1
            path = self.takes_dir / f"{take.style}-{n}.npz"
        take.name = path.stem
        take.save(path)
        return path

    def save(self, cal: Calibration) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{FILE}"
        with open(tmp, "w") as f:
            f.write(json.dumps(cal.to_dict()) + "\n")
            f.flush()
            os.fchmod(f.fileno(), 0o644)
            os.fsync(f.fileno())
        os.replace(tmp, self.file)
        return self.file

    def read(self) -> Calibration | None:
        """The calibration on disk whatever engine it is for; None when there is none."""
        if not self.file.is_file():
            return None
        try:
            doc = json.loads(self.file.read_text())
        except (OSError, ValueError) as e:
            raise CalibrationError(f"{self.file}: cannot read the calibration ({e})") from e
        return Calibration.from_dict(doc)

    def load_for(self, bundle) -> tuple[Calibration | None, str]:
        """The calibration to run with ``bundle``: (calibration, "") when one applies,
        (None, why not) when one is on disk but does not apply, (None, "") when none is."""
        try:
            cal = self.read()
            if cal is None:
                return None, ""
            cal.check_for(bundle.label, manifest_sha256(bundle.path), tuple(bundle.labels))
        except (CalibrationError, OSError) as e:
            return None, str(e)
        return cal, ""

    def reset(self, *, takes: bool = False) -> list[str]:
        removed = []
        if self.file.is_file():
            self.file.unlink()
            removed.append("the calibration")
        if takes:
            paths = self.take_paths()
            for p in paths:
                p.unlink()
            if paths:
                removed.append(f"{len(paths)} take(s)")
        return removed
