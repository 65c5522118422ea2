"""Run kinds: registered once, with a rule in every layer; each walks load -> predict.

A tiny run of every registered kind is trained (one epoch, a few scans; about 5 s for all
of them); a kind added to
``brainage.run_kinds.RUN_KINDS`` without a tiny run here, or without its rule in each
layer's table, fails these tests.
"""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "training"))
from synthetic_runs import make_prepared, one_torch_thread, tiny_config  # noqa: E402

from brainage import run_kinds as rk  # noqa: E402
from brainage import runs as rf  # noqa: E402
from brainage.errors import BrainAgeError, InputError, UnknownNameError  # noqa: E402
from brainage.evaluation.probe_run import PROBE_RULES, probe_rule, probe_run  # noqa: E402
from brainage.inference.kinds import PREDICT_RULES, predicting_kinds  # noqa: E402
from brainage.inference.predictor import Predictor  # noqa: E402
from brainage.preprocessing.prepared import COHORT_FILE, open_prepared  # noqa: E402
from brainage.training.cascade import train_cascade  # noqa: E402
from brainage.training.config import (  # noqa: E402
    ContrastiveSpec,
    LossSpec,
    ModelSpec,
    SplitSpec,
    load_train_config,
)
from brainage.training.finetune import FINE_TUNE_RULES, source_info  # noqa: E402
from brainage.training.fit import train_cohort  # noqa: E402
from brainage.training.pretrain import pretrain_cohort  # noqa: E402
from brainage.training.stack import train_stack  # noqa: E402

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)
TABLES = {"inference": PREDICT_RULES, "training (fine-tune)": FINE_TUNE_RULES,
          "evaluation (probe)": PROBE_RULES}


@pytest.mark.parametrize("layer", TABLES)
def test_every_layer_has_a_rule_for_every_registered_kind(layer):
    assert sorted(TABLES[layer]) == rk.RUN_KINDS.names()


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """18 scans with tissue maps (for the classical kinds) at three sites."""
    root = tmp_path_factory.mktemp("prep")
    make_prepared(root, n=18, tissues=True)
    table = pd.read_csv(root / COHORT_FILE, sep="\t")
    table["site"] = ["ABC"[i % 3] for i in range(len(table))]
    table.to_csv(root / COHORT_FILE, sep="\t", index=False)
    return open_prepared(root)


def _models(cohort, run):
    return train_cohort(cohort, run, tiny_config(epochs=1))


def _classical(cohort, run):
    return train_cohort(cohort, run, load_train_config(None, [
        "classical.estimator=ridge", "repeats=1", "split.folds=3"]))


def _cascade(cohort, run):
    split = SplitSpec(method="kfold", folds=2, val=0.25, seed=0)
    train_cascade(cohort, run, tiny_config(epochs=1, split=split), tiny_config(
        epochs=1, split=split, model=ModelSpec("tsan_stage2", {"width": 2, "num_blocks": 2})))
    return run


def _encoder(cohort, run):
    config = tiny_config(loss=LossSpec("contrastive"), epochs=1,
                         contrastive=ContrastiveSpec(projection=[8]),
                         split=SplitSpec("kfold", folds=2, val=0.0))
    pretrain_cohort(cohort, run, config)
    probe_run(run, cohort, cv=3)  # the read-out that makes it predict
    return run


def _stack(cohort, run):
    for name, maps in (("gm", "[GM]"), ("wm", "[WM, CSF]")):
        (run.parent / f"{name}.yaml").write_text(
            f"classical: {{estimator: ridge, maps: {maps}}}\nrepeats: 1\n")
    return train_stack(cohort, run, load_train_config(None, [
        f"stack.members=[{run.parent}/gm.yaml, {run.parent}/wm.yaml]", "split.folds=3"]))


def _gan(cohort, run):
    """A GAN run's run.json (its generators are never read: a GAN run predicts no ages)."""
    shutil.copytree(_models(cohort, run.parent / "net"), run)
    info = json.loads((run / rf.RUN_JSON).read_text())
    (run / rf.RUN_JSON).write_text(json.dumps({**info, "kind": rk.GAN}))
    return run


BUILD = {rk.MODELS: _models, rk.CLASSICAL: _classical, rk.CASCADE: _cascade,
         rk.ENCODER: _encoder, rk.STACK: _stack, rk.GAN: _gan}


@pytest.fixture(scope="module")
def runs(cohort, tmp_path_factory):
    """A tiny finished run of every registered kind."""
    assert sorted(BUILD) == rk.RUN_KINDS.names(), "a registered kind has no tiny run here"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no bias correction on so few scans, ...
        return {k: Path(build(cohort, tmp_path_factory.mktemp(k) / "run"))
                for k, build in BUILD.items()}


@pytest.mark.parametrize("kind", rk.RUN_KINDS.names())
def test_every_kind_is_recognised_then_loads_and_predicts(runs, cohort, kind):
    run = runs[kind]
    assert rk.kind_of(run, rf.read_run_info(run)).name == kind
    if kind not in predicting_kinds():
        with pytest.raises(InputError, match="TGB-GAN") as err:
            Predictor.from_run(run)
        assert all(name in str(err.value) for name in predicting_kinds())
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predictor = Predictor.from_run(run)
        out = predictor.predict(cohort.table.iloc[:4])
    assert predictor.kind == kind
    assert len(out) == 4 and np.isfinite(out["predicted_age"].to_numpy(dtype=float)).all()


@pytest.mark.parametrize("kind", rk.RUN_KINDS.names())
def test_fine_tune_and_probe_take_the_kinds_their_rules_allow(runs, kind):
    run = runs[kind]
    if FINE_TUNE_RULES[kind](run, rk.RUN_KINDS.get(kind)) is None:
        assert source_info(run).kind == rk.RUN_KINDS.get(kind).stored
    else:
        with pytest.raises(BrainAgeError, match="--init-from"):
            source_info(run)
    info = rf.read_run_info(run)
    if PROBE_RULES[kind].probes:
        assert probe_rule(run, info) is PROBE_RULES[kind]
    else:
        with pytest.raises(InputError, match="takes runs of kind") as err:
            probe_rule(run, info)
        assert all(n in str(err.value) for n, r in PROBE_RULES.items() if r.probes)


def test_an_unknown_kind_names_the_registered_ones(tmp_path):
    with pytest.raises(UnknownNameError, match="Valid names: cascade, classical, encoder"):
        rk.RUN_KINDS.get("stak")
    run = tmp_path / "run"
    run.mkdir()
    (run / rf.RUN_JSON).write_text(json.dumps({
        "format": rf.FORMAT, "version": 1, "kind": "bogus", "members": ["."],
        "training_range": [20, 80], "spec_hash": "x", "input_shape": [2, 2, 2]}))
    with pytest.raises(InputError, match="expected a kind of") as err:
        rf.read_run_info(run)
    assert all(repr(k) in str(err.value) for k in rk.stored_kinds())
