"""Write the hostile-file corpus of tests/fuzz/test_fuzz_corpus.py (issue 24, item 3).

Truncated and mutated NIfTI files, cohort tables, config YAML, run.json files and DICOM
series, each small (the whole corpus is well under 100 KB), plus ``expected.json``: for
every case, ``null`` when the reader must read it, else a regular expression its named
error must match. The corpus is committed; rerun this script (deterministic: no clock,
no randomness) only to change it, and review the diff::

    .venv/bin/python tests/fuzz_corpus/make_corpus.py
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np

HERE = Path(__file__).resolve().parent
SHAPE = (9, 10, 8)
_HDR = nib.Nifti1Header.template_dtype


def _nifti_bytes(edit: Callable[[np.ndarray], None] | None = None) -> bytes:
    data = (np.arange(np.prod(SHAPE)) % 251).astype(np.uint8).reshape(SHAPE)
    blob = nib.Nifti1Image(data, np.diag([1.0, 1.2, 1.5, 1.0])).to_bytes()
    if edit is None:
        return blob
    header = np.frombuffer(blob[:348], dtype=_HDR).copy()
    edit(header)
    return header.tobytes() + blob[348:]


def _set(**fields: object) -> Callable[[np.ndarray], None]:
    def edit(header: np.ndarray) -> None:
        for name, value in fields.items():
            header[name] = value
    return edit


def _huge_dims(header: np.ndarray) -> None:
    header["dim"][0, 1:4] = (512, 512, 512)
    header["datatype"], header["bitpix"] = 16, 32


def _four_volumes(header: np.ndarray) -> None:
    header["dim"][0, 0], header["dim"][0, 4] = 4, 4


def _gz(blob: bytes) -> bytes:
    return gzip.compress(blob, mtime=0)


def nifti_cases() -> dict[str, tuple[bytes, str | None]]:
    base = _nifti_bytes()
    cut = "data cut short|could not be read as NIfTI"
    return {
        "ok.nii": (base, None),
        "ok.nii.gz": (_gz(base), None),
        "empty.nii": (b"", "could not be read as NIfTI"),
        "empty.nii.gz": (b"", "could not be read as NIfTI"),
        "cut-in-header.nii": (base[:100], "could not be read as NIfTI"),
        "cut-after-header.nii": (base[:352], cut),
        "cut-in-data.nii": (base[:700], cut),
        "cut-in-data.nii.gz": (_gz(base)[:300], cut + "|damaged gzip"),
        "not-gzip.nii.gz": (base, "could not be read as NIfTI"),
        "gzip-garbage-tail.nii.gz": (_gz(base)[:-8] + b"\xff" * 8, cut + "|damaged gzip"),
        "wrong-sizeof-hdr.nii": (_nifti_bytes(_set(sizeof_hdr=347)), "could not be read"),
        "no-magic.nii": (_nifti_bytes(_set(magic=b"xyz")), "no NIfTI magic"),
        "huge-dims.nii": (_nifti_bytes(_huge_dims), "cut short"),
        "huge-dims.nii.gz": (_gz(_nifti_bytes(_huge_dims)), "cannot hold"),
        "negative-dim.nii": (_nifti_bytes(lambda h: h["dim"].__setitem__((0, 2), -10)),
                             "too small|3D image|could not be read"),
        "dim0-zero.nii": (_nifti_bytes(lambda h: h["dim"].__setitem__((0, 0), 0)),
                          "3D image|could not be read"),
        "dim0-nine.nii": (_nifti_bytes(lambda h: h["dim"].__setitem__((0, 0), 9)),
                          "7D with .* volumes|could not be read"),
        "four-volumes.nii": (_nifti_bytes(_four_volumes), "single volume"),
        "dims-past-dim0.nii": (_nifti_bytes(lambda h: h["dim"].__setitem__((0, 4), 4)), None),
        "bad-datatype.nii": (_nifti_bytes(_set(datatype=1234)), "could not be read"),
        "nan-pixdim.nii": (_nifti_bytes(lambda h: h["pixdim"].__setitem__((0, 2), np.nan)),
                           "voxel sizes"),
        "zero-pixdim.nii": (_nifti_bytes(lambda h: h["pixdim"].__setitem__((0, 1), 0.0)),
                            "voxel sizes"),
        "huge-vox-offset.nii": (_nifti_bytes(_set(vox_offset=1e9)), cut),
        "nan-vox-offset.nii": (_nifti_bytes(_set(vox_offset=np.nan)), "could not be read"),
        "zero-sform-row.nii": (_nifti_bytes(_set(sform_code=1, qform_code=0, srow_y=0.0)),
                               "unusable affine"),
        "nan-sform.nii": (_nifti_bytes(_set(sform_code=1, qform_code=0, srow_x=np.nan)),
                          "unusable affine"),
        "bad-sform-code.nii": (_nifti_bytes(_set(sform_code=7, srow_x=0.0)), None),
        "nan-slope.nii": (_nifti_bytes(_set(scl_slope=np.nan)), None),
    }


def table_cases() -> dict[str, tuple[bytes, str | None]]:
    ok = b"participant_id\tage\tsex\nsub-01\t30\tF\nsub-02\t41.5\tM\n"
    return {
        "ok.tsv": (ok, None),
        "crlf.tsv": (ok.replace(b"\n", b"\r\n"), None),
        "bom.tsv": (b"\xef\xbb\xbf" + ok, None),
        "empty.tsv": (b"", "empty"),
        "header-only.tsv": (b"participant_id\tage\n", None),  # images kept, with a warning
        "utf16.tsv": (ok.decode().encode("utf-16"), "UTF-8|participant_id"),
        "latin1.tsv": (b"participant_id\tage\tsite\nsub-01\t30\tZ\xfcrich\n", "UTF-8"),
        "nul.tsv": (b"participant_id\tage\nsub-01\t3\x000\n", "between 0 and 120"),
        "extra-fields.tsv": (b"participant_id\tage\nsub-01\t30\tF\tx\n", "4 fields"),
        "one-extra-field.tsv": (b"participant_id\tage\nsub-01\t30\tF\nsub-02\t3\tM\n",
                                "3 fields"),
        "unbalanced-quote.tsv": (b'participant_id\tage\n"sub-01\t30\nsub-02\t40\n',
                                 "problem"),
        "repeated-column.tsv": (b"participant_id\tage\tage\nsub-01\t30\t31\n", "named once"),
        "no-id-column.tsv": (b"subject_age\nsub-01\n", "participant_id"),
        "ages-out-of-range.tsv": (b"participant_id\tage\nsub-01\t1e400\nsub-02\t-3\n",
                                  "between 0 and 120"),
        "path-like-id.tsv": (b"participant_id\tage\nsub-../../x\t30\nsub-01\t30\nsub-02\t30\n",
                             "T1w image for every listed participant"),
        "long-line.tsv": (b"participant_id\tage\nsub-01\t" + b"9" * 2000 + b"\n",
                          "between 0 and 120"),
    }


def yaml_cases() -> dict[str, tuple[bytes, str | None]]:
    bomb = ["    a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    bomb += [f"    a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    return {
        "ok.yaml": (b"epochs: 2\noptim:\n  lr: 0.001\n", None),
        "empty.yaml": (b"", None),
        "billion-laughs.yaml": (("model:\n  kwargs:\n" + "\n".join(bomb) + "\nepochs: *a8\n")
                                .encode(), "more than 100,000 values"),
        "deep.yaml": (b"epochs: " + b"[" * 600 + b"]" * 600, "nested too deeply"),
        "python-tag.yaml": (b"epochs: !!python/object/apply:os.system [echo hi]\n",
                            "not valid YAML"),
        "undefined-alias.yaml": (b"epochs: *nowhere\n", "not valid YAML"),
        "latin1.yaml": (b"epochs: 2\nname: Z\xfcrich\n", "not UTF-8"),
        "utf16.yaml": ("epochs: 2\n".encode("utf-16"), "not UTF-8|not valid YAML"),
        "int-keys.yaml": (b"1: 2\n~: 3\n", r"unknown option\(s\) \[1, None\]"),
        "list-top.yaml": (b"- epochs\n- 2\n", "mapping"),
        "tab-indent.yaml": (b"optim:\n\tlr: 1\n", "not valid YAML"),
        "cut.yaml": (b"optim:\n  lr: [0.1, 0.2\n", "not valid YAML"),
        "wrong-type.yaml": (b"epochs: [1, 2]\n", r"epochs: got \[1, 2\]"),
        "inherits-self.yaml": (b"inherits: inherits-self.yaml\n", "loop"),
    }


def run_json_cases() -> dict[str, tuple[bytes, str | None]]:
    ok = {"format": "brainage-run", "version": 1, "kind": "models", "members": ["."],
          "training_range": [20.0, 80.0], "spec_hash": "abc", "input_shape": [9, 10, 8]}

    def doc(**edit: object) -> bytes:
        return json.dumps({**ok, **edit}).encode()

    return {
        "ok.json": (doc(), None),
        "empty.json": (b"", "not valid JSON"),
        "cut.json": (doc()[:40], "not valid JSON"),
        "latin1.json": (doc(spec_hash="x").replace(b'"x"', b'"\xfc"'), "not valid JSON"),
        "list.json": (b"[1, 2]", "not a brainage run.*Fix:"),
        "deep.json": (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        "version-text.json": (doc(version="abc"), "expected a whole number"),
        "newer.json": (doc(version=99), "newer brainage"),
        "member-outside.json": (doc(members=["../elsewhere"]), "points outside"),
        "member-absolute.json": (doc(members=["/etc"]), "points outside"),
        "member-nul.json": (doc(members=["a\x00b"]), "not a usable folder name"),
        "nan-range.json": (doc(training_range=[float("nan"), 80]), "training_range"),
        "range-reversed.json": (doc(training_range=[80, 20]), "training_range"),
        "range-text.json": (doc(training_range="20-80"), "wrong type|training_range"),
        "no-kind.json": (json.dumps({k: v for k, v in ok.items() if k != "kind"}).encode(),
                         "missing"),
        "bad-kind.json": (doc(kind="rm -rf"), "expected a kind"),
        "zero-shape.json": (doc(input_shape=[0, 10, 8]), "positive shape"),
    }


def _dicom_series(folder: Path) -> None:
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    folder.mkdir(parents=True)
    uid = "1.2.826.0.1.3680043.8.498"
    volume = (100 + np.arange(9 * 10 * 8) % 97).astype(np.uint16).reshape(9, 10, 8)
    for k in range(volume.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
        meta.MediaStorageSOPInstanceUID = f"{uid}.2.{k + 1}"
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"IM{k:04d}"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, f"{uid}.2.{k + 1}"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = f"{uid}.1", f"{uid}.3"
        ds.Modality, ds.PatientID, ds.PatientAge, ds.PatientSex = "MR", "P1", "039Y", "F"
        ds.SeriesNumber, ds.InstanceNumber = 3, k + 1
        ds.SeriesDescription = ds.ProtocolName = "T1 MPRAGE"
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0.0, 0.0, 1.5 * k]
        ds.PixelSpacing, ds.SliceThickness = [1.2, 1.0], 1.5
        ds.Rows, ds.Columns, ds.SamplesPerPixel = 10, 9, 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = np.ascontiguousarray(volume[:, :, k].T).tobytes()
        pydicom.dcmwrite(folder / f"IM{k:04d}", ds, enforce_file_format=True)


def _bad_vr(blob: bytes) -> bytes:
    at = blob.index(b"\x10\x00\x20\x00LO")  # (0010,0020) PatientID, explicit VR
    return blob[: at + 4] + b"L\x16" + blob[at + 6:]


def _series_number_text(blob: bytes) -> bytes:
    at = blob.index(b"\x20\x00\x11\x00IS")  # (0020,0011) SeriesNumber "3 " -> "x "
    return blob[: at + 8] + b"x " + blob[at + 10:]


def dicom_cases(tmp: Path) -> dict[str, tuple[dict[str, bytes], str | None]]:
    _dicom_series(tmp / "base")
    files = {p.name: p.read_bytes() for p in sorted((tmp / "base").iterdir())}
    return {
        "ok": (files, None),
        "all-cut": ({n: b[:200] for n, b in files.items()}, "no readable DICOM|dcm2niix"),
        "no-dicm": ({n: b[:128] + b"XXXX" + b[132:] for n, b in files.items()},
                    "no DICOM file|not found"),
        "bad-vr": ({n: _bad_vr(b) for n, b in files.items()}, "images|too small|dcm2niix"),
        "series-number-text": ({n: _series_number_text(b) for n, b in files.items()}, None),
        "one-file-garbled": ({**files, "IM0001": files["IM0001"][:150] + b"\xff" * 200},
                             "images|too small|dcm2niix"),
    }


def main() -> None:
    expected: dict[str, str | None] = {}
    groups = {"nifti": nifti_cases(), "tables": table_cases(), "yaml": yaml_cases(),
              "runjson": run_json_cases()}
    for group, cases in groups.items():
        folder = HERE / group
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        for name, (blob, want) in cases.items():
            (folder / name).write_bytes(blob)
            expected[f"{group}/{name}"] = want
    tmp = HERE / ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(HERE / "dicom", ignore_errors=True)
    for name, (files, want) in dicom_cases(tmp).items():
        for fname, blob in files.items():
            (HERE / "dicom" / name).mkdir(parents=True, exist_ok=True)
            (HERE / "dicom" / name / fname).write_bytes(blob)
        expected[f"dicom/{name}"] = want
    shutil.rmtree(tmp)
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    size = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(f"{len(expected)} cases, {size:,} bytes")


if __name__ == "__main__":
    main()
