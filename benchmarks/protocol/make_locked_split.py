"""Write the locked test split of the IXI scans (run once; the file is committed).

    python benchmarks/protocol/make_locked_split.py   # -> benchmarks/protocol/ixi_locked_split.json

About a quarter of the aged scans, stratified by sex and age: within each sex, subjects
sorted by age are dealt in blocks of four and one of each block (seeded) is locked. Nothing
is ever chosen on the locked subjects: benchmarks select on the development subjects by
nested cross-validation and only then score the locked ones once.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
IXI = HERE.parents[1] / ".." / "shared" / "data" / "ixi-hh-2mm"
OUT = HERE / "ixi_locked_split.json"
SEED = 20261207


def main() -> None:
    table = pd.read_csv(IXI / "participants.tsv", sep="\t", na_values="n/a")
    aged = table[table["age"].notna()].sort_values(["sex", "age", "participant_id"])
    rng = np.random.default_rng(SEED)
    locked = []
    for _, group in aged.groupby("sex", sort=True):
        ids = group["participant_id"].tolist()
        for start in range(0, len(ids), 4):
            block = ids[start:start + 4]
            if len(block) == 4 or rng.random() < len(block) / 4:
                locked.append(block[int(rng.integers(len(block)))])
    dev = sorted(set(aged["participant_id"]) - set(locked))
    record = {
        "format": "brainage-locked-split", "dataset": "ixi-hh-2mm", "seed": SEED,
        "rule": "per sex, age-sorted blocks of 4, one locked per block (seeded)",
        "locked_test": sorted(locked), "development": dev,
        "unlabelled": sorted(table.loc[table["age"].isna(), "participant_id"]),
    }
    OUT.write_text(json.dumps(record, indent=1) + "\n")
    ages = aged.set_index("participant_id")["age"]
    print(f"{OUT}: {len(locked)} locked (age {ages[locked].mean():.1f} +- "
          f"{ages[locked].std():.1f}), {len(dev)} development "
          f"(age {ages[dev].mean():.1f} +- {ages[dev].std():.1f})")


if __name__ == "__main__":
    main()
