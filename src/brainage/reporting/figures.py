"""Report figures: each function draws one figure and returns it as PNG bytes.

Figures are drawn on :class:`matplotlib.figure.Figure` objects rendered by the Agg canvas
directly, so no pyplot state (and no display) is involved and the functions are safe to
call from any thread. Inputs are predictions tables (the columns of
:mod:`brainage.data.predictions`); rows without an age are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from brainage.drawing import new_figure, png
from brainage.errors import InputError

#: Colours of uncorrected and bias-corrected values (colour-blind safe pair).
UNCORRECTED = "#0072B2"
CORRECTED = "#E69F00"
#: Colours of the sets in the age histogram (the rest of the Okabe-Ito palette).
SET_COLOURS = ("#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")

__all__ = [
    "age_histogram", "predicted_vs_age", "gap_vs_age", "site_boxplots", "age_binned_mae",
    "has_correction",
]


def _with_age(df: pd.DataFrame, extra: Sequence[str] = ()) -> pd.DataFrame:
    missing = [c for c in ("age", "predicted_age", *extra) if c not in df.columns]
    if missing:
        raise InputError(f"cannot draw the figure: the predictions table has no column "
                            f"{missing[0]!r} (columns: {list(df.columns)}).")
    rows = df[df["age"].notna() & df["predicted_age"].notna()]
    if rows.empty:
        raise InputError("cannot draw the figure: no row has both an age and a prediction.")
    return rows


def has_correction(df: pd.DataFrame) -> bool:
    """Whether `df` holds bias-corrected predictions for some rows with an age."""
    return "corrected_age" in df.columns and bool(
        df.loc[df["age"].notna(), "corrected_age"].notna().any())


def _point_size(n: int) -> float:
    return float(np.clip(600 / max(n, 1) ** 0.7, 4, 40))


def age_histogram(df: pd.DataFrame, bins: int = 20) -> bytes:
    """Histogram of chronological ages, stacked by ``set`` when the table has one."""
    rows = df[df["age"].notna()] if "age" in df.columns else df.iloc[:0]
    if rows.empty:
        raise InputError("cannot draw the age histogram: no row has an age.")
    fig = new_figure(6.4, 3.6)
    ax = fig.add_subplot()
    if "set" in rows.columns and rows["set"].notna().any():
        groups = rows.groupby(rows["set"].fillna("n/a").astype(str), sort=True)["age"]
        labels, values = zip(*[(str(k), v.to_numpy(float)) for k, v in groups], strict=True)
        colours = [SET_COLOURS[i % len(SET_COLOURS)] for i in range(len(labels))]
        ax.hist(list(values), bins=bins, stacked=True, label=list(labels), color=colours,
                edgecolor="white")
        ax.legend(title="set", frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    else:
        ax.hist(rows["age"].to_numpy(float), bins=bins, color=UNCORRECTED, edgecolor="white")
    ax.set_xlabel("chronological age (years)")
    ax.set_ylabel("scans")
    ax.set_title(f"Age distribution (n = {len(rows)})")
    return png(fig)


def predicted_vs_age(df: pd.DataFrame) -> bytes:
    """Predicted vs chronological age with the identity line (corrected values too)."""
    rows = _with_age(df)
    fig = new_figure(5.6, 5.2)
    ax = fig.add_subplot()
    age, size = rows["age"].to_numpy(float), _point_size(len(rows))
    ax.scatter(age, rows["predicted_age"].to_numpy(float), s=size, alpha=0.7, c=UNCORRECTED,
               label="predicted (uncorrected)", edgecolors="none")
    values = [age, rows["predicted_age"].to_numpy(float)]
    if has_correction(rows):
        corrected = rows["corrected_age"].to_numpy(float)
        ax.scatter(age, corrected, s=size, alpha=0.7, c=CORRECTED, marker="^",
                   label="bias-corrected", edgecolors="none")
        values.append(corrected[np.isfinite(corrected)])
    lo, hi = float(min(v.min() for v in values)), float(max(v.max() for v in values))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.3", lw=1, ls="--",
            label="identity (y = x)")
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal")
    ax.set_xlabel("chronological age (years)")
    ax.set_ylabel("predicted brain age (years)")
    ax.set_title("Predicted vs chronological age")
    ax.legend(frameon=False, loc="upper left")
    return png(fig)


def _gap_panel(ax: Any, age: np.ndarray, gap: np.ndarray, colour: str, title: str) -> None:
    ok = np.isfinite(gap)
    age, gap = age[ok], gap[ok]
    ax.scatter(age, gap, s=_point_size(len(age)), alpha=0.7, c=colour, edgecolors="none")
    ax.axhline(0.0, color="0.3", lw=1, ls="--")
    if len(age) > 1 and np.ptp(age) > 0:
        slope, intercept = np.polyfit(age, gap, 1)
        xs = np.array([age.min(), age.max()])
        ax.plot(xs, slope * xs + intercept, color="black", lw=1.6,
                label=f"fit: slope {slope:+.3f} per year")
        ax.legend(frameon=False, loc="upper right")
    ax.set_title(title)
    ax.set_xlabel("chronological age (years)")


def gap_vs_age(df: pd.DataFrame) -> bytes:
    """Brain-age gap vs age with least-squares lines, before and (if any) after correction."""
    rows = _with_age(df)
    age = rows["age"].to_numpy(float)
    gap = rows["predicted_age"].to_numpy(float) - age
    corrected = has_correction(rows)
    fig = new_figure(10.0 if corrected else 5.6, 4.4)
    axes = fig.subplots(1, 2 if corrected else 1, sharey=True, squeeze=False)[0]
    _gap_panel(axes[0], age, gap, UNCORRECTED, "Gap before correction")
    if corrected:
        cgap = rows["corrected_age"].to_numpy(float) - age
        _gap_panel(axes[1], age, cgap, CORRECTED, "Gap after correction")
    axes[0].set_ylabel("brain-age gap, predicted − age (years)")
    return png(fig)


def site_boxplots(df: pd.DataFrame) -> bytes:
    """Box plots of the gap per site, uncorrected and (if any) corrected side by side."""
    rows = _with_age(df, ["site"])
    rows = rows[rows["site"].notna()]
    if rows.empty:
        raise InputError("cannot draw the per-site box plots: no row has a site.")
    sites = sorted(rows["site"].astype(str).unique())
    site = rows["site"].astype(str).to_numpy()
    versions = [("uncorrected", rows["predicted_age"] - rows["age"], UNCORRECTED)]
    if has_correction(rows):
        versions.append(("corrected", rows["corrected_age"] - rows["age"], CORRECTED))
    fig = new_figure(float(np.clip(0.7 * len(sites) * len(versions) + 2.0, 5.6, 10.0)), 4.4)
    ax = fig.add_subplot()
    width = 0.8 / len(versions)
    for k, (label, gap, colour) in enumerate(versions):
        values = gap.to_numpy(float)
        data = [values[(site == s) & np.isfinite(values)] for s in sites]
        pos = np.arange(len(sites)) + (k - (len(versions) - 1) / 2) * width
        parts = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True,
                           manage_ticks=False, flierprops={"markersize": 3},
                           medianprops={"color": "black"})
        for box in parts["boxes"]:
            box.set(facecolor=colour, alpha=0.75)
        ax.plot([], [], color=colour, lw=8, alpha=0.75, label=label)
    ax.axhline(0.0, color="0.3", lw=1, ls="--")
    counts = rows.groupby(site).size()
    ax.set_xticks(np.arange(len(sites)), [f"{s}\n(n={counts[s]})" for s in sites])
    ax.set_xlabel("site")
    ax.set_ylabel("brain-age gap (years)")
    ax.set_title("Brain-age gap per site")
    ax.legend(frameon=False)
    return png(fig)


def _bar_values(bins: list[dict[str, Any]], version: str) -> tuple[np.ndarray, np.ndarray]:
    est, err = [], []
    for b in bins:
        r = (b.get(version) or {}).get("mae") or {}
        e = r.get("estimate")
        est.append(np.nan if e is None else float(e))
        lo, hi = r.get("ci_low"), r.get("ci_high")
        err.append([0.0, 0.0] if e is None or lo is None or hi is None
                   else [max(e - lo, 0.0), max(hi - e, 0.0)])
    return np.array(est), np.array(err).T.reshape(2, -1)


def age_binned_mae(bins: list[dict[str, Any]]) -> bytes:
    """Bar chart of the MAE per age bin, with interval whiskers where present.

    Args:
        bins: Entries as in ``metrics.json`` (``sets.<name>.age_bins``): ``bin``, ``n`` and
            ``uncorrected``/``corrected`` holding ``{"mae": {"estimate", "ci_low",
            "ci_high"}}``.
    """
    if not bins:
        raise InputError("cannot draw the age-binned MAE: no age bin has data.")
    versions = [(v, c) for v, c in (("uncorrected", UNCORRECTED), ("corrected", CORRECTED))
                if any(v in b for b in bins)]
    fig = new_figure(float(np.clip(0.6 * len(bins) * len(versions) + 2.0, 5.6, 10.0)), 4.0)
    ax = fig.add_subplot()
    width = 0.8 / max(len(versions), 1)
    for k, (version, colour) in enumerate(versions):
        est, err = _bar_values(bins, version)
        pos = np.arange(len(bins)) + (k - (len(versions) - 1) / 2) * width
        ax.bar(pos, est, width=width * 0.95, color=colour, alpha=0.85, label=version,
               yerr=err, capsize=3, ecolor="0.25")
    ax.set_xticks(np.arange(len(bins)), [f"{b['bin']}\n(n={b['n']})" for b in bins])
    ax.set_xlabel("age bin (years)")
    ax.set_ylabel("MAE (years)")
    ax.set_title("Mean absolute error per age bin")
    ax.legend(frameon=False)
    return png(fig)
