"""Classical models (tissue-map features + scikit-learn) and stacks as run folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic_runs import make_prepared

from brainage.classical import estimators
from brainage.classical.features import FeatureMaker, FeatureSpec
from brainage.classical.model import ClassicalModel, feature_matrix
from brainage.errors import BrainAgeError
from brainage.estimators.stacking import combine, fit_combiner
from brainage.inference.predictor import Predictor
from brainage.training.config import load_train_config
from brainage.training.fit import train_cohort
from brainage.training.stack import train_stack


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return make_prepared(tmp_path_factory.mktemp("tissues") / "prep", n=24, tissues=True)


def classical(estimator: str = "ridge", *more: str):
    return load_train_config(None, [f"classical.estimator={estimator}", "repeats=1",
                                    "split.folds=3", *more])


@pytest.mark.parametrize("name", ["ridge", "krr", "gpr"])
def test_exported_estimator_predicts_like_scikit_learn(name):
    """The arrays + numbers stored in a run give the fitted estimator's own predictions."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, DotProduct, WhiteKernel
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    X, w = rng.normal(size=(40, 30)), rng.normal(size=30)
    y = X @ w + 50 + rng.normal(0, 0.5, 40)
    X_new = rng.normal(size=(7, 30))
    fitted = estimators.fit(name, X, y)
    ours = estimators.predict(name, fitted, X_new)
    Xs, mean, scale = estimators.standardise(X)
    Xn = (X_new - mean) / scale
    p = fitted.params
    if name == "ridge":
        ref = Ridge(alpha=p["alpha"]).fit(Xs, y).predict(Xn)
    elif name == "krr":
        ref = KernelRidge(alpha=p["alpha"], kernel="rbf", gamma=p["gamma"]).fit(
            Xs, y - y.mean()).predict(Xn) + y.mean()
    else:
        d = np.sqrt(X.shape[1])
        kernel = ConstantKernel(p["constant"], "fixed") * DotProduct(p["sigma_0"], "fixed") \
            + WhiteKernel(p["noise"], "fixed")
        ref = GaussianProcessRegressor(kernel, normalize_y=True).fit(Xs / d, y).predict(Xn / d)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)
    assert np.mean(np.abs(ours - (X_new @ w + 50))) < 0.5 * np.std(X_new @ w)


def test_features_modulate_smooth_pool_and_add_volumes(prepared):
    spec = prepared.spec
    plain = FeatureMaker.for_grid(FeatureSpec(("GM",), modulate=False, fwhm_mm=0, pool=1,
                                              volumes=False), spec.tissue_channels, spec.grid)
    maps = np.load(prepared.table["tissue_path"].iloc[0])
    f1, f2 = plain(maps, 1.0), plain(maps, 2.0)
    np.testing.assert_array_equal(f1, f2)  # unmodulated: the determinant does not matter
    assert f1.size == int(plain.mask.sum())
    mod = FeatureMaker.for_grid(FeatureSpec(("GM", "WM"), fwhm_mm=0, pool=1, volumes=True),
                                spec.tissue_channels, spec.grid)
    g1, g2 = mod(maps, 1.0), mod(maps, 2.0)
    np.testing.assert_allclose(g2[:-4], 2 * g1[:-4], rtol=1e-6)  # modulated maps
    voxel_ml = np.prod(spec.grid.spacing) / 1e3
    assert g1[-4] == pytest.approx(maps[0].sum() * voxel_ml, rel=1e-4)  # GM volume (ml)
    pooled = FeatureMaker.for_grid(FeatureSpec(("GM",), pool=2), spec.tissue_channels, spec.grid)
    assert pooled.mask.shape == tuple((n + 1) // 2 for n in spec.grid.shape)


def test_classical_run_trains_predicts_and_reloads(prepared, tmp_path):
    run = train_cohort(prepared, tmp_path / "ridge", classical("ridge"))
    info = json.loads((run / "run.json").read_text())
    assert info["members"] == ["fold-0", "fold-1", "fold-2"] and info["model"] == "ridge"
    meta = json.loads((run / "fold-0" / "model.json").read_text())
    assert meta["family"] == "classical" and meta["channels"] == ["GM", "WM", "CSF"]
    metrics = json.loads((run / "metrics.json").read_text())
    ages = prepared.table["age"]
    assert metrics["uncorrected"]["test"]["mae"] < 0.5 * np.mean(np.abs(ages - ages.mean()))
    assert (run / "interval_calibration.json").is_file()
    model = ClassicalModel.load(run / "fold-0")
    X = feature_matrix(model.features, prepared.table)
    np.testing.assert_allclose(model.predict_table(prepared.table), model.predict_features(X))
    out = Predictor.from_run(run).predict(prepared.root)
    assert np.isfinite(out["predicted_age"]).all() and "interval_low" in out
    assert np.corrcoef(out["predicted_age"], out["age"])[0, 1] > 0.9


def test_classical_needs_tissue_maps_and_writes_nothing_without(tmp_path):
    plain = make_prepared(tmp_path / "plain", n=8)
    with pytest.raises(BrainAgeError, match="--tissues"):
        train_cohort(plain, tmp_path / "run", classical())
    assert not (tmp_path / "run").exists()
    with pytest.raises(BrainAgeError, match="repeats"):
        train_cohort(plain, tmp_path / "run", load_train_config(
            None, ["classical.estimator=ridge", "repeats=2"]))
    with pytest.raises(BrainAgeError, match="ridge"):
        classical("ridgee")


def test_convex_combiner_is_a_weighted_mean():
    rng = np.random.default_rng(1)
    y = rng.uniform(20, 80, 50)
    good, flat = y + rng.normal(0, 2, 50), np.full(50, 50.0) + rng.normal(0, 0.1, 50)
    comb = fit_combiner(np.c_[good, flat], y, "convex")
    assert sum(comb["weights"]) == pytest.approx(1.0) and min(comb["weights"]) >= 0
    assert comb["weights"][0] > 0.8 and comb["intercept"] == 0.0
    np.testing.assert_allclose(combine(np.c_[good, flat], comb),
                               comb["weights"][0] * good + comb["weights"][1] * flat)


def test_stack_fits_on_out_of_fold_predictions_only(prepared, tmp_path):
    (tmp_path / "gm_ridge.yaml").write_text("classical: {estimator: ridge}\nrepeats: 1\n")
    (tmp_path / "gm_gpr.yaml").write_text("classical: {estimator: gpr, maps: [GM, CSF]}\n"
                                          "repeats: 1\n")
    cfg = load_train_config(None, [
        f"stack.members=[{tmp_path}/gm_ridge.yaml, {tmp_path}/gm_gpr.yaml]", "split.folds=3"])
    run = train_stack(prepared, tmp_path / "stack", cfg)
    stack = json.loads((run / "stack.json").read_text())
    assert stack["members"] == ["members/gm_ridge", "members/gm_gpr"]
    for m in stack["members"]:  # members are complete runs on the stack's splits
        assert json.loads((run / m / "splits.json").read_text()) == json.loads(
            (run / "splits.json").read_text())
    # the stack's own out-of-fold predictions use the combiner fitted without their fold
    from brainage.io import read_table
    from brainage.training.stack import member_predictions

    mp = member_predictions(run, stack["members"], prepared.table)
    preds = read_table(run / "predictions.tsv")
    for k, comb in enumerate(stack["crossfit"]):
        rows = (mp["fold"].astype(int) == k).to_numpy()
        want = combine(mp.loc[rows, stack["members"]].to_numpy(), comb)
        got = preds.set_index("participant_id").loc[
            prepared.table["participant_id"][rows], "predicted_age"].to_numpy(dtype=float)
        np.testing.assert_allclose(got, want, atol=1e-3)  # the table keeps 4 decimals
    out = Predictor.from_run(run).predict(prepared.root)
    assert {"member_gm_ridge", "member_gm_gpr", "interval_low"} <= set(out.columns)
    P = out[["member_gm_ridge", "member_gm_gpr"]].to_numpy()
    np.testing.assert_allclose(out["predicted_age"], combine(P, stack), rtol=1e-6)
    info = json.loads((run / "run.json").read_text())
    assert info["kind"] == "stack"


def test_stack_refuses_holdout_splits_before_writing(prepared, tmp_path):
    (tmp_path / "a.yaml").write_text("classical: {estimator: ridge}\nrepeats: 1\n")
    (tmp_path / "b.yaml").write_text("classical: {estimator: gpr}\nrepeats: 1\n")
    cfg = load_train_config(None, [f"stack.members=[{tmp_path}/a.yaml, {tmp_path}/b.yaml]",
                                   "split.method=holdout"])
    with pytest.raises(BrainAgeError, match="k-fold"):
        train_stack(prepared, tmp_path / "stack", cfg)
    assert not (tmp_path / "stack").exists()


def test_fold_members_share_one_feature_pass(prepared, tmp_path, monkeypatch):
    """Prediction makes each scan's features once for all fold members (same definition)."""
    import brainage.inference.kinds as kinds_module

    run = train_cohort(prepared, tmp_path / "ridge", classical("ridge"))
    predictor = Predictor.from_run(run)
    calls = []
    real = kinds_module.feature_matrix
    monkeypatch.setattr(kinds_module, "feature_matrix",
                        lambda maker, table: calls.append(1) or real(maker, table))
    out = predictor.predict(prepared.table)
    assert len(calls) == 1 and len(predictor.stage1) == 3
    each = np.stack([m.predict_table(prepared.table) for m in predictor.stage1])
    np.testing.assert_allclose(out["predicted_age"], each.mean(axis=0))
