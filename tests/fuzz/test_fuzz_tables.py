"""Generated hostile cohort tables: participants.tsv, sessions.tsv and plain tables.

The cells are drawn from what breaks table readers (column names in data rows, missing
markers, NUL, BOM, quotes, path-like ids, numbers out of range), the rows have any number
of fields and any line ending, and the bytes may start with something that is not UTF-8.
Reading the cohort either works or raises a named error with a fix.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from fuzz_helpers import FUZZ, read_or_refuse
from hypothesis import given
from hypothesis import strategies as st

from brainage.data.sources import read_cohort
from brainage.errors import ValidationError

CELLS = ["participant_id", "age", "sex", "site", "path", "session", "session_id", "run",
         "gender", "id", "subject", "array_index", "dicom_series", "sub-01", "sub-02", "01",
         "../x", "/etc/passwd", "a\\b", "n/a", "NaN", "1e400", "-3", "30", "1.5", "inf", "F",
         "M", "0", "1", "", " ", "\x00", "\ufeff", "é", '"', "'", 'a"b', "sub-", "..", "ses-1",
         "\r", "sub-01/anat/sub-01_T1w.nii"]
_VOLUME = (np.arange(9 * 10 * 8) % 251).astype(np.uint8).reshape(9, 10, 8)


def _dataset(root: Path) -> None:
    for label in ("01", "02"):
        anat = root / f"sub-{label}" / "anat"
        anat.mkdir(parents=True)
        nib.save(nib.Nifti1Image(_VOLUME, np.eye(4)), anat / f"sub-{label}_T1w.nii")


@st.composite
def hostile_table(draw: st.DrawFn) -> bytes:
    cell = st.sampled_from(CELLS) | st.text(max_size=8)
    rows = draw(st.lists(st.lists(cell, max_size=6), max_size=5))
    seps = draw(st.lists(st.sampled_from(["\t", "\t", ",", ";", " ", "\t\t"]), min_size=1,
                         max_size=3))
    lines = [seps[i % len(seps)].join(row) for i, row in enumerate(rows)]
    text = draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines)
    blob = text.encode("utf-8", "surrogatepass")
    return draw(st.sampled_from([b"", b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\x80"])) + blob


def _read(source: Path, labels: list[str] | None) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CohortWarning, pandas' ParserWarning
        return read_cohort(source, participant_labels=labels)


@FUZZ
@given(blob=hostile_table(), where=st.sampled_from(["participants", "sessions", "table"]),
       labels=st.sampled_from([None, ["01"], ["../x"], ["sub-"]]))
def test_a_hostile_table_is_read_or_refused_by_name(blob, where, labels):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bids"
        _dataset(root)
        if where == "participants":
            (root / "participants.tsv").write_bytes(blob)
            source = root
        elif where == "sessions":
            (root / "sub-01" / "sub-01_sessions.tsv").write_bytes(blob)
            source = root
        else:
            source = Path(tmp) / "cohort.tsv"
            source.write_bytes(blob)
        read_or_refuse(lambda: _read(source, labels), names=source.name)


@pytest.mark.parametrize("name", ["participants.tsv", "sub-01/sub-01_sessions.tsv", "t.tsv"])
def test_a_row_with_more_fields_than_the_header_is_refused_at_its_row(tmp_path, name):
    """Found by the fuzz test: pandas took the extra leading field(s) as the index, which
    shifted every value one column left (ids became ages) or raised a raw TypeError."""
    root = tmp_path / "bids"
    _dataset(root)
    header = "session_id\tage" if "sessions" in name else "participant_id\tage"
    first = "ses-1\t30" if "sessions" in name else "sub-01\t30"
    if name == "t.tsv":
        header, first = "path\tage", "bids/sub-01/anat/sub-01_T1w.nii\t30"
    table = tmp_path / name if name == "t.tsv" else root / name
    table.write_text(f"{header}\n{first}\textra\tfields\n")
    with pytest.raises(ValidationError, match=r"row 1: got '4 fields'; expected 2 tab-separated"):
        _read(tmp_path / name if name == "t.tsv" else root, None)
