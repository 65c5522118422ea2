"""Predict brain age with a finished run folder: ``Predictor.from_run(run).predict(inputs)``.

The run folder alone is enough: weights (safetensors), model names and
kwargs, the preprocessing spec and hash, the training age range and the bias correction.
Inputs prepared with another spec are refused; raw NIfTI files are preprocessed with the
run's own spec. How each kind of run loads and predicts (fold ensembles, cascades, stacks,
encoders, classical models) is its rule in :mod:`brainage.inference.kinds`; the rows read
and written are :mod:`brainage.inference.tables`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage import run_kinds as rk
from brainage.data.cohort import Cohort
from brainage.errors import BrainAgeError, InputError
from brainage.inference import outputs, run_files
from brainage.inference.kinds import Model, load_age_member, predict_columns, rule_for
from brainage.inference.stacking import combine
from brainage.inference.tables import (
    OUTPUT_COLUMNS,
    base_columns,
    bids_entity,
    is_raw_scan,
    preprocess_rows,
)
from brainage.preprocessing.prepared import PreparedCohort, is_prepared, open_prepared
from brainage.progress import ProgressArg

#: What :meth:`Predictor.predict` takes.
Inputs = str | Path | Sequence[str | Path] | PreparedCohort | pd.DataFrame

__all__ = ["OUTPUT_COLUMNS", "Inputs", "Predictor", "is_raw_scan", "load_age_member"]


@dataclass
class Predictor:
    """Models of a run plus what is needed to use them safely.

    Attributes:
        run_dir: The run folder.
        stage1: Models averaged for the (stage-1) prediction.
        stage2: Stage-2 models of a cascade (empty otherwise).
        spec: ``PreprocessingSpec`` the models were trained on.
        training_range: ``[min, max]`` training age; other ages are flagged.
        bias: Fitted bias correction, or None.
        intervals: Calibrated ``ConformalInterval`` (90 % by default), or None.
        batch_size: Scans per forward pass.
        device: ``cpu``/``cuda``; None picks CUDA when available.
        allow_library_drift: Accept prepared inputs whose spec differs from the run's only
            in library versions (with a warning).
        notes: What the predictions lack and why (no bias correction in the run, subjects
            without a participants.tsv row, ...); each was also warned about.
        input_shape: Spatial shape of the training arrays (other shapes are refused).
        ood_reference: The run's training-data reference for out-of-distribution scores
            (:mod:`brainage.inference.ood`), or None for a run trained without one.
        member_names: Member folder names of `stage1` (keys of the reference).
        members: A stack's member predictors (empty otherwise).
        combiner: A stack's ``stack.json`` (weights, intercept), or None.
        kind: The run's kind, a name of :data:`brainage.run_kinds.RUN_KINDS`.
    """

    run_dir: Path
    stage1: list[Model]
    stage2: list[Model]
    spec: Any
    training_range: list[float]
    bias: Any = None
    intervals: Any = None
    batch_size: int = 8
    device: str | None = None
    allow_library_drift: bool = False
    notes: list[str] = field(default_factory=list)
    input_shape: list[int] | None = None
    ood_reference: Any = None
    member_names: list[str] = field(default_factory=list)
    members: list[Predictor] = field(default_factory=list)
    combiner: dict[str, Any] | None = None
    kind: str = rk.MODELS

    @classmethod
    def from_run(cls, run_dir: str | Path, device: str | None = None, batch_size: int = 8,
                 allow_library_drift: bool = False) -> Predictor:
        """Load every model and record of a finished run folder (its kind's loader,
        :data:`brainage.inference.kinds.PREDICT_RULES`).

        Raises:
            BrainAgeError: not a finished run, a damaged file, or a kind that predicts no
                ages (a GAN run).
        """
        run = Path(run_dir)
        info = run_files.read_info(run)  # every small file is checked before the weights load
        kind, rule = rule_for(run, info)
        spec = run_files.load_spec(run, info)
        extras = run_files.load_corrections(run)
        for note in extras.notes:
            warnings.warn(note, outputs.NoteWarning, stacklevel=2)
        assert rule.load is not None
        loaded = rule.load(run, info, lambda path: cls.from_run(path, device, batch_size,
                                                                 allow_library_drift))
        if loaded.note is not None:
            warnings.warn(loaded.note, outputs.NoteWarning, stacklevel=2)
            extras.notes.append(loaded.note)
        return cls(run, loaded.stage1, loaded.stage2, spec, info.training_range, extras.bias,
                   extras.intervals, batch_size, device, allow_library_drift, extras.notes,
                   input_shape=info.input_shape, ood_reference=loaded.reference,
                   member_names=loaded.member_names, members=loaded.members,
                   combiner=loaded.combiner, kind=kind.name)

    def predict(self, inputs: Inputs, cohort: Cohort | str | Path | None = None, *,
                dicom_series: str | None = None, jobs: int | None = 1,
                progress: ProgressArg = False, threads: int | None = None,
                shard: tuple[int, int] | None = None) -> pd.DataFrame:
        """Predict any kind of input: NIfTI files or DICOM folders, one prepared folder, one
        cohort source, or a table of rows.

        Raw scans (files, DICOM folders or a BIDS/table cohort) are preprocessed with the
        run's own spec, one scan per task; a prepared folder must have been prepared with
        it, and goes in chunks of ``batch_size`` scans per task. A scan that fails
        (in ``prepare``, or preprocessing here) is a row with ``predicted_age`` n/a and the
        reason in ``error``; one warning names them all.

        Args:
            inputs: NIfTI paths and DICOM folders; a single prepared folder (or an opened
                :class:`PreparedCohort`, e.g. OpenBHB arrays opened with a mask) or cohort
                source; or a table: rows with ``array_path`` (prepared arrays or their
                paths, with the run's spec) or with a raw image ``path`` (+ age, sex,
                ``dicom_series``, ...).
            cohort: Ages/sex/site for a prepared folder without ``cohort.tsv``; without
                either, ages are unknown (no gap).
            dicom_series: The series of every DICOM folder to use (SeriesNumber or UID);
                default the T1w one (:func:`brainage.data.dicom.pick_series`).
            jobs: Worker processes (None: every core).
            progress: False: quiet; True: a bar or log lines and a summary line on stderr;
                or a callable ``fn(done, total)``.
            threads: Threads per worker.
            shard: ``(k, N)``: only the k-th of N blocks of rows, for job arrays
                (:mod:`brainage.inference.sharded` merges them).

        Returns:
            One row per scan: ids, age, predicted_age, gap (+ corrected columns, interval,
            ensemble SD, QC and out-of-distribution flags).

        Raises:
            BrainAgeError: inputs prepared with another spec (the differences listed), of
                another shape, or none of the raw scans could be preprocessed.
        """
        from brainage.preprocessing.openbhb_arrays import is_openbhb, open_like

        many: dict[str, Any] = {"jobs": jobs, "progress": progress, "threads": threads,
                                "shard": shard}
        if isinstance(inputs, pd.DataFrame):
            return self._predict_rows(inputs, many)
        if isinstance(inputs, PreparedCohort):
            return self._predict_prepared(inputs, cohort, many)
        items = [Path(inputs)] if isinstance(inputs, str | Path) else [Path(p) for p in inputs]
        raw = [p for p in items if is_raw_scan(p)]
        if raw and len(raw) == len(items):
            return self._predict_files(raw, dicom_series, many)
        if dicom_series is not None:
            raise InputError(f"--dicom-series {dicom_series} was given, but the inputs are "
                             "not DICOM folders. Fix: drop --dicom-series.")
        if len(items) != 1:
            raise InputError(
                f"got {len(items)} inputs of mixed kinds; expected NIfTI files or DICOM "
                "folders only, or one prepared folder or cohort source. Fix: call predict "
                "once per cohort.")
        if is_prepared(items[0]):
            return self._predict_prepared(items[0], cohort, many)
        if is_openbhb(items[0]):  # already preprocessed arrays: opened as the run's were
            return self._predict_prepared(open_like(items[0], self.spec), cohort, many)
        return self._predict_cohort(items[0], many)

    def ood_info(self) -> dict[str, Any]:
        """What the OOD columns were computed against (recorded in the sidecar)."""
        from brainage.inference import ood

        return ood.describe(self.ood_reference, self.training_range)

    # ------------------------------------------------------------------ inputs
    def _predict_rows(self, table: pd.DataFrame, many: dict[str, Any]) -> pd.DataFrame:
        """A table: prepared rows (``array_path``) or raw ones (``path``)."""
        from brainage.inference import many as parallel

        if "array_path" in table:
            return parallel.predict_table(self, table, **many)
        if "path" in table:
            return parallel.predict_raw(self, table, **many)
        raise InputError(f"a table of {len(table)} row(s) with the columns "
                         f"{', '.join(map(str, table.columns)) or 'none'}; expected an "
                         "'array_path' column (prepared arrays) or a 'path' column (raw "
                         "scans). Fix: add one, or pass the folder or files instead.")

    def _predict_prepared(self, prepared_dir: str | Path | PreparedCohort,
                          cohort: Cohort | str | Path | None, many: dict[str, Any]
                          ) -> pd.DataFrame:
        """Every usable scan of a prepared cohort (prepared with the run's spec); scans that
        failed in ``prepare`` are rows too, with their error."""
        from brainage.inference.many import predict_table
        from brainage.preprocessing.spec import check_spec_compatible

        prepared = open_prepared(prepared_dir, cohort)  # refuses a replaced spec file clearly
        try:
            check_spec_compatible(self.spec, prepared.spec, what=("run", "input"),
                                  allow_library_drift=self.allow_library_drift)
        except BrainAgeError as exc:
            raise BrainAgeError(
                f"{prepared.root} cannot be predicted with run {self.run_dir}: {exc} "
                "Or pass the raw cohort / NIfTI files to `brainage predict`, which prepares "
                "them with the run's own spec.") from exc
        out = predict_table(self, prepared.table, **many)
        failed = prepared.failed  # an OpenBHB folder has no failed scans (and no error column)
        shard = many.get("shard")
        if shard is not None and shard[0] != shard[1]:  # the last shard lists them
            failed = failed.iloc[:0]
        errors = failed["error"] if "error" in failed else pd.Series([], dtype=object)
        rows = outputs.failure_rows(failed, [f"failed in prepare: {e}" for e in errors])
        if out.columns.empty:  # a shard with no usable scans
            return rows.reset_index(drop=True)
        return outputs.with_failures(out, rows.set_axis(range(len(out), len(out) + len(rows))))

    def _predict_files(self, paths: Sequence[str | Path], dicom_series: str | None,
                       many: dict[str, Any]) -> pd.DataFrame:
        """Raw NIfTI files or DICOM folders. Ages are unknown, except for DICOM series whose
        header gives them (PatientAge, PatientSex; ``age_source`` says so)."""
        from brainage.inference.many import predict_raw

        rows = [{"participant_id": bids_entity(p, "sub") or Path(p).name.split(".")[0],
                 "session": bids_entity(p, "ses"), "path": str(p), "dicom_series": dicom_series}
                for p in paths]
        return predict_raw(self, pd.DataFrame(rows), **many)

    def _predict_cohort(self, source: str | Path, many: dict[str, Any]) -> pd.DataFrame:
        """Read a cohort (BIDS, table, folder), preprocess each scan, predict.

        Like ``prepare``, a scan with a bad image is a row with its error, not a reason to
        refuse the cohort (images are checked scan by scan, by the same header rules). A
        ``path`` may be a DICOM folder (its series in a ``dicom_series`` column, else the
        T1w one); its header fills an age or sex the table leaves empty.
        """
        from brainage.data.sources import read_cohort
        from brainage.inference.many import predict_raw

        report = read_cohort(source, check_images=False)
        self.notes += [f"{source}: {note}" for note in report.notes + report.warnings]
        return predict_raw(self, report.cohort.table, **many)

    # ------------------------------------------------------------------ tasks of many.py
    def _predict_raw_now(self, table: pd.DataFrame, quiet: bool = False) -> pd.DataFrame:
        """Raw rows, all at once in this process (one task of :mod:`~.many`); `quiet`:
        failed scans are rows without a warning, and all of them failing is no error."""
        if any(m.spec.hash != self.spec.hash for m in self.members):
            return self._predict_raw_members(table)
        data, kept, rows = preprocess_rows(table, self.spec, quiet)
        if data.empty:
            return rows.reset_index(drop=True)
        return outputs.with_failures(self._predict_table(data).set_axis(kept), rows)

    def _predict_raw_members(self, table: pd.DataFrame) -> pd.DataFrame:
        """A stack whose members were trained on different specs: each member preprocesses
        the scans with its own spec; scans any member failed on are failures."""
        outs = [m._predict_raw_now(table, quiet=True) for m in self.members]
        P = np.stack([o["predicted_age"].to_numpy(dtype=float) for o in outs], axis=1)
        out = outs[0].drop(columns=[c for c in outs[0] if c not in OUTPUT_COLUMNS
                                    and c not in ("qc_flags", "error")])
        assert self.combiner is not None
        out["predicted_age"] = combine(P, self.combiner)
        out["gap"] = out["predicted_age"] - out["age"]
        self._finish(out, None)
        return out

    def _predict_table(self, table: pd.DataFrame) -> pd.DataFrame:
        """Prepared rows (``array_path``: paths or arrays), in this process (one task of
        :mod:`~.many`): the kind's columns, then gap, corrections, interval and OOD.

        Raises:
            InputError: an array whose shape is not the run's input shape.
        """
        data = table.reset_index(drop=True)
        columns = predict_columns(self, data)
        out = base_columns(data)
        for name, values in columns.items():
            out[name] = values
            if name == "predicted_age":
                out["gap"] = out["predicted_age"] - out["age"]
        out["qc_flags"] = data.get("qc_flags", pd.NA)
        self._finish(out, data)
        return out

    # ------------------------------------------------------------------ columns
    def _finish(self, out: pd.DataFrame, data: pd.DataFrame | None) -> None:
        """Bias-corrected columns, the interval and the out-of-distribution flags/scores."""
        self._correct(out)
        if self.intervals is not None:
            out["interval_low"], out["interval_high"] = self.intervals.predict_interval(
                out["predicted_age"])
        out["ood"] = self._age_flags(out["age"])
        if data is not None:
            self._ood_scores(out, data)

    def _ood_scores(self, out: pd.DataFrame, data: pd.DataFrame) -> None:
        """OOD scores (with a reference) and ``ood_flags`` (:func:`ood.add_columns`)."""
        from brainage.inference import ood

        models = dict(zip(self.member_names, self.stage1, strict=True))
        ood.add_columns(out, data, self.ood_reference, models, self.batch_size, self.device)

    def _correct(self, out: pd.DataFrame) -> None:
        if self.bias is None or out["age"].isna().all():
            return
        out["corrected_age"] = self.bias.transform(out["age"], out["predicted_age"])
        out["corrected_gap"] = out["corrected_age"] - out["age"]

    def _age_flags(self, age: pd.Series) -> pd.Series:
        """``age_out_of_range`` where a known age lies outside the training range."""
        lo, hi = self.training_range
        outside = age.notna() & ((age < lo) | (age > hi))
        return pd.Series(np.where(outside, "age_out_of_range", None), index=age.index,
                         dtype="string")
