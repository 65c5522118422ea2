"""The run folder: everything needed to predict, and nothing that needs unpickling.

Training writes it and inference reads it; this module is the format both share, so it
imports neither Lightning nor the training code. Layout::

    run/
      run.json              written last: format, kind, members, training range, spec hash,
                            library versions
      config.yaml           resolved TrainConfig (stage 1 for a cascade)
      preprocessing_spec.json  the prepared cohort's preprocessing spec + its hash
      splits.json           subject splits (a user-provided file wins)
      metrics.json          validation / test / out-of-fold metrics
      predictions.tsv       one row per scan (out-of-fold or held-out predictions)
      model_card.json       training data, preprocessing, metrics, intended use
      bias_correction.json  Beheshti correction fitted on held-out predictions (if enough)
      interval_calibration.json  split-conformal 90 % interval calibration (held-out)
      ood_reference.json + .safetensors  training-data reference of the OOD scores: per
                            member a PCA of the training scans' features and its out-of-fold
                            threshold, plus intensity statistics (inference/ood.py; runs
                            trained before it predict without these scores, with a note)
      weights.safetensors + model.json      a single model, or
      fold-<k>/weights.safetensors + model.json     one model per fold (ensemble)
      fold-<k>-seed-<r>/...                          several seeds per fold (config repeats)
      <member>/checkpoints/{best,last}.ckpt         Lightning checkpoints (resume only)
      <member>/logs/                                CSV (and TensorBoard) logs

A cascade run holds two such folders, ``stage1/`` and ``stage2/``, and its own
``run.json`` with ``kind: cascade``. A pretrained encoder (``brainage pretrain``) has
``kind: encoder``: each member also holds ``projection.safetensors`` + ``projection.json``,
and, once ``brainage probe`` has fitted the linear age read-out, ``age_probe.json`` +
``age_probe.safetensors`` (then it predicts like any run). A GAN run (``kind: gan``,
:mod:`brainage.training.gan_fit`) holds ``generator/``, ``critic/`` and ``regressor/``
model folders and ``subjects.json`` per member. A stack (``kind: stack``,
:mod:`brainage.training.stack`) holds complete member runs under ``members/<name>/`` and
``stack.json`` (the combiner fitted on their out-of-fold predictions). A member folder of a
classical model (:mod:`brainage.classical`) has the same two files as a network's, with
``"family": "classical"`` in ``model.json``. Every file is written atomically; ``run.json`` is
written last, so a folder without it is an unfinished run (rerun training to resume).
"""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from brainage import __version__
from brainage.errors import InputError, NotFoundError
from brainage.io import parse_json_file, write_json
from brainage.run_kinds import stored_kinds

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
        kind: The stored kind, :attr:`~brainage.run_kinds.RunKind.stored` of a
            registered kind (``models``, ``cascade``, ``encoder``, ``gan`` or ``stack``);
            :func:`brainage.run_kinds.kind_of` tells which registered kind the folder is.
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
                "input_shape": self.input_shape, "stages": self.stages,
                "environment": environment(), **self.extra}


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


#: Suffixes of pickled weights (PyTorch, Lightning, plain pickle): refused, never opened.
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def refuse_weights_file(path: Path) -> str:
    """Why a file given as a model (``model.pt``, ``last.ckpt``, ...) is refused, unread.

    Such files are pickles, and unpickling one runs whatever code it names; brainage reads
    weights only from the safetensors files of a run folder, so the file is never opened.
    """
    return (f"{path}: a file, not a run folder. brainage never unpickles weights "
            "(a .pt/.pth/.ckpt/.pkl file is a pickle, and loading one runs any code it holds), "
            "so it was not read. Fix: pass a run folder written by `brainage train` (weights "
            "in safetensors); published SFCN weights: `brainage import-sfcn FILE OUT` "
            "converts them to safetensors, reading tensors only (torch.load weights_only=True).")


def read_run_info(run_dir: str | Path) -> RunInfo:
    """Read ``run.json``.

    Raises:
        NotFoundError: not a run folder, or an unfinished run.
        InputError: a damaged or tampered ``run.json`` (wrong values, member folders outside
            the run), or a newer format.
    """
    run = Path(run_dir)
    path = run / RUN_JSON
    if run.is_file():
        raise InputError(refuse_weights_file(run))
    if not run.is_dir():
        raise NotFoundError(f"{run}: run folder not found. Fix: pass the folder given to "
                            "`brainage train`.")
    if not path.is_file():
        hint = (" It holds a config.yaml: training did not finish. Fix: rerun the same "
                "`brainage train` command to resume." if (run / CONFIG).exists()
                else " Fix: pass a folder written by `brainage train`.")
        raise NotFoundError(f"{run}: no {RUN_JSON}, so this is not a finished run.{hint}")
    data = parse_json_file(path, "rerun the same `brainage train` command")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"{path}: not a brainage run description (format {FORMAT!r}). Fix: "
                         "pass a run folder written by `brainage train`, or restore its "
                         "run.json from a copy.")
    version = data.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise InputError(f"{path}: version is {version!r}; expected a whole number. Fix: the "
                         "run folder is damaged; retrain, or restore run.json from a copy.")
    if version > VERSION:
        raise InputError(f"{path}: written by a newer brainage. Fix: upgrade brainage.")
    known = {"format", "version", "brainage_version", "kind", "members", "training_range",
             "spec_hash", "input_shape", "stages"}
    info = _checked_info(path, data)
    info.extra = {k: v for k, v in data.items() if k not in known}
    for rel in [*info.members, *info.stages.values()]:
        inside_run(run, rel, path)
    return info


def _checked_info(path: Path, data: dict[str, Any]) -> RunInfo:
    """The fields of ``run.json`` with their types checked (a damaged file is refused)."""
    fix = "Fix: the run folder is damaged; retrain, or restore run.json from a copy."
    try:
        rng = [float(a) for a in data["training_range"]]
        info = RunInfo(kind=str(data["kind"]), members=[str(m) for m in data["members"]],
                       training_range=rng, spec_hash=str(data["spec_hash"]),
                       input_shape=[int(n) for n in data["input_shape"]],
                       stages={str(k): str(v) for k, v in (data.get("stages") or {}).items()})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"{path}: a field is missing or has the wrong type ({exc!r}). {fix}"
                         ) from exc
    if len(rng) != 2 or not all(map(math.isfinite, rng)) or rng[0] > rng[1]:
        raise InputError(f"{path}: training_range is {data['training_range']!r}; expected "
                         f"[min, max] ages in years. {fix}")
    if info.kind not in stored_kinds() or not all(n > 0 for n in info.input_shape):
        raise InputError(f"{path}: kind {info.kind!r} / input_shape {info.input_shape!r}: "
                         f"expected a kind of {stored_kinds()} and a positive shape. {fix}")
    return info


def inside_run(run: Path, rel: str, where: Path | None = None) -> Path:
    """``run / rel``, refusing a path that leaves the run folder (``../``, absolute paths).

    Raises:
        InputError: the path points outside the run folder.
    """
    try:
        target = (run / rel).resolve()
        root = run.resolve()
    except (ValueError, OSError, RuntimeError) as exc:  # a NUL byte, a symlink loop
        raise InputError(f"{where or run / RUN_JSON}: member folder {rel!r} is not a usable "
                         f"folder name ({exc}); expected a folder inside the run {run}. Fix: "
                         "the run folder was edited or damaged; retrain, or restore run.json "
                         "from a copy.") from exc
    if target != root and root not in target.parents:
        raise InputError(f"{where or run / RUN_JSON}: member folder {rel!r} points outside the "
                         f"run folder {run}; expected a folder inside it. Fix: the run folder "
                         "was edited or damaged; retrain, or restore run.json from a copy.")
    return target


def read_json(path: Path) -> Any:
    """Read a JSON file written by brainage, with a clear error when missing."""
    if not path.is_file():
        raise NotFoundError(f"{path}: not found. Fix: the run folder is incomplete; retrain.")
    return parse_json_file(path, "the run folder is damaged; retrain")


def environment() -> dict[str, str | None]:
    """Versions of brainage, Python, torch, Lightning and CUDA (None when absent), as
    recorded in ``run.json`` and the model card. Reads package metadata; imports nothing."""
    out: dict[str, str | None] = {"brainage": __version__,
                                  "python": platform.python_version()}
    for name in ("torch", "lightning"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    import torch  # already imported wherever a run is written

    out["cuda"] = torch.version.cuda if torch.cuda.is_available() else None
    return out
