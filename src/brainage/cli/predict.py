"""``brainage predict``: brain age of new scans with a trained run folder."""

from __future__ import annotations

from pathlib import Path

import typer

from brainage.cli.scan_options import (
    array_parallelism_option,
    cluster_option,
    executor_option,
    jobs_option,
    partition_option,
    progress_arg,
    progress_option,
    scale_out,
    shards_option,
)


def register(app: typer.Typer) -> None:
    """Add the ``predict`` command to `app`."""

    @app.command("predict")
    def predict(
        items: list[Path] = typer.Argument(
            ..., metavar="[RUN] INPUTS...",
            help="A run folder written by brainage train (optional: without one, or with "
                 "--model, the bundled model is used), then a prepared cohort, a cohort "
                 "source (BIDS, table), NIfTI files or folders of DICOM files."),
        model: Path | None = typer.Option(
            None, "--model", help="Run folder to predict with (instead of a first argument)."),
        output: Path = typer.Option(..., "-o", "--output", help="Predictions TSV to write."),
        batch_size: int = typer.Option(8, "--batch-size", min=1, help="Scans per batch."),
        device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: auto)."),
        cohort: Path | None = typer.Option(
            None, "--cohort", help="Ages/sex/site for a prepared input without cohort.tsv."),
        dicom_series: str | None = typer.Option(
            None, "--dicom-series", help="SeriesNumber or SeriesInstanceUID of the series to "
            "use in each DICOM folder (default: the T1w one, by SeriesDescription/ProtocolName)."),
        allow_library_drift: bool = typer.Option(
            False, "--allow-library-drift",
            help="Accept prepared inputs whose spec differs only in library versions."),
        jobs: int | None = jobs_option(),
        progress: bool = progress_option(),
        shard: str | None = typer.Option(
            None, "--shard", help="Predict only block k of N of the inputs (1-based), e.g. "
            "3/8, for hand-written array jobs; --executor does the split and merge itself."),
        executor: str | None = executor_option(),
        shards: int | None = shards_option(),
        partition: str | None = partition_option(),
        array_parallelism: int | None = array_parallelism_option(),
        cluster: Path | None = cluster_option(),
    ) -> None:
        """Predict age for INPUTS; writes participant_id, session, age, predicted_age, gap.

        Without a run folder (first argument or --model) the bundled model predicts, and
        says what it is valid for.

        Raw scans are preprocessed with the run's own preprocessing spec; a prepared cohort
        must have been prepared with that spec. A DICOM folder is converted with dcm2niix;
        its header gives the age and sex (column 'age_source'). Ages outside the training
        range are flagged in 'ood', QC problems in 'qc_flags'; 'embedding_distance' and
        'intensity_z' score how unlike the training scans a scan is, and 'ood_flags' joins
        every warning. Scans run in --jobs worker processes (the model is loaded once per
        worker), with bit-identical results whatever --jobs. Every input scan gets a row: one
        that cannot be predicted has its reason in 'error'. OUTPUT.json (next to the table)
        records the run, the counts and what the predictions lack. Exit status 0 when
        every scan is predicted, 1 when some are not, 2 on a usage error.
        """
        import warnings

        from brainage import Predictor
        from brainage.cluster import ShardsFailed
        from brainage.errors import InputError
        from brainage.inference import outputs, sharded
        from brainage.preprocessing import parse_shard

        outputs.check_output(output)  # before any scan is preprocessed
        run_dir, inputs = split_run(items, model)
        scaled = scale_out(executor, shards, partition, array_parallelism, cluster, jobs)
        if scaled is not None and shard:
            raise InputError(f"--shard {shard} and --executor {executor} both given. Fix: "
                             "--executor splits into --shards itself; drop --shard.")
        block = parse_shard(shard) if shard else None
        note = validity_note(run_dir)
        if note is not None:
            typer.echo(f"using the {note}", err=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            predictor = Predictor.from_run(run_dir, device=device, batch_size=batch_size,
                                           allow_library_drift=allow_library_drift)
            if scaled is None:
                table = predictor.predict(inputs, cohort, dicom_series=dicom_series,
                                          jobs=jobs, progress=progress_arg(progress),
                                          **({"shard": block} if block else {}))
            else:
                kind, profile, n = scaled
                typer.echo(f"submitting {n} shard(s) to the {kind} executor", err=True)
                try:
                    table = sharded.predict_sharded(
                        predictor, inputs, output, shards=n, executor=kind, profile=profile,
                        cohort=cohort, dicom_series=dicom_series,
                        jobs=jobs if jobs is not None else profile.cpus_per_task)
                except ShardsFailed as exc:
                    typer.echo(f"error: {exc}", err=True)
                    raise typer.Exit(1) from exc
        for w in caught:
            if not issubclass(w.category, outputs.NoteWarning):  # those are listed below
                typer.echo(f"warning: {w.message}", err=True)
        outputs.write_outputs(output, table, predictor.run_dir, predictor.notes,
                              predictor.ood_info())
        if scaled is not None:
            sharded.clean(sharded.shard_folder(output))
        typer.echo(summary(table, output, predictor.notes, predictor.training_range))
        if "error" in table and table["error"].notna().any():
            raise typer.Exit(1)


def split_run(items: list[Path], model: Path | None) -> tuple[Path, list[Path]]:
    """(run folder, inputs): `model`, else a first item holding ``run.json``, else the
    bundled model.

    Raises:
        BrainAgeError: no run given and the installation bundles none, or nothing to predict.
    """
    from brainage.errors import InputError
    from brainage.inference.bundled import default_model_dir
    from brainage.runs import PICKLE_SUFFIXES, refuse_weights_file

    if model is not None:
        run, inputs = model, list(items)
    elif items and items[0].suffix.lower() in PICKLE_SUFFIXES and items[0].is_file():
        raise InputError(refuse_weights_file(items[0]))  # a model.pt meant as the run
    elif items and (items[0] / "run.json").is_file():
        run, inputs = items[0], list(items[1:])
    else:
        found = default_model_dir()
        if found is None:
            raise InputError(f"{items[0] if items else 'nothing'} is not a run folder (no "
                             "run.json), and this installation has no bundled model. Fix: "
                             "give a run folder written by `brainage train` first.")
        run, inputs = found, list(items)
    if not inputs:
        raise InputError(f"nothing to predict with {run}. Fix: give scans, a cohort or a "
                         "prepared folder after the run folder.")
    return run, inputs


def validity_note(run: Path) -> str | None:
    from brainage.inference.bundled import validity_note as note

    return note(run)


def summary(table: object, output: Path, notes: list[str] | None = None,
            training_range: list[float] | None = None) -> str:
    """Counts, scans not predicted, flags, notes and (with ages) the MAE of the predictions."""

    import numpy as np
    import pandas as pd

    from brainage.inference.outputs import sidecar_path

    t = table  # a pandas DataFrame
    failed = t["error"].notna() if "error" in t else t["participant_id"].isna()  # type: ignore[index,operator]
    done = t[~failed]  # type: ignore[index]
    lines = [f"Wrote {len(done)} prediction(s) of {len(t)} scan(s) to {output}"  # type: ignore[arg-type]
             + (f"; {int(failed.sum())} not predicted (column 'error')" if failed.any() else "")]
    for _, row in t[failed].iterrows():  # type: ignore[index]
        ses = "" if pd.isna(row.get("session")) else f" {row['session']}"
        lines.append(f"  not predicted  {row['participant_id']}{ses}: {row['error']}")
    known = done["age"].notna()
    if known.any():
        mae = float(np.mean(np.abs(done.loc[known, "gap"])))
        lines.append(f"  with age: {int(known.sum())}, MAE {mae:.2f} y")
    ages = (f"outside the training ages {training_range[0]:.0f}-{training_range[1]:.0f}: "
            "predictions are pulled toward that range (README, Limitations)"
            if training_range else "outside the training age range")
    for col, what in (("ood", ages), ("qc_flags", "with QC flags"),
                      ("ood_flags", "with any warning")):
        n = int(done[col].notna().sum()) if col in done else 0
        if n:
            lines.append(f"  {n} {what} (column '{col}')")
    flags = done["ood_flags"].dropna().str.split(";").explode() if "ood_flags" in done \
        else pd.Series([], dtype=object)
    for flag in ("embedding_distance", "intensity_unusual"):
        if (flags == flag).any():
            lines.append(f"  {int((flags == flag).sum())} flagged {flag} (unlike the "
                         "training scans; see OUTPUT.json 'columns')")
    lines += [f"  note: {note}" for note in notes or []]
    lines.append(f"  details: {sidecar_path(output)}")
    return "\n".join(lines)
