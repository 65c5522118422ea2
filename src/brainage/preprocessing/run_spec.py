"""The preprocessing spec a run folder keeps, checked against the hash in ``run.json``.

Read by prediction (:mod:`brainage.inference.run_files`) and by fine-tuning, which refuses
scans prepared otherwise than its source run (:mod:`brainage.training.finetune`).
"""

from __future__ import annotations

from pathlib import Path

from brainage import runs as rf
from brainage.errors import InputError, NotFoundError
from brainage.preprocessing.spec import PreprocessingSpec


def load_spec(run: Path, info: rf.RunInfo) -> PreprocessingSpec:
    """The preprocessing spec the run's models were trained on (matching ``run.json``)."""
    path = run / rf.PREPROCESSING
    if not path.is_file():
        raise NotFoundError(
            f"{path}: not found; a run folder keeps the preprocessing spec its models were "
            f"trained on (hash {info.spec_hash[:12]} in run.json). Fix: restore it from a "
            "copy of the run, or copy preprocessing_spec.json of the prepared folder the run "
            "was trained on.")
    spec = PreprocessingSpec.load(path)
    if spec.hash != info.spec_hash:
        raise InputError(f"{path} does not match the spec the run was trained on "
                            "(run.json). Fix: restore the run folder.")
    return spec
