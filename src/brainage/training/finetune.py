"""Fine-tuning: start every member of a new run from the weights of a finished run.

``brainage train PREPARED RUN --init-from SOURCE`` (``config.init_from``) checks, before
anything is written:

* the source is a finished ``brainage train`` run of age networks, kind ``models``
  (:data:`FINE_TUNE_RULES` says why each other kind is refused; a cascade's ``stage1/``
  folder is such a run);
* PREPARED was prepared with the source's preprocessing recipe (else it is refused, with the
  command that prepares it exactly as the model expects: ``brainage prepare SOURCE_DATA OUT
  --spec SOURCE``); other library versions only warn, since preparing again here cannot
  remove them;
* the model is the source's: name and kwargs come from the source member's ``model.json``.
  A config naming another model is overridden, with a warning;
* one source member initialises every new member: ``init_member``, default the first of
  the source's ``run.json`` (``.`` or ``fold-0``), never an average;
* soft-label bins that do not cover PREPARED's ages are extended
  (:func:`brainage.models.bins.extend_bins`) and a warning says how.

The new run records its own model (bins included) and, under ``init_from`` in ``run.json``
and the model card, the source folder, member, weights hash and any extension.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from brainage import run_kinds as rk
from brainage import runs as rf
from brainage.errors import InputError
from brainage.models import BrainAgeModel, load_model
from brainage.models.bins import extend_bins
from brainage.models.io import WEIGHTS
from brainage.preprocessing.prepared import PreparedCohort
from brainage.training.config import ModelSpec, TrainConfig


@dataclass
class InitWeights:
    """What a fine-tuned run starts from.

    Attributes:
        state: The initial state dict of every member (bins extended when needed).
        record: What ``run.json`` and the model card record under ``init_from``.
    """

    state: dict[str, Tensor]
    record: dict[str, Any]


def start_fine_tune(config: TrainConfig, prepared: PreparedCohort
                    ) -> tuple[TrainConfig, InitWeights | None]:
    """The config of a fine-tuned run (the source's model) and its initial weights.

    Args:
        config: The asked-for config; unchanged (and None returned) without ``init_from``.
        prepared: The cohort to fine-tune on.

    Returns:
        The config with the source's model and the resolved source folder and member, and
        the initial weights with their record.

    Raises:
        BrainAgeError: no bundled model, not a usable run, another preprocessing recipe, an
            unknown member, or bins that cannot be extended.
    """
    if config.init_from is None:
        return config, None
    from brainage.bundled_runs import resolve_run

    run = resolve_run(config.init_from).resolve()
    info = source_info(run)
    spec_hash = check_source_spec(run, info, prepared)
    member = pick_member(run, info, config.init_member)
    model = source_model(run, member)
    warn_model_replaced(config.model, model)
    ages = [float(a) for a in prepared.table["age"].dropna()]
    kwargs, state, extension = extend_bins(model, ages)
    if extension is not None:
        warnings.warn(extension.message(), stacklevel=3)
    record = {"run": str(run), "requested": str(config.init_from), "member": member,
              "model": model.config["name"], "weights_sha256": file_sha256(run / member / WEIGHTS),
              "spec_hash": spec_hash, "source_training_range": info.training_range,
              "age_bins": extension.to_dict() if extension is not None else None}
    config = dataclasses.replace(config, model=ModelSpec(model.config["name"], kwargs),
                                 init_from=str(run), init_member=member)
    return config, InitWeights(state, record)


def _starts(run: Path, kind: rk.RunKind) -> str | None:
    return None


def _whole_cascade(run: Path, kind: rk.RunKind) -> str | None:
    return ("a TSAN cascade cannot be fine-tuned as a whole (its stage 2 refines stage-1 "
            "predictions of the cohort it was trained on). Fix: fine-tune its first stage as a "
            f"single-stage run, --init-from {run / 'stage1'}.")


def _stack(run: Path, kind: rk.RunKind) -> str | None:
    return ("a stack combines several runs. Fix: fine-tune one of its network members, e.g. "
            f"--init-from {run / 'members' / 'quickstart'}.")


def _classical(run: Path, kind: rk.RunKind | None = None) -> str | None:
    return ("its members are classical models (tissue maps + a linear or kernel regressor), "
            "which have no network weights to start from. Fix: train it on your data "
            "directly, `brainage train PREPARED RUN -c tissue_ridge` (seconds), or fine-tune "
            "a network run.")


def _not_age_models(run: Path, kind: rk.RunKind) -> str | None:
    starts = [n for n, rule in FINE_TUNE_RULES.items() if rule is _starts]
    return (f"a run of kind {kind.name!r} ({kind.summary}); fine-tuning starts from runs of "
            f"kind {', '.join(repr(n) for n in starts)}, written by `brainage train`. Fix: "
            "pass such a run folder.")


#: Per run kind (:data:`brainage.run_kinds.RUN_KINDS`): ``rule(source, kind)`` is None where
#: fine-tuning may start from the source, else why not and the fix.
FINE_TUNE_RULES: dict[str, Callable[[Path, rk.RunKind], str | None]] = {
    rk.MODELS: _starts, rk.CLASSICAL: _classical, rk.CASCADE: _whole_cascade,
    rk.STACK: _stack, rk.ENCODER: _not_age_models, rk.GAN: _not_age_models}


def source_info(run: Path) -> rf.RunInfo:
    """``run.json`` of the source, which must hold age models trained by ``brainage train``.

    Raises:
        BrainAgeError: not a finished run, or a run of a kind fine-tuning cannot start
            from (:data:`FINE_TUNE_RULES` says why).
    """
    info = rf.read_run_info(run)
    kind = rk.kind_of(run, info)
    why = FINE_TUNE_RULES[kind.name](run, kind)
    if why is not None:
        raise InputError(f"--init-from {run}: {why}")
    return info


def _refuse_classical(run: Path, member: str) -> None:
    """A classical member (picked by ``--init-member``) has no network weights either."""
    from brainage.classical.model import is_classical

    if is_classical(run / member):
        raise InputError(f"--init-from {run}: member {member!r}: {_classical(run)}")


def check_source_spec(run: Path, info: rf.RunInfo, prepared: PreparedCohort) -> str:
    """Refuse data prepared with another recipe than the source's; returns the source's
    spec hash. Other library versions only warn (preparing again here keeps them)."""
    from brainage.preprocessing.run_spec import load_spec
    from brainage.preprocessing.spec import check_spec_compatible, recipe_differences

    spec = load_spec(run, info)
    diffs = recipe_differences(spec, prepared.spec)
    if diffs:
        raise InputError(
            f"{prepared.root} was prepared with another preprocessing spec "
            f"({prepared.spec.short_hash}) than the source run {run} ({spec.short_hash}): "
            + "; ".join(diffs) + ". Fine-tuning needs the scans prepared exactly as the model "
            "expects. Fix: prepare them again with the source run's spec, `brainage prepare "
            f"SOURCE OUT --spec {run}` (Python: brainage.prepare(source, out, spec=RUN)), "
            f"then `brainage train OUT RUN --init-from {run}`.")
    check_spec_compatible(spec, prepared.spec, allow_library_drift=True,
                          what=("source run", "prepared data"))
    return spec.hash


def pick_member(run: Path, info: rf.RunInfo, member: str | None) -> str:
    """The source member that initialises every new member (default: the first)."""
    if member is None:
        return info.members[0]
    if member not in info.members:
        raise InputError(
            f"--init-member {member!r}: {run} has the members {', '.join(info.members)}. "
            f"Fix: pass one of them, or drop --init-member for the first ({info.members[0]}).")
    return member


def source_model(run: Path, member: str) -> BrainAgeModel:
    """The source member's network with its weights; refused if it needs a cascade or is a
    classical model (nothing to start from: it is refitted in seconds)."""
    _refuse_classical(run, member)
    model = load_model(run / member)
    if "stage1_age" in model.covariates:
        raise InputError(
            f"--init-from {run}: member {member!r} is a cascade's stage 2 "
            f"({model.config['name']}), which only trains inside a cascade. Fix: fine-tune "
            "the cascade's stage 1 instead (its stage1/ folder).")
    return model


def warn_model_replaced(asked: ModelSpec, model: BrainAgeModel) -> None:
    """Warn when the config chose a model other than the source's (the source's is used).

    The default model (no model chosen) is replaced silently.
    """
    from brainage.models.registry import model_info

    name, kwargs = model.config["name"], model.config["kwargs"]
    if asked == TrainConfig().model:
        return
    resolved = json.loads(json.dumps({**model_info(asked.name).default_kwargs,
                                      **asked.kwargs}))
    if asked.name == name and resolved == kwargs:
        return
    warnings.warn(
        f"--init-from: the config's model ({asked.name} {asked.kwargs}) is replaced by the "
        f"source run's ({name} {kwargs}); a fine-tuned model keeps the architecture of the "
        "weights it starts from. Fix: drop the model section (or --set model...), or train "
        "without --init-from to change the architecture.", stacklevel=4)


def load_initial(modules: list[nn.Module | None], state: dict[str, Tensor]) -> None:
    """Copy the initial weights into each network (the model and its weight average).

    Raises:
        InputError: the weights do not fit (a programming error upstream, reported clearly).
    """
    for net in modules:
        if net is None:
            continue
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise InputError(f"the --init-from weights do not fit the model ({exc}). Fix: "
                             "report this; train without --init-from meanwhile.") from exc


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (identifies the exact source weights)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

