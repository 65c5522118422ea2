"""The predictions table reader: types, defaults, and every problem reported at once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainage.data.predictions import read_predictions, write_predictions
from brainage.errors import ValidationError

HEADER = "participant_id\tsession\tage\tpredicted_age\tgap\tsex\tsite\tgroup\tset\n"


def _write(tmp_path, text: str, name: str = "predictions.tsv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_valid_table_is_typed(tmp_path):
    p = _write(tmp_path, HEADER
               + "sub-01\tn/a\t40\t42.5\t2.5\tfemale\tA\tcontrol\tinternal\n"
               + "sub-02\tses-1\tn/a\t50\tn/a\tM\tn/a\tpatient\texternal\n")
    df = read_predictions(p)
    assert df["age"].dtype == float and df["predicted_age"].dtype == float
    assert df["sex"].tolist() == ["F", "M"]
    assert pd.isna(df.loc[0, "session"]) and df.loc[1, "session"] == "ses-1"
    assert np.isnan(df.loc[1, "age"]) and np.isnan(df.loc[1, "gap"])
    assert pd.isna(df.loc[1, "site"])


def test_gap_and_session_added_when_absent(tmp_path):
    p = _write(tmp_path, "participant_id,age,predicted_age\nsub-01,30,33.5\nsub-02,40,38\n",
               "p.csv")
    df = read_predictions(p)
    assert df["gap"].tolist() == [3.5, -2.0]
    assert "session" in df.columns and df["session"].isna().all()


def test_every_problem_reported_at_once(tmp_path):
    p = _write(tmp_path, HEADER
               + "sub-01\tn/a\t40\tforty\tn/a\tF\tA\tcontrol\tinternal\n"   # bad prediction
               + "sub-02\tn/a\t30\t35\t1\tX\tA\tcontrol\tinternal\n"       # bad gap, bad sex
               + "sub-02\tn/a\t31\t35\tn/a\tM\tA\tcontrol\tinternal\n"     # duplicate key
               + "\tn/a\t31\tn/a\tn/a\tM\tA\tcontrol\tinternal\n")         # no id, no prediction
    with pytest.raises(ValidationError) as info:
        read_predictions(p)
    found = {(q.row, q.column) for q in info.value.problems}
    assert found == {(1, "predicted_age"), (2, "gap"), (2, "sex"), (3, "participant_id"),
                     (4, "participant_id"), (4, "predicted_age")}
    text = str(info.value)
    assert str(p) in text and "'forty'" in text and "row 2" in text and "Fix:" in text


def test_missing_required_column_names_it(tmp_path):
    p = _write(tmp_path, "participant_id\tpredicted_age\nsub-01\t40\n")
    with pytest.raises(ValidationError) as info:
        read_predictions(p)
    assert [q.column for q in info.value.problems] == ["age"]


def test_sessions_make_rows_distinct(tmp_path):
    p = _write(tmp_path, HEADER
               + "sub-01\tses-1\t40\t42\tn/a\tF\tA\tcontrol\tinternal\n"
               + "sub-01\tses-2\t42\t45\tn/a\tF\tA\tcontrol\tinternal\n")
    assert len(read_predictions(p)) == 2


def test_write_then_read_round_trip(tmp_path):
    df = pd.DataFrame({"participant_id": ["sub-01", "sub-02"], "age": [30.0, np.nan],
                       "predicted_age": [31.123456, 40.0], "extra": ["a", "b"]})
    write_predictions(tmp_path / "out.tsv", df)
    back = read_predictions(tmp_path / "out.tsv")
    assert back["predicted_age"].tolist() == [31.1235, 40.0]
    assert np.isnan(back.loc[1, "age"]) and back["extra"].tolist() == ["a", "b"]


def test_a_missing_prediction_is_quoted_as_written(tmp_path):
    p = _write(tmp_path, "participant_id\tage\tpredicted_age\nsub-01\t40\tNaN\nsub-02\t41\t\n")
    with pytest.raises(ValidationError) as info:
        read_predictions(p)
    assert [q.value for q in info.value.problems] == ["NaN", ""]  # was 'n/a' for both
    assert "got 'NaN'; expected a predicted age" in str(info.value)


def test_rows_predict_could_not_predict_carry_their_reason(tmp_path):
    from brainage.data.predictions import not_predicted_note, split_not_predicted

    p = _write(tmp_path, "participant_id\tage\tpredicted_age\terror\n"
                         "sub-01\t40\t42\tn/a\nsub-02\t41\tn/a\tdata cut short\n")
    predicted, failed = split_not_predicted(read_predictions(p))
    assert predicted["participant_id"].tolist() == ["sub-01"]
    assert not_predicted_note(failed) == ("1 scan(s) were not predicted and are left out: "
                                          "sub-02 (data cut short)")


def test_evaluate_leaves_out_and_names_rows_that_were_not_predicted(tmp_path):
    from brainage.evaluation.pipeline import run_evaluation

    rows = "".join(f"sub-{i:02d}\t{30 + i}\t{32 + i}\tn/a\n" for i in range(25))
    p = _write(tmp_path, "participant_id\tage\tpredicted_age\terror\n" + rows
               + "sub-99\t50\tn/a\tdata cut short\n")
    result = run_evaluation(p, tmp_path / "ev", n_boot=0)
    assert result.metrics["sets"]["overall"]["n_with_age"] == 25
    assert any("sub-99 (data cut short)" in n for n in result.notes)


def test_evaluate_refuses_a_damaged_supplied_correction(tmp_path):
    import json

    from brainage.errors import BrainAgeError
    from brainage.evaluation.bias import BiasCorrector
    from brainage.evaluation.pipeline import run_evaluation

    age = np.linspace(20, 80, 30)
    data = BiasCorrector().fit(age, age + np.sin(age)).to_dict()
    data["models"]["__pooled__"]["coef"]["intercept"] = None  # gave NaN corrected ages
    (tmp_path / "bias.json").write_text(json.dumps(data))
    rows = "".join(f"sub-{i:02d}\t{a:.1f}\t{a + 2:.1f}\n" for i, a in enumerate(age))
    p = _write(tmp_path, "participant_id\tage\tpredicted_age\n" + rows)
    with pytest.raises(BrainAgeError, match="coef.intercept is None; expected a finite number"):
        run_evaluation(p, tmp_path / "ev", correction=tmp_path / "bias.json", n_boot=0)
