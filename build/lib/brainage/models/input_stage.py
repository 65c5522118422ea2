"""The parameter-free first step of every network: optional intensity bins, then pooling.

``input_pool`` average-pools the image (2 on the 2 mm grid = 4 mm, 3 = 6 mm), so a CPU
preset runs on the default prepared grid at a coarser resolution. Pooling raw intensities
mixes tissues, though: a 6 mm voxel of half grey matter and half CSF looks like one of white
matter and more CSF. ``input_bins`` K > 0 first spreads every brain voxel over K intensity
bins with linear (triangular) weights, so after pooling channel k holds the fraction of each
coarse voxel whose intensity lies near centre k: soft tissue-fraction maps (CSF, grey,
white matter) at the coarse resolution, as voxel-based morphometry feeds classical
brain-age models. Background voxels (exactly 0 in a prepared scan) belong to no bin.

The stage has no parameters and no state, so training can compute it once per scan and
cache the result (:func:`brainage.data.datasets.ScanDataset` with ``stage``), and a model
trained that way is used on ordinary prepared scans unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from brainage.errors import InputError

#: Default intensity range of the bin centres: z-scored brain intensities of a prepared T1w
#: scan (IXI: 1st percentile about -3.4 (CSF), 99th about 1.25 (white matter)).
DEFAULT_RANGE = (-3.5, 1.5)


class InputStage(nn.Module):
    """``(B, C, D, H, W)`` image -> ``(B, C*K or C, D/p, H/p, W/p)`` network input.

    Args:
        in_channels: Image channels.
        pool: Average-pooling factor (1 = off).
        bins: Intensity bins per channel (0 = off: the raw intensities are pooled).
        bin_range: ``(first, last)`` bin centre; intensities outside fall into the end bins.
    """

    def __init__(self, in_channels: int = 1, pool: int = 1, bins: int = 0,
                 bin_range: Sequence[float] = DEFAULT_RANGE) -> None:
        super().__init__()
        if int(pool) != pool or pool < 1:
            raise InputError(f"input_pool must be a positive integer, got {pool!r}. "
                                "Fix: use 1 (full resolution) or 2 (half).")
        if int(bins) != bins or bins < 0 or bins == 1:
            raise InputError(f"input_bins must be 0 (off) or an integer >= 2, got {bins!r}. "
                                "Fix: use e.g. 6.")
        values = list(bin_range)
        if len(values) != 2:
            raise InputError(f"input_range must be (low, high), got {values!r}. "
                                "Fix: e.g. [-3.5, 1.5].")
        lo, hi = float(values[0]), float(values[1])
        if not hi > lo:
            raise InputError(f"input_range must be (low, high) with high > low, got "
                                f"{list(bin_range)!r}. Fix: e.g. [-3.5, 1.5].")
        self.in_channels, self.pool, self.bins = int(in_channels), int(pool), int(bins)
        self.bin_range = (lo, hi)
        self.out_channels = self.in_channels * (self.bins or 1)
        self.pooling = nn.AvgPool3d(self.pool) if self.pool > 1 else nn.Identity()

    @property
    def is_identity(self) -> bool:
        """True when the stage passes the image through unchanged."""
        return self.pool == 1 and self.bins == 0

    def soft_bins(self, x: Tensor) -> Tensor:
        """``(B, C, D, H, W)`` -> ``(B, C*K, D, H, W)`` triangular bin weights (sum 1 in brain)."""
        lo, hi = self.bin_range
        k = self.bins
        step = (hi - lo) / (k - 1)
        t = ((x.clamp(lo, hi) - lo) / step).unsqueeze(2)  # (B, C, 1, D, H, W), in [0, K-1]
        centres = torch.arange(k, dtype=x.dtype, device=x.device).view(1, 1, k, 1, 1, 1)
        weights = (1.0 - (t - centres).abs()).clamp_(min=0.0)  # (B, C, K, D, H, W)
        weights = weights * (x != 0).unsqueeze(2).to(x.dtype)  # background: no bin
        return weights.flatten(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        if self.bins:
            x = self.soft_bins(x)
        return self.pooling(x)

    def extra_repr(self) -> str:
        return f"pool={self.pool}, bins={self.bins}, bin_range={self.bin_range}"
