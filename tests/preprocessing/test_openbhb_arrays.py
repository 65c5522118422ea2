"""OpenBHB arrays as a prepared cohort: batch unmasking, masks, both formats, full-size rows."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from openbhb_mini import QUASIRAW, VBM, make_openbhb, masks  # noqa: E402

from brainage.data.datasets import ScanDataset  # noqa: E402
from brainage.data.openbhb_volumes import (  # noqa: E402
    FLAT_WIDTH,
    MASKS,
    FlatBlock,
    find_mask,
    unmask,
)
from brainage.errors import BrainAgeError  # noqa: E402
from brainage.preprocessing.openbhb_arrays import open_inputs, open_openbhb  # noqa: E402


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return make_openbhb(tmp_path_factory.mktemp("openbhb") / "mini")


def test_unmask_puts_each_row_in_its_own_volume():
    rng = np.random.default_rng(0)
    mask = rng.random((6, 7, 5)) > 0.5
    rows = rng.normal(size=(3, int(mask.sum()))).astype(np.float32)
    out = unmask(rows, mask)
    assert out.shape == (3, 6, 7, 5)
    for b in range(3):
        assert np.array_equal(out[b][mask], rows[b]) and not out[b][~mask].any()
    # the public code's order (subject axis last, then reshaped) scrambles the volumes
    scrambled = np.zeros((*mask.shape, 3), np.float32)
    scrambled[mask] = rows.T
    assert not np.array_equal(scrambled.reshape(3, 6, 7, 5), out)
    with pytest.raises(BrainAgeError, match="expected \\(subjects, "):
        unmask(rows[:, :-1], mask)


def test_flat_and_per_subject_give_the_same_masked_volumes(mini):
    flat = open_openbhb(mini / "flat", "vbm")
    per_subject = open_openbhb(mini, "vbm", mask=True)
    assert flat.shape == per_subject.shape == VBM
    assert flat.spec.hash == per_subject.spec.hash  # same data, same spec
    assert open_openbhb(mini, "vbm").spec.hash != flat.spec.hash  # unmasked: another spec
    a = ScanDataset.from_table(flat.table)
    b = ScanDataset.from_table(per_subject.table.set_index("participant_id").loc[
        flat.table["participant_id"]].reset_index())
    for i in (0, 5, len(a) - 1):
        assert a[i]["age"] == b[i]["age"]
        np.testing.assert_allclose(a[i]["image"], b[i]["image"], rtol=0, atol=1e-6)
    qr = open_openbhb(mini / "flat", "quasiraw")
    assert qr.shape == QUASIRAW and qr.spec.params["modality"] == "quasiraw"
    np.testing.assert_allclose(ScanDataset.from_table(qr.table)[0]["image"][0],
                               np.load(next(mini.rglob(f"sub-{1000}_preproc-quasiraw*")))[0]
                               * (masks()["quasiraw"] > 0), atol=1e-6)


def test_a_batch_of_rows_is_read_at_once_and_in_order(mini, monkeypatch):
    cohort = open_openbhb(mini / "flat", "vbm")
    data = ScanDataset.from_table(cohort.table)
    calls = []
    original = FlatBlock.read_rows
    monkeypatch.setattr(FlatBlock, "read_rows",
                        lambda self, rows: calls.append(list(rows)) or original(self, rows))
    items = data.__getitems__([7, 2, 30, 5])  # rows of train.npy (7, 2, 5) and test.npy (30)
    assert sorted(map(sorted, calls)) == [[2, 5, 7], [6]]
    for i, item in zip([7, 2, 30, 5], items, strict=True):
        assert int(item["index"]) == i
        np.testing.assert_array_equal(item["image"], data[i]["image"])


def test_sites_and_roles_come_from_the_tables(mini):
    per_subject = open_openbhb(mini, "vbm")
    assert set(per_subject.table["site"]) == {"00", "10", "20", "90"}  # siteXacq wins
    assert set(per_subject.table["split"]) == {"train", "internal_test", "external_test"}
    flat = open_openbhb(mini / "flat", "vbm")
    assert set(flat.table["split"]) == {"train", "test"}


def test_masks_are_found_next_to_the_data_not_in_the_working_directory(mini, tmp_path,
                                                                       monkeypatch):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("train.npy", "train.tsv"):
        (bare / name).write_bytes((mini / "flat" / name).read_bytes())
    monkeypatch.chdir(mini / "resource")  # the mask is in the working directory only
    assert find_mask(bare, "vbm") is None
    with pytest.raises(FileNotFoundError, match="cat12vbm_space-MNI152_desc-gm_TPM"):
        open_openbhb(bare, "vbm")
    cohort = open_openbhb(bare, "vbm", mask=mini / "resource" / MASKS["vbm"][0])
    assert len(cohort.table) == 24


def test_a_wrong_mask_or_input_is_refused(mini, tmp_path):
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.ones(QUASIRAW))  # more voxels than the rows hold after the VBM block
    with pytest.raises(BrainAgeError, match="mask selects 7,128 voxels"):
        open_openbhb(mini / "flat", "quasiraw", mask=wrong)
    with pytest.raises(BrainAgeError, match="cannot be read without their mask"):
        open_openbhb(mini / "flat", "vbm", mask=False)
    with pytest.raises(BrainAgeError, match="not a prepared cohort"):
        open_inputs(tmp_path)


def test_full_size_rows_unmask_into_the_challenge_volumes(tmp_path):
    rng = np.random.default_rng(1)
    shapes = {"vbm": (121, 145, 121), "quasiraw": (182, 218, 182)}
    full = {}
    for name, shape in shapes.items():
        flat_mask = np.zeros(int(np.prod(shape)), bool)
        flat_mask[rng.choice(flat_mask.size, MASKS[name][2], replace=False)] = True
        full[name] = flat_mask.reshape(shape)
        np.save(tmp_path / f"{name}.npy", full[name])
    row = rng.normal(size=(1, FLAT_WIDTH)).astype(np.float32)
    np.save(tmp_path / "train.npy", row)
    (tmp_path / "train.tsv").write_text("participant_id\tage\tsite\tsplit\n1\t30\t1\ttrain\n")
    vbm = open_openbhb(tmp_path, "vbm", mask=tmp_path / "vbm.npy")
    image = vbm.table["array_path"][0].read_volume()
    assert image.shape == shapes["vbm"] and vbm.spec.grid.name == "openbhb-vbm"
    np.testing.assert_array_equal(image[full["vbm"]], row[0, :519_945])
    qr = open_openbhb(tmp_path, "quasiraw", mask=tmp_path / "quasiraw.npy")
    image = qr.table["array_path"][0].read_volume()
    np.testing.assert_array_equal(image[full["quasiraw"]], row[0, 519_945:2_347_040])
    np.save(tmp_path / "vbm.npy", np.roll(full["vbm"], 1) | full["vbm"])  # too many voxels
    with pytest.raises(BrainAgeError, match="519,945"):
        open_openbhb(tmp_path, "vbm", mask=tmp_path / "vbm.npy")
