"""The kinds of run folder, registered once: ``RUN_KINDS`` (names, how to recognise one).

A run's ``run.json`` stores its kind (:mod:`brainage.runs`); a classical run stores
``models`` like a network run, and the ``family`` of its members' ``model.json`` tells them
apart. Each layer above keeps its own rules per kind, in a table keyed by these names:
inference (:mod:`brainage.inference.kinds`: loader and predictor), training
(:mod:`brainage.training.finetune`: whether fine-tuning may start from it) and evaluation
(:mod:`brainage.evaluation.probe_run`: whether it can be probed). A test checks that each
table covers every registered kind, so a kind added here without its rules fails. Messages
take the kind names from here, never from lists written by hand.

Example:
    >>> from brainage.run_kinds import RUN_KINDS
    >>> RUN_KINDS.names()
    ['cascade', 'classical', 'encoder', 'gan', 'models', 'stack']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from brainage.errors import InputError
from brainage.io import parse_json_file
from brainage.registry import Registry

#: A member folder's model description (``models.io.CONFIG``); its ``family`` tells a
#: classical model from a network.
MEMBER_CONFIG = "model.json"


class _Info(Protocol):
    """What recognising a kind reads of ``run.json`` (:class:`brainage.runs.RunInfo`)."""

    kind: str
    members: list[str]


@dataclass(frozen=True)
class RunKind:
    """One kind of run folder, registered once in :data:`RUN_KINDS`.

    Each layer above keeps its own rules per kind in a table keyed by these names (how
    inference loads and predicts it, whether fine-tuning and probing may start from it);
    a test checks that every table covers every registered kind.

    Attributes:
        name: The registered name.
        stored: The ``kind`` its ``run.json`` holds (several kinds may share one).
        summary: What such a run is, for messages ("a TSAN cascade").
        made_by: The command that writes it, for fixes.
        family: Among kinds sharing `stored`: the ``family`` the first member's
            ``model.json`` has, or None for the kind of any other family.
    """

    name: str
    stored: str
    summary: str
    made_by: str
    family: str | None = None


#: Every kind of run folder; dispatch on a run's kind goes through this registry.
RUN_KINDS: Registry[RunKind] = Registry("run kind", "see brainage.run_kinds.RUN_KINDS")
MODELS, CLASSICAL, CASCADE, ENCODER, GAN, STACK = (
    "models", "classical", "cascade", "encoder", "gan", "stack")
for _kind in (
        RunKind(MODELS, "models", "age networks (one model or a fold ensemble)",
                "`brainage train`"),
        RunKind(CLASSICAL, "models", "classical models (tissue maps + a linear or kernel "
                "regressor)", "`brainage train -c tissue_ridge`", family="classical"),
        RunKind(CASCADE, "cascade", "a TSAN cascade (two stages)", "`brainage train -c tsan`"),
        RunKind(ENCODER, "encoder", "pretrained encoders (+ the age read-out of "
                "`brainage probe`)", "`brainage pretrain`"),
        RunKind(GAN, "gan", "a TGB-GAN run (it makes synthetic brains; it does not predict "
                "ages)", "`brainage gan train`"),
        RunKind(STACK, "stack", "a stack (member runs and a combiner)", "`brainage train -c stack_cpu`")):
    RUN_KINDS.add(_kind.name, _kind)


def stored_kinds() -> list[str]:
    """The ``run.json`` kinds of the registered run kinds, in registry order."""
    return list(dict.fromkeys(RUN_KINDS.get(n).stored for n in RUN_KINDS))


def kind_of(run_dir: str | Path, info: _Info) -> RunKind:
    """The registered kind of a run folder: its ``run.json`` kind, and where several kinds
    share that, the ``family`` of its first member's ``model.json``.

    Raises:
        UnknownNameError: a kind no entry of :data:`RUN_KINDS` stores (the names listed).
    """
    shared = [RUN_KINDS.get(n) for n in RUN_KINDS if RUN_KINDS.get(n).stored == info.kind]
    if len(shared) == 1:
        return shared[0]
    if not shared:
        return RUN_KINDS.get(info.kind)  # unknown: the error lists the registered kinds
    family = _member_family(Path(run_dir), info)
    return next((k for k in shared if k.family == family),
                next(k for k in shared if k.family is None))


def _member_family(run: Path, info: _Info) -> str | None:
    """``family`` of the first member's ``model.json`` (None when absent or unreadable)."""
    if not info.members:
        return None
    path = run / info.members[0] / MEMBER_CONFIG
    try:
        data = parse_json_file(path, "retrain") if path.is_file() else None
    except (InputError, OSError):  # a damaged member is refused when its model loads
        return None
    family = data.get("family") if isinstance(data, dict) else None
    return str(family) if family is not None else None


def expect_kind(run_dir: str | Path, info: _Info, name: str, fix: str) -> RunKind:
    """The run's kind, which must be `name`.

    Raises:
        InputError: a run of another kind; the message names both kinds and `fix`.
    """
    kind, want = kind_of(run_dir, info), RUN_KINDS.get(name)
    if kind.name != want.name:
        raise InputError(f"{run_dir} is a run of kind {kind.name!r} ({kind.summary}), not "
                         f"{want.name!r} ({want.summary}). Fix: {fix}")
    return kind


def unsupported(run_dir: str | Path, kind: RunKind, what: str, supported: list[str],
                fix: str = "") -> InputError:
    """The error for a run whose kind cannot be used for `what`, listing the kinds that can
    (`supported`, names of :data:`RUN_KINDS`)."""
    fix = fix or f"pass a run of kind {' or '.join(repr(n) for n in supported)}."
    return InputError(f"{run_dir} is a run of kind {kind.name!r} ({kind.summary}); {what} "
                      f"takes runs of kind {', '.join(supported)}. Fix: {fix}")
