"""``brainage selftest``: the bundled model's predictions on generated scans vs recorded ones.

The inputs are made on the spot, the same bytes on every machine: a few heads of the
seeded simulator (MNI152-based, nothing downloaded). ``golden.json`` next to the bundled run
holds how they were made, the predictions recorded when the model was built
(``make model``) and the tolerance. A mismatch means this installation computes something
else (a library version, a changed default): the message names each scan and both ages.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brainage.errors import InputError, NotFoundError
from brainage.io import parse_json_file, write_json

GOLDEN = "golden.json"
#: How the selftest scans are made (``brainage.simulate`` arguments).
INPUTS = {"n": 3, "sites": 1, "seed": 20261203}
#: Allowed difference (years) between the recorded and the recomputed prediction.
TOLERANCE = 0.25


@dataclass
class SelftestResult:
    """Per scan: the recorded and the recomputed age, and whether they agree."""

    run: Path
    tolerance: float
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(r["ok"] for r in self.rows)

    def format(self) -> str:
        lines = [f"selftest of {self.run} (tolerance {self.tolerance} y):"]
        for r in self.rows:
            lines.append(f"  {r['participant_id']}: expected {r['expected']:.2f}, got "
                         f"{r['predicted']:.2f} ({'ok' if r['ok'] else 'MISMATCH'})")
        lines.append("selftest passed: this installation reproduces the recorded predictions."
                     if self.passed else "selftest FAILED: this installation predicts other "
                     "ages than the ones recorded with the model. Fix: install the versions "
                     "in the run's run.json (environment) or report the difference.")
        return "\n".join(lines)


def _predict_inputs(run: Path, inputs: dict[str, Any]) -> dict[str, float]:
    import warnings

    from brainage.data.simulate import make_config, write_cohort
    from brainage.inference.predictor import Predictor

    with tempfile.TemporaryDirectory(prefix="brainage-selftest-") as tmp:
        bids = write_cohort(Path(tmp) / "bids", make_config(**inputs))
        scans = sorted(bids.glob("sub-*/anat/*_T1w.nii.gz")) + sorted(
            bids.glob("sub-*/ses-*/anat/*_T1w.nii.gz"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # out-of-range and note warnings are expected
            out = Predictor.from_run(run).predict(scans)
    return {str(p): float(a) for p, a in zip(out["participant_id"], out["predicted_age"],
                                             strict=True)}


def record_golden(run: Path, tolerance: float = TOLERANCE) -> Path:
    """Predict the selftest scans with `run` and write ``golden.json`` into it."""
    predicted = _predict_inputs(run, INPUTS)
    path = Path(run) / GOLDEN
    write_json(path, {"inputs": INPUTS, "expected": predicted, "tolerance": tolerance,
                      "note": "brainage selftest recomputes these; see "
                              "brainage.inference.selftest"})
    return path


def run_selftest(run: Path | None = None) -> SelftestResult:
    """Recompute the golden predictions of `run` (default: the bundled model).

    Raises:
        BrainAgeError: no bundled model, or the run has no ``golden.json``.
    """
    from brainage.bundled_runs import default_model_dir

    found = Path(run) if run is not None else default_model_dir()
    if found is None:
        raise NotFoundError("this installation has no bundled model to test. Fix: pass a run "
                            "folder that has a golden.json (--model RUN).")
    if not (found / GOLDEN).is_file():
        raise InputError(f"{found} has no {GOLDEN} (expected predictions). Fix: record them "
                         "with brainage.inference.selftest.record_golden(RUN).")
    golden = parse_json_file(found / GOLDEN, "rebuild the model (make model)")
    tolerance = float(golden.get("tolerance", TOLERANCE))
    got = _predict_inputs(found, dict(golden["inputs"]))
    result = SelftestResult(found, tolerance)
    for pid, expected in golden["expected"].items():
        value = got.get(pid, float("nan"))
        result.rows.append({"participant_id": pid, "expected": float(expected),
                            "predicted": value, "ok": abs(value - float(expected)) <= tolerance})
    return result
