"""Train a tiny run with DDP on 2 CPU processes (gloo); each rank writes a hash of its weights.

Run by test_ddp.py as ``python ddp_job.py OUT``; Lightning relaunches this script for rank 1.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_runs import make_prepared, tiny_config  # noqa: E402

from brainage.training import fit as train_mod  # noqa: E402


class DumpWeights(L.Callback):
    """Write sha256 of the trained parameters to OUT/rank<r>.txt at the end of training."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        data = b"".join(p.detach().cpu().numpy().tobytes()
                        for _, p in sorted(module.model.named_parameters()))
        n = len(trainer.datamodule.train_set)
        text = f"{hashlib.sha256(data).hexdigest()} {trainer.world_size} {n}"
        (self.out / f"rank{trainer.global_rank}.txt").write_text(text)


def main(out: Path) -> None:
    torch.set_num_threads(1)
    first = os.environ.get("LOCAL_RANK", "0") == "0"
    cohort = make_prepared(out / "prep", n=12, write=first)
    config = tiny_config(epochs=2, accelerator="cpu", devices=2, strategy="ddp")
    original = train_mod.fit_member
    train_mod.fit_member = lambda *a, **k: original(*a, **k, callbacks=[DumpWeights(out)])
    train_mod.train_cohort(cohort, out / "run", config)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
