"""Build the bundled default model (``make model``): trained on the real IXI scans.

    python benchmarks/make_bundled_model.py [--prepared /tmp/ixi-prepared] [--preset tissue_ridge]
        [--network quickstart | --network none] [--network-run DIR]

1. prepares ``../shared/data/ixi-hh-2mm`` with the default spec (cached in ``--prepared``;
   resumes), 2. trains the preset with 5-fold cross-validation (out-of-fold predictions give
   the bias correction and the 90 % intervals), 3. copies the run folder (no checkpoints or
   logs) into ``src/brainage/bundled/ixi_tissue_ridge/``, adds the data licence and the
   intended use to its model card, 4. records the selftest's expected predictions
   (``golden.json``) and 5. prints the size; 6. the same for the CPU network preset
   (``--network``, default ``quickstart``; about 15 min on 2 cores, or ``--network-run`` to
   copy a finished run of that preset on the same scans and splits) into
   ``src/brainage/bundled/ixi_sfcn/``, which ``--init-from bundled`` fine-tunes. Deterministic:
   the same data and versions give the same files.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IXI = ROOT / ".." / "shared" / "data" / "ixi-hh-2mm"
LICENCE = {
    "data": "IXI dataset (brain-development.org/ixi-dataset), Hammersmith Hospital site "
            "(Philips 3 T), 2 mm copies from the test data of CBICA/NiChart_Project",
    "licence": "CC BY-SA 3.0 (creativecommons.org/licenses/by-sa/3.0/); this model is "
               "derived from the IXI data and shared under the same licence, with attribution "
               "to the IXI dataset",
}
VALID_FOR = ("adults 20-82 years, T1w scans like those of one 3 T Philips site; expect larger "
             "errors on other scanners, sites and ages; refit the bias correction on your own "
             "controls (brainage evaluate --fit-on ...)")
SKIP = {"checkpoints", "logs", ".lock"}
METRICS_NOTE = ("'metrics' are out-of-fold over the training scans; this configuration was "
                "chosen on the same scans in an earlier benchmark, so they are optimistic: "
                "quote 'honest_evaluation' (nested cross-validation and the locked split)")
#: Nested-CV and locked-split figures of the presets (benchmarks/bench_nested.py --json).
FIGURES = ROOT / "benchmarks" / "protocol" / "ixi_figures.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, default=Path("/tmp/brainage-ixi-prepared"))
    parser.add_argument("--preset", default="tissue_ridge")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--network", default="quickstart", help="network preset, or none")
    parser.add_argument("--network-run", type=Path, help="a finished run of --network")
    parser.add_argument("--figures", type=Path, default=FIGURES,
                        help="the honest figures of benchmarks/bench_nested.py (--json) for "
                             "the model card")
    args = parser.parse_args()
    if not IXI.is_dir():
        sys.exit(f"IXI data not found under {IXI}")
    import brainage
    from brainage.inference.bundled import BUNDLED_DIR, BUNDLED_NAME, BUNDLED_NETWORK
    from brainage.inference.selftest import record_golden

    summary = brainage.prepare(IXI, args.prepared, jobs=args.jobs, progress=False)
    print(summary.format(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        run = brainage.train(args.prepared, Path(tmp) / "run", args.preset,
                             overrides=["split.method=kfold", "split.folds=5"])
        target = bundle(run, BUNDLED_DIR / BUNDLED_NAME, args.preset,
                        honest_figures(args.figures, args.preset))
        if args.network != "none":
            net = args.network_run or brainage.train(
                args.prepared, Path(tmp) / "net", args.network, splits=run / "splits.json",
                overrides=["split.method=kfold", "split.folds=5", "progress_bar=false"])
            bundle(net, BUNDLED_DIR / BUNDLED_NETWORK, args.network)
    golden = record_golden(target)
    size = sum(p.stat().st_size for p in BUNDLED_DIR.rglob("*") if p.is_file())
    metrics = json.loads((target / "metrics.json").read_text())["uncorrected"]["test"]
    print(f"bundled models: {BUNDLED_DIR} ({size / 1e6:.2f} MB); default out-of-fold MAE "
          f"{metrics['mae']:.2f} y, r {metrics['pearson_r']:.3f}; golden outputs {golden}")


def honest_figures(path: Path, preset: str) -> dict | None:
    """The preset's nested-CV and locked-split figures, for the model card (None: none)."""
    if not path.is_file():
        print(f"warning: {path} not found; the model card gets no locked-split figures",
              file=sys.stderr)
        return None
    data = json.loads(path.read_text())
    runs = data.get("runs", {})
    if preset not in runs:
        print(f"warning: {path} has no figures of {preset}", file=sys.stderr)
        return None
    return {
        "protocol": "benchmarks/bench_nested.py: the locked split "
                    "(benchmarks/protocol/ixi_locked_split.json, 29 of the 121 aged scans, "
                    "stratified by sex and age) is never used to choose; on the 92 "
                    "development subjects, 5 outer folds score models whose features and "
                    "hyper-parameters were chosen on the other folds only (nested); the "
                    "locked figure is of the preset trained on the development subjects",
        "preset": preset, **runs[preset],
        "note": "the run's own metrics below are out-of-fold over all 121 scans (the model "
                "shipped is trained on all of them); quote the nested and locked figures",
    }


def bundle(run: Path, target: Path, preset: str, figures: dict | None = None) -> Path:
    """Copy a run into the package (no checkpoints or logs) with the licence in its card.

    The copy is built beside `target` and swapped in only when complete, so a failure midway
    leaves the previous bundled model in place."""
    partial = target.with_name(f".{target.name}.partial")
    old = target.with_name(f".{target.name}.old")
    for leftover in (partial, old):
        if leftover.exists():
            shutil.rmtree(leftover)
    shutil.copytree(run, partial, ignore=lambda _d, names: [n for n in names if n in SKIP])
    card_path = partial / "model_card.json"
    card = json.loads(card_path.read_text())
    card["training_data_licence"] = LICENCE
    card["valid_for"] = VALID_FOR
    card["built_by"] = f"benchmarks/make_bundled_model.py (preset {preset})"
    if figures is not None:
        card["honest_evaluation"] = figures
    card["metrics_note"] = METRICS_NOTE
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    if target.exists():
        target.rename(old)
    partial.rename(target)
    if old.exists():
        shutil.rmtree(old)
    return target


if __name__ == "__main__":
    main()
