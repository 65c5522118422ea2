"""Features of one scan from its tissue maps: (F,) float32.

For each map named in :attr:`FeatureSpec.maps`: the probability map (times the Jacobian
determinant when ``modulate``: tissue volume per template voxel, as in VBM), smoothed with
a Gaussian of ``fwhm_mm``, averaged over ``pool``^3 blocks, kept inside the feature mask
(the template brain mask grown by 4 mm, pooled). ``volumes`` adds the total GM, WM and CSF
volumes (ml, native space) and the atlas-scaled intracranial volume.

Regional features (:mod:`brainage.classical.regions`): ``parcels`` gives, per scale K, the
mean of each map in 2K template-derived parcels (unsmoothed; times the Jacobian
determinant when ``modulate``); ``brain_measures`` adds the ventricular CSF (mean CSF
probability in the template's grown ventricle region) and the whole-brain GM, WM and CSF
fractions. ``voxels: false`` drops the smoothed voxel maps, leaving regions only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from brainage.classical.regions import region_means
from brainage.errors import InputError
from brainage.preprocessing.tissues import LOGJAC, TISSUES

#: Names of the ``brain_measures`` features, in order.
MEASURE_NAMES = ("ventricular_csf", *(f"{t}_fraction" for t in TISSUES))
#: Names of the ``volumes`` features, in order.
VOLUME_NAMES = (*(f"{t}_volume" for t in TISSUES), "intracranial_volume")


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
        voxels: Use the smoothed, pooled voxel maps.
        parcels: Parcel scales (parcels per hemisphere); each adds the maps' parcel means.
        brain_measures: Add the ventricular CSF and whole-brain tissue fractions.
    """

    maps: tuple[str, ...] = ("GM",)
    modulate: bool = True
    fwhm_mm: float = 8.0
    pool: int = 2
    volumes: bool = True
    voxels: bool = True
    parcels: tuple[int, ...] = ()
    brain_measures: bool = False

    def __post_init__(self) -> None:
        valid = (*TISSUES, LOGJAC)
        bad = [m for m in self.maps if m not in valid]
        if not self.maps or bad:
            raise InputError(f"classical.features.maps={list(self.maps)!r}: expected names "
                             f"from {list(valid)}. Fix: e.g. maps: [GM, WM].")
        if self.pool < 1 or self.fwhm_mm < 0:
            raise InputError(f"classical.features pool={self.pool!r}, fwhm_mm="
                             f"{self.fwhm_mm!r}: expected pool >= 1 and fwhm_mm >= 0.")
        if any(not isinstance(k, int) or not 1 <= k <= 500 for k in self.parcels):
            raise InputError(f"classical.features parcels={list(self.parcels)!r}: expected "
                             "whole numbers of parcels per hemisphere, 1-500. Fix: e.g. "
                             "parcels: [16, 64].")
        if not (self.voxels or self.parcels or self.brain_measures or self.volumes):
            raise InputError("classical.features: voxels, parcels, brain_measures and volumes "
                             "are all off, so there is no feature. Fix: turn one on.")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"maps": list(self.maps), "modulate": self.modulate,
                               "fwhm_mm": self.fwhm_mm, "pool": self.pool,
                               "volumes": self.volumes}
        if not self.voxels or self.parcels or self.brain_measures:  # older readers: as before
            out.update(voxels=self.voxels, parcels=list(self.parcels),
                       brain_measures=self.brain_measures)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        return cls(**{**d, "maps": tuple(d.get("maps", ("GM",))),
                      "parcels": tuple(int(k) for k in d.get("parcels", ()))})

    @property
    def region_names(self) -> tuple[str, ...]:
        """Names of the label arrays these features need (stored with the model)."""
        return (*(f"parcels_{k}" for k in self.parcels),
                *(("ventricles",) if self.brain_measures else ()))


@dataclass
class FeatureMaker:
    """Turns (C, X, Y, Z) tissue arrays into feature vectors for one grid.

    Attributes:
        spec: The feature definition.
        channels: Channel names of the tissue arrays (``spec.tissue_channels``).
        spacing: Grid voxel size (mm).
        mask: Pooled feature mask, (X', Y', Z') bool.
        regions: Label arrays on the grid, (X, Y, Z), by name (``parcels_<K>``: 0 outside,
            1..2K; ``ventricles``: 0/1).
    """

    spec: FeatureSpec
    channels: tuple[str, ...]
    spacing: tuple[float, ...]
    mask: np.ndarray = field(repr=False)
    regions: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

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
        from brainage.classical import regions

        steps = max(1, int(round(4.0 / min(grid.spacing))))
        grown = ndi.binary_dilation(template_mask_on_grid(grid), iterations=steps)
        labels = {f"parcels_{k}": regions.parcels(grid, grown, k) for k in spec.parcels}
        if spec.brain_measures:
            labels["ventricles"] = regions.ventricles(grid, grown).astype(np.uint16)
        return cls(spec, tuple(channels), tuple(grid.spacing),
                   _pool(grown.astype(np.float32), spec.pool) > 0.5, labels)

    @cached_property
    def key(self) -> str:
        """Equal for makers that give the same features (definition, channels, grid, masks);
        computed once (it hashes the mask and every region array)."""
        import hashlib

        h = hashlib.sha256(np.packbits(self.mask).tobytes())
        for name in sorted(self.regions):
            h.update(name.encode() + np.ascontiguousarray(self.regions[name]).tobytes())
        return (f"{self.spec.to_dict()}|{self.channels}|{self.spacing}|{self.mask.shape}|"
                f"{h.hexdigest()[:16]}")

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
            for k in self.spec.parcels:
                out.append(region_means(m, self._labels(f"parcels_{k}"), 2 * k))
            if not self.spec.voxels:
                continue
            if self.spec.fwhm_mm > 0:
                m = ndi.gaussian_filter(m, sigma, mode="constant")
            out.append(_pool(m, self.spec.pool)[self.mask])
        if self.spec.brain_measures:
            out.append(self._brain_measures(maps, det))
        if self.spec.volumes:
            voxel_ml = float(np.prod(self.spacing)) / 1e3
            vols = [float((maps[self.channels.index(t)] * det).sum()) * voxel_ml for t in TISSUES]
            out.append(np.asarray(vols + [float(self.mask.sum()) * voxel_ml
                                          * self.spec.pool**3 * float(affine_det)],
                                  dtype=np.float32))
        return np.concatenate(out).astype(np.float32)

    def layout(self) -> list[tuple[str, str, int]]:
        """The feature vector's segments, in order: ``(kind, name, size)`` with kind
        ``parcels`` (name ``<map>/parcels_<K>``), ``voxels`` (name: the map), ``measures``
        or ``volumes`` (name: the segment)."""
        out: list[tuple[str, str, int]] = []
        for name in self.spec.maps:
            out += [("parcels", f"{name}/parcels_{k}", 2 * k) for k in self.spec.parcels]
            if self.spec.voxels:
                out.append(("voxels", name, int(self.mask.sum())))
        if self.spec.brain_measures:
            out.append(("measures", "brain_measures", len(MEASURE_NAMES)))
        if self.spec.volumes:
            out.append(("volumes", "volumes", len(VOLUME_NAMES)))
        return out

    def _labels(self, name: str) -> np.ndarray:
        if name not in self.regions:
            raise InputError(f"classical features need the region labels {name!r}, which this "
                             "model does not hold. Fix: train the run again.")
        return self.regions[name]

    def _brain_measures(self, maps: np.ndarray, det: Any) -> np.ndarray:
        """Ventricular CSF (mean probability in the region, times the determinant when
        modulated) and the GM, WM, CSF fractions of the segmented brain."""
        csf = maps[self.channels.index("CSF")]
        if self.spec.modulate:
            csf = csf * det
        vent = region_means(csf, self._labels("ventricles"), 1)
        totals = np.array([float(maps[self.channels.index(t)].sum()) for t in TISSUES])
        return np.concatenate([vent, totals / max(float(totals.sum()), 1e-6)])


def _pool(volume: np.ndarray, factor: int) -> np.ndarray:
    """Block mean over `factor`^3 voxels (edges padded with zeros): (X', Y', Z')."""
    if factor == 1:
        return volume
    pad = [(0, (-n) % factor) for n in volume.shape]
    v = np.pad(volume, pad)
    x, y, z = (n // factor for n in v.shape)
    return v.reshape(x, factor, y, factor, z, factor).mean(axis=(1, 3, 5))
