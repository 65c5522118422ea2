"""The sections of a :class:`~brainage.training.config.TrainConfig` that replace the network
by fitted estimators: a classical model on tissue maps, or a stack of member runs combined
on their out-of-fold predictions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from brainage.errors import InputError


@dataclass
class ClassicalSpec:
    """A classical model (:mod:`brainage.classical`) instead of a network.

    With this section the network sections (model, loss, optim, ...) are not used.

    Attributes:
        estimator: ``ridge`` (penalty by generalised cross-validation), ``svr`` (linear
            support-vector regression, C by inner 5-fold search), ``krr`` (kernel ridge,
            RBF, seeded inner 5-fold grid search) or ``gpr`` (Gaussian process, linear
            kernel + noise, marginal likelihood).
        maps: Tissue maps used as features (``GM``, ``WM``, ``CSF``, ``logjac``).
        modulate: Jacobian-modulated maps (tissue volume per template voxel).
        fwhm_mm: Smoothing of the voxel maps (mm FWHM).
        pool: Block-average factor on the grid.
        volumes: Add whole-brain GM, WM, CSF and intracranial volumes.
        voxels: Use the smoothed voxel maps (off: regional features only).
        parcels: Template-parcel scales (parcels per hemisphere) whose map means are added.
        brain_measures: Add the ventricular CSF and whole-brain tissue fractions.
        select: Candidates to choose from *inside each training fold*: each entry changes
            some of the settings above (and may have a ``name``). Every fold compares them
            by inner cross-validation on its own training subjects and fits the winner, so
            the run's out-of-fold predictions score the choice honestly (nested
            cross-validation). Empty: these settings, no choice.
        select_folds: Inner folds of that choice.
    """

    estimator: str = "ridge"
    maps: list[str] = field(default_factory=lambda: ["GM"])
    modulate: bool = True
    fwhm_mm: float = 8.0
    pool: int = 2
    volumes: bool = True
    voxels: bool = True
    parcels: list[int] = field(default_factory=list)
    brain_measures: bool = False
    select: list[dict[str, Any]] = field(default_factory=list)
    select_folds: int = 5

    def __post_init__(self) -> None:
        from brainage.classical.estimators import ESTIMATORS

        ESTIMATORS.get(self.estimator)
        self.feature_spec()
        if self.select_folds < 2:
            raise InputError(f"classical.select_folds={self.select_folds!r}: expected 2 or "
                             "more inner folds. Fix: e.g. select_folds: 5.")
        self.candidates()  # every candidate is checked at load time

    def feature_spec(self) -> Any:
        """The :class:`~brainage.classical.FeatureSpec` of these settings."""
        from brainage.classical.features import FeatureSpec

        return FeatureSpec(tuple(self.maps), self.modulate, self.fwhm_mm, self.pool,
                           self.volumes, self.voxels, tuple(self.parcels),
                           self.brain_measures)

    def candidates(self) -> dict[str, ClassicalSpec]:
        """Name -> settings of each candidate (just these settings when ``select`` is
        empty, named ``default``)."""
        from brainage.config import from_dict, to_dict

        if not self.select:
            return {"default": self}
        base = {k: v for k, v in to_dict(self).items() if k not in ("select", "select_folds")}
        out: dict[str, ClassicalSpec] = {}
        for i, entry in enumerate(self.select):
            where = f"classical.select[{i}]"
            if not isinstance(entry, dict):
                raise InputError(f"{where}: got {entry!r}; expected a mapping of settings. "
                                 "Fix: e.g. - {estimator: svr, parcels: [32]}.")
            changes = {k: v for k, v in entry.items() if k != "name"}
            if "select" in changes or "select_folds" in changes:
                raise InputError(f"{where}: a candidate cannot hold its own select. Fix: "
                                 "list every candidate at the top level.")
            name = str(entry.get("name") or f"candidate-{i}")
            if name in out:
                raise InputError(f"{where}: the name {name!r} is used twice. Fix: give "
                                 "each candidate its own name.")
            out[name] = from_dict(ClassicalSpec, {**base, **changes}, where)
        return out


@dataclass
class StackSpec:
    """A stack: several member runs combined by a model fitted on their out-of-fold
    predictions (:mod:`brainage.training.stack`).

    Attributes:
        members: Presets or config files of the members (each trained on the same splits).
        combiner: ``convex`` (non-negative weights summing to 1, the Super Learner's),
            ``positive`` (non-negative weights + an intercept) or ``mean`` (equal weights);
            see :func:`brainage.estimators.stacking.fit_combiner`.
    """

    members: list[str] = field(default_factory=list)
    combiner: Literal["convex", "positive", "mean"] = "convex"

    def __post_init__(self) -> None:
        if len(self.members) < 2:
            raise InputError(f"stack.members={self.members!r}: a stack needs at least two "
                             "members. Fix: e.g. members: [quickstart, gm_gpr].")
