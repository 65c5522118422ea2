"""Fit and write a run's out-of-distribution reference at the end of training.

Called by training (:func:`brainage.training.fit.train_cohort`) before ``run.json`` is
written, so a finished run always has it. For each member: the ``forward_features`` of the
scans it trained on, a low-rank PCA reference of them, and its threshold: the
:data:`~brainage.inference.ood.EMBEDDING_QUANTILE` quantile of those scans' own
out-of-fold distances (five-fold within the training scans). Plus the intensity statistics
of every training scan. No Lightning here: it uses the inference engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage.inference import ood

#: PCA components kept per member.
RANK = 10
#: Fewest training scans a member needs for an embedding reference.
MIN_SCANS = 3


def training_rows(table: pd.DataFrame, train_ids: list[str]) -> pd.DataFrame:
    """Scans with an age of the given training subjects (what a member was fitted on)."""
    keep = table["participant_id"].isin(train_ids) & table["age"].notna()
    return table[keep.to_numpy()].reset_index(drop=True)


def member_reference(model: Any, rows: pd.DataFrame, batch_size: int = 8,
                     device: str | None = None, seed: int = 0
                     ) -> tuple[ood.EmbeddingReference, dict[str, Any]] | None:
    """One member's reference and JSON record, or None (no features, too few scans)."""
    if not ood.has_features(model) or len(rows) < MIN_SCANS:
        return None
    z = ood.embeddings(model, rows, batch_size, device)  # (N, F)
    metric = "mahalanobis" if callable(getattr(model, "embed_table", None)) else "whitened"
    oof = ood.oof_distances(z, RANK, seed=seed, metric=metric)
    threshold = float(np.quantile(oof, ood.EMBEDDING_QUANTILE))
    ref = ood.EmbeddingReference(RANK, metric=metric).fit(z)
    return ref, {"rank": int(ref.components_.shape[0]),  # type: ignore[union-attr]
                 "metric": metric,
                 "residual_variance": ref.residual_variance_, "threshold": threshold,
                 "threshold_99": float(np.quantile(oof, 0.99)), "n_train_scans": len(rows),
                 "n_features": int(z.shape[1]),
                 "oof_distance_median": float(np.median(oof))}


def build_reference(members: list[tuple[str, Any, list[str]]], table: pd.DataFrame,
                    batch_size: int = 8, device: str | None = None) -> ood.OodReference:
    """The reference of a run.

    Args:
        members: ``(member name, model, training subject ids)`` per member.
        table: Every prepared scan (``participant_id``, ``age``, ``array_path``).
    """
    ref = ood.OodReference()
    records: dict[str, Any] = {}
    all_ids: set[str] = set()
    for name, model, ids in members:
        all_ids |= set(ids)
        fitted = member_reference(model, training_rows(table, ids), batch_size, device)
        if fitted is not None:
            ref.members[name], records[name] = fitted
            ref.thresholds[name] = records[name]["threshold"]
    rows = training_rows(table, sorted(all_ids))
    intensity = None
    if len(rows) >= MIN_SCANS:
        stats = ood.table_intensity(rows)
        ref.intensity = ood.IntensityReference().fit(stats)
        intensity = {"stats": list(ood.INTENSITY_STATS), "n_train_scans": len(rows),
                     "median": ref.intensity.median_.tolist(),  # type: ignore[union-attr]
                     "scale": ref.intensity.scale_.tolist(),  # type: ignore[union-attr]
                     "z_threshold": ood.INTENSITY_Z_MAX}
    ref.info = {"format": ood.FORMAT, "version": 1, "members": records,
                "embedding": {"quantile": ood.EMBEDDING_QUANTILE, "flag_above": 1.0,
                              "score": "mean over members of distance / member threshold"},
                "intensity": intensity}
    return ref


def write_reference(run: Path, members: list[tuple[str, Any, list[str]]],
                    table: pd.DataFrame, batch_size: int = 8) -> ood.OodReference:
    """Build the reference and write it into the run folder (before ``run.json``)."""
    ref = build_reference(members, table, batch_size)
    ref.save(run)
    return ref
