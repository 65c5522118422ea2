"""Pretrain a tiny encoder with DDP on 2 CPU processes (gloo); each rank writes a hash of its
weights and the size of its training set.

Run by test_ddp.py as ``python ddp_pretrain_job.py OUT``; Lightning relaunches it for rank 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ddp_job import DumpWeights  # noqa: E402
from synthetic_runs import make_prepared, tiny_config  # noqa: E402

from brainage.training import pretrain as pretrain_mod  # noqa: E402
from brainage.training.config import ContrastiveSpec, LossSpec, SplitSpec  # noqa: E402


def main(out: Path) -> None:
    torch.set_num_threads(1)
    first = os.environ.get("LOCAL_RANK", "0") == "0"
    cohort = make_prepared(out / "prep", n=12, write=first)
    config = tiny_config(epochs=2, accelerator="cpu", devices=2, strategy="ddp",
                         loss=LossSpec("contrastive"), split=SplitSpec("holdout", val=0.0, test=0.25),
                         contrastive=ContrastiveSpec(projection=[8]))
    original = pretrain_mod.fit_checkpoint
    pretrain_mod.fit_checkpoint = lambda *a, **k: original(*a, **k, callbacks=[DumpWeights(out)])
    pretrain_mod.pretrain_cohort(cohort, out / "run", config)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
