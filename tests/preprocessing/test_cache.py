"""The float16 cache: atomic arrays, records, index, resume decisions, reader."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest

from brainage.errors import BrainAgeError
from brainage.preprocessing.cache import (
    ARRAYS,
    INDEX_FILE,
    QC_FILE,
    CacheReader,
    CacheStore,
    ScanKey,
    key_of,
    open_cached,
)
from brainage.preprocessing.spec import PreprocessingSpec


def _record(store: CacheStore, key: ScanKey, status="ok", **extra):
    rec = {"participant_id": key.participant_id, "session": key.session, "run": key.run,
           "scan": key.stem, "spec_hash": store.spec.hash, "status": status, "error": None,
           "flags": [], "array": str(store.array_path(key).relative_to(store.root)), **extra}
    store.write_record(key, rec)


def test_scan_keys_make_bids_stems():
    assert ScanKey("sub-01").stem == "sub-01"
    assert ScanKey("IXI-013_x", "ses-A", 2).stem == "sub-IXI013x_ses-A_run-2"
    row = pd.Series({"participant_id": "sub-1", "session": pd.NA, "run": pd.NA})
    assert key_of(row) == ScanKey("sub-1")
    with pytest.raises(BrainAgeError, match="no letters or digits"):
        _ = ScanKey("sub-__").stem


def test_arrays_are_float16_and_memory_mapped(tmp_path, small_spec):
    store = CacheStore(tmp_path, small_spec)
    store.prepare()
    data = np.random.default_rng(0).normal(size=small_spec.grid.shape).astype(np.float32)
    path = store.write_array(ScanKey("sub-01"), data)
    assert path.parent == tmp_path / ARRAYS
    arr = open_cached(path)
    assert isinstance(arr, np.memmap) and arr.dtype == np.float16 and arr.shape == (20, 24, 18)
    np.testing.assert_allclose(arr, data, atol=2e-3)
    assert not any(p.name.startswith(".") for p in path.parent.iterdir())


def test_done_needs_ok_record_same_spec_and_array(tmp_path, small_spec):
    store = CacheStore(tmp_path, small_spec)
    store.prepare()
    key = ScanKey("sub-01")
    assert not store.is_done(key)
    store.write_array(key, np.zeros(small_spec.grid.shape))
    assert not store.is_done(key)  # array without record: interrupted
    _record(store, key, status="failed")
    assert not store.is_done(key)  # failed scans are retried
    _record(store, key)
    assert not store.is_done(key)  # the spec has tissue maps: they must be there too
    maps = store.write_tissues(key, np.zeros((3, *small_spec.grid.shape)))
    _record(store, key, tissues=str(maps.relative_to(store.root)))
    assert store.is_done(key)
    _record(store, key, spec_hash="other", tissues=str(maps.relative_to(store.root)))
    assert not store.is_done(key)


def test_folder_refuses_another_spec(tmp_path, small_spec):
    CacheStore(tmp_path, small_spec).prepare()
    CacheStore(tmp_path, small_spec).prepare()  # same spec: fine
    other = PreprocessingSpec.create("8mm:20x24x18", normalisation="minmax")
    with pytest.raises(BrainAgeError, match="already holds outputs of another.*normalisation"):
        CacheStore(tmp_path, other).prepare()


def test_stale_temporaries_are_removed(tmp_path, small_spec):
    store = CacheStore(tmp_path, small_spec)
    store.prepare()
    stale = tmp_path / ARRAYS / ".sub-01.npy.tmp-1234"
    fresh = tmp_path / ARRAYS / ".sub-02.npy.tmp-999"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    assert store.clean_stale() == 1
    assert not stale.exists() and fresh.exists()


def test_index_and_reader(tmp_path, small_spec):
    store = CacheStore(tmp_path, small_spec)
    store.prepare()
    for i, key in enumerate([ScanKey("sub-01"), ScanKey("sub-02", "ses-B", 1)]):
        store.write_array(key, np.full(small_spec.grid.shape, i, np.float32))
        _record(store, key, flags=["truncated_fov"] if i else [], qc={"similarity": 0.5})
    _record(store, ScanKey("sub-03"), status="failed", error="image is empty", array=None)
    index = store.build_index()
    assert len(index) == 3 and (tmp_path / INDEX_FILE).is_file() and (tmp_path / QC_FILE).is_file()
    reader = CacheReader(tmp_path, expected=small_spec)
    assert len(reader) == 2 and reader.spec_hash == small_spec.hash
    assert list(reader.failed["error"]) == ["image is empty"]
    assert reader.load("sub-02_ses-B_run-1").mean() == 1.0
    assert reader.open(0).dtype == np.float16 and reader.open("sub-01").shape == (20, 24, 18)
    assert reader.table.loc[1, "flags"] == "truncated_fov"
    with pytest.raises(BrainAgeError, match="matches 0 finished scans"):
        reader.open("sub-03")


def test_reader_refuses_a_different_spec(tmp_path, small_spec):
    CacheStore(tmp_path, small_spec).prepare()
    other = PreprocessingSpec.create("8mm:20x24x18", n4=False)
    with pytest.raises(BrainAgeError, match="n4: False vs True|n4: True vs False"):
        CacheReader(tmp_path, expected=other)
