"""Builders of synthetic predictions, evaluation folders and run folders (report tests)."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import image as mpimg

from brainage.io import write_json

N_BOOT = 60  # enough for intervals, fast
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def decode_png(png: bytes) -> np.ndarray:
    """PNG bytes -> (H, W, C) floats in [0, 1], checking the file is a real, drawn image."""
    assert png[:8] == PNG_MAGIC
    img = mpimg.imread(io.BytesIO(png), format="png")
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200
    assert img[..., :3].std() > 0.05, "figure looks blank"
    return img


def make_predictions(n: int = 80, seed: int = 0, sets: tuple[str, ...] = ("internal", "external"),
                     sites: str = "ABC", groups: bool = True) -> pd.DataFrame:
    """A predictions table with regression to the mean, sites, groups and some 2-session subjects."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n):
        patient = groups and s % 3 == 0
        a0 = rng.uniform(20, 80)
        for k in range(2 if s % 4 == 0 else 1):
            age = a0 + 2.0 * k
            pred = age - 0.3 * (age - 50) + 3.0 * patient + rng.normal(0, 4)
            row = {"participant_id": f"sub-{s:03d}", "session": f"ses-{k}",
                   "age": round(age, 2), "predicted_age": round(pred, 2), "sex": "FM"[s % 2],
                   "site": sites[s % len(sites)], "set": sets[0] if s % 5 else sets[-1]}
            if groups:
                row["group"] = "patient" if patient else "control"
            rows.append(row)
    return pd.DataFrame(rows)


def make_evaluation(folder: Path, df: pd.DataFrame | None = None) -> Path:
    """An evaluation folder written by the evaluation API."""
    from brainage.evaluation.pipeline import run_evaluation

    folder.parent.mkdir(parents=True, exist_ok=True)
    table = folder.parent / f"{folder.name}_predictions.tsv"
    (make_predictions() if df is None else df).to_csv(table, sep="\t", index=False)
    run_evaluation(table, folder, n_boot=N_BOOT, n_splits=5)
    return folder


def _run_metrics(df: pd.DataFrame, column: str) -> dict:
    from brainage.evaluation import metrics as m

    out = {}
    for name, rows in df.groupby("set"):
        y, p = rows["age"], rows[column]
        out[str(name)] = {"n": len(rows), **{k: getattr(m, k)(y, p) for k in (
            "mae", "rmse", "pearson_r", "r2", "mean_gap", "gap_slope", "spearman_gap_age")}}
    return out


def _model_card(info: dict, spec: dict, spec_hash: str, metrics: dict, bias: dict) -> dict:
    """A model card as ``brainage train`` writes it (see brainage.runs)."""
    return {
        "format": "brainage-model-card", "brainage_version": "0.1.0",
        "model": {"name": "sfcn", "kwargs": {"channels": [8, 16, 32]}, "members": ["."],
                  "kind": "models"},
        "training_data": {"scans": 75, "subjects": 60, "sites": ["A", "B", "C"],
                          "age_range": info["training_range"]},
        "preprocessing": {"spec": spec, "hash": spec_hash, "file": "preprocessing_spec.json"},
        "input": {"shape": info["input_shape"], "dtype": "float32 (stored float16)"},
        "training": {"loss": {"name": "soft_label"}, "optim": {"name": "adam", "lr": 0.001},
                     "epochs": 40, "batch_size": 8, "precision": "32", "seed": 0},
        "metrics": metrics, "bias_correction": bias,
        "intended_use": "Research use only; not for diagnosis.",
    }


def make_run(folder: Path, with_predictions: bool = True, prepared: Path | None = None) -> Path:
    """A run folder like ``brainage train`` writes (no weights: the report does not need them)."""
    from brainage import runs as rf
    from brainage.evaluation.bias import BiasCorrector
    from brainage.preprocessing.spec import PreprocessingSpec

    folder.mkdir(parents=True, exist_ok=True)
    df = make_predictions(n=60, seed=1, sets=("test", "val"), groups=False)
    val = df[df["set"] == "val"]
    corrector = BiasCorrector("beheshti", min_subjects=5).fit(
        val["age"], val["predicted_age"], subject_ids=val["participant_id"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df["corrected_age"] = corrector.transform(df["age"], df["predicted_age"])
    df["corrected_gap"] = df["corrected_age"] - df["age"]
    metrics = {"uncorrected": _run_metrics(df, "predicted_age"),
               "corrected": _run_metrics(df, "corrected_age"),
               "bias_correction": {"method": "beheshti", "fitted_on": "val",
                                   "formula": corrector.formula(),
                                   "note": "corrected metrics of the 'val' set are optimistic"}}
    spec = PreprocessingSpec.create()
    bias = {**corrector.to_dict(), "fitted_on": "val"}
    info = {"format": rf.FORMAT, "version": 1, "kind": "models", "members": ["."],
            "training_range": [20.0, 82.0], "spec_hash": spec.hash,
            "input_shape": [91, 109, 91], "model": "sfcn"}
    if prepared is not None:
        info["prepared"] = str(prepared)
    if with_predictions:
        df.to_csv(folder / rf.PREDICTIONS, sep="\t", index=False, na_rep="n/a")
    write_json(folder / rf.METRICS, metrics)
    write_json(folder / rf.BIAS, bias)
    write_json(folder / rf.PREPROCESSING, {"spec": spec.to_dict(), "hash": spec.hash,
                                           "recipe_hash": spec.recipe_hash})
    write_json(folder / rf.MODEL_CARD, _model_card(info, spec.to_dict(), spec.hash, metrics, bias))
    write_json(folder / rf.RUN_JSON, info)
    return folder


def make_qc(path: Path, df: pd.DataFrame, flagged: dict[str, str]) -> Path:
    """QC table: one row per scan of `df`, `flagged` maps participant ids to flags."""
    qc = df[["participant_id", "session"]].copy()
    qc["flags"] = [flagged.get(p, "") for p in qc["participant_id"]]
    qc["similarity"] = 0.5
    qc.to_csv(path, sep="\t", index=False, na_rep="n/a")
    return path


def read_json(path: Path) -> dict:
    """Parse a JSON file."""
    return json.loads(path.read_text())
