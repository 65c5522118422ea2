"""brainage: brain age and brain-age gap from T1-weighted MRI.

The whole pipeline from Python (the CLI runs exactly these)::

    import brainage

    bids = brainage.simulate("demo/bids", n=60, sites=4, seed=0)
    cohort = brainage.load_cohort(bids)
    brainage.prepare(cohort, "demo/prepared", jobs=2)
    run = brainage.train("demo/prepared", "demo/run", "quickstart", folds=5)
    table = brainage.predict(["scan.nii.gz"], run)  # model=None: the bundled model
    brainage.evaluate(run / "predictions.tsv", "demo/evaluation")
    brainage.report(run, "demo/report.html")

Names load on first use, so ``import brainage`` stays instant.
"""

import importlib
import os
from importlib.metadata import PackageNotFoundError, version
from typing import Any

# PyTorch's CPU allocator hands every large buffer back to the OS and page-faults it in again
# at the next step: 1.5 million faults and ~40 % of the CPU time of a full-size ScaleDense
# training step on Linux. Transparent huge pages for buffers of 2 MB and more cut the faults
# 20x and the step time 1.6x (docs/benchmarks.md). torch reads this at its first large
# allocation, so it applies to anything that imports brainage first; a value you set wins.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
# ITK reads its thread count once, when it first starts, and ANTs' multithreaded metric
# then varies from run to run (brainage.preprocessing.antsio.DETERMINISTIC_ITK_THREADS). A
# template mask made on the way (loading a classical model, an OOD reference) would start it
# with every core before a scan is preprocessed, so one job in this process would not give
# the bytes worker processes give. Single-threaded from the start; a value you set wins.
os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "1")

try:
    __version__ = version("brainage")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

_LAZY = {
    "simulate": "brainage.api", "load_cohort": "brainage.api", "prepare": "brainage.api",
    "train": "brainage.api", "evaluate": "brainage.api", "explain": "brainage.api",
    "report": "brainage.api", "predict": "brainage.api", "pretrain": "brainage.api", "probe": "brainage.api",
    "gan_train": "brainage.api", "gan_synthesize": "brainage.api",
    "gan_change_map": "brainage.api", "bids_participant": "brainage.api",
    "bids_group": "brainage.api", "check_cohort": "brainage.api", "split": "brainage.api",
    "list_models": "brainage.api", "presets": "brainage.api", "show_config": "brainage.api",
    "selftest": "brainage.api", "Cohort": "brainage.data.cohort",
    "Predictor": "brainage.inference.predictor", "BrainAgeError": "brainage.errors",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
