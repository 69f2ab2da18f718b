#!/usr/bin/env python3
"""Golden values for oddity's metrics, from reference implementations.

Writes small fixtures under tests/fixtures/metrics/ and their expected metric values to
tests/fixtures/metrics/golden.json:

- image AUROC and ROC points: sklearn.metrics.roc_auc_score / roc_curve;
- pixel AUROC: sklearn.metrics.roc_auc_score on the flattened maps;
- AUPRO: an independent numpy/scipy implementation (scipy.ndimage.label with 8-connectivity,
  cumulative sums over the scores sorted in decreasing order, one point per distinct score,
  MVTec AD's trapezoid cut at the FPR limit, divided by the limit);
- ECE, MCE (K equal-width bins (k/K, (k+1)/K], p = 0 in the first bin, empty bins skipped),
  Brier (sklearn.metrics.brier_score_loss).

Python is only needed to regenerate the fixtures; the tests read the committed files.

    pip install numpy scipy scikit-learn
    python3 scripts/golden_metrics.py fixtures            # rewrite the fixtures
    python3 scripts/golden_metrics.py random --rows 100000 --out /tmp/rows.csv
                                                           # a random score,label CSV + its sklearn AUROC
"""

import argparse
import bisect
import csv
import json
import os

import numpy as np
import scipy.ndimage
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures", "metrics")


# ---------------------------------------------------------------- reference implementations

def calibration_reference(p, y, k):
    """ECE, MCE with k bins (edge_j < p <= edge_{j+1}, edges j/k), and reliability bins."""
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    upper_edges = np.array([(j + 1) / k for j in range(k)])
    bins = np.minimum(np.searchsorted(upper_edges, p, side="left"), k - 1)
    ece, mce, table = 0.0, 0.0, []
    for j in range(k):
        sel = bins == j
        count = int(sel.sum())
        if count == 0:
            table.append({"count": 0, "confidence": None, "frequency": None})
            continue
        conf = float(p[sel].mean())
        freq = float(y[sel].mean())
        gap = abs(freq - conf)
        ece += count / len(p) * gap
        mce = max(mce, gap)
        table.append({"count": count, "confidence": conf, "frequency": freq})
    return ece, mce, table


def trapezoid_to(x, y, x_max):
    """MVTec AD's trapezoid rule over x <= x_max, interpolating y at x_max."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    correction = 0.0
    if x_max not in x:
        ins = bisect.bisect(list(x), x_max)
        assert 0 < ins < len(x)
        y_interp = y[ins - 1] + (y[ins] - y[ins - 1]) * (x_max - x[ins - 1]) / (x[ins] - x[ins - 1])
        correction = 0.5 * (y_interp + y[ins - 1]) * (x_max - x[ins - 1])
    keep = x <= x_max
    xs, ys = x[keep], y[keep]
    return float(np.sum(0.5 * (ys[1:] + ys[:-1]) * (xs[1:] - xs[:-1])) + correction)


def pro_curve_reference(scores, masks):
    """(fpr, pro) at every distinct score, from (0, 0); scores float32 [n,h,w], masks 0/1."""
    labels = np.zeros(masks.shape, dtype=np.int64)
    offset = 0
    for i in range(masks.shape[0]):
        lab, count = scipy.ndimage.label(masks[i], structure=np.ones((3, 3), dtype=int))
        lab[lab > 0] += offset
        labels[i] = lab
        offset += count
    regions = offset
    sizes = np.bincount(labels.ravel(), minlength=regions + 1)[1:]
    s = scores.ravel().astype(np.float32)
    lab = labels.ravel()
    order = np.argsort(-s.astype(np.float64), kind="stable")
    s_sorted, l_sorted = s[order], lab[order]
    fp = np.cumsum(l_sorted == 0)
    increments = np.where(l_sorted > 0, 1.0 / sizes[np.maximum(l_sorted - 1, 0)], 0.0)
    pro = np.cumsum(increments) / regions
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    fpr = np.r_[0.0, fp[last] / float((lab == 0).sum())]
    pro = np.r_[0.0, pro[last]]
    return fpr, pro, regions


def aupro_reference(scores, masks, limit):
    fpr, pro, _ = pro_curve_reference(scores, masks)
    return trapezoid_to(fpr, pro, limit) / limit


# ---------------------------------------------------------------- fixtures

def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def image_fixtures(rng, golden):
    # heavy ties: scores rounded to one decimal, negative values included
    n = 400
    y = (rng.random(n) < 0.35).astype(int)
    s = np.round(rng.normal(loc=0.8 * y, scale=1.0), 1)
    write_csv(os.path.join(FIXTURES, "scores_ties.csv"), ["score", "label"],
              [[repr(float(a)), int(b)] for a, b in zip(s, y)])
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    golden["scores_ties.csv"] = {
        "auroc": float(roc_auc_score(y, s)),
        "roc_fpr": fpr.tolist(), "roc_tpr": tpr.tolist(),
        "roc_thresholds_after_first": thr[1:].tolist(),
    }
    # continuous scores at full double precision, label column first, an extra column
    n = 300
    y = (rng.random(n) < 0.5).astype(int)
    s = rng.normal(loc=0.5 * y, scale=1.0) * 1e3
    write_csv(os.path.join(FIXTURES, "scores_continuous.csv"), ["id", "label", "score"],
              [[i, int(b), repr(float(a))] for i, (a, b) in enumerate(zip(s, y))])
    golden["scores_continuous.csv"] = {"auroc": float(roc_auc_score(y, s))}
    # probabilities, rounded to 3 decimals so some sit exactly on bin edges, plus 0 and 1
    n = 500
    y = (rng.random(n) < 0.4).astype(int)
    p = np.round(np.clip(rng.beta(2 + 3 * y, 5 - 2 * y), 0, 1), 3)
    p[:6] = [0.0, 1.0, 0.1, 0.5, 0.7, 0.3]
    write_csv(os.path.join(FIXTURES, "probs.csv"), ["prob", "label"],
              [[repr(float(a)), int(b)] for a, b in zip(p, y)])
    entry = {"auroc": float(roc_auc_score(y, p)), "brier": float(brier_score_loss(y, p))}
    for k in (10, 15):
        ece, mce, table = calibration_reference(p, y, k)
        entry[f"ece_{k}"], entry[f"mce_{k}"], entry[f"bins_{k}"] = ece, mce, table
    golden["probs.csv"] = entry


def blob_masks(rng, n, h, w):
    masks = np.zeros((n, h, w), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        if i % 4 == 3:
            continue  # a normal image
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.integers(0, h), rng.integers(0, w)
            ry, rx = rng.integers(1, max(2, h // 4)), rng.integers(1, max(2, w // 4))
            masks[i][((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0] = 1
    # two pixels touching only diagonally: one 8-connected region
    masks[0, 0, 0] = 1
    masks[0, 1, 1] = 1
    masks[0, 0, 1] = masks[0, 1, 0] = 0
    return masks


def pixel_fixture(rng, golden, name, n, h, w, decimals):
    masks = blob_masks(rng, n, h, w)
    scores = rng.normal(size=(n, h, w)) + 1.2 * masks + 0.3 * rng.random((n, 1, 1))
    if decimals is not None:
        scores = np.round(scores, decimals)
    scores = scores.astype(np.float32)
    with open(os.path.join(FIXTURES, name), "w") as f:
        json.dump({"n": n, "height": h, "width": w,
                   "scores": [float(v) for v in scores.ravel()],
                   "masks": [int(v) for v in masks.ravel()]}, f)
    _, _, regions = pro_curve_reference(scores, masks)
    golden[name] = {
        "pixel_auroc": float(roc_auc_score(masks.ravel(), scores.ravel())),
        "regions": int(regions),
        "aupro_0.3": aupro_reference(scores, masks, 0.3),
        "aupro_0.05": aupro_reference(scores, masks, 0.05),
        "aupro_1.0": aupro_reference(scores, masks, 1.0),
    }


def fixtures():
    os.makedirs(FIXTURES, exist_ok=True)
    rng = np.random.default_rng(20240611)
    golden = {}
    image_fixtures(rng, golden)
    pixel_fixture(rng, golden, "pixels_ties.json", 8, 24, 20, 1)
    pixel_fixture(rng, golden, "pixels_continuous.json", 6, 32, 31, None)
    with open(os.path.join(FIXTURES, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
    print("wrote", sorted(golden))


def random_rows(rows, seed, out):
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.3).astype(int)
    s = rng.normal(loc=0.7 * y, scale=1.0)
    s[::3] = np.round(s[::3], 2)  # a third of the rows tie with others
    write_csv(out, ["score", "label"], [[repr(float(a)), int(b)] for a, b in zip(s, y)])
    print(json.dumps({"sklearn_auroc": float(roc_auc_score(y, s)), "n": rows}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fixtures")
    r = sub.add_parser("random")
    r.add_argument("--rows", type=int, default=100000)
    r.add_argument("--seed", type=int, default=7)
    r.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.command == "fixtures":
        fixtures()
    else:
        random_rows(args.rows, args.seed, args.out)
