"""Predict brain age with a finished run folder: ``Predictor.from_run(run).predict(inputs)``.

The run folder alone is enough: weights (safetensors), model names and
kwargs, the preprocessing spec and hash, the training age range and the bias correction.
Inputs prepared with another spec are refused; raw NIfTI files are preprocessed with the
run's own spec. Fold models are averaged (``ensemble_sd`` = their SD); a cascade feeds the
stage-1 ensemble to every stage-2 model; a stack runs each member run (its own predictor)
and combines their predictions with the weights fitted on their out-of-fold predictions
(``stack.json``). Classical members (:mod:`brainage.classical`) read the tissue maps.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage import runs as rf
from brainage.classical.model import ClassicalModel, feature_matrix, is_classical
from brainage.data.cohort import Cohort
from brainage.data.datasets import ScanDataset
from brainage.errors import BrainAgeError, InputError
from brainage.inference import outputs, run_files
from brainage.inference.engine import predict_dataset
from brainage.inference.stacking import STACK_JSON, combine
from brainage.models import BrainAgeModel, load_model
from brainage.preprocessing.prepared import PreparedCohort, is_prepared, open_prepared

OUTPUT_COLUMNS = ("participant_id", "session", "run", "age", "age_source", "age_note", "predicted_age",
                  "gap", "sex", "site", "group")


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
    """

    run_dir: Path
    stage1: list[BrainAgeModel]
    stage2: list[BrainAgeModel]
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

    @classmethod
    def from_run(cls, run_dir: str | Path, device: str | None = None, batch_size: int = 8,
                 allow_library_drift: bool = False) -> Predictor:
        """Load every model and record of a finished run folder."""
        run = Path(run_dir)
        info = run_files.read_info(run)  # every small file is checked before the weights load
        if info.kind == "gan":
            raise InputError(f"{run} is a TGB-GAN run (it makes synthetic brains; it does "
                             "not predict ages). Fix: pass a run of `brainage train`, or "
                             "use this one with `brainage gan synthesize`.")
        spec = run_files.load_spec(run, info)
        extras = run_files.load_corrections(run)
        for note in extras.notes:
            warnings.warn(note, outputs.NoteWarning, stacklevel=2)
        if info.kind == "stack":
            members = [cls.from_run(run / m, device, batch_size, allow_library_drift)
                       for m in info.members]
            return cls(run, [], [], spec, info.training_range, extras.bias, extras.intervals,
                       batch_size, device, allow_library_drift, extras.notes,
                       input_shape=info.input_shape, members=members,
                       combiner=rf.read_json(run / STACK_JSON))
        names = info.members
        if info.kind == "cascade":
            stage1, names = _members(run / info.stages["stage1"])
            stage2, _ = _members(run / info.stages["stage2"])
        elif info.kind == "encoder":  # encoder + the linear read-out `brainage probe` fitted
            from brainage.inference.encoders import load_member

            stage1, stage2 = [load_member(run / m, readout=True) for m in info.members], []
        else:
            stage1, stage2 = [load_age_member(run / m) for m in info.members], []
        reference, note = _ood_reference(run, info)
        if note is not None:
            warnings.warn(note, outputs.NoteWarning, stacklevel=2)
            extras.notes.append(note)
        return cls(run, stage1, stage2, spec, info.training_range, extras.bias,
                   extras.intervals, batch_size, device, allow_library_drift, extras.notes,
                   input_shape=info.input_shape, ood_reference=reference, member_names=names)

    # ------------------------------------------------------------------ inputs
    def predict(self, inputs: str | Path | Sequence[str | Path] | PreparedCohort,
                cohort: Cohort | str | Path | None = None,
                dicom_series: str | None = None, **many: Any) -> pd.DataFrame:
        """Predict any kind of input: NIfTI files or DICOM folders, one prepared folder, or
        one cohort source.

        Raw scans (files, DICOM folders or a BIDS/table cohort) are preprocessed with the
        run's own spec; a prepared folder must have been prepared with it.

        Args:
            inputs: NIfTI paths and DICOM folders, or a single prepared folder or cohort
                source.
            cohort: Ages/sex/site for a prepared folder without ``cohort.tsv``.
            dicom_series: The series of every DICOM folder to use (SeriesNumber or UID);
                default the T1w one (:func:`brainage.data.dicom.pick_series`).
            **many: ``jobs`` (worker processes, default 1; None: every core),
                ``progress`` (False: quiet, the default; True: a bar or log lines and a
                summary line on stderr; or a callable ``fn(done, total)``) and
                ``threads`` (per worker) and ``shard`` ((k, N): the k-th of N blocks of
                rows, for job arrays) of :mod:`brainage.inference.many`.

        Returns:
            One row per scan: ids, age, predicted_age, gap (+ corrected columns, interval,
            ensemble SD, QC and out-of-distribution flags).
        """
        from brainage.data.openbhb_arrays import is_openbhb, open_like

        if isinstance(inputs, PreparedCohort):  # e.g. OpenBHB arrays opened with a mask
            return self.predict_prepared(inputs, cohort, **many)
        items = [Path(inputs)] if isinstance(inputs, str | Path) else [Path(p) for p in inputs]
        raw = [p for p in items if is_raw_scan(p)]
        if raw and len(raw) == len(items):
            return self.predict_files(raw, dicom_series, **many)
        if dicom_series is not None:
            raise InputError(f"--dicom-series {dicom_series} was given, but the inputs are "
                             "not DICOM folders. Fix: drop --dicom-series.")
        if len(items) != 1:
            raise InputError(
                f"got {len(items)} inputs of mixed kinds; expected NIfTI files or DICOM "
                "folders only, or one prepared folder or cohort source. Fix: call predict "
                "once per cohort.")
        if is_prepared(items[0]):
            return self.predict_prepared(items[0], cohort, **many)
        if is_openbhb(items[0]):  # already preprocessed arrays: opened as the run's were
            return self.predict_prepared(open_like(items[0], self.spec), cohort, **many)
        return self.predict_cohort(items[0], **many)

    def predict_prepared(self, prepared_dir: str | Path,
                         cohort: Cohort | str | Path | None = None, **many: Any
                         ) -> pd.DataFrame:
        """Predict every usable scan of a prepared cohort (prepared with the run's spec).

        Ages, sex, site and group come from its ``cohort.tsv`` or from `cohort`; without
        either, ages are unknown (no gap). Scans that failed in ``prepare`` are rows too,
        with ``predicted_age`` n/a and their error in ``error``. `many`: as in
        :meth:`predict` (chunks of ``batch_size`` scans per task).

        Raises:
            BrainAgeError: the cohort was prepared with another spec; the message lists
                the differences.
        """
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
        from brainage.inference.many import predict_table

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

    def predict_files(self, paths: Sequence[str | Path], dicom_series: str | None = None,
                      **many: Any) -> pd.DataFrame:
        """Preprocess raw NIfTI files or DICOM folders with the run's spec, then predict.

        Ages are unknown, except for DICOM series whose header gives them (PatientAge,
        PatientSex; ``age_source`` says so).
        """
        rows = [{"participant_id": _entity(p, "sub") or Path(p).name.split(".")[0],
                 "session": _entity(p, "ses"), "path": str(p), "dicom_series": dicom_series}
                for p in paths]
        return self.predict_raw(pd.DataFrame(rows), **many)

    def predict_cohort(self, source: str | Path, **many: Any) -> pd.DataFrame:
        """Read a cohort (BIDS, table, folder), preprocess each scan, predict.

        Like ``prepare``, a scan with a bad image is a row with its error, not a reason to
        refuse the cohort (images are checked scan by scan, by the same header rules). A
        ``path`` may be a DICOM folder (its series in a ``dicom_series`` column, else the
        T1w one); its header fills an age or sex the table leaves empty.
        """
        from brainage.data.sources import read_cohort

        report = read_cohort(source, check_images=False)
        self.notes += [f"{source}: {note}" for note in report.notes + report.warnings]
        return self.predict_raw(report.cohort.table, **many)

    def predict_raw(self, table: pd.DataFrame, **many: Any) -> pd.DataFrame:
        """Rows with a raw image ``path`` (+ age, sex, ``dicom_series``, ...): preprocess in
        memory, predict, one scan per task (`many`: as in :meth:`predict`). DICOM headers
        fill the ages and sexes the rows lack.

        A scan whose preprocessing fails stays in the output, in input order, with
        ``predicted_age`` n/a and the reason in ``error`` (one warning names them all).

        Raises:
            BrainAgeError: no scan could be preprocessed (every reason listed).
        """
        from brainage.inference.many import predict_raw

        return predict_raw(self, table, **many)

    def predict_raw_now(self, table: pd.DataFrame, quiet: bool = False) -> pd.DataFrame:
        """:meth:`predict_raw` of all rows at once in this process; `quiet`: failed scans
        are rows without a warning, and all of them failing is no error."""
        if any(m.spec.hash != self.spec.hash for m in self.members):
            return self._predict_raw_members(table)
        data, kept, rows = _preprocess_rows(table, self.spec, quiet)
        if data.empty:
            return rows.reset_index(drop=True)
        return outputs.with_failures(self.predict_table(data).set_axis(kept), rows)

    def _predict_raw_members(self, table: pd.DataFrame) -> pd.DataFrame:
        """A stack whose members were trained on different specs: each member preprocesses
        the scans with its own spec; scans any member failed on are failures."""
        outs = [m.predict_raw_now(table, quiet=True) for m in self.members]
        P = np.stack([o["predicted_age"].to_numpy(dtype=float) for o in outs], axis=1)
        out = outs[0].drop(columns=[c for c in outs[0] if c not in OUTPUT_COLUMNS
                                    and c not in ("qc_flags", "error")])
        out["predicted_age"] = self._combine(P)
        out["gap"] = out["predicted_age"] - out["age"]
        self._finish(out, None)
        return out

    # ------------------------------------------------------------------ core
    def predict_table(self, table: pd.DataFrame) -> pd.DataFrame:
        """Predict rows with ``array_path`` (paths or arrays); returns the output table.

        Raises:
            InputError: an array whose shape is not the run's input shape.
        """
        data = table.reset_index(drop=True)
        self.check_shapes(data)
        out = _base_columns(data)
        if self.members:  # a stack: each member run, then the combiner
            P = np.stack([m.predict_table(data)["predicted_age"].to_numpy(dtype=float)
                          for m in self.members], axis=1)  # (N, M)
            for j, m in enumerate(self.members):
                out[f"member_{Path(m.run_dir).name}"] = P[:, j]
            out["predicted_age"] = self._combine(P)
            out["gap"] = out["predicted_age"] - out["age"]
            out["qc_flags"] = data.get("qc_flags", pd.NA)
            self._finish(out, data)
            return out
        preds = self._member_predictions(data)  # (M, N)
        if self.stage2:
            data = data.assign(stage1_age=preds.mean(axis=0))
            out["stage1_age"] = data["stage1_age"]
            preds = np.stack([self._predict(m, data) for m in self.stage2])
        out["predicted_age"] = preds.mean(axis=0)
        out["gap"] = out["predicted_age"] - out["age"]
        if len(preds) > 1:
            out["ensemble_sd"] = preds.std(axis=0)
        out["qc_flags"] = data.get("qc_flags", pd.NA)
        self._finish(out, data)
        return out

    def _combine(self, P: np.ndarray) -> np.ndarray:
        assert self.combiner is not None
        return combine(P, self.combiner)

    def _finish(self, out: pd.DataFrame, data: pd.DataFrame | None) -> None:
        """Bias-corrected columns, the interval and the out-of-distribution flags/scores."""
        self._correct(out)
        if self.intervals is not None:
            out["interval_low"], out["interval_high"] = self.intervals.predict_interval(
                out["predicted_age"])
        out["ood"] = self.ood_flags(out["age"])
        if data is not None:
            self._ood_scores(out, data)

    def _ood_scores(self, out: pd.DataFrame, data: pd.DataFrame) -> None:
        """OOD scores (with a reference) and ``ood_flags`` (:func:`ood.add_columns`)."""
        from brainage.inference import ood

        models = dict(zip(self.member_names, self.stage1, strict=True))
        ood.add_columns(out, data, self.ood_reference, models, self.batch_size, self.device)

    def check_shapes(self, data: pd.DataFrame) -> None:
        """Refuse arrays of another shape than the run was trained on (``run.json``)."""
        if not self.input_shape or "array_path" not in data:
            return
        want = tuple(int(n) for n in self.input_shape)
        bad = []
        for i, item in enumerate(data["array_path"]):
            shape = _array_shape(item)
            if shape is not None and shape != want:
                who = data["participant_id"].iloc[i] if "participant_id" in data else i
                bad.append(f"{who} {shape}")
        if bad:
            raise InputError(
                f"{len(bad)} array(s) do not have the input shape {want} that run "
                f"{self.run_dir} was trained on: {', '.join(bad[:10])}. Fix: prepare the scans "
                "with the run's own spec (pass raw scans to `brainage predict`).")

    def _member_predictions(self, data: pd.DataFrame) -> np.ndarray:
        """(M, N) predictions of the stage-1 members. Classical fold members share their
        feature definition, so the features of each scan are made once, not once per fold."""
        features: dict[str, np.ndarray] = {}
        out = []
        for model in self.stage1:
            if isinstance(model, ClassicalModel):
                key = model.features.key
                if key not in features:
                    features[key] = feature_matrix(model.features, data)
                out.append(model.predict_features(features[key]))
            else:
                out.append(self._predict(model, data))
        return np.stack(out)

    def _predict(self, model: BrainAgeModel | ClassicalModel, data: pd.DataFrame) -> np.ndarray:
        if isinstance(model, ClassicalModel):
            return model.predict_table(data)
        return predict_dataset(model, ScanDataset.from_table(data), self.batch_size,
                               self.device)

    def _correct(self, out: pd.DataFrame) -> None:
        if self.bias is None or out["age"].isna().all():
            return
        out["corrected_age"] = self.bias.transform(out["age"], out["predicted_age"])
        out["corrected_gap"] = out["corrected_age"] - out["age"]

    def ood_info(self) -> dict[str, Any]:
        """What the OOD columns were computed against (recorded in the sidecar)."""
        from brainage.inference import ood

        return ood.describe(self.ood_reference, self.training_range)

    def ood_flags(self, age: pd.Series) -> pd.Series:
        """``age_out_of_range`` where a known age lies outside the training range."""
        lo, hi = self.training_range
        outside = age.notna() & ((age < lo) | (age > hi))
        return pd.Series(np.where(outside, "age_out_of_range", None), index=age.index,
                         dtype="string")


def is_raw_scan(path: str | Path) -> bool:
    """Whether `path` is one raw scan (a NIfTI file or a DICOM folder), which
    :meth:`Predictor.predict` takes together with others; anything else (a prepared folder,
    a cohort source, OpenBHB arrays) is predicted alone."""
    from brainage.data.dicom import is_dicom_folder

    item = Path(path)
    return item.name.endswith((".nii", ".nii.gz")) or is_dicom_folder(item)


def _array_shape(item: Any) -> tuple[int, ...] | None:
    """Spatial shape of an input: an array, a lazy volume with ``shape``, or a ``.npy`` path
    (its header only); None when it cannot be known without reading the data."""
    if hasattr(item, "shape"):
        return tuple(int(n) for n in item.shape)
    if isinstance(item, str | Path) and str(item).endswith(".npy"):
        return tuple(np.load(item, mmap_mode="r").shape)
    return None


def _members(stage_dir: Path) -> tuple[list[BrainAgeModel], list[str]]:
    info = rf.read_run_info(stage_dir)
    return [load_model(stage_dir / m) for m in info.members], info.members


def _ood_reference(run: Path, info: rf.RunInfo) -> tuple[Any, str | None]:
    """The OOD reference of the run (a cascade: of stage 1), or None and a note."""
    from brainage.inference.ood import REFERENCE_JSON, load_reference

    folder = run / info.stages["stage1"] if info.kind == "cascade" else run
    reference = load_reference(folder)
    if reference is not None:
        return reference, None
    why = "a classical model: no network embedding to compare" if info.members and \
        is_classical(folder / info.members[0]) else \
        "trained before brainage stored one, or a pretrained encoder"
    return None, (f"run {run} has no {REFERENCE_JSON} ({why}), so the predictions have no "
                  "embedding_distance and intensity_z; the training age range and QC flags "
                  "are still checked (column 'ood_flags')")


def load_age_member(folder: Path) -> BrainAgeModel | ClassicalModel:
    """A member folder's model: a network, or a classical model (``model.json`` says)."""
    with run_files.member_files(folder):  # a damaged file: a named error, not a KeyError
        return ClassicalModel.load(folder) if is_classical(folder) else load_model(folder)


def _preprocess_rows(table: pd.DataFrame, spec: Any, quiet: bool = False
                     ) -> tuple[pd.DataFrame, pd.Index, pd.DataFrame]:
    """Preprocess the raw ``path`` of each row in memory with `spec` (`quiet`: failures are
    only rows, with no warning or error).

    Returns:
        (the rows that worked, with ``array_path`` (+ ``tissue_path``, ``affine_det``) and
        ``qc_flags``; their index in `table`; failure rows with their ``error``).

    Raises:
        BrainAgeError: no scan could be preprocessed (every reason listed).
    """
    from brainage.data.scans import row_source, with_header_demographics
    from brainage.preprocessing.antsio import deterministic_itk
    from brainage.preprocessing.pipeline import preprocess_scan

    deterministic_itk()  # the same scan gives the same prediction, run after run
    data = with_header_demographics(table.reset_index(drop=True))
    images, tissues, dets, flags, failed, errors = [], [], [], [], [], []
    for i, row in data.iterrows():
        try:
            result = preprocess_scan(row_source(row), spec)
        except BrainAgeError as exc:
            failed.append(i)
            errors.append(f"preprocessing failed: {exc}")
            continue
        images.append(np.asarray(result.array, dtype=np.float32))
        tissues.append(result.tissues)
        dets.append(result.qc.get("affine_det"))
        flags.append(_qc_text(result.qc))
    if failed and not quiet:
        listing = "; ".join(f"{data['path'].iloc[i]}: {e}" for i, e in zip(failed, errors,
                                                                             strict=True))
        if len(failed) == len(data):
            raise BrainAgeError(f"no input scan could be preprocessed: {listing}")
        warnings.warn(f"{len(failed)} of {len(data)} scan(s) not predicted: {listing}",
                      outputs.NoteWarning, stacklevel=3)
    rows = outputs.failure_rows(data.iloc[failed], errors)
    data = data.drop(index=failed)
    kept = data.index
    data = data.reset_index(drop=True)
    data["array_path"] = images
    if spec.tissues:
        data["tissue_path"], data["affine_det"] = tissues, dets
    data["qc_flags"] = flags
    return data, kept, rows


def _base_columns(data: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in OUTPUT_COLUMNS if c in data and c not in ("predicted_age", "gap")]
    out = data[cols].copy()
    for col in ("participant_id", "session", "age"):
        if col not in out:
            out[col] = np.nan if col == "age" else pd.NA
    out["age"] = pd.to_numeric(out["age"], errors="coerce").astype(float)
    if "run" in out and out["run"].isna().all():
        out = out.drop(columns="run")
    return out


def _entity(path: str | Path, key: str) -> str | None:
    """BIDS entity ``key-<label>`` from a file name (``sub-01_ses-2_T1w`` -> ``sub-01``)."""
    for part in Path(path).name.split(".")[0].split("_"):
        if part.startswith(f"{key}-"):
            return part
    return None


def _qc_text(qc: Any) -> str | None:
    """QC result -> ``;``-joined flags (None when clean)."""
    if qc is None:
        return None
    if isinstance(qc, dict):
        flags = qc.get("flags", [k for k, v in qc.items() if v is True])
    else:
        flags = getattr(qc, "flags", qc)
    if isinstance(flags, str):
        return flags or None
    flags = [str(f) for f in flags]
    return ";".join(flags) or None
