"""``brainage gan synthesize``: encode each GAN member's subjects, interpolate within age bins,
decode, and write the synthetic dataset (:mod:`brainage.synthesis.dataset`).

Each member (fold) of the GAN run synthesises only from the subjects it saw, one scan per
subject (the youngest session), so its children carry no subject outside that fold's
training set. The dataset is built in ``.OUT.partial`` and renamed when complete; an
interrupted synthesis rerun with the same settings skips the children already written.
"""

from __future__ import annotations

import os
import shutil
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from brainage import __version__
from brainage.errors import InputError
from brainage.io import parse_json_file, write_json
from brainage.preprocessing.cache import CacheStore
from brainage.preprocessing.prepared import PreparedCohort
from brainage.synthesis.dataset import (
    FORMAT,
    VERSION,
    Child,
    bids_children,
    write_child,
    write_tables,
)
from brainage.synthesis.decode import decode_children, encode_subjects
from brainage.synthesis.gan_run import (
    GanMember,
    GanRun,
    load_images,
    open_gan_run,
    open_training_data,
    subject_scans,
)
from brainage.synthesis.plan import plan_synthesis

SETTINGS = "synthesis.settings.json"  # in the partial folder only


def synthesize(gan_run: str | Path, out: str | Path,
               prepared: str | Path | PreparedCohort | None = None, cap: int = 50,
               seed: int = 0, bin_width: float = 1.0, reuse_pairs: bool = False,
               batch_size: int = 4, device: str | None = None, change_map: bool = True,
               overwrite: bool = False) -> Path:
    """Write a synthetic, age-labelled dataset from a GAN run; the arguments are those of
    :func:`brainage.gan_synthesize`, which calls this. Returns the dataset folder.
    """
    gan = open_gan_run(gan_run)
    data = open_training_data(gan, prepared)
    final = Path(out)
    _check_destination(final, overwrite)
    settings = {"gan_run": gan.run_id, "cap": int(cap), "seed": int(seed),
                "bin_width": float(bin_width), "reuse_pairs": bool(reuse_pairs),
                "spec_hash": data.spec_hash}
    work = final.with_name(f".{final.name}.partial")
    _start(work, settings)
    store = CacheStore(work, data.spec)
    store.prepare()
    children: list[Child] = []
    members = []
    for member in gan.members:
        kids, entry = synthesize_member(work, store, gan, member, data, settings, batch_size,
                                        device or "cpu")
        children += kids
        members.append(entry)
    if not children:
        raise InputError(f"{gan.root}: no age bin has two subjects below cap={cap}, so no "
                         "synthetic subject can be made. Fix: raise --cap, widen --bin-width "
                         "or pass --reuse-pairs.")
    if gan.splits_file.is_file() and _per_fold(gan.splits_file):
        shutil.copyfile(gan.splits_file, work / "splits.json")  # the folds to train with
    manifest = {"format": FORMAT, "version": VERSION, "brainage_version": __version__,
                **settings, "gan_run": {"id": gan.run_id, "path": str(gan.root.resolve())},
                "prepared": str(data.root.resolve()), "members": members}
    write_tables(work, store, children, gan.run_id, str(data.root.resolve()), manifest)
    if change_map:
        from brainage.synthesis.change_map_io import gan_change_map, write_change_map

        write_change_map(work / "change_map", data.spec, *gan_change_map(gan, data, device=device))
    (work / SETTINGS).unlink()
    if final.exists():
        shutil.rmtree(final)
    os.replace(work, final)
    return final


def synthesize_member(work: Path, store: CacheStore, gan: GanRun, member: GanMember,
                      data: PreparedCohort, settings: dict[str, Any], batch_size: int,
                      device: str) -> tuple[list[Child], dict[str, Any]]:
    """Plan, decode and write one member's children (those not written yet)."""
    rows = subject_scans(data, member.seen)
    entry: dict[str, Any] = {"member": member.name, "fold": member.fold,
                             "seen": sorted(member.seen)}
    if len(rows) < 2:
        warnings.warn(f"{member.folder}: fewer than two subjects with an age; no children.",
                      stacklevel=2)
        return [], {**entry, "children": 0}
    plan = plan_synthesis(rows["participant_id"].tolist(), rows["age"].tolist(),
                          settings["cap"], settings["seed"], settings["bin_width"],
                          settings["reuse_pairs"], id_prefix="sub-syn")
    kids = bids_children(plan, member.name, member.fold)
    todo = [k for k in kids if not store.is_done(k.key)]
    if todo:
        gen = member.generator(device)
        parents = {p for k in todo for p in k.plan.parents}
        images = load_images(rows[rows["participant_id"].isin(parents)])
        latents = encode_subjects(gen.encode, images, device)
        by_id = {k.plan.child_id: k for k in todo}
        for child, volume in decode_children(gen.decode, [k.plan for k in todo], latents,
                                             batch_size, device):
            write_child(work, store, by_id[child.child_id], volume, gan.run_id)
    named = replace(plan, children=tuple(k.plan for k in kids))
    return kids, {**entry, "children": len(kids), "plan": named.to_dict()}


def _per_fold(splits_file: Path) -> bool:
    """Whether a GAN run's splits are cross-validation folds (not ``all``: one GAN trained
    on every subject, whose splits must not become a regressor's)."""
    return parse_json_file(splits_file).get("method") != "all"


def _check_destination(final: Path, overwrite: bool) -> None:
    if final.exists() and not final.is_dir():
        raise InputError(f"{final}: exists and is not a folder. Fix: choose another OUT path.")
    if final.is_dir() and any(final.iterdir()) and not overwrite:
        raise InputError(f"{final}: folder exists and is not empty; expected a new or empty "
                         "folder. Fix: choose another OUT path or pass --overwrite.")


def _start(work: Path, settings: dict[str, Any]) -> None:
    """Create the partial folder, or check that the one left by an interruption was made
    with the same settings (then its finished children are kept)."""
    path = work / SETTINGS
    if work.is_dir() and path.is_file():
        old = parse_json_file(path, f"delete {work} and rerun")
        if old != settings:
            raise InputError(f"{work} holds an interrupted synthesis with other settings "
                             f"({old}). Fix: rerun with those settings to finish it, or "
                             "delete the folder.")
        return
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    write_json(path, settings)
