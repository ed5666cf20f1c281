"""Hand-made features of a competition-format data set, to check what a synthetic label leaks.

A synthetic set is only useful if its label needs a real model: metadata (size, depth, file
size, project), intensity statistics and a simple temporal statistic inside the outline should
predict it poorly. :func:`handmade_features` computes them per stack, read as the competition's
winners read the files (OpenCV, BGR, the orange ``cv2.inRange`` outline), and
:func:`leak_scores` says how well simple classifiers predict the label from them.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import matthews_corrcoef, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

#: The winners' BGR ``cv2.inRange`` bounds of the orange outline.
ORANGE_LO, ORANGE_HI = (9, 13, 104), (98, 143, 255)

METADATA_FEATURES = ["roi_h", "roi_w", "depth", "frame_h", "frame_w", "file_size", "bytes_per_voxel"]
INTENSITY_FEATURES = ["brightness", "frame_brightness", "contrast", "black_slices", "outline_std"]
TEMPORAL_FEATURES = ["flicker", "diff_ratio", "lag1_corr", "temporal_std"]


def read_bgr(path: str | Path) -> np.ndarray:
    """All frames of an mp4 as BGR ``(D, H, W, 3)``, read with OpenCV as the winners did."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return np.array(frames)


def orange_mask(frames: np.ndarray) -> np.ndarray:
    """Per-frame boolean mask of the competition's orange range."""
    return np.array([cv2.inRange(f, ORANGE_LO, ORANGE_HI) > 0 for f in frames])


def _regions(ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels inside the outline and pixels outside it within its box, both off its line.

    Gaps of a few pixels in the line (compression) are closed first; the outline never touches
    the frame edge in synthetic stacks. ``ring`` is the outline's boolean mask ``(H, W)``.
    """
    closed = cv2.morphologyEx(ring.astype(np.uint8), cv2.MORPH_CLOSE,
                              cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    filled = np.pad(closed, 1)
    cv2.floodFill(filled, None, (0, 0), 2)
    filled = (filled[1:-1, 1:-1] != 2).astype(np.uint8)
    line = cv2.dilate(ring.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    box = np.zeros_like(line)
    ys, xs = np.nonzero(ring)
    box[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
    inner = (filled > 0) & ~line
    if inner.sum() < 10:  # a thin outline: keep the pixels next to its line too
        inner = (filled > 0) & ~ring
    return inner, box & (filled == 0) & ~line


def stack_features(path: Path) -> dict:
    """Metadata, intensity and temporal features of one stack (see the module lists).

    The temporal ones compare the brightest half of the outlined region (the target's lumen,
    where cells flicker or stay put) with the darkest third of the box outside the outline
    (tissue: noise only): second-difference energy along depth, mean absolute slice-to-slice
    change, lag-1 autocorrelation along depth and temporal standard deviation.
    """
    frames = read_bgr(path)
    ring = orange_mask(frames).mean(axis=0) > 0.5
    ys, xs = np.nonzero(ring)
    grey = frames[..., 1].astype(np.float32)
    inner, outer = _regions(ring)
    lit = grey.reshape(len(grey), -1).max(axis=1) > 0
    vox, ref = grey[lit][:, inner], grey[lit][:, outer]  # (D', n) in the slices that are not black
    mean, ref_mean = vox.mean(axis=0), ref.mean(axis=0)
    lumen = mean >= np.median(mean)
    dark = ref_mean <= np.quantile(ref_mean, 0.3)

    def energy(v: np.ndarray) -> np.ndarray:
        return np.mean((v[2:] - 2 * v[1:-1] + v[:-2]) ** 2, axis=0) if len(v) > 2 else np.ones(v.shape[1])

    def change(v: np.ndarray) -> np.ndarray:
        return np.abs(np.diff(v, axis=0)).mean(axis=0) if len(v) > 1 else np.ones(v.shape[1])

    def lag1(v: np.ndarray) -> np.ndarray:
        c = v - v.mean(axis=0)
        return (c[1:] * c[:-1]).mean(axis=0) / np.maximum(c.var(axis=0), 1e-6)

    size = path.stat().st_size
    return {
        "roi_h": int(np.ptp(ys)) + 1, "roi_w": int(np.ptp(xs)) + 1, "depth": len(frames),
        "frame_h": frames.shape[1], "frame_w": frames.shape[2], "file_size": size,
        "bytes_per_voxel": size / grey.size,
        "brightness": float(vox.mean()), "frame_brightness": float(grey.mean()),
        "contrast": float(np.quantile(vox, 0.95) - np.quantile(vox, 0.05)),
        "black_slices": float(1 - lit.mean()), "outline_std": float(vox.std()),
        "flicker": float(energy(vox[:, lumen]).mean() / max(energy(ref[:, dark]).mean(), 1e-6)),
        "diff_ratio": float(change(vox[:, lumen]).mean() / max(change(ref[:, dark]).mean(), 1e-6)),
        "lag1_corr": float(lag1(vox[:, lumen]).mean() - lag1(ref[:, dark]).mean()),
        "temporal_std": float(vox[:, lumen].std(axis=0).mean() / max(ref[:, dark].std(axis=0).mean(), 1e-6)),
    }


def handmade_features(root: str | Path, split: str = "train") -> pd.DataFrame:
    """Every stack of ``split`` in a competition-format directory with its features, project and,
    where a labels CSV exists, its label."""
    root = Path(root)
    meta = pd.read_csv(root / f"{split}_metadata.csv")
    labels = root / f"{split}_labels.csv"
    if labels.exists():
        meta = meta.merge(pd.read_csv(labels), on="filename")
    rows = [stack_features(root / split / name) for name in meta.filename]
    return pd.concat([meta.reset_index(drop=True), pd.DataFrame(rows)], axis=1)


def leak_scores(frame: pd.DataFrame, numeric: list[str], with_project: bool = True, folds: int = 5,
                seed: int = 0) -> dict[str, dict[str, float]]:
    """Out-of-fold AUC and MCC of a logistic regression and a small gradient boosting that predict
    ``frame.stalled`` from the ``numeric`` columns (and the project, one-hot).

    Folds are stratified and grouped by project when ``with_project`` is false (so the project
    cannot stand in for appearance), plain stratified otherwise. MCC is taken at the threshold that
    predicts as many stalls as there are, so a classifier cannot look good by predicting none.
    """
    y = frame.stalled.to_numpy()
    parts = [("num", StandardScaler(), numeric)]
    if with_project:
        parts.append(("project", OneHotEncoder(handle_unknown="ignore"), ["project_id"]))
    groups = np.arange(len(frame)) if with_project else frame.project_id.to_numpy()
    cv = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
    scores = {}
    for model in (LogisticRegression(class_weight="balanced", max_iter=2000),
                  GradientBoostingClassifier(n_estimators=60, max_depth=2, random_state=seed)):
        proba = cross_val_predict(make_pipeline(ColumnTransformer(parts), model), frame, y, groups=groups, cv=cv,
                                  method="predict_proba")[:, 1]
        threshold = np.quantile(proba, 1 - y.mean())
        scores[type(model).__name__] = {"auc": float(roc_auc_score(y, proba)),
                                        "mcc": float(matthews_corrcoef(y, proba >= threshold))}
    return scores
