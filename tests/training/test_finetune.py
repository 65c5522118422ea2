"""Fine-tuning (``--init-from``): source weights at step 0, extended bins, refusals, records."""

from __future__ import annotations

import json
import warnings

import lightning as L
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from synthetic_runs import make_prepared, spec_for_tests, tiny_config

import brainage
from brainage import runs as rf
from brainage.bundled_runs import default_model_dir
from brainage.errors import BrainAgeError
from brainage.models import create_model, load_model
from brainage.models.bins import EDGE_DECAY, extend_bins
from brainage.preprocessing.spec import PreprocessingSpec
from brainage.training import fit as train_mod
from brainage.training.config import LossSpec, ModelSpec, load_train_config
from brainage.training.finetune import file_sha256, start_fine_tune
from brainage.training.fit import train_cohort

#: Source bins [40, 82) of width 2 (21 bins); the source cohort is 50-80, the new one 20-60.
MODEL = ModelSpec("sfcn", {"channels": [4, 8, 4], "dropout": 0.2, "age_range": [40, 82],
                           "bin_width": 2.0})


def config(**changes):
    base = {"model": MODEL, "loss": LossSpec("soft_label", {"sigma": 2.0}), "epochs": 2}
    return tiny_config(**{**base, **changes})


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    prepared = make_prepared(tmp_path_factory.mktemp("src"), n=12, ages=(50, 80))
    with warnings.catch_warnings():  # too few held-out scans for a bias correction
        warnings.simplefilter("ignore")
        return train_cohort(prepared, tmp_path_factory.mktemp("runs") / "source", config())


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    return make_prepared(tmp_path_factory.mktemp("new"), n=12, seed=1, ages=(20, 60))


class _FirstStep(L.Callback):
    """Keeps the network's weights as training starts (before the first step)."""

    def __init__(self, seen):
        self.seen = seen

    def on_train_start(self, trainer, module):
        self.seen.append({k: v.detach().clone() for k, v in module.model.state_dict().items()})


@pytest.fixture(scope="module")
def tuned(source, target, tmp_path_factory):
    seen: list = []
    original = train_mod.fit_member
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_mod, "fit_member",
                   lambda *a, **k: original(*a, **{**k, "callbacks": [_FirstStep(seen)]}))
        with pytest.warns(UserWarning, match=r"age bins extended from \[40, 82\) to \[20, 82\)"
                          r": 10 new bins initialised from the edge") as caught:
            run = brainage.train(target.root, tmp_path_factory.mktemp("runs") / "tuned",
                                 config(), init_from=source)
    assert not [w for w in caught if "replaced" in str(w.message)]  # same model: no warning
    return run, seen[0]


def test_every_weight_starts_from_the_source_and_new_bins_from_the_edge(source, tuned):
    run, start = tuned
    src = load_file(str(source / "weights.safetensors"))
    assert start.keys() == src.keys()
    for name in src:
        if not name.startswith("classifier."):
            assert torch.equal(start[name], src[name]), name
    w, b = start["classifier.weight"], start["classifier.bias"]
    assert w.shape[0] == 31 and torch.equal(w[10:], src["classifier.weight"])
    assert torch.equal(b[10:], src["classifier.bias"])
    assert all(torch.equal(w[i], src["classifier.weight"][0]) for i in range(10))
    expected = src["classifier.bias"][0] - EDGE_DECAY * torch.arange(10, 0, -1.0)
    torch.testing.assert_close(b[:10], expected)


def test_the_run_records_its_source_and_its_own_bins(source, tuned):
    run, _ = tuned
    info = rf.read_run_info(run)
    record = info.extra["init_from"]
    assert record["run"] == str(source.resolve()) and record["member"] == "."
    assert record["weights_sha256"] == file_sha256(source / "weights.safetensors")
    assert record["spec_hash"] == rf.read_run_info(source).spec_hash
    assert record["age_bins"]["from"] == [40, 82] and record["age_bins"]["to"] == [20, 82]
    card = json.loads((run / "model_card.json").read_text())
    assert card["init_from"] == record and card["model"]["kwargs"]["age_range"] == [20, 82]
    saved = load_train_config(run / "config.yaml")
    assert saved.init_from == str(source.resolve()) and saved.init_member == "."
    assert load_model(run).age_bins.start == 20  # prediction reads the run's own bins


def test_resuming_without_init_from_is_refused(tuned, target):
    run, _ = tuned
    with pytest.raises(BrainAgeError, match="another configuration"):
        train_cohort(target, run, config())
    with pytest.raises(BrainAgeError, match="only used with init_from"):
        train_cohort(target, run, config(init_member="."))


def test_the_fine_tuned_run_predicts(tuned, target):
    run, _ = tuned
    with warnings.catch_warnings():  # no bias correction / intervals in so small a run
        warnings.simplefilter("ignore")
        preds = brainage.Predictor.from_run(run).predict(target.root)
    assert len(preds) == 12 and np.isfinite(preds["predicted_age"]).all()


def test_data_prepared_with_another_spec_is_refused_before_anything_is_written(
        source, tmp_path):
    other = make_prepared(tmp_path / "other", n=6, spec=spec_for_tests(n4=False))
    with pytest.raises(BrainAgeError, match="another preprocessing spec") as info:
        train_cohort(other, tmp_path / "run", config(init_from=str(source)))
    message = str(info.value)
    assert "n4: True vs False" in message and f"--spec {source.resolve()}" in message
    assert not (tmp_path / "run").exists()


def test_preparing_with_the_source_run_as_spec_gives_its_spec(source):
    spec = PreprocessingSpec.load(source).with_current_libraries()  # `prepare --spec RUN`
    assert spec.hash == rf.read_run_info(source).spec_hash


def test_bundled_resolves_through_one_function(target, tmp_path, monkeypatch):
    from brainage import bundled_runs as bundled

    if bundled.default_network_dir() is not None:  # the bundled IXI network, another spec
        with pytest.raises(BrainAgeError, match="another preprocessing spec.*ixi_sfcn"):
            brainage.train(target.root, tmp_path / "run", config(), init_from="bundled")
    monkeypatch.setattr(bundled, "default_network_dir", lambda: None)
    if default_model_dir() is not None:  # the bundled default is classical: nothing to start
        with pytest.raises(BrainAgeError, match="classical model.*-c tissue_ridge"):
            brainage.train(target.root, tmp_path / "run", config(), init_from="bundled")
    monkeypatch.setattr(bundled, "default_model_dir", lambda: None)  # an install without one
    with pytest.raises(BrainAgeError, match="no bundled model in this installation; pass a "
                                            "run folder"):
        brainage.train(target.root, tmp_path / "run", config(), init_from="bundled")
    assert not (tmp_path / "run").exists()


def test_an_unknown_member_and_a_cascade_are_refused(source, target, tmp_path):
    with pytest.raises(BrainAgeError, match=r"--init-member 'fold-3'.*members \."):
        brainage.train(target.root, tmp_path / "a", config(), init_from=source,
                       init_member="fold-3")
    with pytest.raises(BrainAgeError, match="--init-from cannot be used with --cascade"):
        brainage.train(target.root, tmp_path / "b", config(), init_from=source, cascade=True)
    with pytest.raises(BrainAgeError, match="--init-member is only used with --init-from"):
        brainage.train(target.root, tmp_path / "c", config(), init_member="fold-0")
    assert not list(tmp_path.iterdir())


def test_a_config_naming_another_model_is_overridden_with_a_warning(source, target):
    asked = config(model=ModelSpec("sfcn", {"channels": [4, 4]}), init_from=str(source))
    with pytest.warns(UserWarning, match="is replaced by the source run's"):
        cfg, init = start_fine_tune(asked, target)
    assert cfg.model.kwargs["channels"] == [4, 8, 4] and init is not None


def test_bins_covering_the_cohort_and_scalar_heads_are_left_alone():
    sfcn = create_model("sfcn", channels=[4, 4], age_range=[40, 82])
    kwargs, state, ext = extend_bins(sfcn, [40.0, 60.0, 82.0])  # 82 = the last edge: inside
    assert ext is None and kwargs["age_range"] == [40, 82]
    scalar = create_model("resnet18_3d", width=4, layers=[1, 1, 1, 1])
    kwargs, state, ext = extend_bins(scalar, [5.0, 95.0])
    assert ext is None and state.keys() == scalar.state_dict().keys()
    _, state, ext = extend_bins(sfcn, [39.0, 85.0])
    assert (ext.below, ext.above, ext.new) == (1, 2, (38.0, 86.0))
    assert state["classifier.weight"].shape[0] == 21 + 3
