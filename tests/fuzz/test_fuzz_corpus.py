"""The committed corpus of hostile files (tests/fuzz_corpus, written by its make_corpus.py).

Every case goes through its reader: it is read when ``expected.json`` says ``null``,
else refused with a named error (file named, a fix given) matching the expected pattern;
never a raw traceback, always within bounded memory.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from fuzz_helpers import read_or_refuse

from brainage.data.sources import read_cohort
from brainage.errors import BrainAgeError
from brainage.preprocessing.steps import conform, load_image
from brainage.runs import read_run_info
from brainage.training.config import load_train_config

CORPUS = Path(__file__).resolve().parents[1] / "fuzz_corpus"
EXPECTED: dict[str, str | None] = json.loads((CORPUS / "expected.json").read_text())


def _nifti(path: Path, tmp: Path) -> tuple[object, str]:
    return conform(load_image(path), str(path)), path.name


def _table(path: Path, tmp: Path) -> tuple[object, str]:
    root = tmp / "bids"
    for label in ("01", "02"):
        (root / f"sub-{label}" / "anat").mkdir(parents=True)
        volume = (np.arange(720) % 251).astype(np.uint8).reshape(9, 10, 8)
        nib.save(nib.Nifti1Image(volume, np.eye(4)), root / f"sub-{label}/anat/sub-{label}_T1w.nii")
    shutil.copyfile(path, root / "participants.tsv")
    return read_cohort(root, require_scans=True), "participants.tsv"


def _yaml(path: Path, tmp: Path) -> tuple[object, str]:
    local = tmp / path.name  # a copy: inherits: resolves next to it
    shutil.copyfile(path, local)
    return load_train_config(local), path.name


def _run_json(path: Path, tmp: Path) -> tuple[object, str]:
    run = tmp / "run"
    run.mkdir()
    shutil.copyfile(path, run / "run.json")
    return read_run_info(run), "run.json"


def _dicom(path: Path, tmp: Path) -> tuple[object, str]:
    return conform(load_image(path), str(path)), path.name


READERS = {"nifti": _nifti, "tables": _table, "yaml": _yaml, "runjson": _run_json,
           "dicom": _dicom}


def test_the_corpus_is_what_its_script_writes_and_small():
    on_disk = {f"{p.parent.name}/{p.name}" for group in READERS for p in (CORPUS / group).iterdir()}
    assert on_disk == set(EXPECTED)
    size = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    assert size < 300_000


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_a_corpus_file_is_read_or_refused_as_expected(case, tmp_path, monkeypatch):
    group = case.split("/")[0]
    path = CORPUS / case
    names: list[str] = []

    def read() -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out, name = READERS[group](path, tmp_path)
        names.append(name)
        return out

    temp = tmp_path / "temp"  # this test's own temporary folder (others run beside it)
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    before = set(CORPUS.rglob("*"))
    out = read_or_refuse(read)
    # nothing half-written: reading leaves no file behind, next to the input or in the
    # temporary folder (a DICOM conversion's)
    assert set(CORPUS.rglob("*")) == before and not any(temp.iterdir())
    want = EXPECTED[case]
    if want is None:
        assert not isinstance(out, BrainAgeError), f"{case} was refused: {out}"
        return
    assert isinstance(out, BrainAgeError), f"{case} was read, expected an error ~ {want!r}"
    assert re.search(want, str(out)), f"{case}: {out}"
    named = {"tables": "participants.tsv", "runjson": "run.json"}.get(group, path.name)
    assert named in str(out), f"{case}: the error does not name {named}: {out}"
