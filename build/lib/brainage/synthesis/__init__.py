"""Synthetic, age-labelled brains by within-bin latent interpolation (TGB-GAN, Li et al. 2021).

Three steps, each testable without a trained network:

1. :func:`plan_synthesis` - which children to make (parents, weights, ages), seeded.
2. :func:`children_per_fold` / :func:`check_synthetic_placement` - the leakage rule:
   a child trains only where both parents train, and never validates or tests.
3. :func:`decode_children` - mix the parents' latents and decode; :func:`age_change_map`
   and :func:`mass_fraction` map where decoded brains change from young to old.

>>> plan = plan_synthesis(["a", "b", "c"], [20.1, 19.8, 20.4], cap=5, seed=0)
>>> len(plan.children), plan.shortfall
(2, {})
"""

from brainage.synthesis.change_map import age_change_map, latent_path, mass_fraction, path_change
from brainage.synthesis.decode import (
    decode_batches,
    decode_children,
    encode_subjects,
    mix_latents,
    stack_latents,
)
from brainage.synthesis.leakage import check_synthetic_placement, children_per_fold, fold_roles
from brainage.synthesis.plan import SynthesisPlan, SyntheticChild, age_bin, plan_synthesis

__all__ = [
    "SynthesisPlan",
    "SyntheticChild",
    "age_bin",
    "age_change_map",
    "check_synthetic_placement",
    "children_per_fold",
    "decode_batches",
    "decode_children",
    "encode_subjects",
    "fold_roles",
    "latent_path",
    "mass_fraction",
    "mix_latents",
    "path_change",
    "plan_synthesis",
    "stack_latents",
]
