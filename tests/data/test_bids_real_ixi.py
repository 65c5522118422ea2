"""Real IXI scans (BIDS) from ../shared/data load through the BIDS reader."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from brainage.cli.cohort import register
from brainage.data.sources import read_cohort

IXI = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ixi-hh-2mm"

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not IXI.is_dir(), reason=f"real data not found at {IXI}"),
]


def test_ixi_loads_with_the_expected_counts():
    report = read_cohort(IXI, require_site=True)
    t = report.cohort.table
    s = report.cohort.summary()
    assert (s["scans"], s["subjects"], s["with_age"], s["missing_age"]) == (125, 125, 121, 4)
    assert s["per_site"] == {"HH": 125}
    assert 20 <= s["age_min"] < 21 and 81 < s["age_max"] <= 82
    assert set(t["sex"].dropna()) == {"F", "M"} and t["sex"].notna().sum() == 121
    missing = sorted(t.loc[t["age"].isna(), "participant_id"])
    assert missing == ["sub-IXI637", "sub-IXI638", "sub-IXI643", "sub-IXI661"]
    assert all(Path(p).is_file() and "derivatives" not in p for p in t["path"])
    assert report.notes == []


def test_cohort_check_prints_the_ixi_summary(tmp_path):
    app = typer.Typer()
    register(app)
    out = tmp_path / "ixi.tsv"
    result = CliRunner().invoke(app, ["cohort", "check", str(IXI), "--write", str(out)])
    assert result.exit_code == 0, result.output
    assert "scans 125, subjects 125" in result.stdout
    assert "age known for 121 scan(s), missing for 4" in result.stdout
    assert "per site: HH: 125" in result.stdout and "problems: 0" in result.stdout
    assert len(out.read_text().splitlines()) == 126
