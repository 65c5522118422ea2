"""brainage: brain age and brain-age gap from T1-weighted MRI."""

import os
from importlib.metadata import PackageNotFoundError, version

# PyTorch's CPU allocator hands every large buffer back to the OS and page-faults it in again
# at the next step: 1.5 million faults and ~40 % of the CPU time of a full-size ScaleDense
# training step on Linux. Transparent huge pages for buffers of 2 MB and more cut the faults
# 20x and the step time 1.6x (docs/benchmarks.md). torch reads this at its first large
# allocation, so it applies to anything that imports brainage first; a value you set wins.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

try:
    __version__ = version("brainage")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
