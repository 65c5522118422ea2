"""Voxelwise explanation maps of a brain-age model: integrated gradients, occlusion, SmoothGrad.

Every method takes a network ``model(x, **cov) -> (B,)`` (predicted age) and one volume
``x`` of shape ``(D, H, W)`` on the model's grid, and returns a ``(D, H, W)`` float32 map in
years per voxel:

* :func:`integrated_gradients` (Sundararajan et al. 2017): ``(x - x0) * mean gradient`` along
  the straight path from a baseline ``x0`` to ``x``; the map sums to ``f(x) - f(x0)``
  (completeness). The default baseline is all zeros, which is the background of z-scored
  inputs (and the brain's mean intensity), so the map says how each voxel moves the
  prediction away from that of an "average grey" brain.
* :func:`occlusion`: the drop in prediction when a patch is set to the baseline value,
  spread evenly over the patch's voxels and averaged over the patches covering a voxel.
* :func:`smoothgrad` (Smilkov et al. 2017): gradient x input averaged over noisy copies.

Gradients are taken with respect to the input only: parameters get
``requires_grad_(False)`` and the model runs in eval mode (both restored afterwards).
Memory grows with ``batch`` (the number of volumes in one forward/backward pass), never
with ``steps``. :func:`region_summary` (from :mod:`.regions`) sums a map over tissue
classes and coarse brain regions.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from brainage.errors import InputError
from brainage.inference.regions import region_summary

__all__ = ["integrated_gradients", "occlusion", "predict_one", "region_summary", "smoothgrad"]

Model = Callable[..., Tensor]
Volume = np.ndarray | Tensor


def _device(model: Model) -> torch.device:
    if isinstance(model, nn.Module):
        for p in itertools.chain(model.parameters(), model.buffers()):
            return p.device
    return torch.device("cpu")


def _volume(x: Volume, name: str = "x") -> Tensor:
    """``(D, H, W)``, ``(1, D, H, W)`` or ``(1, 1, D, H, W)`` -> ``(D, H, W)`` float32 tensor."""
    t = torch.as_tensor(np.asarray(x, dtype=np.float32) if isinstance(x, np.ndarray) else x)
    while t.ndim > 3 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 3:
        raise InputError(f"{name} must be one 3D volume (D, H, W), got shape "
                            f"{tuple(t.shape)}. Fix: explain one scan at a time.")
    return t.detach().float()


def _baseline(baseline: Volume | float | None, x: Tensor) -> Tensor:
    if baseline is None or isinstance(baseline, (int, float)):
        return torch.full_like(x, float(baseline or 0.0))
    b = _volume(baseline, "baseline")
    if b.shape != x.shape:
        raise InputError(f"baseline shape {tuple(b.shape)} differs from the input's "
                            f"{tuple(x.shape)}. Fix: pass a baseline on the same grid.")
    return b


def _covariates(sex: Tensor | np.ndarray | None, cov: dict[str, Any]) -> dict[str, Tensor]:
    """Per-scan covariates as tensors with a leading batch axis of 1."""
    given = {"sex": sex, **cov} if sex is not None else dict(cov)
    out = {}
    for k, v in given.items():
        t = torch.as_tensor(v, dtype=torch.float32)
        out[k] = t[None] if t.ndim == 0 or (k == "sex" and t.ndim == 1) else t
    return out


@contextlib.contextmanager
def _frozen(model: Model) -> Iterator[None]:
    """Eval mode and no parameter gradients inside the block (restored afterwards)."""
    if not isinstance(model, nn.Module):
        yield
        return
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


def _forward(model: Model, xb: Tensor, cov: dict[str, Tensor]) -> Tensor:
    """``(B, 1, D, H, W)`` -> ``(B,)`` float32, covariates repeated along the batch."""
    n = xb.shape[0]
    rep = {k: v.to(xb.device).expand(n, *v.shape[1:]) for k, v in cov.items()}
    out = model(xb, **rep)
    return out.reshape(n, -1)[:, 0].float()


def predict_one(model: Model, x: Volume, sex: Tensor | np.ndarray | None = None,
                **cov: Any) -> float:
    """The model's prediction for one volume ``(D, H, W)`` (eval mode, no gradients)."""
    xt = _volume(x)
    with _frozen(model), torch.inference_mode():
        return float(_forward(model, xt[None, None].to(_device(model)),
                              _covariates(sex, cov))[0])


def _path_nodes(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, 1] (exact for polynomials of degree 2n-1)."""
    if int(steps) < 1:
        raise InputError(f"steps must be a positive integer, got {steps!r}.")
    nodes, weights = np.polynomial.legendre.leggauss(int(steps))
    return (nodes + 1.0) / 2.0, weights / 2.0


def _check_batch(batch: int) -> int:
    if int(batch) < 1:
        raise InputError(f"batch must be a positive integer, got {batch!r}.")
    return int(batch)


def _weighted_grads(model: Model, points: Callable[[np.ndarray], Tensor], coefs: np.ndarray,
                    weights: np.ndarray, cov: dict[str, Tensor], batch: int) -> Tensor:
    """``sum_k weights[k] * grad f(points(coefs[k]))`` accumulated in chunks of `batch`."""
    total: Tensor | None = None
    for start in range(0, len(coefs), batch):
        xb = points(coefs[start:start + batch]).requires_grad_(True)  # (b, 1, D, H, W)
        (grad,) = torch.autograd.grad(_forward(model, xb, cov).sum(), xb)
        w = torch.as_tensor(weights[start:start + batch], dtype=grad.dtype, device=grad.device)
        part = (grad[:, 0] * w[:, None, None, None]).sum(0)  # (b, D, H, W) -> (D, H, W)
        total = part if total is None else total + part
    assert total is not None  # at least one chunk
    return total


def integrated_gradients(model: Model, x: Volume, baseline: Volume | float | None = None,
                         steps: int = 32, batch: int = 8,
                         sex: Tensor | np.ndarray | None = None, **cov: Any) -> np.ndarray:
    """Integrated gradients of the predicted age with respect to every voxel.

    Args:
        model: ``model(x (B, 1, D, H, W), **covariates) -> (B,)`` predicted age.
        x: The volume, ``(D, H, W)`` (leading singleton axes are dropped).
        baseline: Reference volume or constant; default 0 (background and brain mean of
            z-scored inputs).
        steps: Points on the path (Gauss-Legendre quadrature).
        batch: Path points per forward/backward pass (memory ~ batch x one volume's
            activations).
        sex: ``(2,)`` one-hot sex code for models that take sex.
        **cov: Other per-scan covariates the model takes (e.g. ``stage1_age``).

    Returns:
        ``(D, H, W)`` float32 attributions in years; they sum to about
        ``f(x) - f(baseline)``.
    """
    xt = _volume(x)
    base = _baseline(baseline, xt)
    dev = _device(model)
    xt, base = xt.to(dev), base.to(dev)
    alphas, weights = _path_nodes(steps)
    covs = _covariates(sex, cov)

    def points(a: np.ndarray) -> Tensor:
        at = torch.as_tensor(a, dtype=xt.dtype, device=dev)[:, None, None, None]
        return (base + at * (xt - base))[:, None]  # (b, 1, D, H, W)

    with _frozen(model):
        grads = _weighted_grads(model, points, alphas, weights, covs, _check_batch(batch))
    return ((xt - base) * grads).cpu().numpy().astype(np.float32)


def smoothgrad(model: Model, x: Volume, samples: int = 16, noise: float = 0.15,
               batch: int = 8, seed: int = 0, sex: Tensor | np.ndarray | None = None,
               **cov: Any) -> np.ndarray:
    """SmoothGrad x input: ``x * mean gradient`` over copies of `x` with Gaussian noise.

    Args:
        model: As for :func:`integrated_gradients`.
        x: ``(D, H, W)`` volume.
        samples: Noisy copies.
        noise: Noise SD as a fraction of the input's value range.
        batch: Copies per forward/backward pass.
        seed: Seed of the noise.
        sex: One-hot sex code for models that take sex.
        **cov: Other covariates.

    Returns:
        ``(D, H, W)`` float32 map (years; no completeness guarantee).
    """
    xt = _volume(x).to(_device(model))
    sd = float(noise) * float(xt.max() - xt.min())
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    if int(samples) < 1:
        raise InputError(f"samples must be a positive integer, got {samples!r}.")

    def points(idx: np.ndarray) -> Tensor:
        eps = torch.randn((len(idx), *xt.shape), generator=gen).to(xt.device) * sd
        return (xt[None] + eps)[:, None]  # (b, 1, D, H, W)

    n = int(samples)
    with _frozen(model):
        grads = _weighted_grads(model, points, np.arange(n), np.full(n, 1.0 / n),
                                _covariates(sex, cov), _check_batch(batch))
    return (xt * grads).cpu().numpy().astype(np.float32)


def _patches(shape: Sequence[int], patch: Sequence[int],
             stride: Sequence[int]) -> list[tuple[slice, slice, slice]]:
    """Patch positions covering every voxel (the last patch per axis ends at the edge)."""
    starts = []
    for n, p, s in zip(shape, patch, stride, strict=True):
        pos = list(range(0, max(n - p, 0) + 1, s))
        if pos[-1] + p < n:
            pos.append(n - p)
        starts.append(pos)
    return [tuple(slice(a, a + p) for a, p in zip(c, patch, strict=True))  # type: ignore[misc]
            for c in itertools.product(*starts)]


def _triple(v: int | Sequence[int], name: str) -> tuple[int, int, int]:
    t = (int(v),) * 3 if isinstance(v, (int, np.integer)) else tuple(int(a) for a in v)
    if len(t) != 3 or min(t) < 1:
        raise InputError(f"{name} must be a positive int or three of them, got {v!r}.")
    return t  # type: ignore[return-value]


def occlusion(model: Model, x: Volume, patch: int | Sequence[int] = (8, 8, 8),
              stride: int | Sequence[int] | None = None, baseline: float = 0.0, batch: int = 8,
              sex: Tensor | np.ndarray | None = None, **cov: Any) -> np.ndarray:
    """Occlusion sensitivity: prediction drop when a patch is set to `baseline`.

    Each patch's drop ``f(x) - f(x with the patch occluded)`` is divided by the patch's
    voxel count and given to its voxels; a voxel covered by several patches (stride <
    patch) gets the mean. For a linear model and ``stride == patch`` a voxel's value is the
    mean of ``w * (x - baseline)`` over its patch, and the map sums to ``f(x) - f(baseline)``.

    Args:
        model: As for :func:`integrated_gradients`.
        x: ``(D, H, W)`` volume.
        patch: Patch size in voxels (one int or three).
        stride: Step between patches; default the patch size (no overlap). A stride
            larger than the patch leaves voxels uncovered (0 in the map).
        baseline: Value written into the occluded patch (0 = background of z-scored input).
        batch: Occluded copies per forward pass.
        sex: One-hot sex code for models that take sex.
        **cov: Other covariates.

    Returns:
        ``(D, H, W)`` float32 map in years per voxel.
    """
    xt = _volume(x).to(_device(model))
    size = tuple(min(p, n) for p, n in zip(_triple(patch, "patch"), xt.shape, strict=True))
    step = _triple(stride if stride is not None else size, "stride")
    boxes = _patches(xt.shape, size, step)
    covs, per_voxel = _covariates(sex, cov), float(np.prod(size))
    total, count = torch.zeros_like(xt), torch.zeros_like(xt)
    with _frozen(model), torch.inference_mode():
        ref = _forward(model, xt[None, None], covs)[0]
        for start in range(0, len(boxes), _check_batch(batch)):
            chunk = boxes[start:start + batch]
            xb = xt[None].repeat(len(chunk), 1, 1, 1)  # (b, D, H, W)
            for i, box in enumerate(chunk):
                xb[(i, *box)] = baseline
            drops = ref - _forward(model, xb[:, None], covs)  # (b,)
            for box, d in zip(chunk, drops, strict=True):
                total[box] += d / per_voxel
                count[box] += 1
    return (total / count.clamp(min=1)).cpu().numpy().astype(np.float32)
