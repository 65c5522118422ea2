"""Fixtures for cohort readers: tiny NIfTI files (unequal axes) and small BIDS trees."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

SHAPE = (9, 10, 8)  # unequal axes, the smallest a head scan may be (8 per axis)


def write_nifti(path: Path, shape: Sequence[int] = SHAPE,
                zooms: Sequence[float] | None = None) -> Path:
    """Write a tiny uint8 NIfTI (creating folders); zooms default to 1.0, 1.2, 1.5 mm."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.arange(int(np.prod(shape)), dtype=np.uint8).reshape(tuple(shape))
    img = nib.Nifti1Image(data, np.eye(4))
    img.header.set_zooms(tuple(zooms or (1.0, 1.2, 1.5, 1.0, 1.0)[: len(shape)]))
    nib.save(img, path)
    return path


def write_tsv(path: Path, rows: Sequence[Sequence[object]], sep: str = "\t") -> Path:
    """Write rows (the first is the header) as a TSV (or CSV with ``sep=","``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(sep.join(str(v) for v in row) + "\n" for row in rows))
    return path


@pytest.fixture
def nifti() -> Callable[..., Path]:
    """The :func:`write_nifti` helper."""
    return write_nifti


@pytest.fixture
def tsv() -> Callable[..., Path]:
    """The :func:`write_tsv` helper."""
    return write_tsv


@pytest.fixture
def bids_root(tmp_path: Path) -> Path:
    """Three subjects (one without age), sex in mixed spellings, two sites, a diagnosis."""
    root = tmp_path / "bids"
    (root).mkdir()
    (root / "dataset_description.json").write_text('{"Name": "tiny", "BIDSVersion": "1.9.0"}')
    write_tsv(root / "participants.tsv", [
        ["participant_id", "age", "sex", "site", "diagnosis"],
        ["sub-01", "30.5", "F", "A", "control"],
        ["sub-02", "42", "male", "B", "patient"],
        ["sub-03", "n/a", "n/a", "A", "control"],
    ])
    for label in ("01", "02", "03"):
        write_nifti(root / f"sub-{label}" / "anat" / f"sub-{label}_T1w.nii.gz")
    return root
