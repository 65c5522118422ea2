"""BIDS reader: ``sub-<label>/[ses-<label>/]anat/*_T1w.nii[.gz]`` plus participants.tsv.

One row per T1w image (several runs give several rows). Age, sex and any other columns
come from ``participants.tsv``; ``sub-<label>/sub-<label>_sessions.tsv`` overrides them
per session (age at each visit of a longitudinal study). Subjects with images but no
row in ``participants.tsv`` are listed with unknown age (and named in a warning); rows of
``participants.tsv`` without an image are problems that ``cohort check`` reports and
that commands which carry on warn about (:attr:`RawCohort.unscanned`); subject folders
with neither are named in a warning. Nobody is dropped silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from brainage.data.cohort import bids_label
from brainage.data.table_values import parse_labels
from brainage.data.tables import (
    RawCohort,
    empty_table,
    read_user_table,
    standardise_columns,
    unknown_labels,
)
from brainage.data.validate import ENTITY_COLUMNS, ROW, WHERE
from brainage.errors import Problem

_SCAN_COLUMNS = ("session", "run", "path", *ENTITY_COLUMNS)
_MAX_LISTED = 5


def parse_entities(name: str) -> dict[str, str]:
    """``sub-01_ses-2_run-1_T1w.nii.gz`` -> ``{"sub": "01", "ses": "2", "run": "1"}``."""
    stem = name.removesuffix(".gz").removesuffix(".nii")
    entities = {}
    for token in stem.split("_")[:-1]:
        key, sep, value = token.partition("-")
        if sep:
            entities[key] = value
    return entities


def _listing(items: list[str]) -> str:
    more = f", ... ({len(items)} in all)" if len(items) > _MAX_LISTED else ""
    return ", ".join(items[:_MAX_LISTED]) + more


def _t1w_files(anat: Path) -> list[Path]:
    return sorted(
        p for p in anat.glob("*_T1w.nii*")
        if p.name.endswith((".nii", ".nii.gz")) and not p.name.startswith(".")
    )


def _scan_row(path: Path, subject: str, session: str | None) -> tuple[dict, list[Problem]]:
    entities = parse_entities(path.name)
    row: dict[str, object] = {"participant_id": subject, "session": session,
                              "path": os.path.abspath(path)}
    problems = []
    expected_ses = None if session is None else bids_label(session, "ses-")
    same_ses = entities.get("ses", expected_ses) == expected_ses
    if entities.get("sub") != bids_label(subject) or not same_ses:
        problems.append(Problem(
            str(path), expected=f"a file name that starts with the folder's entities "
            f"({subject}{'' if session is None else '_' + session})",
            fix="rename the file (or move it) so its sub-/ses- entities match its folders",
        ))
    run = entities.get("run")
    if run is not None:
        if run.isdigit():
            row["run"] = int(run)
        else:
            problems.append(Problem(str(path), expected="run-<index> with a number",
                                    fix="rename the file, e.g. _run-1_", value=f"run-{run}"))
    row.update({key: entities[key] for key in ENTITY_COLUMNS if key in entities})
    return row, problems


def _outside(path: Path, root: Path | None) -> list[Problem]:
    """A Problem when `path` (once symlinks are followed) lies outside the dataset `root`."""
    if root is None:
        return []
    real, top = os.path.realpath(path), os.path.realpath(root)  # realpath: loops do not raise
    if real.startswith(top.rstrip(os.sep) + os.sep):
        return []
    return [Problem(str(path), expected="an image inside the dataset folder (a symlink may "
                    f"point only inside {root}, as git-annex's do)",
                    fix="copy the image into the dataset, or list the images in a table with a "
                        "'path' column (a table may point anywhere)", value=f"-> {real}")]


def find_scans(subjects: list[Path], root: Path | None = None
               ) -> tuple[pd.DataFrame, list[Problem]]:
    """One row per T1w image under the given subject folders.

    Args:
        subjects: The ``sub-*`` folders.
        root: The dataset; an image whose real path leaves it (a symlink, or a symlinked
            subject folder, pointing elsewhere) is a problem, not a row.
    """
    rows, problems = [], []
    for subject in subjects:
        anats = [(subject / "anat", None)] + [
            (ses / "anat", ses.name) for ses in sorted(subject.glob("ses-*")) if ses.is_dir()
        ]
        for anat, session in anats:
            for path in _t1w_files(anat):
                outside = _outside(path, root)
                problems += outside
                if outside:
                    continue
                row, found = _scan_row(path, subject.name, session)
                rows.append(row)
                problems += found
    table = pd.DataFrame(rows, columns=["participant_id", "session", "path"] if not rows else None)
    return table, problems


def read_participants(
    path: Path, labels: set[str] | None, sex_codes: str | None
) -> tuple[pd.DataFrame, list[Problem]]:
    """Parsed rows of participants.tsv (ids as ``sub-<label>``), selected by `labels`."""
    empty = pd.DataFrame({"participant_id": pd.Series(dtype="string")})
    df, problems = read_user_table(path)
    if df is None:
        return empty, problems
    df = standardise_columns(df, ("participant_id", "age", "sex", "site", "group"))
    if "participant_id" not in df.columns:
        return empty, [Problem(str(path), expected="a 'participant_id' column",
                               fix="name the subject column participant_id (BIDS)",
                               column="participant_id")]
    for idx in df.index[df["participant_id"].isna()]:
        problems.append(Problem(str(path), expected="a participant id (sub-<label>)",
                                fix="fill it in, or remove the row", row=int(idx) + 1,
                                column="participant_id"))
    df = df[df["participant_id"].notna()].copy()
    df["participant_id"] = ["sub-" + bids_label(str(i).strip()) for i in df["participant_id"]]
    if labels is not None:
        df = df[df["participant_id"].map(lambda i: bids_label(i) in labels).astype(bool)]
    for idx in df.index[df["participant_id"].duplicated()]:
        problems.append(Problem(str(path), expected="each participant listed once",
                                fix="merge or remove the repeated row", row=int(idx) + 1,
                                value=df.at[idx, "participant_id"], column="participant_id",
                                participant=df.at[idx, "participant_id"]))
    df = df[~df["participant_id"].duplicated()]
    df, found = parse_labels(df.drop(columns=[c for c in _SCAN_COLUMNS if c in df.columns]),
                             str(path), sex_codes)
    df[WHERE] = str(path)
    df[ROW] = [int(i) + 1 for i in df.index]
    return df, problems + found


def read_sessions(
    subject: Path, sex_codes: str | None
) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Parsed ``sub-<label>_sessions.tsv`` of one subject (None when absent)."""
    path = subject / f"{subject.name}_sessions.tsv"
    if not path.is_file():
        return None, []
    df, problems = read_user_table(path)
    if df is None or "session_id" not in df.columns:
        return None, problems or [Problem(str(path), expected="a 'session_id' column",
                                          fix="name the session column session_id (BIDS)",
                                          column="session_id")]
    for idx in df.index[df["session_id"].isna()]:
        problems.append(Problem(str(path), expected="a session id (ses-<label>)",
                                fix="fill it in, or remove the row", row=int(idx) + 1,
                                column="session_id", participant=subject.name))
    df = df[df["session_id"].notna()]
    df = df.assign(session=["ses-" + bids_label(str(s).strip(), "ses-") for s in df["session_id"]])
    for idx in df.index[df["session"].duplicated()]:
        problems.append(Problem(str(path), expected="each session listed once",
                                fix="remove the repeated row", row=int(idx) + 1,
                                value=df.at[idx, "session_id"], column="session_id",
                                participant=subject.name, session=df.at[idx, "session"]))
    df = df[~df["session"].duplicated()].drop(columns=["session_id"])
    df = df.drop(columns=[c for c in ("participant_id", "path", "run") if c in df.columns])
    df, found = parse_labels(standardise_columns(df, ("age", "sex", "site", "group")),
                             str(path), sex_codes, participant=subject.name)
    return df.assign(participant_id=subject.name), problems + found


def _apply_sessions(table: pd.DataFrame, sessions: list[pd.DataFrame]) -> pd.DataFrame:
    """Session values override participant values where they are given."""
    if not sessions or table.empty:
        return table
    sess = pd.concat(sessions, ignore_index=True)
    per_scan = table[["participant_id", "session"]].merge(
        sess, on=["participant_id", "session"], how="left")  # keeps table's row order
    for col in sess.columns.drop(["participant_id", "session"]):
        new = per_scan[col]
        table[col] = new if col not in table.columns else new.where(new.notna(), table[col])
    return table


def _subject_dirs(root: Path, labels: set[str] | None) -> list[Path]:
    subjects = sorted(p for p in root.glob("sub-*") if p.is_dir())
    return [p for p in subjects if labels is None or bids_label(p.name) in labels]


def _unlisted(scans: pd.DataFrame, part: pd.DataFrame, participants: Path) -> list[str]:
    """Warning: participants with a T1w image but no row in participants.tsv (kept)."""
    if not participants.is_file():
        return []
    unlisted = sorted(set(scans["participant_id"]) - set(part["participant_id"]))
    if not unlisted:
        return []
    return [f"{len(unlisted)} participant(s) with a T1w image but no row in "
            f"{participants.name} (kept, with unknown age, sex and site): {_listing(unlisted)}. "
            f"Fix: add their rows to {participants.name}"]


def _unscanned(subjects: list[Path], scans: pd.DataFrame, part: pd.DataFrame,
               participants: Path) -> tuple[list[Problem], list[str]]:
    """Participants of participants.tsv without a T1w image (one Problem each, at its row),
    and a warning naming subject folders without one that participants.tsv does not list."""
    imaged = set(scans["participant_id"])
    problems = [
        Problem(str(participants), expected="a T1w image for every listed participant "
                f"(sub-<label>/[ses-<label>/]anat/*_T1w.nii[.gz]; none under {pid}/)",
                fix="add the image, remove the row, or leave the participant out with "
                    "--participant-label", value=pid, row=None if pd.isna(row) else int(row),
                column="participant_id", participant=pid)
        for pid, row in zip(part["participant_id"], part.get(ROW, [pd.NA] * len(part)),
                            strict=True) if pid not in imaged]
    folders = sorted({p.name for p in subjects} - imaged - set(part["participant_id"]))
    warnings = [f"{len(folders)} subject folder(s) without a T1w image and not in "
                f"{participants.name} (left out): {_listing(folders)}"] if folders else []
    return problems, warnings


def _notes(scans: pd.DataFrame, with_sessions: set[str], participants: Path) -> list[str]:
    notes = []
    if not participants.is_file():
        notes.append(f"no {participants.name}: age, sex and site are unknown")
    counts = scans.dropna(subset=["session"]).groupby("participant_id")["session"].nunique()
    longitudinal = sorted(set(counts.index[counts > 1]) - with_sessions)
    if longitudinal:
        notes.append(f"{len(longitudinal)} participant(s) with several sessions but no "
                     f"sessions.tsv get the same age at every session: {_listing(longitudinal)}")
    return notes


def read_bids(root: str | Path, labels: set[str] | None = None,
              sex_codes: str | None = None) -> RawCohort:
    """Read a BIDS dataset: one row per T1w image, labels from participants/sessions.tsv.

    Args:
        root: The dataset folder (holds ``sub-*`` folders).
        labels: Participant labels to keep, without ``sub-`` (None keeps all).
        sex_codes: Declared numeric sex convention, if sex is coded as numbers.
    """
    root = Path(root)
    participants = root / "participants.tsv"
    subjects = _subject_dirs(root, labels)
    scans, problems = find_scans(subjects, root)
    part = pd.DataFrame({"participant_id": pd.Series(dtype="string")})
    if participants.is_file():
        part, found = read_participants(participants, labels, sex_codes)
        problems += found
    # a label is known when a subject folder or a participants.tsv row has it
    problems += unknown_labels([*(p.name for p in root.glob("sub-*") if p.is_dir()),
                                *part["participant_id"]], labels, str(root))
    sessions = []
    for subject in subjects:
        sess, found = read_sessions(subject, sex_codes)
        problems += found
        if sess is not None:
            sessions.append(sess)
    notes = _notes(scans, {s["participant_id"].iloc[0] for s in sessions if len(s)},
                   participants)
    unscanned, warnings = _unscanned(subjects, scans, part, participants)
    warnings += _unlisted(scans, part, participants)
    if scans.empty:  # nothing to merge (and pandas cannot merge an empty float key)
        return RawCohort(empty_table(), problems, notes, warnings=warnings, unscanned=unscanned)
    table = scans.merge(part, on="participant_id", how="left")
    table = _apply_sessions(table, sessions)
    table[WHERE] = table[WHERE].fillna(str(participants)) if WHERE in table else str(participants)
    if ROW not in table.columns:
        table[ROW] = pd.NA
    return RawCohort(table, problems, notes, warnings=warnings, unscanned=unscanned)
