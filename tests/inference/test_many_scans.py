"""Many scans in worker processes (issue 22): ``--jobs 2`` gives the bytes of ``--jobs 1``,
a failed scan is named and the others go on, progress and the summary line are readable.

The raw scans go through the real pipeline (worker processes cannot see a monkeypatched
fake) with a spec of few registration iterations on the 8 mm test grid, so it is quick.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_runs import SHAPE, make_prepared, volume
from typer.testing import CliRunner

from brainage.errors import InputError
from brainage.inference.outputs import NoteWarning
from brainage.inference.predictor import Predictor
from brainage.parallel import available_cores, resolve_jobs
from brainage.progress import Progress, log_every

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "preprocessing"))
from prep_helpers import write_nifti  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # runs without OOD reference

#: Few iterations everywhere: seconds per scan, still every step of the real pipeline.
FAST = dict(tissues=True, n4=False, affine_coarse_iterations=[20, 10],
            affine_fine_iterations=[5], tissue_iterations=3)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from brainage.preprocessing.spec import PreprocessingSpec

    spec = PreprocessingSpec.create("8mm:{}x{}x{}".format(*SHAPE), **FAST)
    return make_prepared(tmp_path_factory.mktemp("many") / "prep", n=24, spec=spec,
                         tissues=True)


@pytest.fixture(scope="module")
def run(prepared, tmp_path_factory):
    from brainage.training.config import load_train_config
    from brainage.training.fit import train_cohort

    cfg = load_train_config(None, ["classical.estimator=ridge", "repeats=1", "split.folds=3"])
    return train_cohort(prepared, tmp_path_factory.mktemp("r") / "ridge", cfg)


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """Two raw heads and, between them, a file cut short."""
    raw = tmp_path_factory.mktemp("raw")
    rng = np.random.default_rng(1)
    good = [write_nifti(raw / f"sub-{i}_T1w.nii.gz", volume(30 + 20 * i, rng, (24, 28, 20))
                        * 100, zooms=(8.0, 8.0, 8.0)) for i in (1, 3)]
    cut = write_nifti(raw / "sub-2_T1w.nii", volume(50, rng, (24, 28, 20)))
    cut.write_bytes(cut.read_bytes()[:2048])
    return [good[0], cut, good[1]]


def test_two_jobs_give_the_bits_of_one_and_name_the_failed_scan(run, scans):
    predictor = Predictor.from_run(run)
    with pytest.warns(NoteWarning, match=r"1 of 3 scan\(s\) not predicted: .*sub-2_T1w"):
        one = predictor.predict(scans, jobs=1)
    seen: list[tuple[int, int]] = []
    with pytest.warns(NoteWarning, match=r"1 of 3 scan\(s\) not predicted: .*sub-2_T1w"):
        two = predictor.predict(scans, jobs=2, progress=lambda d, t: seen.append((d, t)))
    pd.testing.assert_frame_equal(one, two, check_exact=True)
    assert two["participant_id"].tolist() == ["sub-1", "sub-2", "sub-3"]  # input order
    assert two["predicted_age"].isna().tolist() == [False, True, False]
    assert "preprocessing failed" in two.loc[1, "error"] and two["error"].isna()[[0, 2]].all()
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert np.ptp(two["predicted_age"].dropna()) > 0  # two different scans, two ages


def test_cli_jobs_two_logs_progress_and_ends_with_one_summary_line(run, scans, tmp_path):
    from brainage.cli.main import app

    out = tmp_path / "p.tsv"
    res = CliRunner().invoke(app, ["predict", str(run), *map(str, scans), "-o", str(out),
                                   "--jobs", "2", "--no-progress"])
    assert res.exit_code == 1, res.output  # one scan failed
    lines = res.stderr.strip().splitlines()
    progress = [x for x in lines if re.match(r"predict: \d/3 scans, [\d.]+ s/scan, ETA", x)]
    assert len(progress) == 3 and progress[-1].endswith("ETA 0s, 1 failed")
    assert re.fullmatch(r"predict: 2 done, 0 skipped, 1 failed in [\d.]+s \([\d.]+ s/scan\)",
                        lines[-1])
    assert "not predicted  sub-2" in res.stdout
    assert pd.read_csv(out, sep="\t")["participant_id"].tolist() == ["sub-1", "sub-2", "sub-3"]


def test_prepared_scans_go_in_batches_with_the_same_predictions(run, prepared):
    whole = Predictor.from_run(run).predict(prepared.table)
    predictor = Predictor.from_run(run, batch_size=2)  # tasks of 16 scans: 16 + 8
    seen: list[tuple[int, int]] = []
    chunked = predictor.predict(prepared.root, progress=lambda d, t: seen.append(
        (d, t)))
    pd.testing.assert_frame_equal(chunked, whole, check_exact=True)
    assert seen[-1] == (24, 24) and len(seen) == 24 and (16, 24) in seen


def test_jobs_below_one_is_a_clear_error_and_none_means_every_core():
    with pytest.raises(InputError, match=r"--jobs 0: expected 1 or more.*Fix"):
        resolve_jobs(0, 5)
    assert resolve_jobs(None, 1000) == available_cores()
    assert resolve_jobs(8, 3) == 3 and resolve_jobs(None, 0) == 1


def test_log_lines_every_few_scans_then_the_summary():
    stream = io.StringIO()  # not a terminal: lines, no bar
    bar = Progress(40, "prepare", True, skipped=5, stream=stream)
    for i in range(40):
        bar.update("failed" if i == 7 else "done")
    text = bar.close()
    lines = stream.getvalue().splitlines()
    assert log_every(40) == 2 and len(lines) == 21  # every 2nd scan, then the summary
    assert lines[0].startswith("prepare: 2/40 scans, ") and "1 failed" in lines[4]
    assert lines[-1] == text and text.startswith("prepare: 39 done, 5 skipped, 1 failed in ")
    assert log_every(3) == 1 and log_every(10_000) == 10


def test_a_terminal_gets_a_bar_and_the_api_default_is_quiet():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    bar = Progress(3, "explain", True, stream=tty)
    for _ in range(3):
        bar.update()
    bar.close()
    assert "3/3" in tty.getvalue() and "scan" in tty.getvalue()
    assert tty.getvalue().rstrip().splitlines()[-1].startswith("explain: 3 done, 0 skipped")
    quiet = io.StringIO()
    bar = Progress(3, "predict", False, stream=quiet)
    bar.update()
    bar.close()
    assert quiet.getvalue() == ""
