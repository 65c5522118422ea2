"""Age-change maps: where decoded brains change along a young -> old latent path.

TGB-GAN (Li et al. 2021) exposes age-related regions by decoding interpolations between
young and old subjects' latents and mapping the voxelwise change. Here the path runs
between the mean latents of a young and an old group (or between given young/old pairs,
averaging the pairs' maps); ``steps`` points are decoded and the map is the total
variation along the path, ``sum_k |x_{k+1} - x_k|`` (non-negative; equal to
``|x_old - x_young|`` where the change is monotone), or the signed ``x_old - x_young``.

:func:`mass_fraction` then measures how much of the map lies inside a mask, e.g. the
region where a simulator puts aging.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from brainage.errors import InputError
from brainage.synthesis.decode import Decoder, Device, as_volume, decode_batches


def latent_path(start: Tensor, end: Tensor, steps: int = 5) -> Tensor:
    """``steps`` latents from ``start`` to ``end`` (both included): ``(steps, *latent)``."""
    if steps < 2:
        raise InputError(f"steps must be >= 2 (both ends), got {steps!r}.")
    if start.shape != end.shape:
        raise InputError(f"path ends have shapes {tuple(start.shape)} and "
                            f"{tuple(end.shape)}. Fix: use latents of the same encoder and grid.")
    t = torch.linspace(0.0, 1.0, steps, dtype=start.dtype).view(-1, *([1] * start.ndim))
    return (1.0 - t) * start + t * end  # (steps, *latent)


def path_change(frames: np.ndarray, signed: bool = False) -> np.ndarray:
    """Frames ``(T, *grid)`` along a path -> change map ``(*grid)``.

    Args:
        frames: Decoded volumes in path order.
        signed: ``frames[-1] - frames[0]`` instead of the total variation.
    """
    frames = np.asarray(frames, dtype=np.float64)
    if signed:
        return frames[-1] - frames[0]
    return np.abs(np.diff(frames, axis=0)).sum(axis=0)


def _decode_path(decode: Decoder, start: Tensor, end: Tensor, steps: int, batch_size: int,
                 device: Device) -> np.ndarray:
    path = latent_path(start, end, steps)
    images = torch.cat(list(decode_batches(decode, path, batch_size, device)))
    return np.stack([as_volume(x) for x in images])  # (steps, D, H, W)


def age_change_map(decode: Decoder, young: Tensor, old: Tensor, steps: int = 5,
                   pairs: Sequence[tuple[int, int]] | None = None, signed: bool = False,
                   batch_size: int = 4, device: Device = None) -> np.ndarray:
    """Voxelwise change of decoded brains from young to old, on the decoder's output grid.

    Args:
        decode: Latents -> images, e.g. ``generator.decode``.
        young: Latents of young subjects ``(N, *latent)``.
        old: Latents of old subjects ``(M, *latent)``.
        steps: Points decoded along each path (both ends included).
        pairs: ``(i, j)`` = ``young[i] -> old[j]`` paths whose maps are averaged; None (the
            default) uses one path between the two groups' mean latents.
        signed: Signed ``old - young`` map instead of the total variation.
        batch_size: Latents decoded at once.
        device: Where the decoder runs.

    Returns:
        float64 array ``(D, H, W)`` (``(C, D, H, W)`` for several channels).
    """
    if young.ndim < 2 or young.shape[1:] != old.shape[1:] or not len(young) or not len(old):
        raise InputError(f"young and old must be non-empty stacks of latents of one shape, "
                            f"got {tuple(young.shape)} and {tuple(old.shape)}. Fix: stack "
                            "each group's latents along a first axis (stack_latents).")
    ends = [(young.mean(0), old.mean(0))] if pairs is None else [
        (young[i], old[j]) for i, j in _check_pairs(pairs, len(young), len(old))]
    maps = [path_change(_decode_path(decode, a, b, steps, batch_size, device), signed)
            for a, b in ends]
    return np.mean(maps, axis=0)


def _check_pairs(pairs: Sequence[tuple[int, int]], n: int, m: int) -> list[tuple[int, int]]:
    pairs = [(int(i), int(j)) for i, j in pairs]
    bad = [p for p in pairs if not (0 <= p[0] < n and 0 <= p[1] < m)]
    if not pairs or bad:
        raise InputError(f"pairs must index young (0..{n - 1}) and old (0..{m - 1}); got "
                            f"{bad[:5] if bad else 'none'}. Fix: pass (young, old) index pairs.")
    return pairs


def mass_fraction(change: np.ndarray, mask: np.ndarray) -> float:
    """Share of the map's absolute mass inside ``mask``: ``sum|c|[mask] / sum|c|``.

    Raises:
        BrainAgeError: shapes differ, or the map is zero everywhere (nothing changes).
    """
    change, mask = np.abs(np.asarray(change, dtype=np.float64)), np.asarray(mask).astype(bool)
    if change.shape != mask.shape:
        raise InputError(f"change map {change.shape} and mask {mask.shape} differ in shape. "
                            "Fix: resample the mask to the decoder's output grid.")
    total = change.sum()
    if not total > 0:
        raise InputError("the change map is zero everywhere, so no fraction can be taken. "
                            "Fix: check that the young and old latents differ and the decoder "
                            "is trained (an untrained ReLU output may be all 0).")
    return float(change[mask].sum() / total)
