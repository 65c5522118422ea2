"""How each run kind predicts: its loader and its predictor, one rule per registered kind.

:data:`PREDICT_RULES` is keyed by :data:`brainage.run_kinds.RUN_KINDS` (a test checks that
it covers every kind). A loader reads a run's models (``Predictor.from_run`` adds what every
run shares: the spec, the bias correction, the intervals); a predictor maps prepared rows to
the kind's own columns (``predicted_age`` and what explains it: ``ensemble_sd``,
``stage1_age``, ``member_<name>``), which ``Predictor`` completes (gap, corrections,
interval, OOD). Fold models are averaged (``ensemble_sd`` = their SD); a cascade feeds the
stage-1 ensemble to every stage-2 model; a stack runs each member run (its own predictor)
and combines their predictions with the weights fitted on their out-of-fold predictions
(``stack.json``). Classical members (:mod:`brainage.classical`) read the tissue maps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from brainage import run_kinds as rk
from brainage import runs as rf
from brainage.classical.model import ClassicalModel, feature_matrix, is_classical
from brainage.data.datasets import ScanDataset
from brainage.inference import run_files
from brainage.inference.encoders import load_member
from brainage.inference.engine import predict_dataset
from brainage.inference.stacking import STACK_JSON, combine
from brainage.inference.tables import check_shapes
from brainage.models import BrainAgeModel, load_model

Model = BrainAgeModel | ClassicalModel
#: Columns a kind's predictor gives, in output order (``gap`` follows ``predicted_age``).
Columns = dict[str, Any]


class Parts(Protocol):
    """What a kind's predictor reads of a :class:`~brainage.inference.predictor.Predictor`."""

    kind: str
    run_dir: Path
    input_shape: list[int] | None
    stage1: list[Model]
    stage2: list[Model]
    members: list[Any]
    combiner: dict[str, Any] | None
    batch_size: int
    device: str | None


@dataclass
class Loaded:
    """A run's models, as a kind's loader reads them.

    Attributes:
        stage1: Models averaged for the (stage-1) prediction.
        stage2: Stage-2 models of a cascade (empty otherwise).
        member_names: Member folder names of `stage1` (keys of the OOD reference).
        members: A stack's member predictors.
        combiner: A stack's ``stack.json``.
        reference: The training-data reference of the OOD scores, or None.
        note: Why there is no reference (warned about and kept with the predictions).
    """

    stage1: list[Model] = field(default_factory=list)
    stage2: list[Model] = field(default_factory=list)
    member_names: list[str] = field(default_factory=list)
    members: list[Any] = field(default_factory=list)
    combiner: dict[str, Any] | None = None
    reference: Any = None
    note: str | None = None


#: ``load(run, info, load_run)``: `load_run` opens another run folder (a stack's member).
Loader = Callable[[Path, rf.RunInfo, Callable[[Path], Any]], Loaded]
Predict = Callable[[Parts, pd.DataFrame], Columns]


@dataclass(frozen=True)
class PredictRule:
    """How runs of one kind predict.

    Attributes:
        load: The loader, or None for a kind that predicts no ages.
        predict: Prepared rows -> the kind's columns (None with `load`).
        refusal: For a kind without a loader: why, and the fix (the run folder given).
    """

    load: Loader | None
    predict: Predict | None
    refusal: Callable[[Path], str] | None = None


def rule_for(run: Path, info: rf.RunInfo) -> tuple[rk.RunKind, PredictRule]:
    """The run's kind and its rule.

    Raises:
        InputError: a kind that predicts no ages (the message names the kinds that do).
    """
    kind = rk.kind_of(run, info)
    rule = PREDICT_RULES[kind.name]
    if rule.load is None:
        assert rule.refusal is not None
        raise rk.unsupported(run, kind, "prediction", predicting_kinds(), rule.refusal(run))
    return kind, rule


def predicting_kinds() -> list[str]:
    """Names of the kinds that predict ages."""
    return [n for n, r in PREDICT_RULES.items() if r.load is not None]


def predict_columns(parts: Parts, data: pd.DataFrame) -> Columns:
    """The kind's columns for prepared rows (shapes checked against the run's)."""
    check_shapes(parts.input_shape, parts.run_dir, data)
    predict = PREDICT_RULES[parts.kind].predict
    assert predict is not None  # a predictor exists only for a kind that predicts
    return predict(parts, data)


# ---------------------------------------------------------------------------- loaders
def load_age_member(folder: Path) -> Model:
    """A member folder's model: a network, or a classical model (``model.json`` says)."""
    with run_files.member_files(folder):  # a damaged file: a named error, not a KeyError
        return ClassicalModel.load(folder) if is_classical(folder) else load_model(folder)


def _ensemble_loader(why: str) -> Loader:
    """Loader of one model or a fold ensemble; `why`: the note when there is no OOD
    reference."""
    def load(run: Path, info: rf.RunInfo, load_run: Callable[[Path], Any]) -> Loaded:
        reference, note = _reference(run, run, why)
        return Loaded([load_age_member(run / m) for m in info.members],
                      member_names=list(info.members), reference=reference, note=note)

    return load


def _load_encoder(run: Path, info: rf.RunInfo, load_run: Callable[[Path], Any]) -> Loaded:
    """Encoders + the linear read-out ``brainage probe`` fitted."""
    reference, note = _reference(run, run, "pretrained encoders: none is fitted for them")
    return Loaded([load_member(run / m, readout=True) for m in info.members],
                  member_names=list(info.members), reference=reference, note=note)


def _load_cascade(run: Path, info: rf.RunInfo, load_run: Callable[[Path], Any]) -> Loaded:
    stage1, names = _stage(run / info.stages["stage1"])
    stage2, _ = _stage(run / info.stages["stage2"])
    reference, note = _reference(run, run / info.stages["stage1"],
                                 "trained before brainage stored one")
    return Loaded(stage1, stage2, names, reference=reference, note=note)


def _load_stack(run: Path, info: rf.RunInfo, load_run: Callable[[Path], Any]) -> Loaded:
    return Loaded(members=[load_run(run / m) for m in info.members],
                  combiner=rf.read_json(run / STACK_JSON))


def _stage(stage_dir: Path) -> tuple[list[Model], list[str]]:
    info = rf.read_run_info(stage_dir)
    return [load_model(stage_dir / m) for m in info.members], info.members


def _reference(run: Path, folder: Path, why: str) -> tuple[Any, str | None]:
    """The OOD reference in `folder`, or None and a note saying `why` there is none."""
    from brainage.inference.ood import REFERENCE_JSON, load_reference

    reference = load_reference(folder)
    if reference is not None:
        return reference, None
    return None, (f"run {run} has no {REFERENCE_JSON} ({why}), so the predictions have no "
                  "embedding_distance and intensity_z; the training age range and QC flags "
                  "are still checked (column 'ood_flags')")


# ---------------------------------------------------------------------------- predictors
def _predict_ensemble(parts: Parts, data: pd.DataFrame) -> Columns:
    preds = member_predictions(parts.stage1, data, parts.batch_size, parts.device)  # (M, N)
    return _averaged(preds)


def _predict_cascade(parts: Parts, data: pd.DataFrame) -> Columns:
    stage1 = member_predictions(parts.stage1, data, parts.batch_size, parts.device).mean(axis=0)
    data = data.assign(stage1_age=stage1)
    preds = np.stack([_predict(m, data, parts.batch_size, parts.device) for m in parts.stage2])
    return {"stage1_age": data["stage1_age"], **_averaged(preds)}


def _predict_stack(parts: Parts, data: pd.DataFrame) -> Columns:
    assert parts.combiner is not None
    P = np.stack([np.asarray(predict_columns(m, data)["predicted_age"], dtype=float)
                  for m in parts.members], axis=1)  # (N, M)
    out: Columns = {f"member_{Path(m.run_dir).name}": P[:, j]
                    for j, m in enumerate(parts.members)}
    return {**out, "predicted_age": combine(P, parts.combiner)}


def _averaged(preds: np.ndarray) -> Columns:
    """(M, N) member predictions -> their mean, and their SD when there are several."""
    out: Columns = {"predicted_age": preds.mean(axis=0)}
    if len(preds) > 1:
        out["ensemble_sd"] = preds.std(axis=0)
    return out


def member_predictions(models: list[Model], data: pd.DataFrame, batch_size: int,
                       device: str | None) -> np.ndarray:
    """(M, N) predictions of `models`. Classical fold members share their feature
    definition, so the features of each scan are made once, not once per fold."""
    features: dict[str, np.ndarray] = {}
    out = []
    for model in models:
        if isinstance(model, ClassicalModel):
            key = model.features.key
            if key not in features:
                features[key] = feature_matrix(model.features, data)
            out.append(model.predict_features(features[key]))
        else:
            out.append(_predict(model, data, batch_size, device))
    return np.stack(out)


def _predict(model: Model, data: pd.DataFrame, batch_size: int, device: str | None
             ) -> np.ndarray:
    if isinstance(model, ClassicalModel):
        return model.predict_table(data)
    return predict_dataset(model, ScanDataset.from_table(data), batch_size, device)


def _gan_refusal(run: Path) -> str:
    return (f"pass a run of `brainage train`, or use this TGB-GAN run with "
            f"`brainage gan synthesize {run} ...`.")


#: Per run kind (:data:`brainage.run_kinds.RUN_KINDS`): its loader and predictor.
PREDICT_RULES: dict[str, PredictRule] = {
    rk.MODELS: PredictRule(_ensemble_loader("trained before brainage stored one"),
                           _predict_ensemble),
    rk.CLASSICAL: PredictRule(_ensemble_loader("a classical model: no network embedding to "
                                               "compare"), _predict_ensemble),
    rk.ENCODER: PredictRule(_load_encoder, _predict_ensemble),
    rk.CASCADE: PredictRule(_load_cascade, _predict_cascade),
    rk.STACK: PredictRule(_load_stack, _predict_stack),
    rk.GAN: PredictRule(None, None, _gan_refusal),
}

__all__ = ["PREDICT_RULES", "Loaded", "PredictRule", "load_age_member",
           "member_predictions", "predict_columns", "predicting_kinds", "rule_for"]
