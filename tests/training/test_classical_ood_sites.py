"""The OOD reference of a classical run on simulated sites: scans of a site the run never
trained on (another scanner contrast, older people) stand out against its own site's."""

from __future__ import annotations

import numpy as np
import pytest

import brainage


@pytest.mark.slow
def test_unseen_site_scans_stand_out_in_embedding_distance(tmp_path):
    from brainage.data.splits_file import Splits, cohort_hash
    from brainage.preprocessing.prepared import open_prepared

    # site 0: adults 20-50; site 1: another scanner contrast and older people (60-85)
    bids = brainage.simulate(tmp_path / "bids", n=20, sites=2, seed=3, voxel_size=4,
                             site_contrast=4.0, site_ages="20-50,60-85")
    prepared = tmp_path / "prepared"
    brainage.prepare(brainage.load_cohort(bids), prepared, grid="6mm:30x36x30", n4=False)
    table = open_prepared(prepared).table
    first = table["site"] == sorted(table["site"].unique())[0]
    own, other = table[first], table[~first]
    ids = sorted(own["participant_id"])  # three folds of the first site only
    folds = [{"train": [s for j, s in enumerate(ids) if j % 3 != k],
              "test": [s for j, s in enumerate(ids) if j % 3 == k]} for k in range(3)]
    everyone = table["participant_id"]
    splits = tmp_path / "splits.json"
    Splits("user", 0, {}, folds, cohort_hash(everyone), [], len(set(everyone))).to_json(splits)
    run = brainage.train(prepared, tmp_path / "run", "tissue_ridge", splits=splits)
    predictor = brainage.Predictor.from_run(run)
    near = predictor.predict(own)["embedding_distance"].to_numpy()
    far = predictor.predict(other)["embedding_distance"].to_numpy()
    assert np.isfinite(near).all() and np.isfinite(far).all()
    assert np.median(far) > 1.0 and np.median(far) > 1.5 * np.median(near)
    assert (far > 1.0).mean() >= 0.75
