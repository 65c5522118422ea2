"""Report figures: valid, non-blank PNGs; clear errors when the data cannot be drawn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from report_builders import decode_png as decode
from report_builders import make_predictions

from brainage.errors import BrainAgeError
from brainage.reporting import figures as F


@pytest.fixture(scope="module")
def corrected() -> pd.DataFrame:
    df = make_predictions(n=40)
    df["gap"] = df["predicted_age"] - df["age"]
    df["corrected_age"] = df["age"] + 0.5 * df["gap"] - 0.5 * df["gap"].mean()
    df["corrected_gap"] = df["corrected_age"] - df["age"]
    return df


def test_every_figure_is_a_drawn_png(corrected):
    bins = [{"bin": "20-40", "n": 10,
             "uncorrected": {"mae": {"estimate": 4.0, "ci_low": 3.0, "ci_high": 5.5}},
             "corrected": {"mae": {"estimate": 2.5, "ci_low": None, "ci_high": None}}},
            {"bin": "40-60", "n": 12, "uncorrected": {"mae": {"estimate": 3.0}}}]
    for png in (F.age_histogram(corrected), F.predicted_vs_age(corrected),
                F.gap_vs_age(corrected), F.site_boxplots(corrected), F.age_binned_mae(bins)):
        decode(png)


def test_uncorrected_only_tables_draw(corrected):
    plain = corrected.drop(columns=["corrected_age", "corrected_gap", "set", "site"])
    assert not F.has_correction(plain) and F.has_correction(corrected)
    one = decode(F.gap_vs_age(plain))
    two = decode(F.gap_vs_age(corrected))
    assert two.shape[1] > 1.5 * one.shape[1]  # a second panel after correction
    decode(F.predicted_vs_age(plain))
    decode(F.age_histogram(plain))


def test_rows_without_age_are_left_out(corrected):
    df = corrected.copy()
    df.loc[::2, "age"] = np.nan
    decode(F.predicted_vs_age(df))
    df["age"] = np.nan
    with pytest.raises(BrainAgeError, match="no row has both an age and a prediction"):
        F.predicted_vs_age(df)
    with pytest.raises(BrainAgeError, match="no row has an age"):
        F.age_histogram(df)


def test_missing_inputs_raise_clear_errors(corrected):
    with pytest.raises(BrainAgeError, match="'site'"):
        F.site_boxplots(corrected.drop(columns="site"))
    no_site = corrected.assign(site=pd.NA)
    with pytest.raises(BrainAgeError, match="no row has a site"):
        F.site_boxplots(no_site)
    with pytest.raises(BrainAgeError, match="no age bin"):
        F.age_binned_mae([])


def test_figures_leave_pyplot_alone(corrected):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    F.predicted_vs_age(corrected)
    assert plt.get_fignums() == before
