"""``brainage report``: one self-contained HTML page from a run or an evaluation folder.

Collect what the folder holds (:func:`~brainage.reporting.sources.collect_inputs`), turn it
into a context of strings and base64 PNGs, render the Jinja2 template
``templates/report.html.j2`` and write it atomically. The page references no external
resource and needs no JavaScript; every section without data says "not available".
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage import __version__
from brainage.errors import BrainAgeError
from brainage.io import atomic_path
from brainage.reporting import figures as F
from brainage.reporting import tables as T
from brainage.reporting.qc import qc_summary
from brainage.reporting.sources import ReportInputs, collect_inputs

TEMPLATE = "report.html.j2"
TEMPLATE_DIR = Path(__file__).parent / "templates"
DISCLAIMER = "Research use only; not for diagnosis or any clinical decision."
#: Correction sources whose metrics a stored ``bias_correction.json`` describes.
_STORED_SOURCES = ("supplied", "table", "fit_on", None)
#: Model-card keys shown elsewhere in the report (or too long to show).
_CARD_SKIP = {"format", "preprocessing", "metrics", "intended_use", "brainage_version"}


@dataclass
class ReportFigure:
    """One embedded figure: title, caption, PNG as a data URI, or why it is missing."""

    key: str
    title: str
    caption: str
    data_uri: str | None = None
    missing: str | None = None
    wide: bool = False


#: Figures drawn from the predictions table: key, title, caption, drawing function.
PREDICTION_FIGURES: tuple[tuple[str, str, str, Callable[[pd.DataFrame], bytes]], ...] = (
    ("age_histogram", "Age distribution", "Chronological ages of the scans.", F.age_histogram),
    ("predicted_vs_age", "Predicted vs chronological age",
     "Dashed line: identity (perfect prediction). Orange: bias-corrected.", F.predicted_vs_age),
    ("gap_vs_age", "Brain-age gap vs age, before and after correction",
     "Solid lines: least-squares fits. A negative slope before correction is the usual "
     "regression to the mean.", F.gap_vs_age),
    ("site_boxplots", "Brain-age gap per site", "Gap distribution per site.", F.site_boxplots),
)


def png_data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for embedding a PNG in the page."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure(fig: ReportFigure, draw: Callable[[], bytes]) -> ReportFigure:
    try:
        fig.data_uri = png_data_uri(draw())
    except BrainAgeError as exc:
        fig.missing = f"Not available: {exc}"
    return fig


def build_figures(inputs: ReportInputs) -> list[ReportFigure]:
    """Every figure the inputs allow; the others carry the reason they are missing."""
    df = inputs.predictions
    n_sites = 0 if df is None or "site" not in df else int(df["site"].nunique())
    out = []
    for key, title, caption, draw in PREDICTION_FIGURES:
        fig = ReportFigure(key, title, caption,
                           wide=key == "gap_vs_age" or (key == "site_boxplots" and n_sites > 4))
        if df is None:
            fig.missing = "Not available: no predictions table in this folder."
            out.append(fig)
        else:
            out.append(_figure(fig, partial(draw, df)))
    overall = ((inputs.metrics or {}).get("sets") or {}).get("overall") or {}
    bins = overall.get("age_bins") or []
    fig = ReportFigure("age_binned_mae", "MAE per age bin",
                       "Whiskers: bootstrap intervals (when computed).", wide=True)
    if not bins:
        fig.missing = "Not available: no age-binned metrics."
        out.append(fig)
    else:
        out.append(_figure(fig, partial(F.age_binned_mae, bins)))
    if inputs.change_map is not None:
        out.append(_figure(ReportFigure(
            "age_change_map", "Age-related regions (TGB-GAN latent interpolation)",
            f"Voxelwise change of brains decoded along the path from young to old latents "
            f"({inputs.change_map.name}), over the mean real image.", wide=True),
            partial(_change_map_png, inputs.change_map)))
    return out


def _change_map_png(path: Path) -> bytes:
    """The figure saved beside a change map, or one drawn from the NIfTI."""
    png = path.with_name(path.name.replace(".nii.gz", ".png"))
    if png.is_file():
        return png.read_bytes()
    import nibabel as nib

    from brainage.drawing import change_map_figure

    return change_map_figure(np.asarray(nib.load(path).dataobj, dtype=np.float64))


def _card_sections(card: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not card:
        return []
    out = []
    for key, value in card.items():
        if key in _CARD_SKIP or value is None:
            continue
        if key == "bias_correction" and isinstance(value, dict):
            value = _bias_summary(value)
        out.append({"title": key.replace("_", " ").capitalize(), "rows": T.flatten(value)})
    return out


def _bias_summary(bias: dict[str, Any]) -> dict[str, Any]:
    params = bias.get("params") if isinstance(bias.get("params"), dict) else {}
    out = {"method": params.get("method", bias.get("method")), "formula": bias.get("formula"),
           "per_site": params.get("per_site"), "fitted_on": bias.get("fitted_on"),
           "n_subjects": bias.get("n_subjects"), "age_range": bias.get("age_range"),
           "fallback_sites": bias.get("fallback_sites") or None}
    return {k: v for k, v in out.items() if v is not None}


def _preprocessing(prep: dict[str, Any] | None) -> dict[str, Any] | None:
    if not prep:
        return None
    spec = prep.get("spec", prep) if isinstance(prep.get("spec"), dict) else prep
    spec = {k: v for k, v in spec.items() if k not in ("hash", "recipe_hash")}
    return {"hash": prep.get("hash") or prep.get("spec_hash") or T.NOT_AVAILABLE,
            "recipe_hash": prep.get("recipe_hash"), "rows": T.flatten(spec)}


def _correction(inputs: ReportInputs) -> dict[str, Any]:
    info = (inputs.metrics or {}).get("correction") or {}
    # A stored correction describes these metrics unless they were cross-fitted (or none).
    bias = (inputs.bias_correction or {}) if info.get("source") in _STORED_SOURCES else {}
    return {"description": info.get("description"), "available": bool(info.get("available")),
            "note": info.get("note"), "formula": bias.get("formula"),
            "fitted_on": bias.get("fitted_on"), "n_subjects": bias.get("n_subjects")}


def _group_warnings(group_analysis: dict[str, Any] | None) -> list[str]:
    found = [w for d in ((group_analysis or {}).get("difference") or {}).values()
             for w in d.get("warnings") or []]
    return list(dict.fromkeys(found))


def build_context(inputs: ReportInputs, title: str | None = None) -> dict[str, Any]:
    """Everything the template shows, as strings, rows and data URIs."""
    metrics = inputs.metrics or {}
    level = metrics.get("level")
    return {
        "title": title or f"Brain-age report: {inputs.source.resolve().name}",
        "source": str(inputs.source), "kind": inputs.kind, "version": __version__,
        "generated": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "disclaimer": DISCLAIMER,
        "intended_use": (inputs.model_card or {}).get("intended_use"),
        "predictions_file": inputs.predictions_file,
        "data_summary": None if inputs.predictions is None else T.data_summary(inputs.predictions),
        "figures": build_figures(inputs),
        "metrics_origin": inputs.metrics_origin,
        "level": f"{round(100 * level)}%" if isinstance(level, int | float) else None,
        "n_boot": metrics.get("n_boot"),
        "metric_sets": T.metric_sections(metrics) if metrics else [],
        "correction": _correction(inputs),
        "groups": T.group_rows(inputs.group_analysis),
        "classification": T.classification_rows(inputs.group_analysis),
        "group_warnings": _group_warnings(inputs.group_analysis),
        "longitudinal": T.longitudinal_rows(metrics.get("longitudinal")),
        "follow_up": (metrics.get("longitudinal") or {}).get("follow_up_years_mean"),
        "qc": None if inputs.qc is None else qc_summary(inputs.qc),
        "qc_origin": inputs.qc_origin,
        "model_card": _card_sections(inputs.model_card),
        "preprocessing": _preprocessing(inputs.preprocessing),
        "notes": list(inputs.notes) + list(metrics.get("notes") or []),
    }


def render_html(context: dict[str, Any]) -> str:
    """Render the report template (HTML-escaped values)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    return env.get_template(TEMPLATE).render(**context)


def write_report(source: str | os.PathLike[str], output: str | os.PathLike[str],
                 qc: str | os.PathLike[str] | None = None, title: str | None = None,
                 n_boot: int = 1000, seed: int = 0) -> Path:
    """Write the HTML report of a run or evaluation folder; the arguments are those of
    :func:`brainage.report`, which calls this. Returns the written file.

    Raises:
        BrainAgeError: nothing reportable in `source`, or `output` is a folder.
    """
    out = Path(output)
    if out.is_dir():
        raise BrainAgeError(f"{out} is a folder; give the HTML file to write, e.g. "
                            f"{out / 'report.html'}.")
    inputs = collect_inputs(source, qc=qc, n_boot=n_boot, seed=seed)
    html = render_html(build_context(inputs, title))
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return out
