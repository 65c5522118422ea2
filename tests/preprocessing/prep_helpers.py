"""Helpers for the preprocessing tests: tiny NIfTI files with unequal axes, a fake pipeline."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from brainage.preprocessing import pipeline, steps

SHAPE = (24, 28, 20)  # unequal axes so axis mix-ups fail
IXI = Path(__file__).resolve().parents[3] / "shared" / "data" / "ixi-hh-2mm"


def write_nifti(path: Path, data: np.ndarray, zooms=(2.0, 2.0, 2.0)) -> Path:
    """Save `data` with an LPS-oriented affine (not canonical) and the given voxel size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    affine = np.diag([-zooms[0], -zooms[1], zooms[2], 1.0])
    affine[:3, 3] = [20.0, 30.0, -10.0]
    nib.save(nib.Nifti1Image(np.asarray(data), affine), path)
    return path


def blob(shape=SHAPE, seed=0) -> np.ndarray:
    """A bright ellipsoid with noise: a valid (if tiny) 'head'."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    r = np.sqrt(sum(g**2 for g in grids))
    return ((r < 0.8) * 100 + rng.normal(0, 2, shape)).astype(np.float32)


def fake_preprocess(source, spec, name=None) -> pipeline.PreprocessResult:
    """Validates the input like the real pipeline, then returns a deterministic volume."""
    conf = steps.conform(steps.load_image(source), name or str(source))
    shape = spec.grid.shape
    value = float(conf.data.mean())
    array = np.full(shape, value, dtype=np.float32)
    array[0] = -1.0
    mask = np.ones(shape, dtype=bool)
    qc = {"similarity": 0.9, "brain_volume_ml": 1200.0, "mask_dice_template": 1.0,
          "coverage": 1.0, "affine_det": 1.0, "intensity": {}, "input": conf.facts,
          "flags": list(conf.flags), "seconds": {"total": 0.01}}
    tissues = np.full((len(spec.tissue_channels), *shape), 1 / 3, np.float32) \
        if spec.tissues else None
    return pipeline.PreprocessResult(array, mask, spec.grid.affine_array, qc,
                                     np.ones(conf.data.shape, bool), conf.affine,
                                     tissues=tissues)
