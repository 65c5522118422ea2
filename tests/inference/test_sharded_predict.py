"""``predict`` as a submitit job array (issue 22, item 5): shard -> merge gives the table of
one process, in input order; a rerun skips finished shards; failed shards are named."""

# ruff: noqa: F811  (the fixtures of test_many_scans are arguments of the tests)
from __future__ import annotations

import pandas as pd
import pytest
from test_many_scans import prepared, run, scans  # noqa: F401  (module fixtures)
from typer.testing import CliRunner

from brainage.cluster import ShardsFailed
from brainage.cluster.profile import ClusterProfile
from brainage.errors import InputError
from brainage.inference import sharded
from brainage.inference.many import shard_rows
from brainage.inference.outputs import NoteWarning
from brainage.inference.predictor import Predictor

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # runs without OOD reference


def test_shard_blocks_cover_the_rows_in_order_on_chunk_bounds():
    blocks = [shard_rows(24, (k, 3), unit=16) for k in (1, 2, 3)]
    assert [(b.start, b.stop) for b in blocks] == [(0, 0), (0, 16), (16, 24)]  # 2 chunks
    rows = [shard_rows(7, (k, 3)) for k in (1, 2, 3)]
    assert [i for b in rows for i in range(b.start, b.stop)] == list(range(7))


def test_prepared_cohort_in_debug_shards_equals_one_process_and_reruns_skip(
        run, prepared, tmp_path, monkeypatch):
    predictor = Predictor.from_run(run, batch_size=2)  # chunks of 16 scans: 24 = 16 + 8
    one = predictor.predict(prepared.root)
    output = tmp_path / "p.tsv"
    merged = sharded.predict_sharded(predictor, [prepared.root], output, shards=3,
                                     executor="debug", profile=ClusterProfile())
    pd.testing.assert_frame_equal(merged, one, check_exact=True)
    folder = sharded.shard_folder(output)
    assert sorted(p.name for p in folder.glob("shard-*.json")) == [
        f"shard-000{k}-of-0003.json" for k in (1, 2, 3)]

    def no_jobs(*args, **kwargs):
        raise AssertionError("a finished shard was submitted again")

    monkeypatch.setattr(sharded, "run_array", no_jobs)
    again = sharded.predict_sharded(predictor, [prepared.root], output, shards=3,
                                    executor="debug", profile=ClusterProfile())
    pd.testing.assert_frame_equal(again, one, check_exact=True)
    # another request (2 shards) never merges the 3-shard tables
    monkeypatch.undo()
    two = sharded.predict_sharded(predictor, [prepared.root], output, shards=2,
                                  executor="debug", profile=ClusterProfile())
    pd.testing.assert_frame_equal(two, one, check_exact=True)
    assert len(list(folder.glob("shard-*-of-0003.json"))) == 0


def test_raw_scans_in_local_subprocess_shards_equal_one_process(run, scans, tmp_path):
    predictor = Predictor.from_run(run)
    with pytest.warns(NoteWarning, match=r"not predicted: .*sub-2_T1w"):
        one = predictor.predict(scans, jobs=1)
    with pytest.warns(NoteWarning, match=r"not predicted: .*sub-2_T1w"):
        merged = sharded.predict_sharded(predictor, scans, tmp_path / "p.tsv", shards=2,
                                         executor="local", profile=ClusterProfile(), jobs=1)
    pd.testing.assert_frame_equal(merged, one, check_exact=True)
    assert merged["participant_id"].tolist() == ["sub-1", "sub-2", "sub-3"]


def test_a_failing_shard_is_named_with_its_logs_and_the_others_kept(run, prepared, tmp_path,
                                                                    monkeypatch):
    predictor = Predictor.from_run(run, batch_size=2)
    real = sharded.run_shard

    def second_fails(job):
        if job.shard == 2:
            raise RuntimeError("node lost")
        return real(job)

    monkeypatch.setattr(sharded, "run_shard", second_fails)
    monkeypatch.setattr("pdb.post_mortem", lambda *a: None)  # the debug executor's debugger
    output = tmp_path / "p.tsv"
    with pytest.raises(ShardsFailed, match=r"(?s)1 of 2 shard\(s\) failed.*shard 2/2: node "
                       r"lost \(logs: .*\.err\).*rerun the same command"):
        sharded.predict_sharded(predictor, [prepared.root], output, shards=2,
                                executor="debug", profile=ClusterProfile())
    assert [p.name for p in sharded.shard_folder(output).glob("shard-*.json")] == [
        "shard-0001-of-0002.json"]


def test_cli_refuses_scale_out_options_without_an_executor(run, tmp_path):
    from brainage.cli.main import app

    res = CliRunner().invoke(app, ["predict", str(run), "x.nii.gz", "-o",
                                   str(tmp_path / "p.tsv"), "--shards", "4"])
    assert isinstance(res.exception, InputError)  # `brainage` prints it and exits with 2
    assert "--shards given without --executor. Fix" in str(res.exception)
    res = CliRunner().invoke(app, ["predict", str(run), "x.nii.gz", "-o",
                                   str(tmp_path / "p.tsv"), "--executor", "local"])
    assert isinstance(res.exception, InputError)
    assert "--executor local needs --shards N" in str(res.exception)
