"""Preprocessing: raw T1w scan -> model-ready volume on an MNI152 grid, with QC and a cache.

Public API::

    spec = PreprocessingSpec.create("tsan")                 # steps, parameters, versions, hash
    array, affine, qc = preprocess_image("T1w.nii.gz", spec)  # one scan (predict time)
    summary = run_cohort(cohort, "out/", spec, jobs=2)      # a cohort: cache + BIDS derivatives
    reader = CacheReader("out/", expected=spec)              # memory-mapped float16 arrays
    check_spec_compatible(model_spec, reader.spec)           # refuse mixing specs

Heavy libraries (ANTsPy, nilearn, torch) are imported inside functions.
"""

from brainage.preprocessing.cache import CacheReader, CacheStore, ScanKey, open_cached
from brainage.preprocessing.grids import PRESETS, Grid, get_grid
from brainage.preprocessing.pipeline import PreprocessResult, preprocess, preprocess_image
from brainage.preprocessing.runner import RunSummary, parse_shard, run_cohort, select_scans
from brainage.preprocessing.spec import (
    SPEC_FILE,
    PreprocessingSpec,
    check_spec_compatible,
)

__all__ = [
    "PRESETS", "SPEC_FILE", "CacheReader", "CacheStore", "Grid", "PreprocessResult",
    "PreprocessingSpec", "RunSummary", "ScanKey", "check_spec_compatible", "get_grid",
    "open_cached", "parse_shard", "preprocess", "preprocess_image", "run_cohort",
    "select_scans",
]
