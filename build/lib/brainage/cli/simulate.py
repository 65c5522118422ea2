"""``brainage simulate OUT``: write the synthetic aging cohort as a BIDS dataset."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command to `app`."""
    app.command("simulate")(simulate)


def simulate(
    out: Path = typer.Argument(..., help="Folder to write the BIDS dataset into (new or empty)."),
    n: int = typer.Option(200, "--n", help="Number of subjects."),
    sites: int = typer.Option(4, "--sites", help="Number of acquisition sites."),
    seed: int = typer.Option(0, "--seed", help="Master seed; the same seed gives the same files."),
    voxel_size: float = typer.Option(2.0, "--voxel-size", help="Resolution in mm (1 to 8)."),
    sessions: int = typer.Option(1, "--sessions", help="Sessions per subject (longitudinal)."),
    interval: float = typer.Option(2.0, "--interval", help="Years between sessions."),
    age_min: float = typer.Option(20.0, "--age-min", help="Youngest age at the first session."),
    age_max: float = typer.Option(85.0, "--age-max", help="Oldest age at the first session."),
    confound: float = typer.Option(
        0.3, "--confound", help="0 = sites share the age range; 1 = disjoint age range per site."),
    gap_sd: float = typer.Option(3.0, "--gap-sd", help="SD (years) of the brain-age gap."),
    patient_fraction: float = typer.Option(
        0.25, "--patient-fraction", help="Fraction of subjects in the patient group."),
    patient_effect: float = typer.Option(
        5.0, "--patient-effect", help="Years added to patients' brain age."),
    patient_rate: float = typer.Option(
        1.5, "--patient-rate", help="Patients' brain-age years per year between sessions."),
    site_effects: float = typer.Option(
        1.0, "--site-effects", help="Strength of scanner effects (0 = none)."),
    variability: float = typer.Option(
        1.0, "--variability", help="Strength of inter-subject anatomical variability."),
    site_contrast: float = typer.Option(
        1.0, "--site-contrast", help="Multiplies the per-site contrast (gamma) spread."),
    site_intensity: float = typer.Option(
        1.0, "--site-intensity", help="Multiplies the per-site intensity-scale spread (0-3)."),
    site_noise: float = typer.Option(1.0, "--site-noise", help="Multiplies the per-site noise."),
    site_bias: float = typer.Option(
        1.0, "--site-bias", help="Multiplies the per-site bias-field amplitude."),
    site_ages: str | None = typer.Option(
        None, "--site-ages",
        help='First-session age range per site, e.g. "6-20,20-40,60-85" (replaces '
             "--age-min/--age-max/--confound)."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Worker processes (same files for any)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty OUT."),
    masks: bool = typer.Option(
        False, "--masks", help="Also write true brain masks to derivatives/simulation."),
) -> None:
    """Simulate a synthetic aging cohort (MNI152-based T1w heads) as a BIDS dataset.

    The true brain ages and site parameters go to OUT/derivatives/simulation/.
    """
    import time

    import brainage

    start = time.perf_counter()
    path = brainage.simulate(
        out, n=n, sites=sites, seed=seed, jobs=jobs, overwrite=overwrite, masks=masks,
        progress=_progress, voxel_size=voxel_size, sessions=sessions, interval=interval,
        age_min=age_min, age_max=age_max, confound=confound, gap_sd=gap_sd,
        patient_fraction=patient_fraction, patient_effect=patient_effect,
        patient_rate=patient_rate, site_effects=site_effects, variability=variability,
        site_contrast=site_contrast, site_intensity=site_intensity, site_noise=site_noise,
        site_bias=site_bias, site_ages=site_ages,
    )
    seconds = time.perf_counter() - start
    typer.echo(f"Wrote {path}")
    typer.echo(
        f"{n} subjects x {sessions} session(s) = {n * sessions} T1w scans, "
        f"{sites} site(s), {voxel_size:g} mm, seed {seed}, "
        f"in {seconds:.1f} s; ground truth in {path / 'derivatives' / 'simulation'}"
    )


def _progress(done: int, total: int) -> None:
    """Report every tenth of the way, on stderr."""
    if done == total or done % max(1, total // 10) == 0:
        typer.echo(f"  simulated {done}/{total} subjects", err=True)
