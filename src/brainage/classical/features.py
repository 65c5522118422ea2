"""Features of one scan from its tissue maps: (F,) float32.

For each map named in :attr:`FeatureSpec.maps`: the probability map (times the Jacobian
determinant when ``modulate``: tissue volume per template voxel, as in VBM), smoothed with
a Gaussian of ``fwhm_mm``, averaged over ``pool``^3 blocks, kept inside the feature mask
(the template brain mask grown by 4 mm, pooled). ``volumes`` adds the total GM, WM and CSF
volumes (ml, native space) and the atlas-scaled intracranial volume.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brainage.errors import InputError
from brainage.preprocessing.tissues import LOGJAC, TISSUES


@dataclass(frozen=True)
class FeatureSpec:
    """What a classical model sees of each scan.

    Attributes:
        maps: Tissue maps used (``GM``, ``WM``, ``CSF``, and ``logjac`` with SyN).
        modulate: Multiply the probabilities by the Jacobian determinant (affine, times the
            SyN warp's when the cache has ``logjac``).
        fwhm_mm: Gaussian smoothing (full width at half maximum, mm; 0 = none).
        pool: Block-average factor on the grid (2 on the 2 mm grid = 4 mm features).
        volumes: Add whole-brain GM, WM, CSF volumes and the intracranial volume (ml).
    """

    maps: tuple[str, ...] = ("GM",)
    modulate: bool = True
    fwhm_mm: float = 8.0
    pool: int = 2
    volumes: bool = True

    def __post_init__(self) -> None:
        valid = (*TISSUES, LOGJAC)
        bad = [m for m in self.maps if m not in valid]
        if not self.maps or bad:
            raise InputError(f"classical.features.maps={list(self.maps)!r}: expected names "
                             f"from {list(valid)}. Fix: e.g. maps: [GM, WM].")
        if self.pool < 1 or self.fwhm_mm < 0:
            raise InputError(f"classical.features pool={self.pool!r}, fwhm_mm="
                             f"{self.fwhm_mm!r}: expected pool >= 1 and fwhm_mm >= 0.")

    def to_dict(self) -> dict[str, Any]:
        return {"maps": list(self.maps), "modulate": self.modulate, "fwhm_mm": self.fwhm_mm,
                "pool": self.pool, "volumes": self.volumes}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        return cls(**{**d, "maps": tuple(d.get("maps", ("GM",)))})


@dataclass
class FeatureMaker:
    """Turns (C, X, Y, Z) tissue arrays into feature vectors for one grid.

    Attributes:
        spec: The feature definition.
        channels: Channel names of the tissue arrays (``spec.tissue_channels``).
        spacing: Grid voxel size (mm).
        mask: Pooled feature mask, (X', Y', Z') bool.
    """

    spec: FeatureSpec
    channels: tuple[str, ...]
    spacing: tuple[float, ...]
    mask: np.ndarray = field(repr=False)

    @classmethod
    def for_grid(cls, spec: FeatureSpec, channels: tuple[str, ...], grid: Any) -> FeatureMaker:
        """The maker for a preprocessing grid (its template brain mask grown by 4 mm)."""
        from scipy import ndimage as ndi

        from brainage.preprocessing.antsio import template_mask_on_grid

        missing = [m for m in spec.maps if m not in channels]
        if missing:
            raise InputError(
                f"classical features need tissue map(s) {missing}, but the prepared scans "
                f"hold {list(channels) or 'none'}. Fix: prepare with --tissues (and "
                "--nonlinear for logjac).")
        steps = max(1, int(round(4.0 / min(grid.spacing))))
        grown = ndi.binary_dilation(template_mask_on_grid(grid), iterations=steps)
        return cls(spec, tuple(channels), tuple(grid.spacing),
                   _pool(grown.astype(np.float32), spec.pool) > 0.5)

    @property
    def key(self) -> str:
        """Equal for makers that give the same features (definition, channels, grid, mask)."""
        import hashlib

        digest = hashlib.sha256(np.packbits(self.mask).tobytes()).hexdigest()[:16]
        return f"{self.spec.to_dict()}|{self.channels}|{self.spacing}|{self.mask.shape}|{digest}"

    def __call__(self, tissues: np.ndarray, affine_det: float) -> np.ndarray:
        """(F,) float32 features of one scan; `tissues` is (C, X, Y, Z)."""
        from scipy import ndimage as ndi

        maps = np.asarray(tissues, dtype=np.float32)
        if maps.ndim != 4 or maps.shape[0] != len(self.channels):
            raise InputError(f"tissue array of shape {maps.shape}; expected "
                             f"({len(self.channels)}, X, Y, Z) with channels "
                             f"{list(self.channels)}. Fix: prepare the scans again.")
        det = np.float32(affine_det) * (
            np.exp(maps[self.channels.index(LOGJAC)]) if LOGJAC in self.channels else 1.0)
        sigma = [self.spec.fwhm_mm / 2.3548 / s for s in self.spacing]
        out = []
        for name in self.spec.maps:
            m = maps[self.channels.index(name)]
            if name != LOGJAC and self.spec.modulate:
                m = m * det
            if self.spec.fwhm_mm > 0:
                m = ndi.gaussian_filter(m, sigma, mode="constant")
            out.append(_pool(m, self.spec.pool)[self.mask])
        if self.spec.volumes:
            voxel_ml = float(np.prod(self.spacing)) / 1e3
            vols = [float((maps[self.channels.index(t)] * det).sum()) * voxel_ml for t in TISSUES]
            out.append(np.asarray(vols + [float(self.mask.sum()) * voxel_ml
                                          * self.spec.pool**3 * float(affine_det)],
                                  dtype=np.float32))
        return np.concatenate(out).astype(np.float32)


def _pool(volume: np.ndarray, factor: int) -> np.ndarray:
    """Block mean over `factor`^3 voxels (edges padded with zeros): (X', Y', Z')."""
    if factor == 1:
        return volume
    pad = [(0, (-n) % factor) for n in volume.shape]
    v = np.pad(volume, pad)
    x, y, z = (n // factor for n in v.shape)
    return v.reshape(x, factor, y, factor, z, factor).mean(axis=(1, 3, 5))
