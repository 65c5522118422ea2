"""``brainage gan synthesize``: the dataset on disk, leakage-safe parents, resume, change map."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from synthetic_runs import GAN_SHAPE, make_prepared, tiny_gan

from brainage.data.splits import make_splits
from brainage.data.splits_file import Splits
from brainage.errors import BrainAgeError
from brainage.preprocessing.prepared import open_prepared
from brainage.synthesis import dataset as ds
from brainage.synthesis import synthesize as syn_mod
from brainage.synthesis.change_map_io import change_map
from brainage.synthesis.synthesize import synthesize
from brainage.training.checks import check_trainable
from brainage.training.gan_fit import train_gan

SETTINGS = {"cap": 5, "bin_width": 10.0, "seed": 0, "reuse_pairs": True}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return make_prepared(tmp_path_factory.mktemp("prep"), n=16, shape=GAN_SHAPE)


@pytest.fixture(scope="module")
def gan(cohort, tmp_path_factory):
    config = tiny_gan("split.method=kfold", "split.folds=2", "epochs=2", "samples=0")
    return train_gan(cohort, tmp_path_factory.mktemp("gan") / "run", config)


@pytest.fixture(scope="module")
def dataset(gan, tmp_path_factory):
    return synthesize(gan, tmp_path_factory.mktemp("syn") / "out", **SETTINGS)


def test_dataset_is_bids_derivative_and_prepared_cohort(dataset, gan, cohort):
    info = json.loads((gan / "run.json").read_text())
    desc = json.loads((dataset / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative"
    assert desc["GeneratedBy"][0]["GanRun"] == info["run_id"]
    manifest = ds.read_manifest(dataset)
    assert manifest["gan_run"]["id"] == info["run_id"] and manifest["cap"] == 5
    table = pd.read_csv(dataset / "participants.tsv", sep="\t")
    assert len(table) > 4 and (table["group"] == "synthetic").all() and table["synthetic"].all()
    prepared = open_prepared(dataset)
    assert prepared.spec_hash == cohort.spec.hash and prepared.shape == GAN_SHAPE
    assert set(prepared.table["group"]) == {"synthetic"}
    first = table.iloc[0]
    nii = dataset / ds.nifti_path(dataset, ds.ScanKey(first["participant_id"]),
                                  cohort.spec).relative_to(dataset)
    img = nib.load(nii)
    assert img.shape == GAN_SHAPE and np.allclose(img.affine, cohort.spec.grid.affine_array)
    sidecar = json.loads(nii.with_name(nii.name.replace(".nii.gz", ".json")).read_text())
    assert sidecar["Synthetic"] and sidecar["Parents"] == [first["parent_1"], first["parent_2"]]
    assert (dataset / "splits.json").read_text() == (gan / "splits.json").read_text()


def test_age_labels_are_convex_and_parents_train_in_their_gan_fold(dataset, gan, cohort):
    table = pd.read_csv(dataset / "participants.tsv", sep="\t")
    ages = cohort.table.set_index("participant_id")["age"]
    expected = table["weight"] * ages[table["parent_1"]].to_numpy() \
        + (1 - table["weight"]) * ages[table["parent_2"]].to_numpy()
    np.testing.assert_allclose(table["age"], expected, atol=1e-3)
    splits = Splits.from_json(gan / "splits.json")
    for row in table.itertuples():
        train = set(splits.subjects("train", int(row.gan_fold)))
        assert {row.parent_1, row.parent_2} <= train
    assert set(table["gan_fold"]) == {0, 1}
    manifest = ds.read_manifest(dataset)
    assert [m["children"] for m in manifest["members"]] == \
        table.groupby("gan_fold").size().tolist()


def test_synthesis_is_deterministic(dataset, gan, tmp_path):
    again = synthesize(gan, tmp_path / "again", change_map=False, **SETTINGS)
    for name in sorted(p.name for p in (dataset / "cache" / "arrays").glob("*.npy")):
        a = np.load(dataset / "cache" / "arrays" / name)
        b = np.load(again / "cache" / "arrays" / name)
        assert np.array_equal(a, b), name


def test_interrupted_synthesis_resumes_and_refuses_other_settings(dataset, gan, tmp_path,
                                                                   monkeypatch):
    written = []
    original = syn_mod.write_child

    def stop_after_two(root, store, child, volume, gan_id):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(child.plan.child_id)
        original(root, store, child, volume, gan_id)

    monkeypatch.setattr(syn_mod, "write_child", stop_after_two)
    out = tmp_path / "r"
    with pytest.raises(KeyboardInterrupt):
        synthesize(gan, out, change_map=False, **SETTINGS)
    partial = tmp_path / ".r.partial"
    assert not out.exists() and len(list((partial / "cache" / "records").glob("*"))) == 2
    with pytest.raises(BrainAgeError, match="other settings"):
        synthesize(gan, out, change_map=False, **{**SETTINGS, "seed": 1})
    monkeypatch.setattr(syn_mod, "write_child", original)
    synthesize(gan, out, change_map=False, **SETTINGS)
    assert not partial.exists()
    a = sorted((dataset / "cache" / "arrays").glob("*.npy"))
    assert [p.name for p in a] == sorted(p.name for p in (out / "cache/arrays").glob("*.npy"))
    assert all(np.array_equal(np.load(p), np.load(out / "cache/arrays" / p.name)) for p in a)


def test_existing_output_is_kept_unless_overwrite(dataset, gan):
    with pytest.raises(BrainAgeError, match="not empty"):
        synthesize(gan, dataset, **SETTINGS)


def test_synthetic_subjects_never_validate_or_test(dataset):
    prepared = open_prepared(dataset)
    with pytest.raises(BrainAgeError, match="synthetic subject"):
        check_trainable(prepared)
    with pytest.raises(BrainAgeError, match="real subjects only"):
        make_splits(prepared.cohort(), "kfold", k=2)
    ids = sorted(prepared.table["participant_id"])
    in_test = Splits("user", None, {}, [{"train": ids[1:], "test": ids[:1]}])
    with pytest.raises(BrainAgeError, match="synthetic subjects may only train"):
        in_test.check(prepared.cohort())
    Splits("user", None, {}, [{"train": ids}]).check(prepared.cohort())  # training is fine


def test_change_map_is_written_on_the_grid(dataset, gan, cohort, tmp_path):
    found = ds.find_change_map(dataset)
    assert found is not None and found.parent.name == "change_map"
    img = nib.load(found)
    assert img.shape == GAN_SHAPE and np.allclose(img.affine, cohort.spec.grid.affine_array)
    data = np.asarray(img.dataobj)
    assert (data >= 0).all() and data.max() > 0
    info = json.loads(found.with_name(found.name.replace(".nii.gz", ".json")).read_text())
    assert info["Members"] == ["fold-0", "fold-1"] and info["Steps"] == 5
    assert found.with_name(found.name.replace(".nii.gz", ".png")).read_bytes()[:4] == b"\x89PNG"
    again = change_map(gan, tmp_path / "cm", fraction=0.25, steps=5)
    np.testing.assert_allclose(np.asarray(nib.load(ds.find_change_map(again)).dataobj), data)
    with pytest.raises(BrainAgeError, match="fraction"):
        change_map(gan, tmp_path / "bad", fraction=0.9)


def test_report_shows_the_change_map_when_present(dataset, gan, tmp_path):
    from brainage.reporting.report import write_report
    from brainage.reporting.sources import find_change_map

    html = write_report(dataset, tmp_path / "with.html", n_boot=0).read_text()
    assert 'id="fig-age_change_map"' in html and "data:image/png;base64," in html
    card = {"synthetic": {"path": str(dataset)}}  # a run trained with --synthetic
    assert find_change_map(tmp_path, card) == ds.find_change_map(dataset)
    assert find_change_map(tmp_path, {}) is None
    html = write_report(gan, tmp_path / "without.html", n_boot=0).read_text()
    assert "fig-age_change_map" not in html
