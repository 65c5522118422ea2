"""Age-related regions of a GAN run: decode young -> old latent paths, write the map.

For each member, the subjects it saw are sorted by age; the youngest and oldest
``fraction`` of them form the two groups, and the path between the groups' mean latents
is decoded at ``steps`` points (:func:`~brainage.synthesis.change_map.age_change_map`).
The members' maps are averaged. Written as a BIDS derivative on the template grid::

    OUT/dataset_description.json
    OUT/space-<tpl>_res-<r>_desc-agechange_map.nii.gz   change (intensity units per path)
    OUT/space-<tpl>_res-<r>_desc-agechange_map.json     groups, ages, steps, GAN run id
    OUT/space-<tpl>_res-<r>_desc-agechange_map.png      three slices through the peak
    OUT/space-<tpl>_res-<r>_desc-mean_T1w.nii.gz + .json  mean real image (the background)
    OUT/README, OUT/.bidsignore                         BIDS has no subject-less images

The folder passes the official BIDS validator, its maps listed in ``.bidsignore`` (BIDS
defines no group-level image; ``docs/bids.md``).

``brainage report`` shows the figure when a run (or its synthetic dataset) holds one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainage import __version__
from brainage.errors import InputError
from brainage.io import atomic_path, write_json
from brainage.preprocessing.derivatives import (
    resolution_text,
    save_nifti,
    write_bidsignore,
    write_readme,
)
from brainage.preprocessing.prepared import PreparedCohort
from brainage.preprocessing.spec import PreprocessingSpec
from brainage.synthesis.change_map import age_change_map
from brainage.synthesis.dataset import map_name
from brainage.synthesis.decode import encode_subjects
from brainage.synthesis.gan_run import (
    GanMember,
    GanRun,
    load_images,
    open_gan_run,
    open_training_data,
    subject_scans,
)

_README = """Age-change map of a TGB-GAN run (brainage gan change-map): where decoding the
latent path from the youngest to the oldest subjects changes the image, on the template
grid, with the mean real image as background. Group-level maps: listed in .bidsignore.
"""


def member_change_map(member: GanMember, data: PreparedCohort, fraction: float = 0.25,
                      steps: int = 5, generator: Any = None, device: str | None = None
                      ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Change map of one member's generator (or `generator`, e.g. untrained weights).

    Returns:
        (change map (X, Y, Z), mean real image of the member's subjects, description).
    """
    rows = subject_scans(data, member.seen).sort_values("age").reset_index(drop=True)
    n = max(1, int(round(fraction * len(rows))))
    if len(rows) < 2 or 2 * n > len(rows):
        raise InputError(f"{member.folder}: {len(rows)} subjects with an age cannot form young "
                         f"and old groups of {n}. Fix: lower --fraction or train on more.")
    gen = generator if generator is not None else member.generator(device or "cpu")
    images = load_images(rows)
    latents = encode_subjects(gen.encode, images, device)
    ids = rows["participant_id"].tolist()
    young = torch.stack([latents[s] for s in ids[:n]])
    old = torch.stack([latents[s] for s in ids[-n:]])
    change = age_change_map(gen.decode, young, old, steps, device=device)
    mean = np.mean([img[0].numpy() for _, img in images], axis=0)
    ages = rows["age"].to_numpy(float)
    return change, mean, {"young_ages": [float(ages[:n].min()), float(ages[:n].max())],
                          "old_ages": [float(ages[-n:].min()), float(ages[-n:].max())],
                          "group_size": n}


def gan_change_map(gan: GanRun, data: PreparedCohort, fraction: float = 0.25, steps: int = 5,
                   device: str | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Members' change maps averaged, the mean real image, and the sidecar's content."""
    parts = [member_change_map(m, data, fraction, steps, device=device) for m in gan.members]
    change = np.mean([p[0] for p in parts], axis=0)
    background = np.mean([p[1] for p in parts], axis=0)
    info = {"GanRun": gan.run_id, "Members": [m.name for m in gan.members],
            "Groups": [p[2] for p in parts], "Fraction": fraction, "Steps": steps,
            "Measure": "total variation sum_k |x_{k+1} - x_k| along the decoded path between "
                       "the mean latents of the youngest and the oldest subjects",
            "Units": "input intensity (min-max normalised, [0, 1])"}
    return change, background, info


def write_change_map(out: str | Path, spec: PreprocessingSpec, change: np.ndarray,
                     background: np.ndarray, info: dict[str, Any]) -> Path:
    """Write the map, its sidecar, the mean image and the figure into `out` (atomically)."""
    from brainage.reporting.slices import change_map_figure

    affine = spec.grid.affine_array
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        write_json(tmp / "dataset_description.json", {
            "Name": "TGB-GAN age-change map", "BIDSVersion": "1.9.0",
            "DatasetType": "derivative", "GeneratedBy": [
                {"Name": "brainage", "Version": __version__,
                 "Description": "brainage gan change-map", "GanRun": info.get("GanRun")}]})
        write_readme(tmp, _README)
        write_bidsignore(tmp, ("/space-*",))
        stem, mean = map_name(spec), map_name(spec, "mean", "T1w")
        save_nifti(tmp / f"{stem}.nii.gz", change, affine, np.float32)
        save_nifti(tmp / f"{mean}.nii.gz", background, affine, np.float32)
        grid = {"SpatialReference": spec.template, "Resolution": resolution_text(spec),
                "PreprocessingSpecHash": spec.hash}
        write_json(tmp / f"{stem}.json", {**info, **grid})
        write_json(tmp / f"{mean}.json", {
            "Description": "Mean of the real images the GAN members saw (the map's "
                           "background).", "SkullStripped": True, **grid})
        (tmp / f"{stem}.png").write_bytes(change_map_figure(change, background))
    return Path(out)


def change_map(gan_run: str | Path, out: str | Path,
               prepared: str | Path | PreparedCohort | None = None, fraction: float = 0.25,
               steps: int = 5, device: str | None = None) -> Path:
    """``brainage gan change-map``: the run's young -> old change map, written to `out`."""
    if not 0 < fraction <= 0.5 or steps < 2:
        raise InputError(f"fraction={fraction!r}, steps={steps!r}: expected 0 < fraction <= 0.5 "
                         "and steps >= 2. Fix: e.g. --fraction 0.25 --steps 5.")
    gan = open_gan_run(gan_run)
    data = open_training_data(gan, prepared)
    return write_change_map(out, data.spec, *gan_change_map(gan, data, fraction, steps, device))
