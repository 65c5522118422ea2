"""Regional features (template parcels, ventricles), in-fold selection and the OOD
reference of classical runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic_runs import make_prepared

from brainage.classical import regions
from brainage.classical.explain import explain_models
from brainage.classical.features import FeatureMaker, FeatureSpec
from brainage.classical.model import ClassicalModel, feature_matrix
from brainage.errors import BrainAgeError
from brainage.inference.predictor import Predictor
from brainage.training.config import load_train_config
from brainage.training.fit import train_cohort


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return make_prepared(tmp_path_factory.mktemp("regions") / "prep", n=30, tissues=True)


def maker(prepared, **fields):
    spec = prepared.spec
    return FeatureMaker.for_grid(FeatureSpec(**fields), spec.tissue_channels, spec.grid)


def test_parcels_are_mirror_twins_covering_the_mask(prepared):
    grid = prepared.spec.grid
    from brainage.preprocessing.antsio import template_mask_on_grid

    mask = template_mask_on_grid(grid)
    labels = regions.parcels(grid, mask, 4)
    assert set(np.unique(labels[mask])) == set(range(1, 9))  # every voxel, every parcel
    assert not labels[~mask].any()
    xyz = regions.world_coordinates(grid, mask.shape)
    for k in range(1, 5):  # left parcel k and right parcel k + 4 mirror each other
        left, right = xyz[labels == k], xyz[labels == k + 4]
        assert (left[:, 0] <= 0).all() and (right[:, 0] > 0).all()
        assert np.abs(left[:, 1:].mean(0) - right[:, 1:].mean(0)).max() < 6.0
    np.testing.assert_array_equal(labels, regions.parcels(grid, mask, 4))  # deterministic


def test_ventricles_are_deep_central_csf(prepared):
    grid = prepared.spec.grid
    from brainage.preprocessing.antsio import template_mask_on_grid

    mask = template_mask_on_grid(grid)
    vent = regions.ventricles(grid, mask)
    assert 0 < vent.sum() < 0.1 * mask.sum()
    xyz = regions.world_coordinates(grid, mask.shape)[vent]
    assert np.abs(xyz[:, 0].mean()) < 5 and np.abs(xyz[:, 0]).max() < 40  # near the midline


def test_regional_features_follow_their_layout(prepared):
    m = maker(prepared, maps=("GM", "CSF"), modulate=False, voxels=False, parcels=(4, 8),
              brain_measures=True, volumes=True)
    tissues = np.load(prepared.table["tissue_path"].iloc[0])
    x = m(tissues, 1.0)
    assert [s[:2] for s in m.layout()] == [
        ("parcels", "GM/parcels_4"), ("parcels", "GM/parcels_8"), ("parcels", "CSF/parcels_4"),
        ("parcels", "CSF/parcels_8"), ("measures", "brain_measures"), ("volumes", "volumes")]
    assert x.size == sum(s[2] for s in m.layout()) == 8 + 16 + 8 + 16 + 4 + 4
    labels = m.regions["parcels_4"]
    gm_parcel_1 = tissues[0][labels == 1].astype(np.float64).mean()
    assert x[0] == pytest.approx(gm_parcel_1, rel=1e-5)
    fractions = x[24 + 24 + 1:24 + 24 + 4]
    assert fractions.sum() == pytest.approx(1.0, rel=1e-5)
    # unmodulated: only the native volumes (the last four) see the determinant
    np.testing.assert_array_equal(m(tissues, 1.0)[:-4], m(tissues, 1.7)[:-4])
    assert m(tissues, 1.7)[-4] == pytest.approx(1.7 * x[-4], rel=1e-5)


def test_regional_features_see_age(prepared):
    """Older synthetic brains have less GM: the parcel means fall with age."""
    m = maker(prepared, maps=("GM",), modulate=False, voxels=False, parcels=(4,),
              volumes=False)
    X = feature_matrix(m, prepared.table)
    r = np.corrcoef(X.mean(axis=1), prepared.table["age"])[0, 1]
    assert r < -0.8


def test_bad_parcels_and_no_features_are_refused():
    with pytest.raises(BrainAgeError, match="parcels per hemisphere"):
        FeatureSpec(parcels=(0,))
    with pytest.raises(BrainAgeError, match="no feature"):
        FeatureSpec(voxels=False, volumes=False)


def test_model_with_regions_saves_loads_and_explains_exactly(prepared, tmp_path):
    m = maker(prepared, maps=("GM", "CSF"), modulate=False, fwhm_mm=6.0, pool=2,
              parcels=(4,), brain_measures=True)
    table = prepared.table[prepared.table["age"].notna()]
    for estimator in ("ridge", "svr"):
        model = ClassicalModel.fit(estimator, m, table)
        model.save(tmp_path / estimator)
        back = ClassicalModel.load(tmp_path / estimator)
        np.testing.assert_array_equal(back.features.regions["parcels_4"], m.regions["parcels_4"])
        np.testing.assert_allclose(back.predict_table(table), model.predict_table(table),
                                   atol=1e-3)  # weights stored as float32
        tissues = np.load(table["tissue_path"].iloc[0])
        c = explain_models([back], tissues, float(table["affine_det"].iloc[0]),
                           prepared.spec.grid.shape)
        assert c.total == pytest.approx(c.prediction - c.baseline, abs=1e-6)
        assert "ventricular_csf" in c.volumes and "GM_fraction" in c.volumes


def test_run_chooses_inside_each_fold_and_scores_the_choice(prepared, tmp_path):
    """classical.select: every fold picks a candidate on its own training subjects; the
    run's metrics say what each fold chose; prediction works with mixed members."""
    config = load_train_config(None, [
        "repeats=1", "split.folds=3", "split.method=kfold", "classical.estimator=ridge",
        "classical.maps=[GM]", "classical.modulate=false",
        'classical.select=[{name: voxels}, {name: regions, voxels: false, parcels: [4], '
        'brain_measures: true}, {name: svr, estimator: svr}]'])
    assert list(config.classical.candidates()) == ["voxels", "regions", "svr"]
    run = train_cohort(prepared, tmp_path / "run", config)
    metrics = json.loads((run / "metrics.json").read_text())
    sel = metrics["classical"]["selection"]
    assert [f["fold"] for f in sel["per_fold"]] == [0, 1, 2]
    for f in sel["per_fold"]:
        assert f["chosen"] in {"voxels", "regions", "svr"}
        assert f["inner_mae"][f["chosen"]] == min(f["inner_mae"].values())
    out = Predictor.from_run(run).predict(prepared.table)
    assert out["predicted_age"].notna().all()
    assert np.corrcoef(out["predicted_age"], prepared.table["age"])[0, 1] > 0.8


def test_a_bad_candidate_is_refused_at_load_time():
    with pytest.raises(BrainAgeError, match=r"classical\.select\[0\]"):
        load_train_config(None, ["repeats=1", "classical.estimator=ridge",
                                 "classical.select=[{estimatr: svr}]"])


def test_classical_run_scores_out_of_distribution_scans(prepared, tmp_path):
    """A classical run stores a feature-space reference; a scan unlike the training scans
    gets embedding_distance above 1 and the flag, training-like scans mostly do not."""
    config = load_train_config(None, ["repeats=1", "split.folds=3", "split.method=kfold",
                                      "classical.estimator=ridge", "classical.maps=[GM, CSF]"])
    run = train_cohort(prepared, tmp_path / "run", config)
    assert (run / "ood_reference.json").is_file()
    predictor = Predictor.from_run(run)
    table = prepared.table.copy()
    own = predictor.predict(table)
    typical = float(own["embedding_distance"].median())
    assert typical < 1.0
    odd = table.iloc[:2].copy()
    maps = np.load(odd["tissue_path"].iloc[0])
    strange = maps.copy()
    strange[0], strange[2] = maps[2], maps[0]  # GM and CSF swapped: another contrast
    odd["tissue_path"] = [strange, maps]
    out = predictor.predict(odd)
    assert out["embedding_distance"].iloc[0] > max(1.0, 1.5 * typical)
    assert out["embedding_distance"].iloc[1] < 1.0
    assert "embedding_distance" in out["ood_flags"].iloc[0]
