"""An OpenBHB-shaped miniature dataset: both formats, the challenge's masks, true layout.

The volumes are the synthetic heads of ``synthetic_runs`` (age changes brightness and
'ventricles') plus a per-site intensity offset, on grids 10x smaller per axis than
OpenBHB's (VBM 121x145x121 -> 12x15x12, quasi-raw 182x218x182 -> 18x22x18). Written:

* ``participants.tsv`` (participant_id, study, sex, age, site, siteXacq, split) and
  per-subject arrays ``sub-<id>_preproc-cat12vbm_desc-gm_T1w.npy`` / ``..._quasiraw_...``
  of shape (1, D, H, W), unmasked;
* the masks ``resource/cat12vbm_space-MNI152_desc-gm_TPM.nii.gz`` (a 'TPM' in [0, 1];
  voxels > 0.05) and ``resource/quasiraw_space-MNI152_desc-brain_T1w.nii.gz``;
* the flat format: ``train.npy`` / ``test.npy`` rows = masked VBM + masked quasi-raw + a
  short tail (surfaces and ROIs), with ``train.tsv`` / ``test.tsv`` (participant_id, age,
  site, split for train; test rows list the seen sites first, then the unseen ones).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from synthetic_runs import volume

VBM, QUASIRAW = (12, 15, 12), (18, 22, 18)
SUFFIX = {"vbm": "_preproc-cat12vbm_desc-gm_T1w.npy", "quasiraw": "_preproc-quasiraw_T1w.npy"}
TAIL = 7  # stand-in for the surface maps and ROI tables after the two blocks


def masks(shape_vbm: tuple[int, ...] = VBM, shape_qr: tuple[int, ...] = QUASIRAW
          ) -> dict[str, np.ndarray]:
    """The 'TPM' (float, thresholded at 0.05) and brain mask (0/1) of the miniature."""
    def ball(shape: tuple[int, ...], radius: float) -> np.ndarray:
        grid = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
        return np.sqrt(sum(g**2 for g in grid))

    tpm = np.clip(1.0 - ball(shape_vbm, 1.0), 0, 1).astype(np.float32)  # > 0.05 inside r 0.95
    brain = (ball(shape_qr, 1.0) < 0.9).astype(np.float32)
    return {"vbm": tpm, "quasiraw": brain}


def make_openbhb(root: Path, n_train: int = 24, n_internal: int = 6, n_external: int = 6,
                 seed: int = 0) -> Path:
    """Write the miniature into `root`; 3 training sites, 1 unseen site (external)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    n = n_train + n_internal + n_external
    ages = np.round(rng.uniform(20, 80, n), 1)
    sites = [str(i % 3) for i in range(n_train + n_internal)] + ["9"] * n_external
    split = ["train"] * n_train + ["internal_test"] * n_internal + ["external_test"] * n_external
    ids = [f"{1000 + i}" for i in range(n)]
    table = pd.DataFrame({"participant_id": ids, "study": "MINI", "sex": ["female", "male"] * (n // 2)
                          + ["female"] * (n % 2), "age": ages, "site": sites,
                          "siteXacq": [f"{s}0" for s in sites], "split": split})
    table.to_csv(root / "participants.tsv", sep="\t", index=False)
    m = masks()
    (root / "resource").mkdir(exist_ok=True)
    for name, arr in m.items():
        file = {"vbm": "cat12vbm_space-MNI152_desc-gm_TPM.nii.gz",
                "quasiraw": "quasiraw_space-MNI152_desc-brain_T1w.nii.gz"}[name]
        nib.save(nib.Nifti1Image(arr, np.eye(4)), root / "resource" / file)
    rows = []
    for i, pid in enumerate(ids):
        offset = 0.3 * int(sites[i]) / 9  # a site effect the site probe can find
        vols = {"vbm": volume(ages[i], rng, VBM) + offset,
                "quasiraw": volume(ages[i], rng, QUASIRAW) + offset}
        folder = root / ("train" if split[i] == "train" else "val")
        folder.mkdir(exist_ok=True)
        for name, vol in vols.items():
            np.save(folder / f"sub-{pid}{SUFFIX[name]}", vol[None].astype(np.float32))
        rows.append(np.concatenate([vols["vbm"][m["vbm"] > 0.05], vols["quasiraw"][m["quasiraw"] > 0],
                                    rng.normal(size=TAIL)]).astype(np.float32))
    _write_flat(root / "flat", table, np.stack(rows))
    return root


def _write_flat(flat: Path, table: pd.DataFrame, rows: np.ndarray) -> None:
    flat.mkdir(exist_ok=True)
    train = (table["split"] == "train").to_numpy()
    np.save(flat / "train.npy", rows[train])
    table.loc[train, ["participant_id", "age", "site", "split"]].to_csv(
        flat / "train.tsv", sep="\t", index=False)
    np.save(flat / "test.npy", rows[~train])  # internal rows first, then external
    table.loc[~train, ["participant_id", "age", "site"]].to_csv(
        flat / "test.tsv", sep="\t", index=False)
    (flat / "resource").symlink_to(flat.parent / "resource")
