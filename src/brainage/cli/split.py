"""``brainage split``: make subject-level splits of a cohort and write them once as JSON."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``split`` command to `app`."""
    app.command("split")(split)


def split(
    source: str = typer.Argument(..., help="Cohort: BIDS folder, table, OpenBHB folder or "
                                           "cohort TSV."),
    out: Path = typer.Argument(..., help="Splits file to write, e.g. splits.json."),
    method: str = typer.Option("kfold", "--method", "-m",
                               help="kfold | holdout | sites | openbhb."),
    k: int = typer.Option(5, "--k", help="Number of folds (kfold)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    val: float | None = typer.Option(
        None, "--val", help="Validation fraction: of each fold's training subjects (kfold, "
                            "sites, openbhb; default 0) or of all subjects (holdout; 0.15)."),
    test: float = typer.Option(0.15, "--test", help="Test fraction (holdout)."),
    test_sites: str | None = typer.Option(
        None, "--test-sites", help="Comma-separated sites held out as test (sites)."),
    n_test_sites: int = typer.Option(
        1, "--n-test-sites", help="Sites drawn at random as test when --test-sites is not given."),
    stratify_site: bool = typer.Option(
        True, "--stratify-site/--no-stratify-site", help="Balance sites across roles."),
    age_bins: int | None = typer.Option(
        None, "--age-bins", help="Coarse age quantile bins (default: fine age-sorted dealing)."),
    split_map: str | None = typer.Option(
        None, "--split-map", help="openbhb: VALUE=ROLE,... for the 'split' column (ROLE empty "
                                  "leaves those rows out)."),
    force: bool = typer.Option(False, "--force", help="Remake the file if it exists."),
) -> None:
    """Make train/val/test splits of subjects and write them to OUT (an existing OUT wins)."""
    import brainage

    cohort = brainage.load_cohort(source, require_site=method == "sites", check_images=False)
    kept = out.exists() and not force
    splits = brainage.split(cohort, out, method, k=k, seed=seed, val=val, test=test,
                            test_sites=test_sites.split(",") if test_sites else None,
                            n_test_sites=n_test_sites, stratify_site=stratify_site,
                            age_bins=age_bins, split_map=split_map, force=force)
    typer.echo(f"{out} exists and fits the cohort; kept it (--force remakes it)." if kept
               else f"wrote {out}")
    typer.echo(splits.describe(cohort))
