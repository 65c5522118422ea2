"""Cohort runs: per-scan errors, resume, interruption, shards, participant labels, workers."""

from __future__ import annotations

import json
import os
import time

import pandas as pd
import pytest

from brainage.data.cohort import Cohort
from brainage.errors import BrainAgeError
from brainage.preprocessing import CacheReader, parse_shard, run_cohort, select_scans
from brainage.preprocessing.cache import ARRAYS, RECORDS, CacheStore, ScanKey

GOOD = {"01", "02", "10"}
BAD = {"empty": "empty", "nan": "NaN", "flat": "2D", "fourd": "4D with 2 volumes",
       "huge": "absurd", "missing": "not found"}


def test_bad_scans_are_recorded_and_the_run_carries_on(tmp_path, mixed_cohort, small_spec,
                                                       fake_pipeline):
    out = tmp_path / "out"
    summary = run_cohort(mixed_cohort, out, small_spec, progress=False)
    assert summary.processed == 9 and summary.total == 9 and summary.skipped == 0
    failed = dict(summary.failed)
    assert set(failed) == {f"sub-{k}" for k in BAD}
    for label, text in BAD.items():
        assert text in failed[f"sub-{label}"]
    index = pd.read_csv(out / "index.tsv", sep="\t")
    assert dict(zip(index["scan"], index["status"], strict=True))["sub-01"] == "ok"
    reader = CacheReader(out, expected=small_spec)
    assert set(reader.table["scan"]) == {f"sub-{k}" for k in GOOD}
    assert (out / "sub-01" / "anat").is_dir() and (out / "dataset_description.json").is_file()
    assert (out / "cohort.tsv").is_file() and "failed" in summary.format()


def test_rerun_skips_finished_and_retries_failed(tmp_path, mixed_cohort, small_spec,
                                                 fake_pipeline):
    out = tmp_path / "out"
    run_cohort(mixed_cohort, out, small_spec, progress=False)
    fake_pipeline.clear()
    summary = run_cohort(mixed_cohort, out, small_spec, progress=False)
    assert summary.skipped == 3 and summary.processed == 6
    assert not any(p.endswith(("01.nii.gz", "02.nii.gz", "10.nii.gz")) for p in fake_pipeline)


def test_interrupted_scan_is_redone(tmp_path, mixed_cohort, small_spec, fake_pipeline):
    out = tmp_path / "out"
    run_cohort(mixed_cohort.select(mixed_cohort.table["participant_id"].isin(["sub-01",
                                                                             "sub-02"])),
               out, small_spec, progress=False)
    # simulate a kill during sub-02: its record is gone, a half-written temporary is left
    (out / RECORDS / "sub-02.json").unlink()
    (out / ARRAYS / "sub-02.npy").unlink()
    tmp = out / ARRAYS / ".sub-02.npy.tmp-4242"
    tmp.write_bytes(b"half an array")
    old = time.time() - 7200
    os.utime(tmp, (old, old))
    fake_pipeline.clear()
    summary = run_cohort(mixed_cohort, out, small_spec, progress=False,
                         participant_labels=["01", "02"])
    assert summary.skipped == 1 and summary.processed == 1 and not summary.failed
    assert len(fake_pipeline) == 1 and fake_pipeline[0].endswith("02.nii.gz")
    assert not tmp.exists() and (out / ARRAYS / "sub-02.npy").is_file()
    assert CacheStore(out, small_spec).is_done(ScanKey("sub-02"))


def test_shards_partition_the_subjects():
    table = pd.DataFrame({"participant_id": [f"sub-{i:02d}" for i in range(10)] + ["sub-03"],
                          "session": [None] * 10 + ["ses-2"], "path": ["x.nii.gz"] * 11})
    cohort = Cohort(table)
    parts = [select_scans(cohort, shard=(i, 3)) for i in (1, 2, 3)]
    ids = [set(p["participant_id"]) for p in parts]
    assert set.union(*ids) == set(table["participant_id"])
    assert sum(len(s) for s in ids) == 10  # disjoint
    assert sum(len(p) for p in parts) == 11  # both sessions of sub-03 in one shard
    assert abs(len(ids[0]) - len(ids[2])) <= 1


def test_participant_labels_match_exactly():
    cohort = Cohort(pd.DataFrame({"participant_id": ["sub-1", "sub-10", "sub-2"],
                                  "path": ["a.nii", "b.nii", "c.nii"]}))
    assert list(select_scans(cohort, ["1"])["participant_id"]) == ["sub-1"]
    assert list(select_scans(cohort, ["sub-2", "10"])["participant_id"]) == ["sub-10", "sub-2"]
    with pytest.raises(BrainAgeError, match="--participant-label 3 not in the cohort"):
        select_scans(cohort, ["3"])


@pytest.mark.parametrize("bad", ["0/4", "5/4", "1-4", "a/b", "1/0"])
def test_bad_shards(bad):
    with pytest.raises(BrainAgeError, match="--shard"):
        parse_shard(bad)
    assert parse_shard("2/8") == (2, 8)


def test_duplicate_scans_are_refused(tmp_path, small_spec):
    cohort = Cohort(pd.DataFrame({"participant_id": ["sub-1", "sub-1"],
                                  "path": ["a.nii", "b.nii"]}))
    with pytest.raises(BrainAgeError, match="more than once"):
        run_cohort(cohort, tmp_path, small_spec, progress=False)


def test_parallel_workers_record_errors(tmp_path, mixed_cohort, small_spec):
    """Two worker processes (real pipeline; only bad scans, which fail before registering)."""
    bad = mixed_cohort.select(mixed_cohort.table["participant_id"].isin(
        ["sub-empty", "sub-nan", "sub-missing"]))
    summary = run_cohort(bad, tmp_path / "out", small_spec, jobs=2, progress=False)
    assert summary.processed == 3 and len(summary.failed) == 3
    record = json.loads((tmp_path / "out" / RECORDS / "sub-nan.json").read_text())
    assert record["status"] == "failed" and "NaN" in record["error"]


def test_library_errors_are_one_line_and_memory_errors_say_so(tmp_path, small_spec, monkeypatch):
    from brainage.preprocessing import pipeline

    errors = {"sub-a": OSError("Expected 3375000000 bytes, got 3744 bytes\n - damaged?"),
              "sub-b": MemoryError()}

    def failing(source, spec, name=None):
        raise errors[name.split(" ")[0]]

    monkeypatch.setattr(pipeline, "preprocess", failing)
    cohort = Cohort(pd.DataFrame({"participant_id": list(errors), "path": ["a.nii", "b.nii"]}))
    failed = dict(run_cohort(cohort, tmp_path / "out", small_spec, progress=False).failed)
    assert failed["sub-a"] == "OSError: Expected 3375000000 bytes, got 3744 bytes - damaged?"
    assert failed["sub-b"].startswith("MemoryError: out of memory. Fix: free memory")
    index = pd.read_csv(tmp_path / "out" / "index.tsv", sep="\t")
    assert len(index) == 2  # no newline inside a cell


def test_a_scan_another_process_is_preparing_is_skipped_and_named(tmp_path, mixed_cohort,
                                                                small_spec, fake_pipeline):
    from brainage.locks import try_lock
    from brainage.preprocessing.workers import LOCKS

    out = tmp_path / "out"
    other = try_lock(out / LOCKS / "sub-02.lock")  # as a second prepare process would
    summary = run_cohort(mixed_cohort, out, small_spec, progress=False)
    assert [scan for scan, _ in summary.busy] == ["sub-02"]
    assert summary.busy[0][1].startswith(f"pid {os.getpid()} on ")
    assert not any(p.endswith("02.nii.gz") for p in fake_pipeline)
    assert "busy    sub-02: being prepared by pid" in summary.format()
    assert not (out / RECORDS / "sub-02.json").exists()  # the other process writes it
    other.release()
    fake_pipeline.clear()
    again = run_cohort(mixed_cohort, out, small_spec, progress=False)
    assert again.busy == [] and any(p.endswith("02.nii.gz") for p in fake_pipeline)


def test_a_scan_finished_by_another_process_meanwhile_is_not_redone(tmp_path, small_spec,
                                                                  fake_pipeline):
    from brainage.preprocessing import workers

    store = CacheStore(tmp_path / "out", small_spec)
    store.prepare()
    monkey = pytest.MonkeyPatch()
    monkey.setattr(CacheStore, "is_done", lambda self, key: True)
    try:
        rec = workers.process_scan(str(tmp_path / "out"), small_spec.to_dict(), {
            "participant_id": "sub-01", "session": None, "run": None, "path": "a.nii.gz"})
    finally:
        monkey.undo()
    assert rec["status"] == workers.DONE_ELSEWHERE and fake_pipeline == []


def test_ctrl_c_rebuilds_the_index_and_says_what_was_kept(tmp_path, mixed_cohort, small_spec,
                                                        fake_pipeline, monkeypatch):
    from brainage.preprocessing import workers
    from brainage.preprocessing.runner import PrepareInterrupted

    real = workers.process_scan
    calls = []

    def interrupted_on_the_third(root, spec_dict, task):
        calls.append(task["participant_id"])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(root, spec_dict, task)

    monkeypatch.setattr(workers, "process_scan", interrupted_on_the_third)
    out = tmp_path / "out"
    with pytest.raises(PrepareInterrupted) as info:
        run_cohort(mixed_cohort, out, small_spec, progress=False)
    assert info.value.finished == 2 and "\n" not in str(info.value)
    assert str(info.value).startswith(f"interrupted: kept 2 finished scan(s) in {out}")
    assert "running the same command again" in str(info.value)
    assert len(pd.read_csv(out / "index.tsv", sep="\t")) == 2  # rebuilt before leaving
