"""Subject-level splits: coverage, disjointness, balance, determinism, the file and its checks."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from brainage.data.cohort import Cohort
from brainage.data.splits import (
    Splits,
    cohort_hash,
    kfold,
    leave_sites_out,
    load_or_make_splits,
    make_splits,
    openbhb,
    train_val_test,
)
from brainage.data.splits_openbhb import parse_mapping
from brainage.errors import BrainAgeError, ValidationError


def make_cohort(n: int = 120, sites: tuple[str, ...] | None = ("A", "B", "C"), seed: int = 0,
                sessions: int = 1, no_age: int = 0) -> Cohort:
    """`n` subjects aged 20-80, `sessions` scans each (2 years apart) at one site each."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        age = float(rng.uniform(20, 80))
        site = None if sites is None else sites[int(rng.integers(len(sites)))]
        for s in range(sessions):
            rows.append({
                "participant_id": f"sub-{i:03d}", "session": f"ses-{s + 1}",
                "path": f"/x/sub-{i:03d}_ses-{s + 1}.nii.gz",
                "age": np.nan if i < no_age else age + 2 * s, "site": site,
            })
    return Cohort(pd.DataFrame(rows))


def first(cohort: Cohort) -> pd.DataFrame:
    """One row per subject (youngest scan), indexed by participant_id."""
    t = cohort.table.sort_values("age").drop_duplicates("participant_id")
    return t.set_index("participant_id")


def all_roles_disjoint(splits: Splits) -> bool:
    for fold in splits.folds:
        ids = [x for v in fold.values() for x in v]
        if len(ids) != len(set(ids)):
            return False
    return True


# --- coverage and disjointness ---------------------------------------------------------------

def test_kfold_every_labelled_subject_in_exactly_one_test_fold():
    cohort = make_cohort(n=103, no_age=4)
    s = kfold(cohort, k=5, seed=3, val_fraction=0.2)
    tests = [x for f in s.folds for x in f["test"]]
    labelled = sorted(set(cohort.table.dropna(subset=["age"])["participant_id"]))
    assert sorted(tests) == labelled  # each once, no unlabelled
    for f in s.folds:  # train + val + test = all labelled, in every fold
        assert sorted(f["train"] + f["val"] + f["test"]) == labelled
    assert s.unlabelled == [f"sub-{i:03d}" for i in range(4)]


@pytest.mark.parametrize("make", [
    lambda c: kfold(c, k=4, val_fraction=0.25),
    lambda c: kfold(c, k=3, n_age_bins=4),
    lambda c: train_val_test(c, val=0.2, test=0.2),
    lambda c: leave_sites_out(c, test_sites=["C"], val=0.2),
])
def test_roles_disjoint_in_every_fold(make):
    s = make(make_cohort(n=90, no_age=3))
    assert all_roles_disjoint(s)
    assert not {x for f in s.folds for v in f.values() for x in v} & set(s.unlabelled)


def test_multi_session_subjects_never_straddle():
    cohort = make_cohort(n=60, sessions=3)
    s = kfold(cohort, k=5, val_fraction=0.2)
    for i in range(s.n_folds):
        seen: dict[str, str] = {}
        for role in s.folds[i]:
            part = s.select(cohort, role, fold=i).table
            assert (part.groupby("participant_id").size() == 3).all()  # every session comes
            for pid in part["participant_id"]:
                assert seen.setdefault(pid, role) == role


def test_subject_with_age_only_at_a_later_session_is_labelled():
    df = make_cohort(n=20).table
    df.loc[0, "age"] = np.nan  # sub-000 has a single session without age -> unlabelled
    later = df.iloc[[1]].assign(session="ses-2", age=70.0)
    df.loc[1, "age"] = np.nan  # sub-001: age only at ses-2
    df = pd.concat([df, later], ignore_index=True)
    s = kfold(Cohort(df), k=4)
    assert s.unlabelled == ["sub-000"]
    assert "sub-001" in {x for f in s.folds for x in f["test"]}


# --- balance -----------------------------------------------------------------------------------

def test_kfold_fold_sizes_and_mean_ages_balanced():
    cohort = make_cohort(n=200, seed=1)
    ages = first(cohort)["age"]
    s = kfold(cohort, k=5, seed=0)
    sizes = [len(f["test"]) for f in s.folds]
    assert max(sizes) - min(sizes) <= 1
    means = [ages[f["test"]].mean() for f in s.folds]
    assert max(abs(m - ages.mean()) for m in means) < 1.0  # random folds: SD of a mean ~2.7
    for f in s.folds:  # full age range in every test fold
        assert ages[f["test"]].min() < 25 and ages[f["test"]].max() > 75


@pytest.mark.parametrize("n_age_bins", [None, 3])
def test_kfold_sites_balanced(n_age_bins):
    cohort = make_cohort(n=150, sites=("A", "B", "C", "D"), seed=2)
    site = first(cohort)["site"]
    s = kfold(cohort, k=5, seed=4, n_age_bins=n_age_bins)
    counts = pd.DataFrame([site[f["test"]].value_counts() for f in s.folds]).fillna(0)
    assert ((counts.max() - counts.min()) <= 1).all(), counts


def test_holdout_fractions_and_balance():
    cohort = make_cohort(n=200, seed=5)
    ages = first(cohort)["age"]
    s = train_val_test(cohort, val=0.15, test=0.15, seed=1)
    fold = s.folds[0]
    assert [len(fold[r]) for r in ("train", "val", "test")] == [140, 30, 30]
    for role in ("val", "test"):  # random: SD of the mean ~3.2
        assert abs(ages[fold[role]].mean() - ages.mean()) < 1.0


def test_rare_strata_seven_subjects_five_folds():
    cohort = make_cohort(n=7, sites=("A", "B", "C"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = kfold(cohort, k=5, seed=0, n_age_bins=5)
    assert sorted(len(f["test"]) for f in s.folds) == [1, 1, 1, 2, 2]
    assert sorted(x for f in s.folds for x in f["test"]) == cohort.subjects


def test_fewer_subjects_than_folds_is_a_clear_error():
    with pytest.raises(BrainAgeError, match="at least 5 subject"):
        kfold(make_cohort(n=4), k=5)


# --- determinism -----------------------------------------------------------------------------

def test_same_seed_same_splits_other_seed_other_splits():
    cohort = make_cohort(n=80)
    assert kfold(cohort, seed=7).folds == kfold(cohort, seed=7).folds
    assert kfold(cohort, seed=7).folds != kfold(cohort, seed=8).folds
    assert train_val_test(cohort, seed=7).folds == train_val_test(cohort, seed=7).folds
    assert train_val_test(cohort, seed=7).folds != train_val_test(cohort, seed=8).folds


def test_row_order_does_not_matter():
    cohort = make_cohort(n=80, sessions=2)
    shuffled = Cohort(cohort.table.sample(frac=1.0, random_state=0))
    assert kfold(cohort, seed=1, val_fraction=0.1).folds == kfold(shuffled, seed=1,
                                                                 val_fraction=0.1).folds


# --- sites -----------------------------------------------------------------------------------

def test_leave_sites_out_puts_every_subject_of_the_site_in_test():
    cohort = make_cohort(n=90)
    s = leave_sites_out(cohort, test_sites=["B"], val=0.2)
    site = first(cohort)["site"]
    fold = s.folds[0]
    assert sorted(fold["test"]) == sorted(site.index[site == "B"])
    assert "B" not in set(site[fold["train"] + fold["val"]])
    assert s.params["test_sites"] == ["B"]


def test_leave_sites_out_draws_sites_with_the_seed():
    cohort = make_cohort(n=90, sites=("A", "B", "C", "D"))
    a = leave_sites_out(cohort, n_test_sites=2, seed=0)
    assert len(a.params["test_sites"]) == 2
    assert a.folds == leave_sites_out(cohort, n_test_sites=2, seed=0).folds
    with pytest.raises(BrainAgeError, match="not in the cohort"):
        leave_sites_out(cohort, test_sites=["Z"])
    with pytest.raises(BrainAgeError, match="none is left for training"):
        leave_sites_out(cohort, test_sites=["A", "B", "C", "D"])


def test_subject_scanned_at_a_held_out_site_is_a_test_subject():
    df = make_cohort(n=30).table
    pid = df.loc[df["site"] == "A", "participant_id"].iat[0]
    extra = df[df["participant_id"] == pid].assign(session="ses-9", site="B", age=90.0)
    s = leave_sites_out(Cohort(pd.concat([df, extra])), test_sites=["B"])
    assert pid in s.folds[0]["test"]


def test_missing_site_is_an_error_naming_the_rows():
    df = make_cohort(n=10).table
    df.loc[[2, 6], "site"] = pd.NA
    cohort = Cohort(df, "cohort.tsv")
    with pytest.raises(ValidationError) as info:
        leave_sites_out(cohort, test_sites=["A"])
    assert [p.row for p in info.value.problems] == [3, 7]
    assert "row 3" in str(info.value) and "sub-002" in str(info.value)
    with pytest.raises(ValidationError, match="row 7"):
        kfold(cohort, k=2)  # site-stratified by default
    kfold(cohort, k=2, stratify_site=False)  # fine without sites


def test_cohort_without_sites_stratifies_by_age_only():
    s = kfold(make_cohort(n=40, sites=None), k=4)
    assert s.params["site_strata"] is False
    with pytest.raises(ValidationError, match="site"):
        leave_sites_out(make_cohort(n=40, sites=None))


# --- OpenBHB ---------------------------------------------------------------------------------

def openbhb_cohort(split_values: list[str]) -> Cohort:
    df = make_cohort(n=len(split_values)).table
    return Cohort(df.assign(split=split_values))


def test_openbhb_roles_from_the_split_column():
    values = ["train"] * 20 + ["internal_test"] * 6 + ["external_test"] * 4
    s = openbhb(openbhb_cohort(values))
    fold = s.folds[0]
    assert {r: len(v) for r, v in fold.items()} == {
        "train": 20, "internal_test": 6, "external_test": 4}
    s = openbhb(openbhb_cohort(values), val_fraction=0.25, seed=1)
    assert len(s.folds[0]["val"]) == 5 and len(s.folds[0]["train"]) == 15
    assert all_roles_disjoint(s)


def test_openbhb_value_mapping_and_unknown_values():
    values = ["train"] * 10 + ["int"] * 3 + ["ext"] * 3 + ["drop"] * 2
    with pytest.raises(ValidationError) as info:
        openbhb(openbhb_cohort(values))
    text = str(info.value)
    assert "'int'" in text and "row 11" in text and "'drop'" in text
    mapping = parse_mapping("int=internal_test, ext=external_test, drop=")
    assert mapping == {"int": "internal_test", "ext": "external_test", "drop": None}
    s = openbhb(openbhb_cohort(values), mapping=mapping)
    assert {r: len(v) for r, v in s.folds[0].items()} == {
        "train": 10, "internal_test": 3, "external_test": 3}


def test_openbhb_subject_in_two_splits_is_an_error():
    df = make_cohort(n=6, sessions=2).table.assign(split="train")
    df.loc[1, "split"] = "external_test"  # sub-000's second session
    with pytest.raises(ValidationError, match="sub-000"):
        openbhb(Cohort(df))
    with pytest.raises(BrainAgeError, match="no 'split' column"):
        openbhb(make_cohort(n=6))


# --- the file ----------------------------------------------------------------------------------

def test_json_round_trip(tmp_path):
    cohort = make_cohort(n=30, no_age=2)
    s = kfold(cohort, k=3, val_fraction=0.2)
    s.to_json(tmp_path / "splits.json")
    back = Splits.from_json(tmp_path / "splits.json")
    assert back == s
    assert back.cohort_hash == cohort_hash(cohort.subjects)
    back.check(cohort)


def test_made_once_then_reused(tmp_path):
    cohort = make_cohort(n=40)
    path = tmp_path / "run" / "splits.json"
    made = load_or_make_splits(path, cohort, "kfold", k=4, seed=0)
    before = path.read_text()
    with pytest.warns(UserWarning, match="existing splits"):
        again = load_or_make_splits(path, cohort, "kfold", k=4, seed=99)
    assert again == made and path.read_text() == before


def test_user_file_wins(tmp_path):
    cohort = make_cohort(n=10)
    path = tmp_path / "splits.json"
    user = {"folds": [{"train": cohort.subjects[:6], "val": cohort.subjects[6:8],
                       "test": cohort.subjects[8:]}]}
    path.write_text(json.dumps(user))
    s = load_or_make_splits(path, cohort, "kfold", k=5)
    assert s.method == "user" and s.folds[0]["test"] == cohort.subjects[8:]
    assert json.loads(path.read_text()) == user  # untouched


def test_file_for_another_cohort_is_refused(tmp_path):
    path = tmp_path / "splits.json"
    load_or_make_splits(path, make_cohort(n=30), "kfold", k=3)
    other = make_cohort(n=30).select(make_cohort(n=30).table["participant_id"] != "sub-004")
    with pytest.raises(BrainAgeError) as info:
        load_or_make_splits(path, other, "kfold", k=3)
    text = str(info.value)
    assert "another cohort" in text and "sub-004" in text and "delete" in text


def test_user_file_with_unknown_subjects_and_overlaps_lists_them(tmp_path):
    cohort = make_cohort(n=10)
    ids = cohort.subjects
    path = tmp_path / "splits.json"
    path.write_text(json.dumps({"folds": [
        {"train": ids[:6] + ["sub-999"], "test": ids[5:]},
    ]}))
    with pytest.raises(ValidationError) as info:
        load_or_make_splits(path, cohort)
    text = str(info.value)
    assert "sub-999" in text and "sub-005" in text and len(info.value.problems) == 2


def test_malformed_files_are_reported(tmp_path):
    path = tmp_path / "splits.json"
    path.write_text(json.dumps({"folds": [{"tarin": ["sub-000"], "test": "sub-001"}]}))
    with pytest.raises(ValidationError) as info:
        Splits.from_json(path)
    assert "'tarin'" in str(info.value) and len(info.value.problems) == 2
    path.write_text("{not json")
    with pytest.raises(BrainAgeError, match="not valid JSON"):
        Splits.from_json(path)


def test_subject_without_age_in_train_is_refused():
    cohort = make_cohort(n=6, no_age=1)
    s = Splits("user", None, {}, [{"train": cohort.subjects[:4], "test": cohort.subjects[4:]}])
    with pytest.raises(ValidationError, match="sub-000"):
        s.check(cohort)


def test_make_splits_names_methods_and_parameters():
    cohort = make_cohort(n=20)
    with pytest.raises(BrainAgeError, match="Did you mean 'kfold'"):
        make_splits(cohort, "kfolds")
    with pytest.raises(BrainAgeError, match="folds"):
        make_splits(cohort, "kfold", folds=3)
    assert make_splits(cohort, "holdout", val=0.1, test=0.2).method == "holdout"
