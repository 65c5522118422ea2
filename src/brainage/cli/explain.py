"""``brainage explain``: voxelwise explanation maps of a run's predictions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from brainage.cli.scan_options import jobs_option, progress_arg, progress_option

if TYPE_CHECKING:
    from brainage.inference.explain import Explanation


def register(app: typer.Typer) -> None:
    """Add the ``explain`` command to `app`."""

    @app.command("explain")
    def explain(
        run_dir: Path = typer.Argument(..., help="Run folder written by brainage train."),
        scans: list[Path] = typer.Argument(
            ..., help="Raw T1w NIfTI files or DICOM folders (prepared with the run's spec) "
                      "or prepared .npy arrays on the run's grid."),
        output: Path = typer.Option(..., "-o", "--output", help="Derivatives folder to write."),
        method: str = typer.Option(
            "auto", "--method", help="auto (ig for networks, linear contributions for "
            "classical models), ig (integrated gradients), occlusion, smoothgrad or linear."),
        steps: int = typer.Option(32, "--steps", min=1,
                                  help="IG path points / SmoothGrad samples."),
        batch: int = typer.Option(4, "--batch", min=1,
                                  help="Volumes per forward pass (lower it to save memory)."),
        patch: int = typer.Option(8, "--patch", min=1, help="Occlusion patch size (voxels)."),
        sex: str | None = typer.Option(None, "--sex", help="F or M, for models that use sex."),
        device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: auto)."),
        dicom_series: str | None = typer.Option(
            None, "--dicom-series", help="Series (number or UID) of each DICOM folder "
            "(default: its T1w one)."),
        jobs: int | None = jobs_option(),
        progress: bool = progress_option(),
    ) -> None:
        """Write explanation maps (template grid and native space) and a region table per scan.

        Networks get saliency maps; linear classical models (ridge, gpr) exact linear
        contributions; a stack the weighted sum of its members' maps (see docs/explain.md).

        Files follow BIDS derivatives naming:
        sub-<label>[_ses-<label>]_space-<template>_res-<r>_desc-saliency_T1w.nii.gz,
        ..._space-T1w_desc-saliency_T1w.nii.gz and ..._desc-saliency_regions.tsv.

        Scans run in --jobs worker processes (the run is loaded once per worker). A scan
        that cannot be explained is named with the reason and the others go on. Exit status
        0 when every scan is explained, 1 when some are not, 2 on a usage error.
        """
        import brainage
        from brainage.inference.explain import FailedScan

        results = brainage.explain(run_dir, scans, output, method, steps=steps, batch=batch,
                                   patch=patch, sex=sex, device=device,
                                   dicom_series=dicom_series, jobs=jobs,
                                   progress=progress_arg(progress))
        failed = [r for r in results if isinstance(r, FailedScan)]
        for scan, result in zip(scans, results, strict=True):
            if not isinstance(result, FailedScan):
                typer.echo(summary(scan, result))
        for result in failed:
            typer.echo(f"not explained  {result.scan}: {result.error}")
        if failed:
            raise typer.Exit(1)


def summary(scan: Path, result: Explanation) -> str:
    """One line per scan: predicted age, the top region and the written template map."""
    regions = result.regions
    top = regions[regions["kind"] == "region"].sort_values("abs_fraction", ascending=False)
    where = (f"; top region {top.iloc[0]['name']} ({top.iloc[0]['abs_fraction']:.0%})"
             if len(top) and top["abs_fraction"].notna().any() else "")
    return f"{scan.name}: predicted age {result.prediction:.1f}{where} -> {result.files['template']}"
