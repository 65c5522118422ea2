"""Small DICOM series written with pydicom (classic MR Image Storage), for the tests only.

A volume ``(X, Y, Z)`` is written as Z slices; voxel ``(i, j, k)`` lies at patient (LPS)
position ``origin + i*dx*x_dir + j*dy*y_dir + k*dz*slice_dir``, with the row direction
(x_dir) and column direction (y_dir) of ImageOrientationPatient. So the slice pixel array
(rows, columns) is ``volume[:, :, k].T``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def write_series(folder: Path, volume: np.ndarray, *, description: str = "T1 MPRAGE",
                 protocol: str | None = None, number: int = 3, age: str | None = "039Y",
                 sex: str | None = "F", spacing: tuple[float, float, float] = (1.0, 1.2, 1.5),
                 origin: tuple[float, float, float] = (-12.0, -16.0, -14.0),
                 study_uid: str = "1.2.826.0.1.3680043.8.498.1",
                 patient_id: str = "P001", header: dict[str, str | None] | None = None) -> Path:
    """Write `volume` (X, Y, Z) as a DICOM series into `folder`; returns the folder.

    `header` sets (or, with None, removes) more attributes of every slice, e.g.
    ``{"PatientBirthDate": "19800101", "StudyDate": None}``; values are written as given,
    also those a strict reader would call invalid (``PatientAge="39"``), as exporters do.
    """
    import warnings

    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    data = np.asarray(volume)
    series_uid = generate_uid(entropy_srcs=[study_uid, str(number), description])
    dx, dy, dz = spacing
    for k in range(data.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
        meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[series_uid, str(k)])
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"IM{number:02d}{k:04d}"), {}, file_meta=meta,
                         preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = MR_IMAGE_STORAGE, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.FrameOfReferenceUID = study_uid + ".9"
        ds.Modality, ds.Manufacturer = "MR", "brainage-tests"
        ds.PatientName, ds.PatientID = "Test^Subject", patient_id
        with warnings.catch_warnings():  # pydicom warns on values outside the standard
            warnings.filterwarnings("ignore", message="Invalid value for VR")
            if age is not None:
                ds.PatientAge = age
            if sex is not None:
                ds.PatientSex = sex
        ds.StudyDate = ds.SeriesDate = "20240102"
        ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = "120000"
        ds.SeriesNumber, ds.InstanceNumber, ds.AcquisitionNumber = number, k + 1, 1
        ds.SeriesDescription, ds.ProtocolName = description, protocol or description
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
        ds.MagneticFieldStrength, ds.EchoTime, ds.RepetitionTime = 3, 2.5, 2000
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [origin[0], origin[1], origin[2] + k * dz]
        ds.PixelSpacing = [dy, dx]  # row spacing (between rows, along y), column spacing
        ds.SliceThickness, ds.SpacingBetweenSlices = dz, dz
        ds.SliceLocation = origin[2] + k * dz
        ds.Rows, ds.Columns = data.shape[1], data.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = np.ascontiguousarray(data[:, :, k].T.astype(np.uint16)).tobytes()
        with warnings.catch_warnings():  # pydicom warns on values outside the standard
            warnings.filterwarnings("ignore", message="Invalid value for VR")
            for key, value in (header or {}).items():
                if value is None:
                    if key in ds:
                        delattr(ds, key)
                else:
                    setattr(ds, key, value)
            pydicom.dcmwrite(folder / f"IM{number:02d}{k:04d}", ds, enforce_file_format=True)
    return folder


def ramp_volume(shape: tuple[int, int, int] = (24, 28, 20), seed: int = 0) -> np.ndarray:
    """A uint16-range volume with unequal axes and no symmetry (axis flips change it)."""
    rng = np.random.default_rng(seed)
    i, j, k = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    base = 100 + 10 * i + 3 * j + 7 * k
    return (base + rng.integers(0, 5, shape)).astype(np.uint16)
