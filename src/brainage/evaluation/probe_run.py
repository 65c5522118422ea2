"""The OpenBHB challenge protocol on any run: ``brainage probe RUN DATA``.

Every member of a run maps each scan to a representation (a contrastive run's normalised
projection, a supervised run's ``forward_features``; at most 10,000 numbers). On the
member's training subjects only, the challenge's probes are fitted
(:mod:`brainage.evaluation.probes`: grid-searched ridge for age, grid-searched logistic
regression for site); the test subjects give MAE internal (seen sites), MAE external
(unseen sites), the site balanced accuracy on the internal test, and the three scores.

Roles come from splits: the user's (``splits=``, a file or :class:`Splits`), a method
applied to the data (``split_method="openbhb"`` reads OpenBHB's ``split`` column), or the
run's own ``splits.json``. ``internal_test`` / ``external_test`` subjects are internal /
external; ``test`` subjects are internal when their site is among the training sites,
else external; ``val`` subjects are not used. A test subject that the member was trained
on is refused: scoring it would be optimistic (a bug of the public code to avoid).

The fitted ridge of every member is stored in its folder (:mod:`brainage.estimators.readout`),
so a probed ``encoder`` run then predicts through ``brainage predict``; such a run also
gets ``predictions.tsv`` and ``metrics.json`` of its probe's test subjects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage import run_kinds as rk
from brainage import runs as rf
from brainage.data.datasets import ScanDataset
from brainage.data.predictions import aggregate, write_predictions
from brainage.data.splits_file import Splits, given_splits
from brainage.errors import InputError
from brainage.estimators.readout import RidgeReadout
from brainage.evaluation.probes import AgeProbe, ProbeSplit, SiteProbe, fit_probes, score_probes
from brainage.inference.encoders import describe, extract, load_member
from brainage.io import write_json
from brainage.preprocessing.openbhb_arrays import open_like

#: Metrics summarised over members.
METRICS = ("mae_internal", "mae_external", "site_bacc", "score", "score_page_text",
           "score_ramp")
PROBE_METRICS = "probe_metrics.json"


def probe_roles(table: pd.DataFrame, splits: Splits, fold: int) -> pd.Series:
    """Probe role of every scan: ``train``, ``internal``, ``external`` or None (unused)."""
    role = pd.Series(None, index=table.index, dtype=object)
    ids = table["participant_id"]
    site = table["site"].astype("string") if "site" in table else pd.Series(
        pd.NA, index=table.index, dtype="string")
    names = {"train": "train", "internal_test": "internal", "external_test": "external",
             "test": "test"}  # val: neither fitted on nor scored
    for name, subjects in splits.folds[fold].items():
        role[ids.isin(subjects).to_numpy()] = names.get(name)
    seen = set(site[(role == "train").to_numpy()].dropna())
    test = (role == "test").to_numpy()
    role[test] = np.where(site[test].isin(seen).fillna(False).to_numpy() | (not seen),
                          "internal", "external")
    role[table["age"].isna().to_numpy()] = None  # nothing to fit or score
    return role


def resolve_probe_splits(run: Path, prepared: Any, splits: Any, method: str | None) -> Splits:
    """The probe's splits: given ones, a method on the data, else the run's own."""
    from brainage.data.splits import make_splits

    cohort = prepared.cohort()
    if splits is not None:
        return given_splits(splits, cohort)
    if method is not None:
        return make_splits(cohort, method)
    own = Splits.from_json(run / rf.SPLITS)
    try:
        own.check(cohort, str(run / rf.SPLITS))
    except Exception as exc:
        raise InputError(f"the run's splits ({run / rf.SPLITS}) are not for these data "
                         f"({exc}). Fix: give the probe's splits (--splits FILE) or a split "
                         "method (--split-method openbhb).") from exc
    return own


def check_unseen(roles: pd.Series, table: pd.DataFrame, trained: set[str], member: str) -> None:
    """Refuse test subjects the member was trained on."""
    test = roles.isin(["internal", "external"])
    seen = sorted(set(table.loc[test[test].index, "participant_id"]) & trained)
    if seen:
        raise InputError(
            f"{len(seen)} test subject(s) of the probe were training subjects of member "
            f"{member!r} ({', '.join(seen[:5])}{', ...' if len(seen) > 5 else ''}); scoring "
            "them would be optimistic. Fix: probe with the run's own splits (leave out "
            "--splits), or splits whose test subjects the run never trained on.")


def score_member(x: np.ndarray, rows: pd.DataFrame, roles: pd.Series, cv: Any = 5,
                 n_jobs: int | None = None) -> tuple[dict[str, Any], AgeProbe]:
    """The challenge metrics of one member's representations `x` (one row per scan of
    `rows`), and its fitted age probe. Without external subjects or sites, the metrics
    that need them are None."""
    sets = {name: (roles == name).to_numpy() for name in ("train", "internal", "external")}
    age = rows["age"].to_numpy(float)
    site = rows["site"].astype(str).to_numpy() if "site" in rows and \
        rows["site"].notna().all() else None
    if not sets["train"].any() or not (sets["internal"].any() or sets["external"].any()):
        raise InputError(f"the probe needs training and test subjects; got "
                         f"{int(sets['train'].sum())} and "
                         f"{int(sets['internal'].sum() + sets['external'].sum())}. "
                         "Fix: use splits with train and test roles.")
    split = {k: ProbeSplit(x[m], age[m], None if site is None else site[m])
             for k, m in sets.items()}
    n_sites = 0 if site is None else len(set(site[sets["train"]]))
    if n_sites >= 2 and sets["internal"].any() and sets["external"].any():
        age_probe, site_probe = fit_probes(split["train"], cv=cv, n_jobs=n_jobs)
        return score_probes(age_probe, site_probe, split["internal"], split["external"]
                            ).to_dict(), age_probe
    return _partial(split, sets, n_sites, cv, n_jobs)


def _partial(split: dict[str, ProbeSplit], sets: dict[str, np.ndarray], n_sites: int,
             cv: Any, n_jobs: int | None) -> tuple[dict[str, Any], AgeProbe]:
    """The metrics that can be computed without one of the test sets or the sites."""
    train = split["train"]
    age_probe = AgeProbe(cv=cv, n_jobs=n_jobs).fit(train.x, train.age)
    out: dict[str, Any] = {m: None for m in METRICS}
    for name in ("internal", "external"):
        if sets[name].any():
            pred = age_probe.predict(split[name].x)
            out[f"mae_{name}"] = float(np.mean(np.abs(pred - split[name].age)))
    out.update(n_sites=n_sites, n_features=int(train.x.shape[1]), n_train=len(train.x),
               n_internal=int(sets["internal"].sum()), n_external=int(sets["external"].sum()),
               best_alpha=age_probe.best_alpha_, best_C=None)
    if n_sites >= 2 and sets["internal"].any():
        site_probe = SiteProbe(cv=cv, n_jobs=n_jobs).fit(train.x, train.site)
        out["site_bacc"] = site_probe.balanced_accuracy(split["internal"].x,
                                                        split["internal"].site)
        out["best_C"] = site_probe.best_C_
    return out, age_probe


@dataclass(frozen=True)
class ProbeRule:
    """How ``brainage probe`` treats a run of one kind.

    Attributes:
        probes: Whether its members can be probed (each member is a network).
        writes_predictions: Whether the probe's test predictions become the run's
            ``predictions.tsv`` and ``metrics.json`` (a run with no age predictions of its
            own: an encoder).
        fix: For a kind that cannot be probed: what to do instead (the run folder given).
    """

    probes: bool
    writes_predictions: bool = False
    fix: Callable[[Path], str] | None = None


#: Per run kind (:data:`brainage.run_kinds.RUN_KINDS`).
PROBE_RULES: dict[str, ProbeRule] = {
    rk.MODELS: ProbeRule(probes=True),
    rk.ENCODER: ProbeRule(probes=True, writes_predictions=True),
    rk.CASCADE: ProbeRule(False, fix=lambda run: "its stages are runs of their own: probe "
                          f"{run / 'stage1'} or {run / 'stage2'}."),
    rk.STACK: ProbeRule(False, fix=lambda run: "probe one of its member runs, under "
                        f"{run / 'members'}."),
    rk.CLASSICAL: ProbeRule(False, fix=lambda run: "a classical model has no network "
                            "representation to probe; probe a network run."),
    rk.GAN: ProbeRule(False, fix=lambda run: "a GAN run's networks make synthetic brains; "
                      "probe a run of age networks or of pretrained encoders."),
}


def probe_rule(run: Path, info: rf.RunInfo) -> ProbeRule:
    """The rule for the run's kind.

    Raises:
        InputError: a kind that cannot be probed; the message lists the kinds that can.
    """
    kind = rk.kind_of(run, info)
    rule = PROBE_RULES[kind.name]
    if not rule.probes:
        assert rule.fix is not None
        raise rk.unsupported(run, kind, "`brainage probe`",
                             [n for n, r in PROBE_RULES.items() if r.probes], rule.fix(run))
    return rule


def _fold_of(run: Path, info: rf.RunInfo) -> tuple[Splits, int]:
    own = Splits.from_json(run / rf.SPLITS)
    return own, max(len(info.members) // own.n_folds, 1)


def probe_run(run_dir: str | Path, data: Any, output: str | Path | None = None, *,
              splits: Any = None, split_method: str | None = None, cohort: Any = None,
              representation: str = "auto", batch_size: int = 8, device: str | None = None,
              cv: Any = 5, n_jobs: int | None = None, mask: Any = None) -> dict[str, Any]:
    """Probe every member of a run under the challenge protocol; write the metrics JSON.

    Args:
        run_dir: A finished run of a kind :data:`PROBE_RULES` probes (age networks or
            pretrained encoders).
        data: A prepared cohort, its folder, or OpenBHB data.
        output: The metrics JSON (default ``RUN/probe_metrics.json``).
        splits: The probe's splits (file or :class:`Splits`); see the module notes.
        split_method: Or a split method applied to the data (``openbhb``).
        cohort: Ages/sex/site for a prepared folder without ``cohort.tsv``.
        representation: ``auto``, ``projection`` or ``features``.
        batch_size, device: Of the encoder's forward passes.
        cv, n_jobs: Of the probes' grid searches.
        mask: OpenBHB mask option (:func:`brainage.preprocessing.openbhb_arrays.open_openbhb`).

    Returns:
        The metrics written (per member, and their mean and SD).
    """
    from brainage.preprocessing.spec import PreprocessingSpec, check_spec_compatible

    run = Path(run_dir)
    info = rf.read_run_info(run)
    rule = probe_rule(run, info)
    spec = PreprocessingSpec.load(run / rf.PREPROCESSING)
    prepared = open_like(data, spec, cohort, mask)
    check_spec_compatible(spec, prepared.spec, what=("run", "data"))
    table = prepared.table.reset_index(drop=True)
    probe_splits = resolve_probe_splits(run, prepared, splits, split_method)
    own, repeats = _fold_of(run, info)
    results, preds = [], []
    for m, name in enumerate(info.members):
        fold = m // repeats
        roles = probe_roles(table, probe_splits, fold if probe_splits.n_folds > 1 else 0)
        trained = set(own.subjects("train", fold)) | set(own.subjects("val", fold))
        check_unseen(roles, table, trained, name)
        used = roles.dropna().index
        member_dir = rf.inside_run(run, name)
        member = load_member(member_dir, representation)
        x = extract(member, ScanDataset.from_table(table.loc[used]), batch_size, device)
        metrics, age_probe = score_member(x, table.loc[used], roles.loc[used], cv, n_jobs)
        readout = RidgeReadout.from_probe(age_probe)
        readout.save(member_dir, **describe(member), fitted_on=int(metrics["n_train"]))
        results.append({"member": name, "fold": fold, **metrics})
        test = roles.loc[used].isin(["internal", "external"]).to_numpy()
        preds.append(pd.DataFrame({"scan": used[test], "fold": fold,
                                   "role": roles.loc[used][test].to_numpy() + "_test",
                                   "predicted_age": readout.predict(x[test])}))
    out = summarise(results, describe(member), run, data)
    write_json(Path(output) if output else run / PROBE_METRICS, out)
    if rule.writes_predictions:
        _write_predictions(run, table, preds, out)
    return out


def summarise(results: list[dict[str, Any]], representation: dict[str, Any], run: Path,
              data: Any) -> dict[str, Any]:
    """Metrics JSON: the mean over members at the top, their SD, and each member."""
    def stats(key: str) -> tuple[float | None, float | None]:
        vals = [r[key] for r in results if r.get(key) is not None]
        if not vals:
            return None, None
        return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0

    mean = {k: stats(k)[0] for k in METRICS}
    n_sites = results[0].get("n_sites") or 0
    return {"format": "brainage-probe", "protocol": "OpenBHB challenge linear probes",
            "run": str(run), "data": str(getattr(data, "root", data)), **representation,
            **mean, "sd": {k: stats(k)[1] for k in METRICS},
            "chance_site_bacc": 1.0 / n_sites if n_sites else None,
            "members": results}


def _write_predictions(run: Path, table: pd.DataFrame, preds: list[pd.DataFrame],
                       out: dict[str, Any]) -> None:
    """An encoder run's held-out predictions (the probe's test subjects) and metrics."""
    from brainage.evaluation.oof import set_metrics

    table = table.drop(columns=[c for c in ("array_path",) if c in table])
    rows = aggregate(table, preds)
    write_predictions(run / rf.PREDICTIONS, rows)
    write_json(run / rf.METRICS, {"uncorrected": set_metrics(rows),
                                  "probe": {k: out[k] for k in METRICS}})
