"""What prediction reads from a run folder besides the weights, checked before any scan is.

* ``run.json``: its ``training_range`` must be ``[min, max]`` in years (a bad value used to
  end in ``float('a')``);
* ``preprocessing_spec.json``: required; a missing one is a damaged run, not a folder to
  prepare into;
* member folders (``model.json`` + ``weights.safetensors``): a damaged file is refused by
  name (:func:`member_files`), not left to fail deep in a loader;
* ``bias_correction.json`` and ``interval_calibration.json``: optional (training fits them
  only with enough held-out subjects with an age), but never lost silently: a missing one
  is a note, which ``predict`` prints and records next to its table; a damaged one is refused.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brainage import runs as rf
from brainage.errors import BrainAgeError, InputError
from brainage.io import parse_json_file

# load_spec moved below training (fine-tuning checks a source run's spec with it); it is
# still run_files.load_spec for inference/predictor.py.
from brainage.preprocessing.run_spec import load_spec  # noqa: F401


@dataclass
class Corrections:
    """The run's optional fitted pieces and what is missing."""

    bias: Any = None
    intervals: Any = None
    notes: list[str] = field(default_factory=list)


def read_info(run: Path) -> rf.RunInfo:
    """``run.json``, with its fields checked.

    Raises:
        BrainAgeError: not a finished run, or a field is unusable.
    """
    path = run / rf.RUN_JSON
    if path.is_file():
        data = parse_json_file(path, "rerun the same `brainage train` command")
        span = data.get("training_range") if isinstance(data, dict) else None
        if not (isinstance(span, list) and len(span) == 2 and all(_finite(a) for a in span)
                and span[0] <= span[1]):
            raise InputError(
                f"{path}: training_range is {span!r}; expected [min, max], the training "
                "ages in years. Fix: restore run.json from a copy of the run, or retrain.")
    try:
        return rf.read_run_info(run)
    except BrainAgeError:  # already names the file and the fix (InputError is a ValueError)
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: a field is missing or unusable ({type(exc).__name__}: "
                            f"{exc}). Fix: restore run.json from a copy of the run, or "
                            "retrain.") from exc


def _damage_types() -> tuple[type[BaseException], ...]:
    from safetensors import SafetensorError

    # what a loader raises on a model.json with a field missing, of the wrong type or not
    # UTF-8 JSON, and on a cut or garbled safetensors file
    return (KeyError, IndexError, TypeError, ValueError, AttributeError, OSError,
            SafetensorError)


@contextlib.contextmanager
def member_files(folder: Path, what: str = "the model files (model.json, weights.safetensors) are"
                 ) -> Iterator[None]:
    """Turn a loader's failure on a damaged run file into a named error.

    Args:
        folder: The member folder (or file) being loaded, for the message.
        what: The files it reads, for the message.

    Raises:
        BrainAgeError: as raised inside when it names `folder`; else an InputError naming
            the folder, what failed and the fix (for a named error that does not name the
            file, and for anything a damaged file makes a loader raise).
    """
    try:
        yield
    except BrainAgeError as exc:
        if str(folder) in str(exc):  # already names the file
            raise
        raise _damaged(folder, what, str(exc)) from exc  # e.g. a config rule's message
    except _damage_types() as exc:
        raise _damaged(folder, what, f"{type(exc).__name__}: {exc}") from exc


def _damaged(folder: Path, what: str, why: str) -> InputError:
    return InputError(f"{folder}: {what} damaged or edited ({' '.join(why.split())[:300]}); "
                      "expected the files `brainage train` wrote. Fix: restore the run folder "
                      "from a copy, or retrain.")


def load_corrections(run: Path) -> Corrections:
    """Bias correction and interval calibration, each None with a note when absent.

    Raises:
        BrainAgeError: a file is present but damaged (every bad field named).
    """
    from brainage.evaluation.stored import load_bias_correction, load_intervals

    out = Corrections()
    fitted = _metrics(run)
    if (run / rf.BIAS).is_file():
        with member_files(run / rf.BIAS, "the bias correction is"):
            out.bias = load_bias_correction(run / rf.BIAS)
    else:
        out.notes.append(_missing(run, rf.BIAS, "corrected_age and corrected_gap",
                                  "bias_correction" in fitted))
    if (run / rf.INTERVALS).is_file():
        with member_files(run / rf.INTERVALS, "the interval calibration is"):
            out.intervals = load_intervals(run / rf.INTERVALS)
    else:
        out.notes.append(_missing(run, rf.INTERVALS, "interval_low and interval_high",
                                  "intervals" in fitted))
    return out


def _missing(run: Path, name: str, columns: str, recorded: bool) -> str:
    why = (f"metrics.json records one, so the file was lost: restore {name} from a copy of "
           "the run" if recorded else
           "training fitted none (too few held-out subjects with an age); `brainage "
           "evaluate --fit-on ...` fits a bias correction on your own controls")
    return f"run {run} has no {name}, so the predictions have no {columns} ({why})"


def _metrics(run: Path) -> dict[str, Any]:
    try:
        data = json.loads((run / rf.METRICS).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
