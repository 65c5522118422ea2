"""SFCN (Peng et al., "Accurate brain age prediction with lightweight deep neural networks",
Medical Image Analysis 2021).

Blocks 0..n-2: Conv3d(k3, p1) -> BN -> MaxPool(2) -> ReLU; last block Conv3d(k1) -> BN -> ReLU
(channels 32-64-128-256-256-64). Classifier: average pool over the remaining extent (adaptive,
so any input size works) -> Dropout(0.5) -> 1x1 conv (here a Linear on the pooled vector,
the same map) -> log_softmax over age bins. Predicted age = expected bin centre.

Bins: the paper used (42, 82) with width 1 (UK Biobank, 40 bins). brainage defaults to
(0, 100) with width 2 (50 bins) so one model covers childhood to old age; pass
``age_range``/``bin_width`` to reproduce the paper or import its weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from brainage.errors import InputError
from brainage.losses.soft_label import AgeBins
from brainage.models.base import BrainAgeModel
from brainage.models.input_stage import DEFAULT_RANGE
from brainage.models.layers import check_dropout, check_positive, make_act, make_norm
from brainage.models.registry import register_model

PAPER = ("Peng et al., Accurate brain age prediction with lightweight deep neural networks, "
         "Medical Image Analysis 68, 2021")


class SFCNBlock(nn.Module):
    """Conv3d -> norm -> [MaxPool(2)] -> act (module names ``conv``, ``norm``)."""

    def __init__(self, in_channels: int, out_channels: int, pool: bool, norm: str, act: str
                 ) -> None:
        super().__init__()
        k = 3 if pool else 1
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size=k, padding=k // 2)
        self.norm = make_norm(norm, out_channels)
        self.pool = nn.MaxPool3d(2) if pool else nn.Identity()
        self.act = make_act(act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.pool(self.norm(self.conv(x))))  # (B, Cin, D, ...) -> (B, Cout, ...)


class SFCN(BrainAgeModel):
    """SFCN with a soft-label output over age bins; ``forward`` returns the expected age.

    Args:
        in_channels: Image channels.
        num_outputs: Must be 1 (one age distribution per subject).
        channels: Block widths; every block but the last halves the size (paper: 32, 64,
            128, 256, 256, 64), so inputs need ``2**(len(channels) - 1)`` voxels per axis.
        age_range: ``(start, stop)`` of the bins in years.
        bin_width: Bin width in years.
        norm: Norm after each conv (``batch``).
        act: Activation (``relu``).
        dropout: Dropout before the classifier (0.5).
        input_pool: Average-pool the input by this factor first (1 = off; 2 on the 2 mm grid
            = the 4 mm CPU preset).
        input_bins, input_range: Intensity bins before pooling (0 = off) and the range of
            their centres (:mod:`brainage.models.input_stage`).
    """

    bin_layer = "classifier"  # one logit per age bin (fine-tuning extends its rows)

    def __init__(self, in_channels: int = 1, num_outputs: int = 1,
                 channels: Sequence[int] = (32, 64, 128, 256, 256, 64),
                 age_range: Sequence[float] = (0.0, 100.0), bin_width: float = 2.0,
                 norm: str = "batch", act: str = "relu", dropout: float = 0.5,
                 input_pool: int = 1,
                 input_bins: int = 0, input_range: Sequence[float] = DEFAULT_RANGE) -> None:
        super().__init__()
        first = self.set_input(in_channels, input_pool, input_bins, input_range)
        channels = [int(c) for c in channels]
        if len(channels) < 1:
            raise InputError("channels must list at least one block width.")
        check_positive(in_channels=in_channels, **{f"channels[{i}]": c
                                                   for i, c in enumerate(channels)})
        check_dropout(dropout)
        _check_single_output(num_outputs)
        self.in_channels, self.num_outputs = in_channels, 1
        self.age_bins = AgeBins.from_range(age_range, bin_width)
        widths = [first, *channels]
        self.features = nn.Sequential(*(
            SFCNBlock(widths[i], widths[i + 1], i < len(channels) - 1, norm, act)
            for i in range(len(channels))
        ))
        self.num_features = channels[-1]
        self.min_input_shape = (2 ** (len(channels) - 1),) * 3
        self.dropout = dropout
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.num_features, self.age_bins.num_bins)
        self.register_buffer("bin_centres", self.age_bins.centres(), persistent=False)

    def forward_features(self, x: Tensor, **cov: Tensor) -> Tensor:
        """Image ``(B, C, D, H, W)`` -> pooled features ``(B, F)``."""
        x = self.prepare_input(x)
        return self.features(x).mean(dim=(2, 3, 4))  # (B, F, d, h, w) -> (B, F)

    def head_log_probs(self, features: Tensor) -> Tensor:
        """Features ``(B, F)`` -> log-probabilities over bins ``(B, num_bins)``."""
        return torch.log_softmax(self.classifier(self.drop(features)), dim=1)

    def forward_logits(self, x: Tensor) -> Tensor:
        """Image -> log-probabilities over age bins ``(B, num_bins)`` (input of the KL loss)."""
        return self.head_log_probs(self.forward_features(x))

    def expected_age(self, log_probs: Tensor) -> Tensor:
        """Log-probabilities ``(B, num_bins)`` -> expected age ``(B,)``."""
        return log_probs.exp() @ self.bin_centres.to(log_probs)  # (B, N) @ (N,) -> (B,)

    def forward_outputs(self, x: Tensor, **cov: Tensor) -> dict[str, Tensor]:
        """``{"age": (B,), "log_probs": (B, num_bins)}`` from one forward pass."""
        self.collect_covariates(**cov)
        log_probs = self.forward_logits(x)
        return {"age": self.expected_age(log_probs), "log_probs": log_probs}

    def forward_head(self, features: Tensor, **cov: Tensor) -> Tensor:
        """Features ``(B, F)`` -> expected age ``(B,)``."""
        self.collect_covariates(**cov)
        return self.expected_age(self.head_log_probs(features))

    def reset_head(self, num_outputs: int = 1) -> None:
        """Re-initialise the bin classifier (SFCN predicts one age distribution)."""
        _check_single_output(num_outputs)
        self.classifier.reset_parameters()


def _check_single_output(num_outputs: int) -> None:
    if num_outputs != 1:
        raise InputError(
            f"sfcn predicts one age distribution per subject; num_outputs must be 1, got "
            f"{num_outputs!r}. Fix: use another model for several outputs."
        )


@register_model(SFCN, tiny={"channels": [4, 8, 8, 4]}, paper=PAPER)
def sfcn(**kwargs: object) -> SFCN:
    """SFCN (Peng et al. 2021): 6 conv blocks, soft-label output over age bins, expected age."""
    return SFCN(**kwargs)  # type: ignore[arg-type]
