"""Honest accuracy on the IXI scans: nested cross-validation on the development subjects and
one score on the locked test split, for every classical candidate (features x estimator).

    python benchmarks/bench_nested.py --prepared /tmp/brainage-ixi-prepared --out /tmp/nested
        [--candidates all] [--json results.json]

Protocol (nothing is chosen on the data that scores it):

* the locked split (``benchmarks/protocol/ixi_locked_split.json``, 29 of the 121 aged
  scans, stratified by sex and age) is never read to choose anything;
* on the 92 development subjects: 5 outer folds (age-stratified, seed 0); inside each, 5
  inner folds choose the candidate (:func:`brainage.selection.nested`); the outer folds
  score the choice. Each estimator's own hyper-parameters (ridge penalty, SVR C, ...) are
  chosen on its training subjects only;
* locked: the same selection on all development subjects, the winner fitted on them,
  scored once on the locked subjects. Every candidate's locked MAE is printed too, for
  reference only (choosing by it would be selection on the test split).

It also fits the bias correction and the 90 % intervals on the nested out-of-fold
predictions of the development subjects (the procedure's, not a fixed candidate's) and
checks them on the locked split: |r(corrected gap, age)|, the uncorrected gap slope, and
interval coverage overall and per tertile of the true age, with the mean width, for each
interval method.

Figures print MAE with a bootstrap 95 % interval over subjects.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
IXI = ROOT / ".." / "shared" / "data" / "ixi-hh-2mm"
LOCKED = ROOT / "benchmarks" / "protocol" / "ixi_locked_split.json"

#: Feature definitions compared (name -> FeatureSpec fields).
FEATURES: dict[str, dict] = {
    # today's default: smoothed unmodulated GM + CSF maps in 8 mm blocks + volumes
    "voxels": dict(maps=("GM", "CSF"), modulate=False, fwhm_mm=12.0, pool=4),
    # regional: GM, WM, CSF means in template parcels at three scales + ventricles, fractions
    "regions": dict(maps=("GM", "WM", "CSF"), modulate=False, voxels=False,
                    parcels=(8, 32, 96), brain_measures=True),
    # the same as tissue volumes (modulated by the affine's determinant)
    "regions_mod": dict(maps=("GM", "WM", "CSF"), modulate=True, voxels=False,
                        parcels=(8, 32, 96), brain_measures=True),
    # both: voxel maps and parcels
    "voxels_regions": dict(maps=("GM", "CSF"), modulate=False, fwhm_mm=12.0, pool=4,
                           parcels=(8, 32, 96), brain_measures=True),
}
ESTIMATORS = ("ridge", "svr", "gpr", "krr")


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def feature_matrices(prepared, out: Path, names: list[str]) -> dict[str, np.ndarray]:
    """(N, F) features per definition for every scan of `prepared` (cached in `out`)."""
    from brainage.classical.features import FeatureMaker, FeatureSpec
    from brainage.classical.model import feature_matrix

    mats = {}
    for name in names:
        path = out / f"features_{name}.npy"
        if path.exists():
            mats[name] = np.load(path)
            continue
        t0 = time.perf_counter()
        maker = FeatureMaker.for_grid(FeatureSpec(**FEATURES[name]),
                                      prepared.spec.tissue_channels, prepared.spec.grid)
        mats[name] = feature_matrix(maker, prepared.table)
        np.save(path, mats[name])
        print(f"features {name}: {mats[name].shape[1]} per scan, "
              f"{(time.perf_counter() - t0) / len(prepared.table):.2f} s/scan", flush=True)
    return mats


def make_candidates(mats: dict[str, np.ndarray], y: np.ndarray, pairs: list[tuple[str, str]],
                    ensembles: list[tuple[str, ...]]):
    from brainage.classical import estimators

    def one(feat: str, est: str):
        X = mats[feat]

        def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
            fitted = estimators.fit(est, X[train], y[train], seed=0)
            return estimators.predict(est, fitted, X[test])
        return fit_predict

    cands = {f"{f}/{e}": one(f, e) for f, e in pairs}
    for parts in ensembles:
        members = [cands[p] for p in parts]
        cands["mean(" + " + ".join(parts) + ")"] = (
            lambda train, test, ms=members: np.mean([m(train, test) for m in ms], axis=0))
    return cands


def pearson(a, b) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def interval_methods(y_cal, p_cal, alpha=0.1):
    """name -> function(p_new) -> (low, high), calibrated on (y_cal, p_cal)."""
    from brainage.evaluation.uncertainty import ConformalInterval

    out = {}
    for groups in (1, 3):
        cal = ConformalInterval(alpha=alpha, groups=groups).fit(y_cal, p_cal)
        out[f"symmetric, {groups} group(s)"] = cal.predict_interval
    for groups in (3, 4):
        cal = ConformalInterval(alpha=alpha, groups=groups, method="asymmetric").fit(y_cal, p_cal)
        out[f"asymmetric, {groups} groups"] = cal.predict_interval
    return out


def coverage_rows(y, low, high) -> dict:
    inside = (y >= low) & (y <= high)
    tert = np.searchsorted(np.quantile(y, [1 / 3, 2 / 3]), y, side="right")
    return {"cover": float(inside.mean()),
            "tertiles": [float(inside[tert == t].mean()) for t in range(3)],
            "width": float(np.mean(high - low))}


def protocol_splits(table: pd.DataFrame, split: dict, y: np.ndarray, dev: np.ndarray,
                    path: Path) -> Path:
    """A splits file for ``brainage train``: folds 0-4 are the development subjects' outer
    folds (the locked subjects unassigned), fold 5 trains on every development subject and
    tests the locked ones. One run then gives nested-honest predictions for both."""
    from brainage.data.splits_file import Splits, cohort_hash
    from brainage.selection import stratified_folds

    ids = table["participant_id"].to_numpy()
    folds = [{"train": ids[tr].tolist(), "test": ids[te].tolist()}
             for tr, te in stratified_folds(y, dev, 5, seed=0)]
    folds.append({"train": split["development"], "test": split["locked_test"]})
    Splits("user", 0, {"protocol": "5 outer folds of the development subjects + locked"},
           folds, cohort_hash(ids), split["unlabelled"], len(set(ids))).to_json(path)
    return path


def run_presets(prepared_dir: Path, out: Path, splits: Path, presets: list[str],
                table: pd.DataFrame, split: dict, results: dict) -> dict[str, pd.DataFrame]:
    """Train each preset on the protocol splits; print its nested (dev) and locked MAE."""
    import brainage
    from brainage.selection import bootstrap_mae

    preds = {}
    print("\nruns on the protocol splits (folds 0-4: development outer folds; fold 5: "
          "train on development, test on locked):")
    for preset in presets:
        name, _, extra = preset.partition(":")
        t0 = time.perf_counter()
        run = brainage.train(prepared_dir, out / f"run-{name}", name, splits=splits,
                             overrides=["progress_bar=false", *filter(None, extra.split("+"))])
        p = pd.read_csv(run / "predictions.tsv", sep="\t")
        p = p[p["age"].notna()].set_index("participant_id")
        preds[name] = p
        dev, locked = p.loc[p.index.isin(split["development"])], \
            p.loc[p.index.isin(split["locked_test"])]
        m, lo, hi = bootstrap_mae(dev["age"], dev["predicted_age"])
        lm, llo, lhi = bootstrap_mae(locked["age"], locked["predicted_age"])
        results.setdefault("runs", {})[name] = {
            "nested_mae": m, "nested_ci": [lo, hi], "locked_mae": lm, "locked_ci": [llo, lhi],
            "locked_r": pearson(locked["age"], locked["predicted_age"]),
            "minutes": (time.perf_counter() - t0) / 60}
        print(f"  {name:30s} nested {m:5.2f} [{lo:.2f}, {hi:.2f}]  locked {lm:5.2f} "
              f"[{llo:.2f}, {lhi:.2f}]  r {results['runs'][name]['locked_r']:.3f}  "
              f"{results['runs'][name]['minutes']:.1f} min", flush=True)
    if len(preds) >= 2:  # equal-weight mean: nothing fitted, so nothing to choose
        names = list(preds)
        common = preds[names[0]].index
        mean = np.mean([preds[n].loc[common, "predicted_age"] for n in names], axis=0)
        age = preds[names[0]].loc[common, "age"].to_numpy()
        is_dev = common.isin(split["development"])
        m, lo, hi = bootstrap_mae(age[is_dev], mean[is_dev])
        lm, llo, lhi = bootstrap_mae(age[~is_dev], mean[~is_dev])
        results["runs"]["mean(" + " + ".join(names) + ")"] = {
            "nested_mae": m, "nested_ci": [lo, hi], "locked_mae": lm, "locked_ci": [llo, lhi]}
        print(f"  {'mean of ' + ' + '.join(names):30s} nested {m:5.2f} [{lo:.2f}, {hi:.2f}]  "
              f"locked {lm:5.2f} [{llo:.2f}, {lhi:.2f}]")
    return preds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, default=Path("/tmp/brainage-ixi-prepared"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--features", default=",".join(FEATURES))
    parser.add_argument("--estimators", default=",".join(ESTIMATORS))
    parser.add_argument("--runs", default="",
                        help="presets trained on the protocol splits, e.g. "
                             "tissue_select,quickstart:repeats=1 ('+' joins overrides)")
    parser.add_argument("--skip-candidates", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from brainage.preprocessing.prepared import open_prepared
    from brainage.selection import bootstrap_mae, nested, select, stratified_folds

    args.out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    prepared = open_prepared(args.prepared)
    table = prepared.table.reset_index(drop=True)
    split = json.loads(LOCKED.read_text())
    ids = table["participant_id"]
    dev = np.flatnonzero(ids.isin(split["development"]).to_numpy())
    locked = np.flatnonzero(ids.isin(split["locked_test"]).to_numpy())
    y = table["age"].to_numpy(float)
    print(f"{len(dev)} development, {len(locked)} locked scans; {load_line()}", flush=True)

    results: dict = {}
    if args.runs:
        splits = protocol_splits(table, split, y, dev, args.out / "protocol_splits.json")
        run_presets(args.prepared, args.out, splits, args.runs.split(","), table, split, results)
    if args.skip_candidates:
        if args.json:
            args.json.write_text(json.dumps(results, indent=1) + "\n")
        return
    feats = args.features.split(",")
    mats = feature_matrices(prepared, args.out, feats)
    pairs = [(f, e) for f in feats for e in args.estimators.split(",")]
    ensembles = [(a, b) for a, b in (("voxels/ridge", "regions/ridge"),
                                     ("voxels/ridge", "regions/svr"),
                                     ("voxels/ridge", "regions_mod/ridge"))
                 if a in {f"{p}/{q}" for p, q in pairs} and b in {f"{p}/{q}" for p, q in pairs}]
    cands = make_candidates(mats, y, pairs, ensembles)

    outer = stratified_folds(y, dev, 5, seed=0)
    t0 = time.perf_counter()
    res = nested(cands, y, outer, inner_folds=5, seed=1)
    nested_s = time.perf_counter() - t0
    best, dev_scores = select(cands, y, dev, folds=5, seed=1)
    results.update({"candidates": {}, "chosen_per_outer_fold": res.chosen,
                    "locked_choice": best, "dev_inner_scores": dev_scores})
    print(f"\nnested CV on {len(dev)} development subjects (5 outer x 5 inner folds, "
          f"{nested_s / 60:.1f} min):")
    print(f"{'candidate':44s} {'nested MAE [95% CI]':>24s} {'r':>6s}  {'locked MAE [95% CI]':>24s}")
    for name, cand in cands.items():
        m, lo, hi = bootstrap_mae(y[dev], res.candidate_predictions[name][dev])
        pl = cand(dev, locked)
        lm, llo, lhi = bootstrap_mae(y[locked], pl)
        r = pearson(y[dev], res.candidate_predictions[name][dev])
        results["candidates"][name] = {"nested_mae": m, "nested_ci": [lo, hi], "nested_r": r,
                                       "locked_mae": lm, "locked_ci": [llo, lhi],
                                       "locked_r": pearson(y[locked], pl)}
        print(f"{name:44s} {m:6.2f} [{lo:5.2f}, {hi:5.2f}]        {r:6.3f}  "
              f"{lm:6.2f} [{llo:5.2f}, {lhi:5.2f}]", flush=True)
    m, lo, hi = bootstrap_mae(y[dev], res.predictions[dev])
    print(f"\nselection procedure, nested: MAE {m:.2f} [{lo:.2f}, {hi:.2f}], r "
          f"{pearson(y[dev], res.predictions[dev]):.3f}; chosen per outer fold: {res.chosen}")
    p_locked = cands[best](dev, locked)
    lm, llo, lhi = bootstrap_mae(y[locked], p_locked)
    print(f"selection procedure, locked: chose {best} on the development subjects; MAE "
          f"{lm:.2f} [{llo:.2f}, {lhi:.2f}], r {pearson(y[locked], p_locked):.3f}")
    results["procedure"] = {"nested_mae": m, "nested_ci": [lo, hi], "locked_mae": lm,
                            "locked_ci": [llo, lhi], "locked_r": pearson(y[locked], p_locked)}

    # bias correction and intervals from the procedure's nested out-of-fold predictions
    from brainage.evaluation.bias import BiasCorrector

    p_dev = res.predictions[dev]
    corr = BiasCorrector().fit(y[dev], p_dev)
    gap = p_locked - y[locked]
    cgap = corr.transform(y[locked], p_locked) - y[locked]
    slope = float(np.polyfit(y[locked], gap, 1)[0])
    print(f"\nbias (fitted on nested dev predictions, checked on locked): uncorrected gap "
          f"slope {slope:+.3f}, r(gap, age) {pearson(gap, y[locked]):+.3f}; corrected "
          f"r(gap, age) {pearson(cgap, y[locked]):+.3f}, mean corrected gap {cgap.mean():+.2f}")
    results["bias"] = {"uncorrected_slope": slope, "r_gap_age": pearson(gap, y[locked]),
                       "r_corrected_gap_age": pearson(cgap, y[locked])}
    print("\n90 % intervals (calibrated on nested dev predictions, checked on locked):")
    results["intervals"] = {}
    for name, fn in interval_methods(y[dev], p_dev).items():
        low, high = fn(p_locked)
        row = coverage_rows(y[locked], low, high)
        results["intervals"][name] = row
        t = " / ".join(f"{c:.2f}" for c in row["tertiles"])
        print(f"  {name:28s} cover {row['cover']:.3f}  tertiles {t}  width {row['width']:.1f} y")
    results["seconds"] = time.perf_counter() - t_start
    print(f"\ntotal {results['seconds'] / 60:.1f} min; {load_line()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
