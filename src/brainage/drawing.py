"""Figures as PNG bytes, drawn on an Agg canvas (no pyplot state, no display, thread-safe).

:func:`new_figure` and :func:`png` are what every figure is drawn with (the report's in
:mod:`brainage.reporting.figures`); the figures of volumes here, orthogonal mid slices, are
drawn during training and synthesis too (GAN samples, age-change maps), so this module sits
below them in the layer order. Volumes are
``(X, Y, Z)`` arrays on a template grid (i right-to-left or left-to-right, j posterior to
anterior, k inferior to superior); slices are shown with the superior/anterior side up.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from brainage.errors import BrainAgeError

#: Resolution of every figure (dots per inch).
DPI = 110
#: Plane names and the axis each cuts.
PLANES = (("sagittal", 0), ("coronal", 1), ("axial", 2))


def new_figure(width: float = 6.4, height: float = 4.6) -> Figure:
    """An empty figure on its own Agg canvas (constrained layout)."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png(fig: Figure) -> bytes:
    """`fig` as PNG bytes on a white background."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def mid_slice(volume: np.ndarray, axis: int, index: int | None = None) -> np.ndarray:
    """The slice of ``volume`` across ``axis`` (middle by default), oriented for display."""
    v = np.asarray(volume, dtype=np.float32)
    if v.ndim != 3:
        raise BrainAgeError(f"expected a 3D volume, got shape {v.shape}.")
    i = v.shape[axis] // 2 if index is None else int(index)
    return np.take(v, i, axis=axis).T[::-1]  # (a, b) -> rows top-down = superior first


def _check_pairs(real: Sequence[np.ndarray], fake: Sequence[np.ndarray]) -> None:
    if not len(real) or len(real) != len(fake):
        raise BrainAgeError(f"need as many reconstructions as real volumes (>= 1), got "
                            f"{len(real)} and {len(fake)}.")
    for a, b in zip(real, fake, strict=True):
        if np.shape(a) != np.shape(b):
            raise BrainAgeError(f"a real volume {np.shape(a)} and its reconstruction "
                                f"{np.shape(b)} differ in shape.")


def reconstruction_grid(real: Sequence[np.ndarray], fake: Sequence[np.ndarray],
                        labels: Sequence[str] = (), title: str = "") -> bytes:
    """Rows real / reconstruction / |difference|; three mid slices per volume as columns.

    Args:
        real: Real volumes ``(X, Y, Z)`` (intensities in [0, 1] for TGB-GAN inputs).
        fake: Their reconstructions, same shapes.
        labels: A caption per volume (e.g. subject and age).
        title: Figure title.
    """
    _check_pairs(real, fake)
    cols = len(real) * len(PLANES)
    fig = new_figure(1.3 * cols + 0.6, 4.4)
    axes = fig.subplots(3, cols, squeeze=False)
    hi = max(float(np.max(r)) for r in real) or 1.0
    for k, (r, f) in enumerate(zip(real, fake, strict=True)):
        for p, (plane, axis) in enumerate(PLANES):
            c = k * len(PLANES) + p
            rows = (mid_slice(r, axis), mid_slice(f, axis), np.abs(mid_slice(f - r, axis)))
            for row, (image, name) in enumerate(zip(rows, ("real", "reconstruction", "|diff|"),
                                                    strict=True)):
                ax = axes[row, c]
                ax.imshow(image, cmap="gray" if row < 2 else "magma", vmin=0.0, vmax=hi,
                          interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if c == 0:
                    ax.set_ylabel(name, fontsize=8)
            caption = labels[k] if k < len(labels) else f"#{k}"
            axes[0, c].set_title(f"{caption}\n{plane}" if p == 1 else plane, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return png(fig)


def change_map_figure(change: np.ndarray, background: np.ndarray | None = None,
                      title: str = "Age-related change of decoded brains") -> bytes:
    """Three slices through the change map's peak, over a background (e.g. the mean image).

    Args:
        change: Voxelwise change ``(X, Y, Z)`` (non-negative total variation, or signed).
        background: Same-shape image drawn in grey beneath (None: no background).
        title: Figure title.
    """
    c = np.asarray(change, dtype=np.float64)
    if c.ndim != 3 or (background is not None and np.shape(background) != c.shape):
        raise BrainAgeError(f"change map {c.shape} must be 3D and match the background "
                            f"{None if background is None else np.shape(background)}.")
    if not np.isfinite(c).all() or not np.abs(c).max() > 0:
        raise BrainAgeError("the change map is empty (all zero or not finite); nothing to draw.")
    peak = np.unravel_index(int(np.argmax(np.abs(c))), c.shape)
    signed = bool((c < 0).any())
    top = float(np.percentile(np.abs(c[c != 0]), 99.5)) or float(np.abs(c).max())
    fig = new_figure(9.6, 3.6)
    axes = fig.subplots(1, 3, squeeze=False)[0]
    image = None
    for ax, (plane, axis) in zip(axes, PLANES, strict=True):
        if background is not None:
            ax.imshow(mid_slice(background, axis, peak[axis]), cmap="gray",
                      interpolation="nearest")
        layer = mid_slice(c, axis, peak[axis])
        shown = np.ma.masked_where(np.abs(layer) < 0.05 * top, layer)
        image = ax.imshow(shown, cmap="RdBu_r" if signed else "hot", alpha=0.85,
                          vmin=-top if signed else 0.0, vmax=top, interpolation="nearest")
        ax.set_title(f"{plane} (slice {peak[axis]})", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="change (intensity units)")
    fig.suptitle(title, fontsize=10)
    return png(fig)
