"""Prediction heads: a linear regressor for encoders, and TSAN's stage-1 / stage-2 heads."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from brainage.models.layers import make_act


class LinearHead(nn.Module):
    """Dropout -> Linear(F -> num_outputs): the regression head of the contrastive paper."""

    def __init__(self, num_features: int, num_outputs: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(num_features, num_outputs)

    def forward(self, features: Tensor) -> Tensor:
        return self.fc(self.drop(features))  # (B, F) -> (B, K)


class SexBranch(nn.Module):
    """TSAN's sex branch: one-hot (B, 2) -> Linear(2->16) -> Linear(16->8) -> act -> (B, 8)."""

    def __init__(self, act: str = "elu") -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 16), nn.Linear(16, 8), make_act(act))

    def forward(self, sex_one_hot: Tensor) -> Tensor:
        return self.net(sex_one_hot)  # (B, 2) -> (B, 8)


class TSANHead(nn.Module):
    """ScaleDense (stage 1) head, exactly as published.

    Image features Linear(F->32) + act; with sex, concat the sex branch (40); then
    Linear(->16) -> Linear(16->K) -> ReLU (the ReLU is optional, ``output_relu``).
    """

    def __init__(
        self, num_features: int, num_outputs: int = 1, use_sex: bool = False, act: str = "elu",
        dropout: float = 0.0, output_relu: bool = True,
    ) -> None:
        super().__init__()
        self.image = nn.Sequential(nn.Dropout(dropout), nn.Linear(num_features, 32), make_act(act))
        self.sex = SexBranch(act) if use_sex else None
        width = 32 + (8 if use_sex else 0)
        self.out = nn.Sequential(nn.Linear(width, 16), nn.Linear(16, num_outputs))
        self.output_relu = output_relu

    def forward(self, features: Tensor, sex_one_hot: Tensor | None = None) -> Tensor:
        h = self.image(features)  # (B, F) -> (B, 32)
        if self.sex is not None:
            h = torch.cat([h, self.sex(sex_one_hot)], dim=1)  # -> (B, 40)
        out = self.out(h)  # -> (B, K)
        return torch.relu(out) if self.output_relu else out


class ResidualAgeHead(nn.Module):
    """TSAN stage-2 head: predicts a residual from image features and the discretized age.

    Age branch Linear(1->32) -> ReLU -> Linear(32->16) -> ReLU; image Linear(F->32) + act;
    optional sex branch (8); concat (56, or 48 without sex) -> Linear(->16) -> Linear(16->K).
    No final activation.
    """

    def __init__(
        self, num_features: int, num_outputs: int = 1, use_sex: bool = False, act: str = "elu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.image = nn.Sequential(nn.Dropout(dropout), nn.Linear(num_features, 32), make_act(act))
        self.age = nn.Sequential(nn.Linear(1, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU())
        self.sex = SexBranch(act) if use_sex else None
        width = 32 + 16 + (8 if use_sex else 0)
        self.out = nn.Sequential(nn.Linear(width, 16), nn.Linear(16, num_outputs))

    def forward(self, features: Tensor, age_input: Tensor, sex_one_hot: Tensor | None = None
                ) -> Tensor:
        parts = [self.image(features), self.age(age_input)]  # (B, 32), (B, 1) -> (B, 16)
        if self.sex is not None:
            parts.append(self.sex(sex_one_hot))  # (B, 8)
        return self.out(torch.cat(parts, dim=1))  # (B, 56) -> (B, K)


class LinearHeadMixin:
    """``forward_head`` / ``reset_head`` for encoders whose head is ``self.head``, a LinearHead.

    The class defines ``_init_head(head)`` (its own weight init) and keeps ``self.dropout``.
    """

    def forward_head(self, features: Tensor, **cov: Tensor) -> Tensor:
        """Features ``(B, F)`` -> age ``(B,)``."""
        self.collect_covariates(**cov)  # type: ignore[attr-defined]
        return self.squeeze_output(self.head(features))  # type: ignore[attr-defined]

    def reset_head(self, num_outputs: int = 1) -> None:
        """Fresh linear head with ``num_outputs`` outputs."""
        from brainage.models.base import check_num_outputs

        check_num_outputs(num_outputs)
        self.num_outputs = num_outputs
        device = self.head.fc.weight.device  # type: ignore[attr-defined]
        self.head = LinearHead(self.num_features, num_outputs,  # type: ignore[attr-defined]
                               self.dropout).to(device)  # type: ignore[attr-defined]
        self._init_head(self.head)  # type: ignore[attr-defined]
