"""BIDS-App participant level: prepare -> predict -> explain, one subject at a time.

Safe to run as many processes into one output folder at once (cluster array jobs, with
the same or overlapping labels): a subject is locked while it is worked on
(:mod:`brainage.locks`; a second process skips it and names the holder), built in a
private temporary folder and renamed into place whole, so no file another process may
read is ever rewritten. The only shared file, ``dataset_description.json``, is created
once. Finished subjects are skipped, so rerunning resumes.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from brainage.bidsapp import outputs
from brainage.errors import BrainAgeError
from brainage.locks import holder, try_lock


@dataclass
class ParticipantSummary:
    """What a participant-level run did, subject by subject."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    busy: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def format(self) -> str:
        """A short report for the terminal."""
        lines = [f"participant level: {len(self.done)} subject(s) processed, "
                 f"{len(self.skipped)} already finished, {len(self.busy)} left to another "
                 f"process, {len(self.failed)} failed"]
        lines += [f"  done    {s}" for s in self.done]
        lines += [f"  busy    {s}: being processed by {who}" for s, who in self.busy]
        lines += [f"  failed  {s}: {err}" for s, err in self.failed]
        lines += [f"  warning: {w}" for w in self.warnings]
        lines += [f"  note: {n}" for n in dict.fromkeys(self.notes)]
        return "\n".join(lines)


@dataclass
class Options:
    """How each subject is processed (the participant-level options).

    ``jobs``: subjects processed in parallel, in worker processes (None: every core; the
    model is loaded once, and sent once to each worker). ``progress``: as for
    :func:`brainage.prepare` (False: quiet; True: a bar or log lines on stderr, and a
    summary line; a callable ``fn(done, total)``). ``threads``: torch threads per worker.
    """

    explain: bool = True
    method: str = "auto"
    steps: int = 32
    device: str | None = None
    batch_size: int = 8
    threads: int | None = None
    jobs: int | None = 1
    progress: Any = False


def run_participants(bids_dir: Path, out: Path, run: Path, cohort: Any,
                     options: Options | None = None) -> ParticipantSummary:
    """Process every subject of `cohort` (already selected) into `out`.

    Args:
        bids_dir: The BIDS dataset (recorded in ``dataset_description.json``).
        out: The output folder (shared with other processes).
        run: The model's run folder.
        cohort: The validated :class:`~brainage.data.cohort.Cohort` to process.
        options: Explanation, device and parallelism options.

    Raises:
        BrainAgeError: the model cannot be loaded, or `out` holds another model's outputs.
    """
    from brainage.inference.predictor import Predictor
    from brainage.parallel import identity, resolve_jobs, resolve_threads, run_tasks
    from brainage.progress import Progress

    opts = options or Options()
    summary = ParticipantSummary()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictor = Predictor.from_run(run, device=opts.device, batch_size=opts.batch_size)
        outputs.ensure_description(out, bids_dir, run, predictor.spec.hash)
        explainer = _explainer(run, opts)
    ids = cohort.table["participant_id"]
    tasks = [(str(pid), cohort.select(ids == pid)) for pid in sorted(ids.unique())]
    jobs = resolve_jobs(opts.jobs, len(tasks))
    threads = resolve_threads(opts.threads, jobs) if jobs > 1 or opts.threads else None
    bar = Progress(len(tasks), "participant", opts.progress)
    opts = replace(opts, threads=threads, progress=False)  # what workers get (pickled)
    for _, (status, name, detail, found) in run_tasks(
            _subject_task, tasks, jobs=jobs, setup=identity,
            setup_args=((out, predictor, explainer, opts),), threads=threads,
            on_crash=_crashed):
        caught += found
        getattr(summary, status).append(name if status in ("done", "skipped")
                                        else (name, detail))
        bar.update({"done": "done", "failed": "failed"}.get(status, "skipped"))
    bar.close()
    _sort_warnings(caught, summary)
    return summary


def _sort_warnings(caught: list[Any], summary: ParticipantSummary) -> None:
    """The predictor's notes are listed in the summary, other warnings go on."""
    from brainage.inference.outputs import NoteWarning

    for w in caught:
        if issubclass(w.category, NoteWarning):
            summary.notes.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _explainer(run: Path, opts: Options) -> Any:
    """The run loaded once for explanations (None when explanations are off)."""
    if not opts.explain:
        return None
    from brainage.inference.explain import check_method, load_run

    check_method(opts.method)  # refused once, not subject by subject
    return load_run(run, opts.device)


def _subject_task(state: tuple[Path, Any, Any, Options], task: tuple[str, Any]
                  ) -> tuple[str, str, str, list[Any]]:
    """One subject in a worker (or this process): (status, name, detail, its warnings)."""
    out, predictor, explainer, opts = state
    pid, cohort = task
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, name, detail = _one(out, pid, cohort, predictor, explainer, opts)
    return status, name, detail, [_Caught(w) for w in caught]


class _Caught:
    """A caught warning that pickles (its message as text)."""

    def __init__(self, w: Any) -> None:
        self.message, self.category = str(w.message), w.category
        self.filename, self.lineno = w.filename, w.lineno


def _crashed(task: tuple[str, Any], exc: BaseException) -> tuple[str, str, str, list[Any]]:
    return ("failed", outputs.subject_name(task[0]),
            f"worker process failed ({type(exc).__name__}: {exc}); rerun to retry", [])


def _one(out: Path, pid: str, cohort: Any, predictor: Any, explainer: Any, opts: Options
         ) -> tuple[str, str, str]:
    """One subject: skip it if finished or locked, else build it and rename it into place.

    Returns:
        (``done``/``skipped``/``busy``/``failed``, ``sub-<label>``, the holder or error).
    """
    name = outputs.subject_name(pid)
    if outputs.is_done(out, pid):
        return "skipped", name, ""
    lock_path = out / f".{name}.lock"
    lock = try_lock(lock_path)
    if lock is None:
        return "busy", name, holder(lock_path)
    with lock:
        if outputs.is_done(out, pid):  # finished by another process meanwhile
            return "skipped", name, ""
        outputs.remove_stale(out, name)
        work = out / f".{name}.tmp-{os.getpid()}"
        try:
            _build(work, name, cohort, predictor, explainer, opts)
            os.rename(work / name, out / name)
            return "done", name, ""
        except BrainAgeError as exc:
            return "failed", name, str(exc)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _build(work: Path, name: str, cohort: Any, predictor: Any, explainer: Any,
           opts: Options) -> None:
    """Write the subject's complete folder at ``work/<name>``."""
    import brainage
    from brainage.evaluation.predictions import write_predictions

    prepared = work / "prepared"
    result = brainage.prepare(cohort, prepared, predictor.spec, progress=False,
                              threads=opts.threads)
    if result.failed:
        raise BrainAgeError("preprocessing failed: " + "; ".join(
            f"{scan}: {err}" for scan, err in result.failed))
    table = predictor.predict(prepared)
    final = work / name
    _move_tree(prepared / name, final)
    if explainer is not None:
        _explain(explainer, prepared, work, opts)
    path = final / f"{name}_predictions.tsv"
    write_predictions(path, table)
    outputs.write_sidecar(path, pd.read_csv(path, sep="\t", nrows=0))


def _explain(explainer: Any, prepared: Path, work: Path, opts: Options) -> None:
    """Explanation maps and region tables of every prepared scan, into ``work/sub-<label>``
    (tissue maps and affine determinants passed along for classical models)."""
    from brainage.inference.explain import explain_scan
    from brainage.preprocessing.prepared import open_prepared

    table = open_prepared(prepared).table
    for _, row in table.iterrows():
        sex, tissues, det = row.get("sex"), row.get("tissue_path"), row.get("affine_det")
        result = explain_scan(
            explainer, row["array_path"], work, opts.method, steps=opts.steps,
            sex=None if sex is None or pd.isna(sex) else str(sex),
            tissues=None if tissues is None or pd.isna(tissues) else tissues,
            affine_det=None if det is None or pd.isna(det) else float(det))
        _cite_preproc(result.files, row, explainer.spec)


def _cite_preproc(files: dict[str, Path], row: pd.Series, spec: Any) -> None:
    """Point the saliency sidecars' ``Sources`` at the subject's preprocessed T1w (a BIDS
    URI into the output folder), not at the temporary cache array they were computed from."""
    from brainage.io import write_json
    from brainage.preprocessing.cache import key_of
    from brainage.preprocessing.derivatives import scan_paths

    preproc = scan_paths(".", key_of(row), spec)["preproc"].as_posix()
    for role in ("template_json", "native_json"):
        path = files.get(role)
        if path is not None and path.is_file():
            write_json(path, {**json.loads(path.read_text()), "Sources": [f"bids::{preproc}"]})


def _move_tree(src: Path, dst: Path) -> None:
    """Move every file under `src` to the same place under `dst` (merging folders)."""
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
