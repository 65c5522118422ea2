"""Explaining classical runs and stacks: exact linear contributions, refusals, outputs."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from synthetic_runs import make_prepared

from brainage.classical import estimators
from brainage.classical.explain import explain_models, features_to_map, linear_form
from brainage.classical.features import FeatureMaker, FeatureSpec
from brainage.classical.model import ClassicalModel
from brainage.errors import BrainAgeError, InputError
from brainage.inference.explain import explain_scan, load_run
from brainage.inference.explain_parts import (
    ClassicalExplainer,
    NetworkExplainer,
    Settings,
    StackExplainer,
)
from brainage.inference.predictor import Predictor
from brainage.training.config import load_train_config
from brainage.training.fit import train_cohort
from brainage.training.stack import train_stack

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # no OOD reference: noted


def classical(estimator: str):
    return load_train_config(None, [f"classical.estimator={estimator}", "repeats=1",
                                    "split.folds=3"])


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return make_prepared(tmp_path_factory.mktemp("tissues") / "prep", n=24, tissues=True)


@pytest.fixture(scope="module")
def ridge(prepared, tmp_path_factory):
    return train_cohort(prepared, tmp_path_factory.mktemp("r") / "ridge", classical("ridge"))


@pytest.fixture(scope="module")
def stack(prepared, tmp_path_factory):
    root = tmp_path_factory.mktemp("s")
    (root / "gm_ridge.yaml").write_text("classical: {estimator: ridge}\nrepeats: 1\n")
    (root / "gm_gpr.yaml").write_text("classical: {estimator: gpr, maps: [GM, CSF]}\n"
                                      "repeats: 1\n")
    cfg = load_train_config(None, [f"stack.members=[{root}/gm_ridge.yaml, "
                                   f"{root}/gm_gpr.yaml]", "split.folds=3"])
    return train_stack(prepared, root / "stack", cfg)


def _identity_error(out) -> float:
    return out.saliency.sum() + sum(out.volumes.values()) - (out.prediction - out.baseline)


def test_ridge_map_sums_to_prediction_minus_training_mean(ridge, prepared, tmp_path):
    table = prepared.table
    predicted = Predictor.from_run(ridge).predict(table.iloc[:3])["predicted_age"]
    folds = [ClassicalModel.load(ridge / f"fold-{k}") for k in range(3)]
    for i in range(3):
        out = explain_scan(ridge, table["array_path"].iloc[i], tmp_path)
        assert abs(_identity_error(out)) < 1e-4
        assert out.prediction == pytest.approx(predicted.iloc[i], abs=1e-6)
        # the baseline is each fold's prediction at its training features' mean
        assert out.baseline == pytest.approx(np.mean([linear_form(m).predict(
            linear_form(m).mean) for m in folds]), abs=1e-6)
    assert set(out.volumes) == {"GM_volume", "WM_volume", "CSF_volume",
                                "intracranial_volume"}
    side = json.loads(out.files["template_json"].read_text())
    assert side["Method"] == "linear_contributions"
    assert side["MethodDescription"].startswith("linear contributions")
    assert side["CompletenessError"] == 0.0 and side["FoldModels"] == 3
    assert set(side["VolumeContributions"]) == set(out.volumes)
    img = nib.load(out.files["template"])
    np.testing.assert_allclose(np.asarray(img.dataobj), out.saliency)
    regions = pd.read_csv(out.files["regions"], sep="\t")
    assert regions.loc[regions["name"] == "all", "signed_sum"].iloc[0] == pytest.approx(
        out.saliency.sum(), abs=1e-3)
    assert "native" not in out.files and "already prepared" in side["NativeSpace"]


def test_gpr_effective_weights_reproduce_its_predictions():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 12))
    y = X @ rng.normal(size=12) + 40 + rng.normal(0, 0.3, 30)
    X_new = rng.normal(size=(5, 12))
    fitted = estimators.fit("gpr", X, y)
    maker = FeatureMaker(FeatureSpec(), ("GM",), (8.0, 8.0, 8.0), np.ones((1, 1, 1), bool))
    form = linear_form(ClassicalModel("gpr", fitted, maker))
    want = estimators.predict("gpr", fitted, X_new)
    np.testing.assert_allclose([form.predict(x) for x in X_new], want, rtol=1e-10)
    # the baseline (training mean) gives the mean training prediction
    assert form.predict(form.mean) == pytest.approx(
        estimators.predict("gpr", fitted, X).mean(), abs=1e-8)


def test_block_values_spread_evenly_over_the_grid_voxels_of_each_block():
    shape, pool = (5, 6, 3), 2  # edge blocks of 1 voxel on x and z
    mask = np.zeros((3, 3, 2), bool)
    mask[2, 0, 1] = mask[0, 1, 0] = True
    maker = FeatureMaker(FeatureSpec(("GM", "CSF"), pool=pool), ("GM", "CSF"), (1.0,) * 3,
                         mask)
    values = np.array([8.0, 3.0, 0.0, 1.0])  # GM b, GM a, CSF b, CSF a (mask's C order)
    grid = features_to_map(maker, values, shape)
    assert grid.sum() == pytest.approx(values.sum())
    np.testing.assert_allclose(grid[4, 0:2, 2], 4.0 / 2)  # block a: 1 x 2 x 1 voxels
    np.testing.assert_allclose(grid[0:2, 2:4, 0:2], 8.0 / 8)  # block b: 2 x 2 x 2 voxels
    assert np.count_nonzero(grid) == 10


def test_kernel_ridge_is_refused_clearly_before_writing(prepared, tmp_path):
    run = train_cohort(prepared, tmp_path / "krr", classical("krr"))
    with pytest.raises(InputError, match="'krr'.*not additive.*tissue_ridge"):
        explain_scan(run, prepared.table["array_path"].iloc[0], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_classical_runs_refuse_saliency_methods_and_scans_without_tissues(ridge, prepared,
                                                                          tmp_path):
    loaded = load_run(ridge)
    npy = prepared.table["array_path"].iloc[0]
    with pytest.raises(InputError, match="--method ig.*linear contributions"):
        explain_scan(loaded, npy, tmp_path / "a", "ig")
    array = np.load(npy).astype(np.float32)
    with pytest.raises(InputError, match="no tissue maps"):
        explain_scan(loaded, array, tmp_path / "b", subject="X")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    # an in-memory scan with its tissue maps and determinant passed explicitly
    row = prepared.table.iloc[0]
    out = explain_scan(loaded, array, tmp_path / "c", subject="X",
                       tissues=np.load(row["tissue_path"]), affine_det=row["affine_det"])
    ref = explain_scan(loaded, npy, tmp_path / "d")
    np.testing.assert_allclose(out.saliency, ref.saliency)
    with pytest.raises(InputError, match="tissue maps of shape"):
        explain_scan(loaded, array, tmp_path / "e", subject="X", tissues=array,
                     affine_det=1.0)


def test_stack_of_classical_members_is_the_weighted_sum_of_their_maps(stack, prepared,
                                                                      tmp_path):
    npy = prepared.table["array_path"].iloc[4]
    out = explain_scan(stack, npy, tmp_path / "stack")
    assert abs(_identity_error(out)) < 1e-4
    predicted = Predictor.from_run(stack).predict(prepared.table.iloc[4:5])
    assert out.prediction == pytest.approx(predicted["predicted_age"].iloc[0], abs=1e-6)
    comb = json.loads((stack / "stack.json").read_text())
    members = [explain_scan(stack / m, npy, tmp_path / m.replace("/", "_"))
               for m in comb["members"]]
    want = sum(w * m.saliency.astype(np.float64) for w, m in zip(comb["weights"], members,
                                                                  strict=True))
    np.testing.assert_allclose(out.saliency, want, rtol=1e-5, atol=1e-7)
    assert out.baseline == pytest.approx(comb["intercept"] + sum(
        w * m.baseline for w, m in zip(comb["weights"], members, strict=True)))
    side = out.info
    assert side["Method"] == "linear_contributions"
    assert [m["Name"] for m in side["Stack"]["Members"]] == ["gm_ridge", "gm_gpr"]
    assert [m["Weight"] for m in side["Stack"]["Members"]] == comb["weights"]


def test_mixed_stack_needs_the_network_method_named():
    class Net(NetworkExplainer):  # a network member that is never reached
        def explain(self, inp, s):  # pragma: no cover
            raise AssertionError

    mixed = StackExplainer([("a", ClassicalExplainer([], (2, 2, 2))), ("b", Net(None))],
                           [0.5, 0.5], 0.0)
    with pytest.raises(InputError, match="mixes network and classical.*--method ig"):
        mixed.explain(None, Settings("auto"))


def test_mixed_stack_with_a_named_method_sums_both_kinds_of_parts(ridge, prepared):
    from brainage.inference import explain_io
    from brainage.inference.explain_parts import Part

    loaded = load_run(ridge)
    inp = explain_io.read_input(prepared.table["array_path"].iloc[0], loaded.spec)
    net_map = np.full(loaded.spec.grid.shape, 0.01)
    seen = []

    class Net(NetworkExplainer):
        def explain(self, inp, s):
            seen.append(s.method)
            return Part(net_map, 60.0, 60.0 - net_map.sum(), info={"Method": "occlusion"})

    mixed = StackExplainer([("ridge", loaded.explainer), ("net", Net(None))], [0.25, 0.75],
                           1.0)
    part = mixed.explain(inp, Settings("occlusion"))
    alone = loaded.explainer.explain(inp, Settings("auto"))
    assert seen == ["occlusion"] and part.info["Method"] == "linear_contributions+occlusion"
    np.testing.assert_allclose(part.map, 0.25 * alone.map + 0.75 * net_map)
    assert part.prediction == pytest.approx(1.0 + 0.25 * alone.prediction + 0.75 * 60.0)
    assert part.volumes == pytest.approx({k: 0.25 * v for k, v in alone.volumes.items()})
    assert not part.complete  # occlusion has no completeness


def test_raw_scan_gets_contributions_and_a_native_map(ridge, prepared, tmp_path,
                                                     monkeypatch):
    from brainage.preprocessing import pipeline

    loaded = load_run(ridge)
    row = prepared.table.iloc[1]
    array = np.load(row["array_path"]).astype(np.float32)
    tissues = np.load(row["tissue_path"]).astype(np.float32)
    path = tmp_path / "raw" / "sub-11_T1w.nii.gz"
    path.parent.mkdir()
    nib.save(nib.Nifti1Image(np.ones((60, 70, 50), np.float32), np.diag([3.0, 3, 3, 1])),
             path)

    def fake(source, spec, name=None):
        qc = {"affine_template_to_native": np.eye(4).tolist(), "flags": [],
              "affine_det": float(row["affine_det"])}
        return pipeline.PreprocessResult(array, array != 0, spec.grid.affine_array, qc,
                                         np.ones((2, 2, 2), bool), np.eye(4),
                                         tissues=tissues)

    monkeypatch.setattr(pipeline, "preprocess", fake)
    out = explain_scan(loaded, path, tmp_path / "d")
    ref = explain_scan(loaded, row["array_path"], tmp_path / "ref")
    np.testing.assert_allclose(out.saliency, ref.saliency, atol=1e-6)
    assert out.files["native"].name == "sub-11_space-T1w_desc-saliency_T1w.nii.gz"
    assert json.loads(out.files["native_json"].read_text())["Method"] == \
        "linear_contributions"


def test_bids_app_participant_explains_classical_runs(ridge, tmp_path):
    from brainage.bidsapp.participant import Options, _explain, _explainer

    sub = make_prepared(tmp_path / "prep", n=2, tissues=True)
    _explain(_explainer(ridge, Options()), sub.root, tmp_path / "work", Options())
    for pid in ("sub-00", "sub-01"):
        anat = tmp_path / "work" / pid / "anat"
        assert len(list(anat.glob("*desc-saliency_T1w.nii.gz"))) == 1
        assert len(list(anat.glob("*desc-saliency_regions.tsv"))) == 1
        side = json.loads(next(anat.glob("*desc-saliency_T1w.json")).read_text())
        assert side["Method"] == "linear_contributions"
    with pytest.raises(BrainAgeError, match="unknown explanation method"):
        _explainer(ridge, Options(method="gradcam"))


def test_cli_explain_writes_the_maps_of_a_classical_run(ridge, prepared, tmp_path):
    from typer.testing import CliRunner

    from brainage.cli.main import app

    npy = prepared.table["array_path"].iloc[2]
    result = CliRunner().invoke(app, ["explain", str(ridge), npy, "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "predicted age" in result.output
    assert len(list((tmp_path / "sub-02" / "anat").glob("*desc-saliency_T1w.nii.gz"))) == 1


def test_explain_models_needs_members():
    with pytest.raises(InputError, match="no classical members"):
        explain_models([], np.zeros((1, 2, 2, 2)), 1.0, (2, 2, 2))
