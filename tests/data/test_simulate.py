"""The synthetic aging cohort: settings, determinism, BIDS layout and the aging physics.

Everything runs at 4 mm (template grid 50 x 59 x 63) to stay fast.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from brainage.data.simulate import (
    SimulationConfig,
    load_templates,
    make_config,
    plan_cohort,
    plan_sites,
    simulate_cohort,
    simulate_scan,
    subject_tissue_maps,
)
from brainage.data.simulate.anatomy import HEAD_SIZE
from brainage.data.simulate.cohort import age_ranges
from brainage.errors import BrainAgeError, ValidationError

VOX = 4.0


def small(**options: object) -> SimulationConfig:
    """A 4 mm configuration; `options` override the defaults below."""
    base: dict[str, object] = {"n": 4, "sites": 2, "seed": 0, "voxel_size": VOX}
    return make_config(**{**base, **options})


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "bids"
    return simulate_cohort(out, n=4, sites=2, seed=3, voxel_size=VOX, masks=True,
                           patient_fraction=0.5)


@pytest.fixture(scope="module")
def long_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "long"
    return simulate_cohort(out, n=3, sites=1, seed=5, voxel_size=VOX, sessions=3, interval=2.5,
                           patient_fraction=0.5, patient_rate=2.0, site_effects=0.0)


# --- settings ------------------------------------------------------------------------------

def test_config_reports_every_bad_value_at_once() -> None:
    with pytest.raises(ValidationError) as info:
        SimulationConfig(n=0, sites=0, gap_sd=-1.0, confound=1.5).validate()
    text = str(info.value)
    assert "4 problem(s)" in text
    for name, value in (("--n", "0"), ("--sites", "0"), ("--gap-sd", "-1.0"),
                        ("--confound", "1.5")):
        assert f"{name}: got {value}" in text
    assert "Fix:" in text


@pytest.mark.parametrize(("options", "message"), [
    ({"n": 0}, "--n: got 0"), ({"sites": 0}, "--sites: got 0"),
    ({"gap_sd": -2.0}, "--gap-sd: got -2.0"), ({"voxel_size": 0.5}, "--voxel-size: got 0.5"),
    ({"sessions": 0}, "--sessions: got 0"),
    ({"patient_fraction": 1.5}, "--patient-fraction: got 1.5"),
    ({"age_min": 60.0, "age_max": 30.0}, "--age-max: got 30.0; expected more than age_min"),
    ({"colour": "blue"}, "unknown simulation option(s) ['colour']"),
])
def test_bad_options_raise_and_write_nothing(tmp_path: Path, options: dict, message: str) -> None:
    out = tmp_path / "out"
    base = {"n": 2, "voxel_size": VOX}
    with pytest.raises(BrainAgeError, match=re.escape(message)):
        simulate_cohort(out, **{**base, **options})
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_refuses_non_empty_out_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(BrainAgeError, match="--overwrite"):
        simulate_cohort(out, n=1, sites=1, voxel_size=VOX)
    assert (out / "keep.txt").read_text() == "mine"
    simulate_cohort(out, n=1, sites=1, voxel_size=VOX, overwrite=True)
    assert not (out / "keep.txt").exists()
    assert (out / "sub-001" / "anat" / "sub-001_T1w.nii.gz").is_file()


def test_jobs_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(BrainAgeError, match="--jobs"):
        simulate_cohort(tmp_path / "out", n=1, voxel_size=VOX, jobs=0)
    assert not (tmp_path / "out").exists()


# --- determinism -----------------------------------------------------------------------------

def test_same_seed_same_arrays_and_other_seed_differs() -> None:
    a, b = simulate_scan(small(seed=7), 1), simulate_scan(small(seed=7), 1)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.affine, b.affine)
    c = simulate_scan(small(seed=8), 1)
    assert c.data.shape != a.data.shape or not np.array_equal(c.data, a.data)


def test_subject_does_not_depend_on_cohort_size() -> None:
    three, five = small(n=3), small(n=5)
    assert plan_cohort(three)[2] == plan_cohort(five)[2]
    x, y = simulate_scan(three, 2), simulate_scan(five, 2)
    np.testing.assert_array_equal(x.data, y.data)
    np.testing.assert_array_equal(x.affine, y.affine)


def test_parallel_jobs_write_identical_files(tmp_path: Path) -> None:
    one = simulate_cohort(tmp_path / "one", n=3, sites=2, seed=1, voxel_size=VOX, jobs=1)
    two = simulate_cohort(tmp_path / "two", n=3, sites=2, seed=1, voxel_size=VOX, jobs=2)
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
    assert any(str(f).endswith("_T1w.nii.gz") for f in files)
    for f in files:
        assert (one / f).read_bytes() == (two / f).read_bytes(), f


# --- BIDS layout -----------------------------------------------------------------------------

def test_bids_layout_and_participants(cohort_dir: Path) -> None:
    desc = json.loads((cohort_dir / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "raw" and desc["BIDSVersion"]
    table = pd.read_csv(cohort_dir / "participants.tsv", sep="\t")
    assert list(table.columns) == ["participant_id", "age", "sex", "site", "group"]
    assert list(table["participant_id"]) == ["sub-001", "sub-002", "sub-003", "sub-004"]
    assert table["age"].between(20, 85).all()
    assert set(table["sex"]) <= {"F", "M"} and set(table["site"]) == {"S1", "S2"}
    assert set(table["group"]) <= {"control", "patient"}
    sidecar = json.loads((cohort_dir / "participants.json").read_text())
    assert set(sidecar) == set(table.columns)
    for pid in table["participant_id"]:
        files = sorted(p.name for p in (cohort_dir / pid).rglob("*") if p.is_file())
        assert files == [f"{pid}_T1w.nii.gz"]


def test_project_reader_accepts_the_dataset(cohort_dir: Path, long_dir: Path) -> None:
    from brainage.data.sources import load_cohort

    cohort = load_cohort(cohort_dir, require_site=True)
    assert len(cohort) == 4 and cohort.table["age"].notna().all()
    longitudinal = load_cohort(long_dir).table.sort_values(["participant_id", "session"])
    truth = pd.read_csv(long_dir / "derivatives" / "simulation" / "ground_truth.tsv", sep="\t")
    np.testing.assert_allclose(longitudinal["age"], truth["age"])  # per-session ages


def test_images_are_native_space_heads(cohort_dir: Path) -> None:
    codes = set()
    for path in sorted(cohort_dir.glob("sub-*/anat/*_T1w.nii.gz")):
        img = nib.load(path)
        assert img.get_data_dtype() == np.int16 and img.ndim == 3
        assert int(img.header["sform_code"]) == 1
        codes.add(nib.aff2axcodes(img.affine))
        data = np.asarray(nib.as_closest_canonical(img).dataobj, dtype=np.float32)
        top = np.percentile(data[:, :, -1], 99)  # the field of view clears the scalp
        assert top < 0.25 * np.percentile(data, 99)
    assert len(codes) == 2  # the two sites store different orientations


def test_world_coordinates_follow_the_pose_in_every_orientation() -> None:
    """Centroids of the brain and ventricles land where pose and affine say (6 orientations)."""
    config = small(n=6, sites=6, variability=0.0, site_effects=0.0)
    templates = load_templates(VOX)
    sites, cohort = plan_sites(config), plan_cohort(config)
    grid = np.ix_(*templates.axes)
    ventricles = np.array([np.sum(templates.ventricles * g) for g in grid])
    ventricles /= templates.ventricles.sum()
    orientations = set()
    for k, subject in enumerate(cohort):
        scan = simulate_scan(config, k, maps=("brain", "ventricles"))
        site = sites[subject.site]
        orientations.add(nib.aff2axcodes(scan.affine))
        size = HEAD_SIZE * (1.035 if subject.sex == "M" else 0.965)
        for name, point, tolerance in (("brain", templates.centre, 0.5),
                                       ("ventricles", ventricles, 2.5)):
            weight = scan.maps[name]
            index = (np.indices(weight.shape).reshape(3, -1) @ weight.ravel()) / weight.sum()
            world = scan.affine[:3, :3] @ index + scan.affine[:3, 3]
            expected = (scan.pose.rotation() @ ((point - templates.centre) * size)
                        + templates.centre + site.offset + scan.pose.shift)
            np.testing.assert_allclose(world, expected, atol=tolerance, err_msg=name)
    assert len(orientations) == 6


def test_ground_truth_is_separate_and_consistent(cohort_dir: Path) -> None:
    assert not [p for p in cohort_dir.glob("sub-*/**/*") if "truth" in p.name or "mask" in p.name]
    truth_dir = cohort_dir / "derivatives" / "simulation"
    assert json.loads((truth_dir / "dataset_description.json").read_text())["DatasetType"] == (
        "derivative")
    truth = pd.read_csv(truth_dir / "ground_truth.tsv", sep="\t")
    table = pd.read_csv(cohort_dir / "participants.tsv", sep="\t")
    merged = truth.merge(table, on="participant_id", suffixes=("", "_p"))
    np.testing.assert_allclose(merged["age"], merged["age_p"])
    assert (merged["group"] == merged["group_p"]).all()
    assert (merged["site"] == merged["site_p"]).all()
    np.testing.assert_allclose(merged["brain_age"] - merged["age"], merged["gap"], atol=2e-3)
    meta = json.loads((truth_dir / "ground_truth.json").read_text())
    assert meta["config"]["seed"] == 3 and len(meta["sites"]) == 2
    for row in truth.itertuples():
        mask = nib.load(truth_dir / row.path.replace("_T1w", "_desc-brain_mask"))
        image = np.asarray(nib.load(cohort_dir / row.path).dataobj, dtype=np.float32)
        inside = np.asarray(mask.dataobj) > 0
        assert mask.shape == image.shape and 700 < inside.sum() * VOX**3 / 1000 < 2500  # ml
        assert image[inside].mean() > 2 * image[~inside].mean()


def test_longitudinal_sessions(long_dir: Path) -> None:
    truth = pd.read_csv(long_dir / "derivatives" / "simulation" / "ground_truth.tsv", sep="\t")
    assert len(truth) == 9
    for pid, rows in truth.groupby("participant_id"):
        sessions = pd.read_csv(long_dir / pid / f"{pid}_sessions.tsv", sep="\t")
        assert list(sessions["session_id"]) == ["ses-1", "ses-2", "ses-3"]
        np.testing.assert_allclose(np.diff(sessions["age"]), 2.5)
        for ses in sessions["session_id"]:
            assert (long_dir / pid / ses / "anat" / f"{pid}_{ses}_T1w.nii.gz").is_file()
        rate = 2.0 if rows["group"].iloc[0] == "patient" else 1.0
        np.testing.assert_allclose(np.diff(rows["brain_age"]), 2.5 * rate, atol=2e-3)


def test_confound_gives_each_site_its_own_age_range() -> None:
    free = age_ranges(small(sites=4, confound=0.0))
    assert all(r == (20.0, 85.0) for r in free)
    split = sorted(age_ranges(small(sites=4, confound=1.0)))
    assert split[0][0] == 20.0 and split[-1][1] == 85.0
    assert all(a[1] <= b[0] + 1e-9 for a, b in zip(split, split[1:], strict=False))
    config = small(n=40, sites=4, confound=1.0)
    ranges = age_ranges(config)
    for s in plan_cohort(config):
        lo, hi = ranges[s.site]
        assert lo - 0.05 <= s.ages[0] <= hi + 0.05


# --- physics ---------------------------------------------------------------------------------

def test_ventricles_grow_and_grey_matter_shrinks_with_brain_age() -> None:
    config = small(n=30, sites=3, seed=11, patient_fraction=0.3)
    brain_age = np.array([s.brain_ages[0] for s in plan_cohort(config)])
    volumes = [subject_tissue_maps(config, k).volumes() for k in range(config.n)]
    ventricles = np.array([v["ventricles"] for v in volumes])
    grey = np.array([v["gm"] for v in volumes])
    assert stats.spearmanr(brain_age, ventricles)[0] > 0.8
    assert stats.spearmanr(brain_age, grey)[0] < -0.8
    assert np.polyfit(brain_age, ventricles, 1)[0] > 0
    assert np.polyfit(brain_age, grey, 1)[0] < 0
    assert ventricles.max() > 1.8 * ventricles.min()  # ventricles widen a lot
    assert 0.05 < 1 - grey.min() / grey.max() < 0.35  # grey matter shrinks plausibly


def test_tissue_intensity_carries_no_age_cue() -> None:
    """Within a site the white-matter intensity does not follow age (only anatomy does)."""
    config = small(n=30, sites=3, seed=2)
    cohort = plan_cohort(config)
    ages, white, brain = [], [], []
    for k in range(0, config.n, 3):  # site S1 only
        scan = simulate_scan(config, k, maps=("wm", "brain"))
        ages.append(cohort[k].brain_ages[0])
        white.append(scan.data[scan.maps["wm"] > 0.9].mean())
        brain.append(scan.data[scan.maps["brain"] > 0.5].mean())
    span = np.ptp(ages)
    white_change = np.polyfit(ages, white, 1)[0] * span / np.mean(white)
    brain_change = np.polyfit(ages, brain, 1)[0] * span / np.mean(brain)
    assert span > 30
    assert abs(white_change) < 0.01
    assert brain_change < 0  # the brain darkens only through atrophy (more CSF)


# --- command line ----------------------------------------------------------------------------

def test_cli_simulate(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from brainage.cli.simulate import register

    app = typer.Typer()
    register(app)
    app.callback()(lambda: None)
    runner = CliRunner()
    bad = runner.invoke(app, ["simulate", str(tmp_path / "bad"), "--n", "0"])
    assert isinstance(bad.exception, BrainAgeError) and "--n: got 0" in str(bad.exception)
    assert not (tmp_path / "bad").exists()
    good = runner.invoke(app, ["simulate", str(tmp_path / "ok"), "--n", "1", "--sites", "1",
                               "--voxel-size", "4"])
    assert good.exit_code == 0, good.output
    assert "Wrote" in good.output and "1 subjects" in good.output
    assert (tmp_path / "ok" / "participants.tsv").is_file()
