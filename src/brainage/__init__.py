"""brainage: brain age and brain-age gap from T1-weighted MRI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("brainage")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
