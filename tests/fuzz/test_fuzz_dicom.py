"""Generated hostile DICOM folders: files cut short, bytes flipped, header values replaced.

A DICOM folder goes the way a scan given as a folder goes: its series are listed, the
T1w one picked, age and sex read from its header, then dcm2niix converts it and the
image is conformed. Each step works or refuses with a named error and a fix.
"""

from __future__ import annotations

import os
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from fuzz_helpers import FUZZ, read_or_refuse
from hypothesis import given
from hypothesis import strategies as st

from brainage.data import dicom
from brainage.errors import BrainAgeError
from brainage.preprocessing.steps import conform, load_image

TAGS = ["SeriesNumber", "SeriesInstanceUID", "PatientAge", "PatientBirthDate", "StudyDate",
        "PatientSex", "SeriesDescription", "ProtocolName", "PatientID", "Rows", "Columns",
        "BitsAllocated", "PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient"]
_UID = "1.2.826.0.1.3680043.8.498"
VALUES = ["", "abc", "-1", "1.5", "99999999999999999999", "\x00", "039Y", "1e5", "1\\2",
          "20241399", "0", " ", "é"]


def _write_series(folder: Path) -> list[Path]:
    """Eight 9x10 slices of one T1w series (Explicit VR Little Endian)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    folder.mkdir(parents=True)
    volume = (100 + np.arange(9 * 10 * 8) % 97).astype(np.uint16).reshape(9, 10, 8)
    for k in range(volume.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
        meta.MediaStorageSOPInstanceUID = f"{_UID}.2.{k + 1}"
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"IM{k:04d}"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = f"{_UID}.1", f"{_UID}.3"
        ds.FrameOfReferenceUID = f"{_UID}.4"
        ds.Modality, ds.PatientID, ds.PatientAge, ds.PatientSex = "MR", "P1", "039Y", "F"
        ds.StudyDate = ds.SeriesDate = "20240102"
        ds.SeriesNumber, ds.InstanceNumber = 3, k + 1
        ds.SeriesDescription = ds.ProtocolName = "T1 MPRAGE"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0.0, 0.0, 1.5 * k]
        ds.PixelSpacing, ds.SliceThickness = [1.2, 1.0], 1.5
        ds.Rows, ds.Columns = 10, 9
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = np.ascontiguousarray(volume[:, :, k].T).tobytes()
        pydicom.dcmwrite(folder / f"IM{k:04d}", ds, enforce_file_format=True)
    return sorted(folder.iterdir())


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> list[bytes]:
    return [p.read_bytes() for p in _write_series(tmp_path_factory.mktemp("dcm") / "s")]


def test_the_undamaged_series_converts(series, tmp_path):
    """The control: the fuzz test's base series is read, so damage is what it tests."""
    for i, blob in enumerate(series):
        (tmp_path / f"IM{i:04d}").write_bytes(blob)
    assert dicom.scan_demographics(dicom.DicomScan(tmp_path))["age"] == 39
    assert conform(load_image(tmp_path), "dcm").data.shape == (9, 10, 8)


def _set_tag(path: Path, tag: str, value: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path, force=True)
            setattr(ds, tag, value)
            ds.save_as(path)
        except Exception:  # a file too damaged to rewrite stays as it is
            pass


def _whole_way(folder: Path) -> None:
    dicom.list_series(folder)
    dicom.scan_demographics(dicom.DicomScan(folder))
    conform(load_image(folder), str(folder))


@FUZZ.__class__(FUZZ, max_examples=30)
@given(damage=st.lists(st.tuples(st.sampled_from(["cut", "flip", "keep", "keep"]),
                                 st.integers(0, 10**6), st.integers(0, 255)),
                       min_size=8, max_size=8),
       tag=st.none() | st.tuples(st.sampled_from(TAGS), st.sampled_from(VALUES)))
def test_a_hostile_dicom_folder_is_read_or_refused_by_name(series, damage, tag):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "dcm"
        folder.mkdir()
        for i, (blob, (how, at, byte)) in enumerate(zip(series, damage, strict=True)):
            data = bytearray(blob)
            if how == "cut":
                data = data[: at % len(data)]
            elif how == "flip":
                data[128 + at % (len(data) - 128)] = byte
            path = folder / f"IM{i:04d}"
            path.write_bytes(bytes(data))
            if tag is not None:
                _set_tag(path, *tag)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom's invalid-value warnings, DicomAgeWarning
            read_or_refuse(lambda: _whole_way(folder), names="dcm")


def test_an_undecodable_element_is_read_as_absent(series, tmp_path):
    """Found by the fuzz test: pydicom decodes elements when first read, so a damaged
    PatientID (an unknown VR) raised NotImplementedError out of scan_demographics, and a
    multi-valued SeriesNumber a TypeError out of list_series."""
    for i, blob in enumerate(series):
        (tmp_path / f"IM{i:04d}").write_bytes(blob)
    for path in tmp_path.iterdir():
        _set_tag(path, "SeriesNumber", "1\\2")
        data = bytearray(path.read_bytes())
        at = data.index(b"\x10\x00\x20\x00LO")  # (0010,0020) PatientID, explicit VR "LO"
        data[at + 4: at + 6] = b"L\x16"
        path.write_bytes(bytes(data))
    [found] = dicom.list_series(tmp_path)
    assert found.number is None and found.is_t1()
    assert dicom.scan_demographics(dicom.DicomScan(tmp_path))["patient_id"] is None


def test_dcm2niix_output_that_is_not_utf8_is_no_crash(series, tmp_path):
    """Found by the fuzz test: dcm2niix echoes header text byte for byte (here a damaged
    transfer syntax UID), and decoding its output as UTF-8 raised UnicodeDecodeError out
    of subprocess.run instead of the error that says dcm2niix failed."""
    for i, blob in enumerate(series):
        (tmp_path / f"IM{i:04d}").write_bytes(
            blob.replace(b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2.\xf3\x00", 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom: invalid value for VR UI
        out = read_or_refuse(lambda: conform(load_image(tmp_path), "dcm"), names=str(tmp_path))
    assert isinstance(out, BrainAgeError)
    assert "dcm2niix failed" in str(out) and "Unsupported transfer syntax" in str(out)


def test_a_fifo_in_a_dicom_folder_does_not_block(series, tmp_path):
    """A FIFO (or a symlink to one) blocked is_dicom_file's read forever."""
    for i, blob in enumerate(series):
        (tmp_path / f"IM{i:04d}").write_bytes(blob)
    os.mkfifo(tmp_path / "IM0000.fifo")
    (tmp_path / "IM9999").symlink_to(tmp_path / "IM0000.fifo")
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.append(dicom.list_series(tmp_path)),
                              daemon=True)
    worker.start()
    worker.join(timeout=20)
    if worker.is_alive():  # unblock the reader so the test process can end
        with open(tmp_path / "IM0000.fifo", "wb"):
            pass
    assert done, "list_series blocked on a FIFO"
    assert len(done[0][0].files) == 8  # type: ignore[index]
