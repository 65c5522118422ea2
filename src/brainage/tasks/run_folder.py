"""The run folder: everything needed to predict, and nothing that needs unpickling.

Layout (DESIGN.md rule 5)::

    run/
      run.json              written last: format, kind, members, training range, spec hash
      config.yaml           resolved TrainConfig (stage 1 for a cascade)
      preprocessing_spec.json  the prepared cohort's preprocessing spec + its hash
      splits.json           subject splits (a user-provided file wins)
      metrics.json          validation / test / out-of-fold metrics
      predictions.tsv       one row per scan (out-of-fold or held-out predictions)
      model_card.json       training data, preprocessing, metrics, intended use
      bias_correction.json  Beheshti correction fitted on held-out predictions (if enough)
      interval_calibration.json  split-conformal 90 % interval calibration (held-out)
      weights.safetensors + model.json      a single model, or
      fold-<k>/weights.safetensors + model.json     one model per fold (ensemble)
      fold-<k>-seed-<r>/...                          several seeds per fold (config repeats)
      <member>/checkpoints/{best,last}.ckpt         Lightning checkpoints (resume only)
      <member>/logs/                                CSV (and TensorBoard) logs

A cascade run holds two such folders, ``stage1/`` and ``stage2/``, and its own
``run.json`` with ``kind: cascade``. Every file is written atomically; ``run.json`` is
written last, so a folder without it is an unfinished run (rerun training to resume).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brainage import __version__
from brainage.config import save_config, to_dict
from brainage.errors import BrainAgeError
from brainage.io import parse_json_file, write_json
from brainage.tasks.config import TrainConfig, load_train_config

RUN_JSON = "run.json"
FORMAT = "brainage-run"
VERSION = 1
CONFIG = "config.yaml"
PREPROCESSING = "preprocessing_spec.json"  # preprocessing.spec.SPEC_FILE
SPLITS = "splits.json"
METRICS = "metrics.json"
PREDICTIONS = "predictions.tsv"
MODEL_CARD = "model_card.json"
BIAS = "bias_correction.json"
INTERVALS = "interval_calibration.json"
INTENDED_USE = ("Research use only; not for diagnosis. Valid only for T1w scans prepared "
                "with the recorded preprocessing specification, within the training age range.")


@dataclass
class RunInfo:
    """Contents of ``run.json``.

    Attributes:
        kind: ``models`` (one model or a fold ensemble) or ``cascade``.
        members: Model folders relative to the run (``"."`` for a single model).
        training_range: ``[min, max]`` age of the training subjects.
        spec_hash: Hash of the preprocessing spec the models were trained on.
        input_shape: Spatial shape of the training arrays.
        stages: For a cascade: ``{"stage1": "stage1", "stage2": "stage2"}``.
        extra: Anything else recorded (versions, counts).
    """

    kind: str
    members: list[str]
    training_range: list[float]
    spec_hash: str
    input_shape: list[int]
    stages: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the format header."""
        return {"format": FORMAT, "version": VERSION, "brainage_version": __version__,
                "kind": self.kind, "members": self.members,
                "training_range": self.training_range, "spec_hash": self.spec_hash,
                "input_shape": self.input_shape, "stages": self.stages, **self.extra}


def member_dir(run_dir: Path, fold: int, n_folds: int, repeat: int = 0, repeats: int = 1
               ) -> Path:
    """Folder of one model: the run itself for a single model, else ``fold-<k>`` (one model
    per fold) or ``fold-<k>-seed-<r>`` (several seeds per fold)."""
    name = member_name(fold, n_folds, repeat, repeats)
    return run_dir if name == "." else run_dir / name


def member_name(fold: int, n_folds: int, repeat: int = 0, repeats: int = 1) -> str:
    """Relative folder name of fold `fold`'s model number `repeat`."""
    if repeats == 1:
        return "." if n_folds == 1 else f"fold-{fold}"
    return f"seed-{repeat}" if n_folds == 1 else f"fold-{fold}-seed-{repeat}"


def member_names(n_folds: int, repeats: int = 1) -> list[str]:
    """Relative member folder names for ``n_folds`` folds of ``repeats`` models each."""
    return [member_name(k, n_folds, r, repeats) for k in range(n_folds) for r in range(repeats)]


def write_run_info(run_dir: Path, info: RunInfo) -> None:
    """Write ``run.json`` (marks the run complete)."""
    write_json(run_dir / RUN_JSON, info.to_dict())


def read_run_info(run_dir: str | Path) -> RunInfo:
    """Read ``run.json``.

    Raises:
        BrainAgeError: not a run folder, unfinished run, or a newer format.
    """
    run = Path(run_dir)
    path = run / RUN_JSON
    if not run.is_dir():
        raise BrainAgeError(f"{run}: run folder not found. Fix: pass the folder given to "
                            "`brainage train`.")
    if not path.is_file():
        hint = (" It holds a config.yaml: training did not finish. Fix: rerun the same "
                "`brainage train` command to resume." if (run / CONFIG).exists()
                else " Fix: pass a folder written by `brainage train`.")
        raise BrainAgeError(f"{run}: no {RUN_JSON}, so this is not a finished run.{hint}")
    data = parse_json_file(path, "rerun the same `brainage train` command")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BrainAgeError(f"{path}: not a brainage run description (format {FORMAT!r}).")
    if int(data.get("version", 0)) > VERSION:
        raise BrainAgeError(f"{path}: written by a newer brainage. Fix: upgrade brainage.")
    known = {"format", "version", "brainage_version", "kind", "members", "training_range",
             "spec_hash", "input_shape", "stages"}
    return RunInfo(kind=data["kind"], members=list(data["members"]),
                   training_range=[float(a) for a in data["training_range"]],
                   spec_hash=str(data["spec_hash"]), input_shape=list(data["input_shape"]),
                   stages=dict(data.get("stages") or {}),
                   extra={k: v for k, v in data.items() if k not in known})


def start_run(run_dir: Path, config: TrainConfig) -> bool:
    """Write ``config.yaml`` for a new run, or check it matches when resuming.

    Returns:
        True when the run is already complete (``run.json`` exists).

    Raises:
        BrainAgeError: the folder holds a run with a different config.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CONFIG
    if path.exists():
        old = load_train_config(path)
        if _comparable(old) != _comparable(config):
            raise BrainAgeError(
                f"{run_dir} already holds a run with another configuration ({path}). "
                "Fix: use a new run folder, or rerun with the same config to resume.")
    else:
        save_config(config, path)
    return (run_dir / RUN_JSON).exists()


def _comparable(config: TrainConfig) -> dict[str, Any]:
    """Config fields that change the result (display and hardware settings excluded)."""
    skip = {"progress_bar", "log_every_n_steps", "tensorboard", "num_workers", "devices",
            "num_nodes", "strategy", "accelerator"}
    return {k: v for k, v in to_dict(config).items() if k not in skip}


def read_config(run_dir: str | Path) -> TrainConfig:
    """The resolved config of a run."""
    return load_train_config(Path(run_dir) / CONFIG)


def read_json(path: Path) -> Any:
    """Read a JSON file written by brainage, with a clear error when missing."""
    if not path.is_file():
        raise BrainAgeError(f"{path}: not found. Fix: the run folder is incomplete; retrain.")
    return parse_json_file(path, "the run folder is damaged; retrain")


def model_card(config: TrainConfig, info: RunInfo, data_summary: dict[str, Any],
               spec: Any, metrics: dict[str, Any],
               bias: dict[str, Any] | None) -> dict[str, Any]:
    """Model card (field.md conventions): data, preprocessing, input, metrics, use."""
    return {
        "format": "brainage-model-card", "brainage_version": __version__,
        "model": {"name": config.model.name, "kwargs": config.model.kwargs,
                  "members": info.members, "kind": info.kind},
        "training_data": data_summary,
        "preprocessing": {"spec": spec.to_dict(), "hash": info.spec_hash,
                          "file": PREPROCESSING},
        "input": {"shape": info.input_shape, "dtype": "float32 (stored float16)"},
        "training": {"loss": to_dict(config.loss), "optim": to_dict(config.optim),
                     "epochs": config.epochs, "batch_size": config.batch_size,
                     "precision": config.precision, "seed": config.seed},
        "metrics": metrics,
        "bias_correction": bias,
        "intended_use": INTENDED_USE,
    }
