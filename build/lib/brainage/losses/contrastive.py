"""Kernelised supervised contrastive losses for age (Barbano et al., ISBI 2023).

Barbano, Dufumier, Duchesnay, Grangetto and Gori, "Contrastive learning for regression in
multi-site brain age prediction", ISBI 2023. Features ``(B, V, D)`` of ``V`` views of ``B``
subjects are flattened to ``N = B·V`` L2-normalised vectors ``z`` (view-major, as in the
authors' code); ``w_ij = K(y_i − y_j)`` on ages in years, and with the logits shifted by their
row maximum (the self-similarity), ``l_ij = (z_i·z_j − 1)/τ``. For every anchor ``i`` each
``k ≠ i`` is a positive of weight ``w_ik``::

    loss = mean_i  −(τ/τ_base) · Σ_{k≠i} w_ik log p_ik / Σ_{k≠i} w_ik

Methods (``log p_ik = l_ik − log D``):

* ``yaware``: ``D_i = Σ_{j≠i} exp(l_ij)``.
* ``exp`` (L^exp, the best published): ``D_i = Σ_{j≠i} exp(l_ij·(1 − w_ij))``, the shifted
  form that produced the published numbers.
* ``threshold_code``: the authors' public code, one denominator per anchor
  ``D_i = Σ_{j≠i} c_ij exp(l_ij)`` with ``c_ij = #{c : w_ji > w_jc}`` (``delta_reduction``
  ``sum``; their ``mean`` divides ``c`` by N, which only lowers the loss by
  ``(τ/τ_base)·log N``).
* ``threshold_paper``: the paper's L^thr, one denominator per positive, repelling only the
  samples no more similar to the anchor than the positive:
  ``D_ik = Σ_{j≠i, w_ij ≤ w_ik} exp(l_ij)``. The positive itself is in its own denominator
  (as in InfoNCE); read with a strict ``<`` the set is empty for the least similar positive
  and the loss undefined.
* ``supcon``: SupCon on binned ages, positives = the same bin (weight 1), ``D`` as yaware.

Kernels: ``rbf`` ``exp(−Δ²/2σ²)``; ``gaussian`` ``exp(−Δ²/2σ²)/(√(2π)σ)`` (not scale-free:
for the ``exp`` method its peak changes ``1 − w``); ``cauchy`` ``1/(γΔ² + 1)`` with ``γ``
given as ``sigma``, as the authors' ``--sigma`` does.

Both threshold variants are computed by sorting each kernel row (O(N² log N) time, O(N²)
memory) instead of materialising the (N, N, N) comparison tensor of the public code. Every
method checks its working memory (:func:`loss_memory_bytes`) against ``memory_limit``.
"""

from __future__ import annotations

import difflib
import math

import torch
from torch import Tensor, nn

from brainage.errors import InputError

METHODS: tuple[str, ...] = ("yaware", "threshold_code", "threshold_paper", "exp", "supcon")
KERNELS: tuple[str, ...] = ("rbf", "gaussian", "cauchy")
#: Default cap (bytes) on the loss's N x N working memory: 4 GiB.
DEFAULT_MEMORY_LIMIT = 4 * 1024**3
#: Peak bytes per (N x N) entry, forward + backward, as ``(per byte of the float dtype,
#: fixed)``: the peak resident memory measured on CPU at N = 2048 (float32 and float64),
#: plus about 25 %.
_BUFFERS = {"yaware": (7, 24), "supcon": (7, 24), "exp": (8, 24), "threshold_code": (6, 34),
            "threshold_paper": (12, 45)}


def _choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        close = difflib.get_close_matches(str(value), valid, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise InputError(f"unknown {name} {value!r}; expected one of {', '.join(valid)}.{hint}")


def age_kernel(age: Tensor, kernel: str = "rbf", sigma: float = 2.0) -> Tensor:
    """Pairwise kernel ``w_ij = K(y_i − y_j)``: ages ``(N,)`` -> ``(N, N)``.

    Args:
        age: Ages in years.
        kernel: ``rbf``, ``gaussian`` or ``cauchy``.
        sigma: σ (years) of ``rbf`` and ``gaussian``; γ of ``cauchy``.
    """
    _choice("kernel", kernel, KERNELS)
    if not (math.isfinite(sigma) and sigma > 0):
        raise InputError(f"kernel sigma must be a number > 0, got {sigma!r}. Fix: e.g. 2.")
    y = age.detach().to(torch.float64)
    w = (y[:, None] - y[None, :]).square_()  # (N, N) Δ², in place: one matrix (no gradient)
    if kernel == "cauchy":
        return w.mul_(sigma).add_(1.0).reciprocal_()
    w.mul_(-1 / (2 * sigma**2)).exp_()
    return w.div_(math.sqrt(2 * math.pi) * sigma) if kernel == "gaussian" else w


def bin_ages(age: Tensor, width: float = 2.0) -> Tensor:
    """Integer bin labels ``ceil(age / width)``: ``(B,)`` -> ``(B,)`` int64.

    Bins are ``(width·(b − 1), width·b]``; with width 2 they match the public code's
    ``bin_age`` for ages in (2, 90].
    """
    if not (math.isfinite(width) and width > 0):
        raise InputError(f"bin_width must be > 0 years, got {width!r}. Fix: e.g. 2.")
    return torch.ceil(age.detach().to(torch.float64) / width).long()


def loss_memory_bytes(n: int, method: str, itemsize: int = 4) -> int:
    """Estimated peak working memory (bytes) of the loss on ``n = B·V`` feature vectors.

    Every method holds a few (N, N) matrices, so the need is O(N²): in float32 about
    52·N² bytes for yaware and supcon, 56·N² for exp, 58·N² for threshold_code and 93·N²
    for threshold_paper (e.g. 0.4 GiB at N = 2048; the 4 GiB default limit is reached
    near N = 6,800). ``itemsize`` is the bytes per element of the loss's float dtype (4 for
    float32 and below, 8 for float64).
    """
    _choice("method", method, METHODS)
    per_float, fixed = _BUFFERS[method]
    return int(n * n * (per_float * max(itemsize, 4) + fixed))


def _check_inputs(features: Tensor, age: Tensor) -> None:
    if features.ndim != 3 or features.shape[0] < 1 or features.shape[1] < 1:
        raise InputError(
            f"contrastive features must be (B, V, D) with B, V >= 1, got "
            f"{tuple(features.shape)}. Fix: stack the views on dim 1, e.g. "
            "torch.stack([z1, z2], dim=1)."
        )
    if age.shape != features.shape[:1]:
        raise InputError(
            f"ages must be (B,) = ({features.shape[0]},) for these features, got "
            f"{tuple(age.shape)}. Fix: pass one age per subject, not per view."
        )
    if not torch.isfinite(age).all():
        raise InputError(f"ages must be finite, got {age[~torch.isfinite(age)].tolist()[:5]}.")


def _check_memory(n: int, method: str, itemsize: int, limit: float | None) -> None:
    need = loss_memory_bytes(n, method, itemsize)
    if limit is not None and need > limit:
        raise InputError(
            f"the {method} contrastive loss on N = {n} feature vectors (batch x views) needs "
            f"about {need:,} bytes, above memory_limit = {int(limit):,} bytes. "
            "Fix: use a smaller batch or fewer views, or raise memory_limit "
            "(None disables the check)."
        )


def _log_denominator(logits: Tensor, w: Tensor, off: Tensor, method: str
                     ) -> tuple[Tensor, Tensor]:
    """``log D``, ``(N, 1)`` per anchor or ``(N, N)`` per positive, and ``(N,)`` anchors
    whose denominator is non-empty."""
    lowest = torch.finfo(logits.dtype).min
    everyone = off.any(dim=1)
    if method == "threshold_code":
        return _threshold_code(logits, w, off)
    if method == "threshold_paper":
        return _threshold_paper(logits, w, off), everyone
    if method == "exp":
        logits = logits * (1 - w.to(logits.dtype))
    return torch.logsumexp(logits.masked_fill(~off, lowest), dim=1, keepdim=True), everyone


def _threshold_code(logits: Tensor, w: Tensor, off: Tensor) -> tuple[Tensor, Tensor]:
    """``log Σ_{j≠i} c_ij exp(l_ij)``, ``c_ij = #{c : w_jc < w_ji}`` over all N columns c."""
    below = torch.searchsorted(torch.sort(w, dim=1).values, w.contiguous())  # [j, i] = c_ij
    count = below.T.to(logits.dtype)  # (N, N)
    use = off & (count > 0)
    terms = torch.where(use, logits + torch.log(count.clamp(min=1)),
                        torch.finfo(logits.dtype).min)
    return torch.logsumexp(terms, dim=1, keepdim=True), use.any(dim=1)


def _threshold_paper(logits: Tensor, w: Tensor, off: Tensor) -> Tensor:
    """``log Σ_{j≠i, w_ij ≤ w_ik} exp(l_ij)`` for every (anchor i, positive k): (N, N)."""
    key = w.masked_fill(~off, math.inf)  # the anchor itself sorts last and is never reached
    order = torch.argsort(key, dim=1, stable=True)
    sorted_key = torch.gather(key, 1, order)
    cumulative = torch.logcumsumexp(torch.gather(logits, 1, order), dim=1)  # (N, N)
    last = torch.searchsorted(sorted_key, w.contiguous(), right=True) - 1  # [i, k]
    return torch.gather(cumulative, 1, last.clamp(min=0))


def kernel_supcon_loss(features: Tensor, age: Tensor, method: str = "exp",
                       kernel: str = "rbf", sigma: float = 2.0, temperature: float = 0.1,
                       base_temperature: float = 0.07, bin_width: float = 2.0,
                       normalize: bool = True,
                       memory_limit: float | None = DEFAULT_MEMORY_LIMIT) -> Tensor:
    """Kernelised supervised contrastive loss of Barbano et al. (2023); see the module notes.

    Args:
        features: ``(B, V, D)`` projections of ``V`` views of ``B`` subjects.
        age: ``(B,)`` ages in years (no gradient).
        method: ``yaware``, ``threshold_code``, ``threshold_paper``, ``exp`` or ``supcon``.
        kernel: ``rbf``, ``gaussian`` or ``cauchy`` (ignored by ``supcon``).
        sigma: Kernel σ in years (γ for ``cauchy``).
        temperature: τ of the logits.
        base_temperature: The loss is scaled by ``temperature / base_temperature``.
        bin_width: Age bin width (years) of ``supcon``.
        normalize: L2-normalise each feature vector first (idempotent for a head that
            already normalises, as the paper's does). With False the inputs are used as
            given and the row-max shift may not be the self-similarity.
        memory_limit: Refuse (BrainAgeError) when :func:`loss_memory_bytes` exceeds this
            many bytes; ``None`` disables the check.

    Returns:
        Scalar loss (float32 or wider). Anchors without any positive weight (possible only
        with one view) or, for ``threshold_code``, without any sample to repel (every age
        equal) are left out of the mean; with none left the loss is 0.

    Raises:
        BrainAgeError: bad shapes, names or values, or the memory need above the limit.
    """
    _check_inputs(features, age)
    _choice("method", method, METHODS)
    if not (math.isfinite(temperature) and temperature > 0 and base_temperature > 0):
        raise InputError(
            f"temperatures must be > 0, got temperature={temperature!r}, "
            f"base_temperature={base_temperature!r}. Fix: e.g. 0.1 and 0.07."
        )
    b, v, _ = features.shape
    dtype = torch.promote_types(features.dtype, torch.float32)
    _check_memory(b * v, method, torch.finfo(dtype).bits // 8, memory_limit)
    with torch.autocast(features.device.type, enabled=False):  # full precision under AMP
        return _loss(features.to(dtype), age, method, kernel, sigma, temperature,
                     base_temperature, bin_width, normalize)


def _loss(features: Tensor, age: Tensor, method: str, kernel: str, sigma: float,
          temperature: float, base_temperature: float, bin_width: float,
          normalize: bool) -> Tensor:
    """The loss on checked inputs; see :func:`kernel_supcon_loss`."""
    b, v, _ = features.shape
    n, dtype = b * v, features.dtype
    z = features.transpose(0, 1).reshape(n, -1)  # (B, V, D) -> (V·B, D)
    if normalize:
        z = nn.functional.normalize(z, dim=1)
    s = z @ z.T / temperature  # (N, N)
    logits = s - s.max(dim=1, keepdim=True).values.detach()
    y = age.repeat(v)  # (N,), view-major like z
    if method == "supcon":
        bins = bin_ages(y, bin_width)
        w = (bins[:, None] == bins[None, :]).double()
    else:
        w = age_kernel(y, kernel, sigma)  # (N, N) float64: exact ties for the thresholds
    w = w.to(z.device)
    off = ~torch.eye(n, dtype=torch.bool, device=z.device)
    weight = w.to(dtype).masked_fill(~off, 0.0)  # positives exclude the anchor itself
    log_d, valid = _log_denominator(logits, w, off, method)
    log_p = logits - log_d  # (N, N)
    total = weight.sum(dim=1)  # (N,)
    valid &= total > 0
    if not valid.any():
        return features.sum() * 0.0
    per_anchor = torch.where(weight > 0, weight * log_p, 0.0).sum(dim=1) / total.clamp(min=1e-30)
    return -(temperature / base_temperature) * per_anchor[valid].mean()


class KernelSupConLoss(nn.Module):
    """Module form of :func:`kernel_supcon_loss` with fixed settings, checked at build time.

    Example:
        >>> loss_fn = KernelSupConLoss(method="exp", kernel="rbf", sigma=2.0)
        >>> loss = loss_fn(torch.randn(8, 2, 128), torch.rand(8) * 60 + 20)
    """

    def __init__(self, method: str = "exp", kernel: str = "rbf", sigma: float = 2.0,
                 temperature: float = 0.1, base_temperature: float = 0.07,
                 bin_width: float = 2.0, normalize: bool = True,
                 memory_limit: float | None = DEFAULT_MEMORY_LIMIT) -> None:
        super().__init__()
        _choice("method", method, METHODS)
        age_kernel(torch.zeros(1), kernel, sigma)  # fail now on a bad kernel or sigma
        bin_ages(torch.zeros(1), bin_width)
        if not (temperature > 0 and base_temperature > 0):
            raise InputError(
                f"temperatures must be > 0, got {temperature!r} and {base_temperature!r}."
            )
        self.method, self.kernel, self.sigma = method, kernel, float(sigma)
        self.temperature, self.base_temperature = float(temperature), float(base_temperature)
        self.bin_width, self.normalize, self.memory_limit = float(bin_width), normalize, memory_limit

    def forward(self, features: Tensor, age: Tensor) -> Tensor:
        return kernel_supcon_loss(
            features, age, self.method, self.kernel, self.sigma, self.temperature,
            self.base_temperature, self.bin_width, self.normalize, self.memory_limit,
        )

    def extra_repr(self) -> str:
        return (f"method={self.method!r}, kernel={self.kernel!r}, sigma={self.sigma}, "
                f"temperature={self.temperature}, base_temperature={self.base_temperature}")
