"""``predict`` as a job array: N shards, each ``predict --shard k/N``, merged in input order.

Each shard job loads the run, predicts its block of the inputs
(:func:`brainage.inference.many.shard_rows`: contiguous, so shards 1..N are the inputs in
order) and writes its table atomically to ``OUTPUT.shards/shard-KKKK-of-NNNN.json`` (a
temporary folder next to the output, only ever read by this module). The merge concatenates
them in shard order. A rerun skips finished shards; the folder is removed once the merged
table is written (:func:`clean`). ``OUTPUT.shards/manifest.json`` names the run, the inputs
and N: shards of another request are never merged (they are removed first).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from brainage.cluster import ShardsFailed, failed_shards_message, make_executor, run_array
from brainage.cluster.profile import ClusterProfile
from brainage.errors import BrainAgeError, InputError
from brainage.io import atomic_path, write_json

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class PredictShard:
    """Everything one shard job needs (submitit carries it to the job)."""

    run_dir: str
    inputs: tuple[str, ...]
    cohort: str | None
    dicom_series: str | None
    device: str | None
    batch_size: int
    allow_library_drift: bool
    jobs: int | None
    threads: int | None
    shard: int
    shards: int
    file: str


def shard_folder(output: str | Path) -> Path:
    """The temporary folder of `output`'s shard tables and job logs."""
    out = Path(output)
    return out.with_name(f"{out.name}.shards")


def shard_file(folder: Path, k: int, n: int) -> Path:
    return folder / f"shard-{k:04d}-of-{n:04d}.json"


def run_shard(job: PredictShard) -> str:
    """One shard job: predict block ``job.shard`` of ``job.shards``; returns its file.

    Skips a shard whose file exists (finished by an earlier submission).
    """
    from brainage.inference.predictor import Predictor

    file = Path(job.file)
    if file.is_file():
        return str(file)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictor = Predictor.from_run(job.run_dir, device=job.device,
                                       batch_size=job.batch_size,
                                       allow_library_drift=job.allow_library_drift)
        before = len(predictor.notes)
        table = predictor.predict([Path(p) for p in job.inputs], job.cohort,
                                  dicom_series=job.dicom_series, jobs=job.jobs,
                                  threads=job.threads, shard=(job.shard, job.shards))
    payload = {"format": SHARD_FORMAT, "table": table_to_json(table),
               "notes": predictor.notes[before:],
               "warnings": [(_category_name(w.category), str(w.message)) for w in caught]}
    with atomic_path(file) as tmp:
        Path(tmp).write_text(json.dumps(payload, allow_nan=False))
    return str(file)


#: Shard tables are JSON (never pickles: nothing in brainage unpickles a file). Python's
#: JSON floats are the shortest repr that round-trips, so a merged table is the same bits.
SHARD_FORMAT = "brainage-shard-table-1"


def table_to_json(table: pd.DataFrame) -> dict[str, Any]:
    """A DataFrame as JSON-ready columns: name, dtype, values (missing -> null)."""
    cols = []
    for name in table.columns:
        series = table[name]
        values = [None if _missing(v) else (v.item() if hasattr(v, "item") else v)
                  for v in series.tolist()]
        cols.append({"name": str(name), "dtype": str(series.dtype), "values": values})
    return {"columns": cols, "rows": len(table)}


def table_from_json(data: dict[str, Any]) -> pd.DataFrame:
    """Inverse of :func:`table_to_json`."""
    out = {c["name"]: pd.Series(c["values"], dtype=c["dtype"] if c["dtype"] != "object"
                                else object) for c in data["columns"]}
    return pd.DataFrame(out, index=range(int(data["rows"])))


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and other containers are values
        return False


def _category_name(category: type[Warning]) -> str:
    return f"{category.__module__}:{category.__qualname__}"


def _category(name: str) -> type[Warning]:
    """The warning class a shard recorded (brainage's or a builtin), else UserWarning."""
    import builtins
    import importlib

    module, _, qualname = name.partition(":")
    if module == "builtins":
        found = getattr(builtins, qualname, UserWarning)
    elif module.split(".")[0] == "brainage":
        found = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part, UserWarning)
    else:
        found = UserWarning
    return found if isinstance(found, type) and issubclass(found, Warning) else UserWarning


def _manifest(predictor: Any, inputs: list[Path], cohort: Path | None,
              dicom_series: str | None, shards: int) -> dict[str, Any]:
    return {"run": str(Path(predictor.run_dir).resolve()),
            "inputs": [str(Path(p).resolve()) for p in inputs],
            "cohort": str(Path(cohort).resolve()) if cohort else None,
            "dicom_series": dicom_series, "shards": shards,
            "batch_size": int(predictor.batch_size),
            "allow_library_drift": bool(predictor.allow_library_drift)}


def _start(folder: Path, manifest: dict[str, Any]) -> None:
    """Keep finished shards of the same request; remove those of another one."""
    path = folder / MANIFEST
    if path.is_file():
        try:
            same = json.loads(path.read_text()) == manifest
        except (OSError, ValueError):
            same = False
        if not same:
            for old in folder.glob("shard-*.json"):
                old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    write_json(path, manifest)


def predict_sharded(predictor: Any, inputs: list[Path], output: str | Path, *,
                    shards: int, executor: str, profile: ClusterProfile,
                    cohort: Path | None = None, dicom_series: str | None = None,
                    jobs: int | None = None, threads: int | None = None) -> pd.DataFrame:
    """Predict `inputs` with `predictor`'s run as `shards` jobs of `executor`, merged.

    Returns:
        The merged table, in input order: the table one process gives. Shard warnings are
        raised again here once each; the shards' notes are added to ``predictor.notes``.

    Raises:
        InputError: `shards` below 1.
        ShardsFailed: some shard jobs failed (each named, with its logs); the finished
            ones are kept, so the same command resumes.
        BrainAgeError: no scan could be predicted.
    """
    if isinstance(shards, bool) or int(shards) < 1:
        raise InputError(f"--shards {shards}: expected 1 or more. Fix: give e.g. --shards 8.")
    folder = shard_folder(output)
    _start(folder, _manifest(predictor, inputs, cohort, dicom_series, shards))
    todo = [PredictShard(str(predictor.run_dir), tuple(str(p) for p in inputs),
                         str(cohort) if cohort else None, dicom_series, predictor.device,
                         int(predictor.batch_size), bool(predictor.allow_library_drift),
                         jobs, threads, k, shards, str(shard_file(folder, k, shards)))
            for k in range(1, shards + 1) if not shard_file(folder, k, shards).is_file()]
    if todo:
        ex = make_executor(executor, folder / "logs", profile, name="brainage-predict")
        outcomes = run_array(ex, run_shard, todo, [j.shard for j in todo])
        if any(o.error for o in outcomes):
            raise ShardsFailed(failed_shards_message(
                "predict", outcomes, shards, "the same command"))
    return merge(folder, shards, predictor)


def merge(folder: Path, shards: int, predictor: Any = None) -> pd.DataFrame:
    """The shard tables of `folder`, one under the other in shard order (= input order).

    Raises:
        BrainAgeError: a shard table is missing, or no scan could be predicted.
    """
    from brainage.inference.many import concat, fill_age_sources

    frames, seen = [], set()
    for k in range(1, shards + 1):
        file = shard_file(folder, k, shards)
        if not file.is_file():
            raise BrainAgeError(f"{file} is missing: shard {k}/{shards} has not finished. "
                                "Fix: rerun the same command (finished shards are skipped).")
        try:
            payload = json.loads(file.read_text())
            if payload.get("format") != SHARD_FORMAT:
                raise ValueError(f"format {payload.get('format')!r}")
            frames.append(table_from_json(payload["table"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{file}: not a readable shard table ({exc}). Fix: delete it "
                             "and rerun the same command (that shard is predicted again).") \
                from exc
        if predictor is not None:
            predictor.notes += [n for n in payload["notes"] if n not in predictor.notes]
        for category, message in payload["warnings"]:
            if (category, message) not in seen:
                seen.add((category, message))
                warnings.warn(message, _category(category), stacklevel=3)
    table = fill_age_sources(concat([f for f in frames if not f.empty])
                             .reset_index(drop=True))
    if table.empty or ("error" in table and table["error"].notna().all()):
        listing = "; ".join(f"{r['participant_id']}: {r['error']}" for _, r in table.iterrows())
        clean(folder)
        raise BrainAgeError(f"no input scan could be predicted: {listing or 'no scans'}")
    return table


def clean(folder: Path) -> None:
    """Remove the shard folder (after the merged table is written)."""
    import shutil

    shutil.rmtree(folder, ignore_errors=True)

