"""Target grids: where a preprocessed volume lives in MNI152 world coordinates.

A grid is a voxel shape plus a 4x4 voxel-to-world affine (RAS+, millimetres). Every
preset is defined in world coordinates, so outputs on any grid overlay the template in a
viewer. Presets:

==================  ===========  ===============  ==========================================
name                spacing      shape            notes
==================  ===========  ===============  ==========================================
tsan                2 mm         91 x 109 x 91    classic FSL MNI152 2 mm grid (TSAN input)
openbhb-vbm         1.5 mm       121 x 145 x 121  OpenBHB / CAT12 VBM geometry
openbhb-quasiraw    1 mm         182 x 218 x 182  OpenBHB quasi-raw (FSL MNI152 1 mm) geometry
gan                 2 mm         96 x 96 x 96     TGB-GAN input cube, centred on the brain
==================  ===========  ===============  ==========================================

Custom grids: ``"<spacing>mm"`` (shape chosen to cover the TSAN field of view) or
``"<spacing>mm:<X>x<Y>x<Z>"``, centred on the same brain centre.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from brainage.errors import InputError

#: World (MNI, mm) point at the centre of the TSAN / FSL 91x109x91 field of view.
BRAIN_CENTRE: tuple[float, float, float] = (0.0, -18.0, 18.0)
#: Extent (mm) of the TSAN field of view; custom grids given only a spacing cover it.
FOV_MM: tuple[float, float, float] = (182.0, 218.0, 182.0)


@dataclass(frozen=True)
class Grid:
    """A target voxel grid in MNI space.

    Attributes:
        name: Preset name, or a custom description such as ``"1.75mm:104x124x104"``.
        shape: Voxels along x, y, z (i, j, k).
        affine: 4x4 voxel (i, j, k) -> world (x, y, z) RAS+ affine in mm, as nested tuples.
        normalisation: The intensity normalisation this grid's models expect by default.
    """

    name: str
    shape: tuple[int, int, int]
    affine: tuple[tuple[float, ...], ...]
    normalisation: str = "zscore"

    @property
    def affine_array(self) -> np.ndarray:
        """The affine as a float64 (4, 4) array."""
        return np.array(self.affine, dtype=np.float64)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along i, j, k."""
        cols = np.linalg.norm(self.affine_array[:3, :3], axis=0)
        return (float(cols[0]), float(cols[1]), float(cols[2]))

    @property
    def res_label(self) -> str:
        """BIDS ``res-`` label: ``"2"``, ``"1p5"``, or ``"1x1x2"`` when anisotropic."""
        labels = [f"{s:g}".replace(".", "p") for s in self.spacing]
        return labels[0] if len(set(labels)) == 1 else "x".join(labels)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready description."""
        return {
            "name": self.name,
            "shape": list(self.shape),
            "affine": [list(row) for row in self.affine],
            "normalisation": self.normalisation,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Grid:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=str(d["name"]),
            shape=tuple(int(s) for s in d["shape"]),  # type: ignore[arg-type]
            affine=_as_tuple_affine(np.asarray(d["affine"], dtype=float)),
            normalisation=str(d.get("normalisation", "zscore")),
        )


def _as_tuple_affine(a: np.ndarray) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(round(float(v), 6) + 0.0 for v in row) for row in a)


def centred_grid(
    spacing: float | tuple[float, float, float],
    shape: tuple[int, int, int],
    name: str,
    normalisation: str = "zscore",
    centre: tuple[float, float, float] = BRAIN_CENTRE,
) -> Grid:
    """A grid of `shape` voxels of size `spacing` mm whose centre is the world point `centre`.

    The i axis runs right-to-left (negative x step) as in the FSL MNI152 grids, so TSAN and
    OpenBHB arrays come out in their published voxel order; j and k run P->A and I->S.
    """
    sp = np.broadcast_to(np.asarray(spacing, dtype=float), (3,))
    if np.any(sp <= 0) or any(int(n) < 1 for n in shape):
        raise InputError(
            f"grid {name!r}: spacing {tuple(sp)} and shape {shape} must be positive. "
            "Fix: use e.g. '2mm' or '1.5mm:121x145x121'."
        )
    lin = np.diag([-sp[0], sp[1], sp[2]])
    half = (np.asarray(shape, dtype=float) - 1) / 2
    aff = np.eye(4)
    aff[:3, :3] = lin
    aff[:3, 3] = np.asarray(centre) - lin @ half
    shp = (int(shape[0]), int(shape[1]), int(shape[2]))
    return Grid(name=name, shape=shp, affine=_as_tuple_affine(aff), normalisation=normalisation)


def fsl_grid(spacing: float, shape: tuple[int, int, int], name: str) -> Grid:
    """A grid with the FSL/SPM MNI152 origin: voxel (0, 0, 0) at world (90, -126, -72)."""
    aff = np.diag([-spacing, spacing, spacing, 1.0])
    aff[:3, 3] = (90.0, -126.0, -72.0)
    return Grid(name=name, shape=shape, affine=_as_tuple_affine(aff))


PRESETS: dict[str, Grid] = {
    "tsan": fsl_grid(2.0, (91, 109, 91), "tsan"),
    "openbhb-vbm": fsl_grid(1.5, (121, 145, 121), "openbhb-vbm"),
    "openbhb-quasiraw": fsl_grid(1.0, (182, 218, 182), "openbhb-quasiraw"),
    "gan": centred_grid(2.0, (96, 96, 96), "gan", normalisation="minmax"),
}

_CUSTOM = re.compile(r"^(?P<sp>\d+(\.\d+)?)mm(:(?P<x>\d+)x(?P<y>\d+)x(?P<z>\d+))?$")


def get_grid(name: str | Grid) -> Grid:
    """A preset by name, or a custom grid ``"<spacing>mm[:<X>x<Y>x<Z>]"``.

    Raises:
        BrainAgeError: unknown name (the closest preset is suggested) or a bad custom grid.
    """
    if isinstance(name, Grid):
        return name
    key = name.strip().lower()
    if key in PRESETS:
        return PRESETS[key]
    m = _CUSTOM.match(key)
    if m is None:
        close = difflib.get_close_matches(key, list(PRESETS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise InputError(
            f"unknown grid {name!r}{hint}; expected one of {', '.join(PRESETS)} or a custom "
            "grid like '1.75mm' or '1.75mm:104x124x104'. Fix: pick a preset or write the "
            "spacing and shape in that form."
        )
    sp = float(m["sp"])
    if not 0.25 <= sp <= 8:
        raise InputError(
            f"grid {name!r}: spacing {sp} mm is outside 0.25-8 mm. Fix: use a spacing in mm "
            "such as '1mm', '1.5mm' or '2mm'."
        )
    if m["x"] is None:
        shape = tuple(int(math.ceil(f / sp)) for f in FOV_MM)
    else:
        shape = (int(m["x"]), int(m["y"]), int(m["z"]))
    return centred_grid(sp, shape, key)  # type: ignore[arg-type]
