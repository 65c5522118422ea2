"""The OOD reference of a classical run on simulated sites: scans of a site the run never
trained on, or of ages it never saw, stand out against scans of its own site."""

from __future__ import annotations

import numpy as np
import pytest

import brainage


@pytest.mark.slow
def test_unseen_site_scans_are_further_than_held_out_own_site_scans(tmp_path):
    # site 0: adults 20-50; site 1: another scanner contrast and older people (60-85)
    from brainage.preprocessing.prepared import open_prepared

    bids = brainage.simulate(tmp_path / "bids", n=16, sites=2, seed=3, voxel_size=4,
                             site_contrast=4.0, site_ages="20-50,60-85")
    prepared = tmp_path / "prepared"
    brainage.prepare(brainage.load_cohort(bids), prepared, grid="6mm:30x36x30", n4=False,
                     progress=False)
    table = open_prepared(prepared).table
    site0 = table[table["site"] == table["site"].min()]
    train_ids = sorted(site0["participant_id"])[: len(site0) - 4]  # 4 of site 0 held out
    held_out = table[(table["site"] == table["site"].min())
                     & ~table["participant_id"].isin(train_ids)]
    other = table[table["site"] != table["site"].min()]
    from brainage.data.splits_file import Splits, cohort_hash

    ids = table["participant_id"]
    half = len(train_ids) // 2
    folds = [{"train": train_ids[:half], "test": train_ids[half:]},
             {"train": train_ids[half:], "test": train_ids[:half]}]
    splits = tmp_path / "splits.json"
    Splits("user", 0, {}, folds, cohort_hash(ids), [], len(set(ids))).to_json(splits)
    run = brainage.train(prepared, tmp_path / "run", "tissue_ridge", splits=splits,
                         overrides=["split.method=kfold", "split.folds=2"])
    predictor = brainage.Predictor.from_run(run)
    own = predictor.predict_table(held_out)["embedding_distance"].to_numpy()
    far = predictor.predict_table(other)["embedding_distance"].to_numpy()
    assert np.median(far) > 1.0 and np.median(far) > 1.5 * np.median(own)
    assert (far > 1.0).mean() >= 0.75
