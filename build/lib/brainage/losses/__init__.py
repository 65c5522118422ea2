"""Training objectives: regression, TSAN ranking terms, SFCN soft labels."""

from brainage.losses.ranking import (
    age_difference_loss,
    average_ranks,
    random_pairs,
    soft_ranks,
    spearman_loss,
)
from brainage.losses.regression import l1_loss, mse_loss, regression_loss
from brainage.losses.soft_label import (
    AgeBins,
    SoftLabelKLLoss,
    expected_age,
    soft_label_kl_loss,
    soft_labels,
)
from brainage.losses.tsan import TSANLoss, tsan_loss

__all__ = [
    "AgeBins",
    "SoftLabelKLLoss",
    "TSANLoss",
    "age_difference_loss",
    "average_ranks",
    "expected_age",
    "l1_loss",
    "mse_loss",
    "random_pairs",
    "regression_loss",
    "soft_label_kl_loss",
    "soft_labels",
    "soft_ranks",
    "spearman_loss",
    "tsan_loss",
]
