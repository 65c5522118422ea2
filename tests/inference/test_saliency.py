"""Saliency maps: exactness on toy models, completeness, region summary, sanity checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from brainage.errors import BrainAgeError
from brainage.inference.regions import COLUMNS, REGIONS, region_labels
from brainage.inference.saliency import (
    integrated_gradients,
    occlusion,
    predict_one,
    region_summary,
    smoothgrad,
)
from brainage.models import create_model
from brainage.preprocessing.grids import get_grid

SHAPE = (12, 16, 8)  # unequal axes so axis mix-ups fail


class Linear(nn.Module):
    """f(x) = sum(w * x) + b, with a sex term when a sex code is passed."""

    def __init__(self, shape: tuple[int, ...] = SHAPE, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(shape, generator=g))
        self.b = nn.Parameter(torch.tensor(40.0))

    def forward(self, x: torch.Tensor, sex: torch.Tensor | None = None) -> torch.Tensor:
        out = (x[:, 0] * self.w).sum(dim=(1, 2, 3)) + self.b  # (B, 1, D, H, W) -> (B,)
        return out if sex is None else out + 3.0 * sex[:, 1]


def _volume(shape=SHAPE, seed=1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_ig_of_a_linear_model_is_weight_times_input() -> None:
    model, x = Linear(), _volume()
    base = _volume(seed=2)
    ig = integrated_gradients(model, x, baseline=base, steps=3, batch=2)
    assert ig.shape == SHAPE and ig.dtype == np.float32
    np.testing.assert_allclose(ig, model.w.detach().numpy() * (x - base), rtol=1e-4, atol=1e-5)


def test_ig_completeness_on_a_small_network() -> None:
    torch.manual_seed(0)
    model = create_model("resnet18_3d", width=4, layers=[1, 1, 1, 1], norm="batch", act="elu")
    x = _volume((24, 28, 20))
    model.train()
    ig = integrated_gradients(model, x, steps=32, batch=8)
    delta = predict_one(model, x) - predict_one(model, np.zeros_like(x))
    assert abs(delta) > 1e-3
    assert ig.sum() == pytest.approx(delta, rel=0.02, abs=1e-4)
    # eval mode was used, and the model's state is restored afterwards
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_ig_accepts_batched_singletons_and_covariates() -> None:
    model, x = Linear(), _volume()
    sex = torch.tensor([0.0, 1.0])
    a = integrated_gradients(model, x[None, None], steps=4, sex=sex)
    np.testing.assert_allclose(a, model.w.detach().numpy() * x, rtol=1e-4, atol=1e-5)
    assert predict_one(model, x, sex=sex) - predict_one(model, x) == pytest.approx(3.0)


@pytest.mark.parametrize("bad", [np.zeros((2, 1, 4, 4, 4)), np.zeros((4, 4))])
def test_inputs_that_are_not_one_volume_are_refused(bad) -> None:
    with pytest.raises(BrainAgeError, match="one 3D volume"):
        integrated_gradients(Linear((4, 4, 4)), bad)


def test_bad_baseline_and_steps_are_refused() -> None:
    with pytest.raises(BrainAgeError, match="baseline shape"):
        integrated_gradients(Linear(), _volume(), baseline=np.zeros((3, 3, 3)))
    with pytest.raises(BrainAgeError, match="steps"):
        integrated_gradients(Linear(), _volume(), steps=0)


def test_occlusion_of_a_linear_model_gives_patch_means() -> None:
    model, x = Linear(), _volume()
    contrib = model.w.detach().numpy() * x  # (D, H, W)
    occ = occlusion(model, x, patch=(4, 8, 4), batch=5)
    blocks = contrib.reshape(3, 4, 2, 8, 2, 4).mean(axis=(1, 3, 5))  # (3, 2, 2) patch means
    expected = np.repeat(np.repeat(np.repeat(blocks, 4, 0), 8, 1), 4, 2)
    np.testing.assert_allclose(occ, expected, rtol=1e-4, atol=1e-5)
    assert occ.sum() == pytest.approx(contrib.sum(), rel=1e-4)  # no overlap: sums to f(x) - f(0)


def test_overlapping_occlusion_averages_the_patches_covering_a_voxel() -> None:
    model, x = Linear((6, 4, 4)), _volume((6, 4, 4))
    contrib = model.w.detach().numpy() * x
    occ = occlusion(model, x, patch=(4, 4, 4), stride=(2, 4, 4))
    first, second = contrib[:4].mean(), contrib[2:].mean()
    np.testing.assert_allclose(occ[0], first, rtol=1e-4)
    np.testing.assert_allclose(occ[3], (first + second) / 2, rtol=1e-4)
    np.testing.assert_allclose(occ[5], second, rtol=1e-4)


def test_smoothgrad_of_a_linear_model_is_weight_times_input() -> None:
    model, x = Linear(), _volume()
    sg = smoothgrad(model, x, samples=3, batch=2)
    np.testing.assert_allclose(sg, model.w.detach().numpy() * x, rtol=1e-4, atol=1e-5)


def test_region_summary_finds_a_deep_central_blob() -> None:
    grid = get_grid("4mm:40x48x40")
    labels = region_labels(grid.affine_array, grid.shape)
    sal = np.where(labels == REGIONS.index("deep_central"), 0.01, 0.0)
    sal[20, 30, 25] = -0.5  # lone voxel elsewhere, signed negative
    raw = region_summary(sal, grid.affine_array, grid.shape)
    assert list(raw.columns) == list(COLUMNS)
    table = raw.set_index("name")
    assert table.loc["deep_central", "abs_fraction"] > 0.7
    assert table.loc["deep_central", "enrichment"] > 5
    assert table.loc["all", "abs_fraction"] == pytest.approx(1.0)
    tissues = table[table["kind"] == "tissue"]
    assert tissues["abs_fraction"].sum() + table.loc["outside_brain", "abs_fraction"] \
        == pytest.approx(1.0)
    assert tissues["volume_fraction"].sum() == pytest.approx(1.0)
    assert table.loc["brain", "volume_ml"] == pytest.approx(table.loc["brain", "voxels"] * 0.064)
    with pytest.raises(BrainAgeError, match="grid shape"):
        region_summary(sal, grid.affine_array, (40, 48, 39))


# --------------------------------------------------------------------------- sanity checks
def _aging_cohort(n: int = 40) -> dict[str, np.ndarray]:
    """4 mm template-space T1-like volumes of simulated subjects, z-scored inside the brain.

    Only the simulator's aging differs between subjects (no pose, warp or scanner), so the
    age signal lives where the simulator puts it: the ventricles and the cortex.
    """
    from scipy import ndimage

    from brainage.data.simulate import load_templates, make_config, subject_tissue_maps
    from brainage.data.simulate.subject import plan_cohort_subject

    cfg = make_config(n=n, sites=1, seed=0, voxel_size=4, confound=0, gap_sd=0,
                      patient_fraction=0)
    tpl = load_templates(4.0)
    brain = tpl.brain > 0.5
    idx = np.argwhere(brain)
    box = tuple(slice(a, b) for a, b in zip(idx.min(0), idx.max(0) + 1, strict=True))
    gm, wm, csf = tpl.tissue_means
    images = []
    for i in range(n):
        m = subject_tissue_maps(cfg, i)
        t1 = (gm * m.gm + wm * m.wm + csf * m.csf)[box]  # (X, Y, Z) T1-like contrast
        inside = t1[brain[box]]
        images.append(np.where(brain[box], (t1 - inside.mean()) / inside.std(), 0.0))
    ages = np.array([plan_cohort_subject(cfg, i).brain_ages[0] for i in range(n)])
    ventricles = ndimage.binary_dilation(tpl.ventricles[box] > 0.5, iterations=1)
    return {"x": np.stack(images).astype(np.float32), "age": ages.astype(np.float32),
            "brain": brain[box], "aging": ventricles & brain[box]}


def _train(x: np.ndarray, age: np.ndarray, seed: int = 0, epochs: int = 30) -> nn.Module:
    """A tiny ResNet (no norm, ELU) trained for a few seconds on CPU."""
    torch.manual_seed(seed)
    model = create_model("resnet18_3d", width=4, layers=[1, 1, 1, 1], norm="none", act="elu")
    nn.init.constant_(model.head.fc.bias, float(age.mean()))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x)[:, None], torch.from_numpy(age)
    for _ in range(epochs):
        for b in torch.randperm(len(x)).split(8):
            loss = ((model(xt[b]) - yt[b]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def _concentration(maps: list[np.ndarray], region: np.ndarray, brain: np.ndarray) -> float:
    """(share of |attribution| in `region`) / (share of brain volume in `region`)."""
    a = np.mean(np.abs(maps), axis=0)
    return float(a[region].sum() / a[brain].sum() / (region.sum() / brain.sum()))


@pytest.mark.slow
def test_trained_maps_differ_from_random_ones_and_concentrate_on_aging() -> None:
    data = _aging_cohort()
    x, age, brain, aging = data["x"], data["age"], data["brain"], data["aging"]
    model = _train(x[:32], age[:32])
    with torch.no_grad():
        mae = float(np.abs(model(torch.from_numpy(x[32:])[:, None]).numpy() - age[32:]).mean())
    assert mae < 8.0  # it learned age (about 2 years; the ages span 20-85)
    torch.manual_seed(1000)
    random = create_model("resnet18_3d", width=4, layers=[1, 1, 1, 1], norm="none",
                          act="elu").eval()
    trained_maps = [integrated_gradients(model, v, steps=16) for v in x[32:]]
    random_maps = [integrated_gradients(random, v, steps=16) for v in x[32:]]
    r = np.mean([np.corrcoef(np.abs(a[brain]), np.abs(b[brain]))[0, 1]
                 for a, b in zip(trained_maps, random_maps, strict=True)])
    trained_ratio = _concentration(trained_maps, aging, brain)
    random_ratio = _concentration(random_maps, aging, brain)
    print(f"MAE {mae:.2f}; r(|trained|, |random|) {r:.2f}; aging-region concentration "
          f"trained {trained_ratio:.2f}, random {random_ratio:.2f}")
    assert r < 0.5
    assert trained_ratio > 2.0
    assert trained_ratio > 1.5 * random_ratio
