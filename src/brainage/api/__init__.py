"""The public Python API: one function per step of the pipeline, as the CLI runs them.

Each ``brainage`` command is a thin shell over one of these (it parses options, calls the
function, prints the result), and ``import brainage`` exposes them lazily::

    brainage.simulate -> brainage.load_cohort -> brainage.prepare -> brainage.train
    -> brainage.predict(inputs, run) -> brainage.evaluate
    -> brainage.explain / brainage.report

Contrastive regression: brainage.pretrain -> brainage.probe -> brainage.predict (a probed
encoder run predicts like any run). TGB-GAN augmentation: brainage.gan_train ->
brainage.gan_synthesize (and brainage.gan_change_map) -> brainage.train(..., synthetic=...).

Heavy libraries (torch, ANTsPy, Lightning) load inside the functions, on first use.

The functions live in private modules, one a group of steps (``_cohort``, ``_training``,
``_gan``, ``_predict``, ``_evaluate``, ``_bidsapp``, ``_catalogue``); this module is their
one public path.
"""

from brainage.api._bidsapp import bids_group, bids_participant
from brainage.api._catalogue import ModelSummary, list_models, presets, selftest, show_config
from brainage.api._cohort import check_cohort, load_cohort, prepare, simulate, split
from brainage.api._common import PathLike
from brainage.api._evaluate import evaluate, report
from brainage.api._gan import gan_change_map, gan_synthesize, gan_train
from brainage.api._predict import explain, predict
from brainage.api._training import pretrain, probe, train

__all__ = ["ModelSummary", "PathLike", "bids_group", "bids_participant", "check_cohort",
           "evaluate", "explain", "gan_change_map", "gan_synthesize", "gan_train", "list_models",
           "load_cohort", "predict", "prepare", "presets", "pretrain", "probe", "report",
           "selftest", "show_config", "simulate", "split", "train"]
