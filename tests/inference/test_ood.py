"""Out-of-distribution scores: stored at training, computed and flagged at predict (issue 15)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from synthetic_runs import SHAPE, make_prepared, tiny_config, volume

from brainage.errors import InputError
from brainage.inference import ood, outputs
from brainage.inference.predictor import Predictor
from brainage.training.config import SplitSpec
from brainage.training.fit import train_cohort

pytestmark = pytest.mark.filterwarnings("ignore:run .* has no (bias|interval):UserWarning")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return make_prepared(tmp_path_factory.mktemp("prep"), n=14)


@pytest.fixture(scope="module")
def run(cohort, tmp_path_factory):
    cfg = tiny_config(epochs=2, split=SplitSpec(method="kfold", folds=2, val=0.25))
    with pytest.warns(UserWarning):
        return train_cohort(cohort, tmp_path_factory.mktemp("r") / "run", cfg)


def _rows(arrays: list[np.ndarray], qc: list[str | None] | None = None) -> pd.DataFrame:
    return pd.DataFrame({"participant_id": [f"sub-x{i}" for i in range(len(arrays))],
                         "age": 50.0, "array_path": arrays,
                         "qc_flags": qc or [None] * len(arrays)})


def test_embedding_distance_grows_away_from_the_training_cloud():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(40, 6)) * [3, 2, 1, 1, 0.5, 0.5]
    ref = ood.EmbeddingReference(rank=3).fit(train)
    near, far = ref.distance(rng.normal(size=(20, 6)) * [3, 2, 1, 1, 0.5, 0.5]), \
        ref.distance(train[:20] + [0, 0, 0, 0, 4, 0])  # off along a low-variance axis
    assert near.mean() < 1.5 < far.min()
    oof = ood.oof_distances(train, 3)
    assert oof.shape == (40,) and np.all(oof > ref.distance(train)[:40].min())


def test_unfitted_references_say_so():
    with pytest.raises(InputError, match="not fitted"):
        ood.EmbeddingReference().distance(np.zeros((1, 3)))
    with pytest.raises(InputError, match="not fitted"):
        ood.IntensityReference().z(np.zeros((1, 5)))


def test_intensity_z_is_robust_and_flags_scaled_scans():
    rng = np.random.default_rng(1)
    stats = np.stack([ood.intensity_stats(volume(a, rng)) for a in rng.uniform(20, 80, 12)])
    ref = ood.IntensityReference().fit(stats)
    same = ood.intensity_stats(volume(50, rng))[None]
    scaled = ood.intensity_stats(3 * volume(50, rng))[None]
    assert ref.z(same)[0] < ood.INTENSITY_Z_MAX < ref.z(scaled)[0]


def test_training_writes_the_reference_with_calibrated_thresholds(run):
    info = json.loads((run / ood.REFERENCE_JSON).read_text())
    assert (run / ood.REFERENCE_TENSORS).is_file()
    assert set(info["members"]) == {"fold-0", "fold-1"}
    for rec in info["members"].values():
        assert 0 < rec["oof_distance_median"] <= rec["threshold"] <= rec["threshold_99"]
        assert rec["n_train_scans"] >= 3 and rec["rank"] >= 1
    assert info["embedding"]["quantile"] == 0.95
    assert info["intensity"]["stats"] == list(ood.INTENSITY_STATS)
    assert info["intensity"]["z_threshold"] == ood.INTENSITY_Z_MAX


def test_unlike_scans_score_higher_and_are_flagged(run):
    rng = np.random.default_rng(42)  # new subjects from the training generator
    like = [volume(a, rng) for a in (35.0, 50.0, 65.0)]
    unlike = [3.0 * like[1], like[1] + rng.normal(0, 1.0, SHAPE).astype(np.float32)]
    out = Predictor.from_run(run).predict(_rows(like + unlike, [None, "truncated_fov",
                                                                      None, None, None]))
    emb, inten = out["embedding_distance"].to_numpy(), out["intensity_z"].to_numpy()
    assert emb[3:].min() > emb[:3].max() and inten[3:].min() > inten[:3].max()
    assert emb[3:].min() > 1.0 and inten[3] > ood.INTENSITY_Z_MAX
    flags = out["ood_flags"].fillna("").str.split(";")
    assert "intensity_unusual" in flags[3] and "embedding_distance" in flags[3]
    assert "embedding_distance" in flags[4]
    assert flags[1] == ["truncated_fov"]  # QC flags surface too
    assert not any("intensity_unusual" in f or "embedding_distance" in f for f in flags[:3])


def test_age_outside_the_training_range_joins_the_flags(run):
    lo, _hi = json.loads((run / "run.json").read_text())["training_range"]
    rows = _rows([volume(50.0, np.random.default_rng(3))]).assign(age=lo - 10)
    out = Predictor.from_run(run).predict(rows)
    assert out.loc[0, "ood"] == "age_out_of_range"
    assert out.loc[0, "ood_flags"].split(";")[0] == "age_out_of_range"


def test_a_run_without_the_reference_predicts_with_a_note(run, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(run, old)
    (old / ood.REFERENCE_JSON).unlink()
    (old / ood.REFERENCE_TENSORS).unlink()
    with pytest.warns(outputs.NoteWarning, match="no ood_reference.json"):
        predictor = Predictor.from_run(old)
    out = predictor.predict(_rows([volume(50.0, np.random.default_rng(4))], ["x"]))
    assert "embedding_distance" not in out and out.loc[0, "ood_flags"] == "x"
    assert any("ood_reference.json" in n for n in predictor.notes)
    assert predictor.ood_info()["reference"] is None


def test_a_damaged_reference_is_refused(run, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(run, bad)
    (bad / ood.REFERENCE_TENSORS).write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"ood_reference.json.*damaged.*Fix"):
        Predictor.from_run(bad)


def test_the_sidecar_describes_the_columns_and_thresholds(run, tmp_path):
    predictor = Predictor.from_run(run)
    table = predictor.predict(_rows([volume(50.0, np.random.default_rng(5))]))
    sidecar = outputs.write_outputs(tmp_path / "p.tsv", table, run, [], predictor.ood_info())
    got = json.loads(sidecar.read_text())
    assert {"embedding_distance", "intensity_z", "ood_flags", "ood"} <= set(got["columns"])
    assert set(got["ood"]["member_thresholds"]) == {"fold-0", "fold-1"}
    assert got["ood"]["embedding_flag_above"] == 1.0
    written = pd.read_csv(tmp_path / "p.tsv", sep="\t")
    assert {"embedding_distance", "intensity_z", "ood_flags"} <= set(written.columns)
