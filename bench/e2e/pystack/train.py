"""Training like visiond's (docs/training.md), with scikit-learn.

Vectors are L2-normalised; logistic regression (scikit-learn's LogisticRegression,
by default with its default lbfgs solver, multinomial, as the original would have) with C chosen from 0.01, 0.1, 1, 10, 100
by stratified k-fold CV, k = min(5, smallest label count), folds shuffled with a
fixed seed: the best CV accuracy wins, ties go to the lower CV log-loss, then to
the smaller C; the final model is fitted on everything with that C, and the
metrics are the out-of-fold predictions at the chosen C, in visiond's shape.
Only visiond's logistic-regression branch is mirrored (every label needs at
least 5 examples; visiond would use a nearest centroid below that).
"""
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)


def _fit(X, y, c, solver):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(C=c, solver=solver, max_iter=1000).fit(X, y)


def train(vectors, labels, seed=0, solver="lbfgs"):
    """solver: scikit-learn's default lbfgs (multinomial), or liblinear (one-vs-rest, visiond's own algorithm)."""
    X = np.asarray(vectors, np.float64)
    n = np.linalg.norm(X, axis=1, keepdims=True)
    X = X / np.where(n > 0, n, 1)
    names = sorted(set(labels))
    if len(names) < 2:
        raise ValueError("needs at least 2 distinct labels")
    y = np.array([names.index(l) for l in labels])
    counts = np.bincount(y, minlength=len(names))
    if counts.min() < 5:
        raise ValueError("every label needs at least 5 examples (the peer mirrors only visiond's logreg)")
    k = int(min(5, counts.min()))
    folds = list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(X, y))
    grid, best = [], None
    for c in C_GRID:
        proba = np.zeros((len(y), len(names)))
        for tr, te in folds:
            m = _fit(X[tr], y[tr], c, solver)
            proba[np.ix_(te, m.classes_)] = m.predict_proba(X[te])
        pred = proba.argmax(axis=1)
        acc = float((pred == y).mean())
        loss = float(-np.log(np.clip(proba[np.arange(len(y)), y], 1e-15, 1)).mean())
        grid.append({"C": c, "cv_accuracy": acc, "cv_log_loss": loss})
        if best is None or (acc, -loss) > (best[1], -best[2]):
            best = (c, acc, loss, pred)
    c, acc, loss, pred = best
    model = _fit(X, y, c, solver)
    L = len(names)
    confusion = np.zeros((L, L), int)
    for t, p in zip(y, pred):
        confusion[t, p] += 1
    per_class, f1s = {}, []
    for i, name in enumerate(names):
        tp = confusion[i, i]
        npred = confusion[:, i].sum()
        P = tp / npred if npred else 0.0
        R = tp / counts[i]
        F = 2 * P * R / (P + R) if P + R else 0.0
        f1s.append(F)
        per_class[name] = {"precision": float(P), "recall": float(R), "f1": float(F),
                           "support": int(counts[i])}
    metrics = {
        "algorithm": "logreg", "solver": solver, "normalization": "l2", "n_examples": int(len(y)),
        "dim": int(X.shape[1]), "counts": {nm: int(counts[i]) for i, nm in enumerate(names)},
        "labels": names, "cv_folds": k, "cv_accuracy": acc, "cv_log_loss": loss,
        "macro_f1": float(np.mean(f1s)), "per_class": per_class,
        "confusion": confusion.tolist(), "C": c, "c_grid": grid,
    }
    return model, metrics
