"""OpenBHB: per-subject arrays and the flat challenge format."""

from __future__ import annotations

import numpy as np
import pytest

from brainage.data.openbhb import MODALITIES
from brainage.data.sources import load_cohort, read_cohort
from brainage.errors import ValidationError

VBM_SUFFIX, VBM_SHAPE = MODALITIES["vbm"]


def _problems(source, **kwargs):
    with pytest.raises(ValidationError) as info:
        load_cohort(source, **kwargs)
    return info.value.problems


def _sparse_array(path, shape):
    """A full-size array file that takes no disk space (never written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape).flush()
    return path


@pytest.fixture
def per_subject(tmp_path, tsv):
    root = tmp_path / "openbhb"
    tsv(root / "participants.tsv", [
        ["participant_id", "study", "sex", "age", "site", "split"],
        ["1001", "IXI", "female", "25.5", "3", "train"],
        ["1002", "GSP", "male", "19", "7", "train"],
        ["1003", "NAR", "male", "30", "7", "val"],
    ])
    for pid in ("1001", "1002"):
        _sparse_array(root / "train" / f"sub-{pid}{VBM_SUFFIX}", VBM_SHAPE)
    return root


def test_per_subject_arrays(per_subject):
    report = read_cohort(per_subject)
    t = report.cohort.table
    assert list(t["participant_id"]) == ["sub-1001", "sub-1002"]
    assert list(t["age"]) == [25.5, 19.0] and list(t["sex"]) == ["F", "M"]
    assert list(t["study"]) == ["IXI", "GSP"] and list(t["site"]) == ["3", "7"]
    assert t["path"].iloc[0].endswith(f"train/sub-1001{VBM_SUFFIX}")
    (warning,) = report.warnings  # listed but no array: named with its row
    assert "sub-1003 (row 3)" in warning and "have no scan (left out)" in warning


def test_wrong_shape_and_modality(per_subject):
    np.save(per_subject / "train" / f"sub-1002{VBM_SUFFIX}", np.zeros((1, 6, 7, 5), np.float32))
    (problem,) = _problems(per_subject)
    assert "sub-1002" in problem.where and str(VBM_SHAPE) in problem.expected
    assert len(load_cohort(per_subject, check_images=False)) == 2
    (problem,) = _problems(per_subject, modality="quasiraw")
    assert "_preproc-quasiraw_T1w.npy" in problem.expected


def _flat(root, tsv, name, n, split=True, features=10):
    np.save(root / f"{name}.npy", np.arange(n * features, dtype=np.float32).reshape(n, features))
    header = ["participant_id", "age", "site"] + (["split"] if split else [])
    rows = [[f"{name}{i}", str(20 + i), f"s{i % 2}"] + ([f"{name}_split"] if split else [])
            for i in range(n)]
    return tsv(root / f"{name}.tsv", [header, *rows])


@pytest.fixture
def flat(tmp_path, tsv):
    root = tmp_path / "flat"
    root.mkdir()
    _flat(root, tsv, "train", 4)
    _flat(root, tsv, "test", 3, split=False)
    return root


def test_flat_format_rows_keep_their_array_index(flat):
    t = load_cohort(flat).table
    assert len(t) == 7
    assert list(t["array_index"]) == [0, 1, 2, 3, 0, 1, 2]
    assert list(t["split"]) == ["train_split"] * 4 + ["test"] * 3
    assert t["path"].iloc[5] == str(flat / "test.npy")
    assert list(t["participant_id"])[:2] == ["sub-train0", "sub-train1"]


def test_flat_arrays_are_only_memory_mapped(flat, monkeypatch):
    calls = []
    real_load = np.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("mmap_mode"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    load_cohort(flat)
    assert calls and set(calls) == {"r"}


def test_flat_single_npy_source_and_labels(flat):
    t = load_cohort(flat / "train.npy", participant_labels=["train2", "sub-train3"]).table
    assert list(t["array_index"]) == [2, 3]


def test_flat_row_count_mismatch_and_bad_dims(flat, tsv):
    _flat(flat, tsv, "train", 4)
    tsv(flat / "train.tsv", [["participant_id", "age"], ["a", "20"], ["b", "30"]])
    np.save(flat / "test.npy", np.zeros((3, 4, 2), np.float32))
    problems = _problems(flat)
    assert len(problems) == 2
    assert any("2 rows" in p.expected and "4 rows" in p.value for p in problems)
    assert any(p.expected.startswith("a 2D array") for p in problems)


def test_flat_half_pair_and_cross_split_duplicates(flat, tsv):
    (flat / "test.tsv").unlink()
    (problem,) = _problems(flat)
    assert problem.where == str(flat / "test.tsv") and "test.npy" in problem.expected
    _flat(flat, tsv, "test", 3)
    tsv(flat / "test.tsv", [["participant_id", "age"], ["train0", "20"], ["x", "1"], ["y", "2"]])
    (problem,) = _problems(flat)
    assert problem.value == "participant_id=sub-train0" and problem.row == 1


def test_flat_rows_survive_a_cohort_tsv_round_trip(flat, tmp_path):
    cohort = load_cohort(flat)
    cohort.to_tsv(tmp_path / "c.tsv")
    again = load_cohort(tmp_path / "c.tsv")
    assert list(again.table["array_index"]) == list(cohort.table["array_index"].astype(int))
