"""``prepare --executor``: shards as a submitit job array, then one index (issue 22, item 5)."""

from __future__ import annotations

import pandas as pd
import pytest

from brainage.cluster.profile import ClusterProfile
from brainage.errors import InputError
from brainage.preprocessing import run_cohort
from brainage.preprocessing.sharded import log_folder, prepare_sharded


def _index(root):
    cols = ["scan", "status", "error", "spec_hash"]
    index = pd.read_csv(root / "index.tsv", sep="\t")
    return index[[c for c in cols if c in index]].sort_values("scan").reset_index(drop=True)


def test_debug_shards_give_the_index_of_one_process_and_a_rerun_skips(
        tmp_path, mixed_cohort, small_spec, fake_pipeline):
    one = tmp_path / "one"
    run_cohort(mixed_cohort, one, small_spec, progress=False)
    fake_pipeline.clear()
    out = tmp_path / "sharded"
    summary = prepare_sharded(mixed_cohort, out, small_spec, shards=4, executor="debug",
                              profile=ClusterProfile(), jobs=1)
    assert summary.total == 9 and summary.processed == 9 and len(summary.failed) == 6
    pd.testing.assert_frame_equal(_index(out), _index(one))
    assert not log_folder(out).exists()  # every shard succeeded
    fake_pipeline.clear()
    again = prepare_sharded(mixed_cohort, out, small_spec, shards=4, executor="debug",
                            profile=ClusterProfile(), jobs=1)
    assert again.skipped == 3 and len(fake_pipeline) == 6  # only failed scans are retried
    with pytest.raises(InputError, match=r"--shards 0: expected 1 or more"):
        prepare_sharded(mixed_cohort, out, small_spec, shards=0, executor="debug",
                        profile=ClusterProfile())
