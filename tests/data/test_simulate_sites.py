"""Strongly multi-site cohorts: per-effect site strengths and per-site age ranges.

Scans run at 8 mm (template grid 25 x 30 x 32) to stay fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from brainage.data.simulate import (
    SimulationConfig,
    make_config,
    plan_cohort,
    plan_sites,
    simulate_scan,
)
from brainage.errors import BrainAgeError, ValidationError


def test_defaults_draw_the_former_site_parameters_bit_for_bit() -> None:
    """Values of seed 0 before the per-effect options existed (same images, same files)."""
    sites = plan_sites(make_config(n=3, sites=3, seed=0))
    assert [s.gamma for s in sites] == [0.9216725167331862, 1.047509435497014,
                                        1.0491368095781741]
    assert [s.scale for s in sites] == [2054.952016619684, 2292.9545769744, 2235.07221705296]
    assert [s.noise for s in sites] == [0.014025836042854128, 0.030761679905354257,
                                        0.021148313194716606]
    assert float(sites[2].bias.ravel()[0]) == 0.1972840428352356


def test_each_strength_scales_its_own_effect_only() -> None:
    base = plan_sites(make_config(n=4, sites=4, seed=1))
    strong = plan_sites(make_config(n=4, sites=4, seed=1, site_contrast=3.0, site_noise=2.5,
                                    site_bias=4.0, site_intensity=2.0))
    for a, b in zip(base, strong, strict=True):
        assert np.log(b.gamma) == pytest.approx(3 * np.log(a.gamma))
        assert b.noise == pytest.approx(2.5 * a.noise)
        np.testing.assert_allclose(b.bias, 4 * a.bias)
        assert np.log(b.scale / 1200) == pytest.approx(2 * np.log(a.scale / 1200))
        assert (b.blur, b.orientation) == (a.blur, a.orientation)
        np.testing.assert_array_equal(b.voxel, a.voxel)
    flat = plan_sites(make_config(n=4, sites=4, seed=1, site_intensity=0.0, site_contrast=0.0))
    assert {s.scale for s in flat} == {1200.0} and {s.gamma for s in flat} == {1.0}


def _intensity_features(config: SimulationConfig) -> tuple[np.ndarray, np.ndarray]:
    """Brain intensity quantiles relative to the brain median (the global scale removed)."""
    rows, sites = [], []
    for k in range(config.n):
        scan = simulate_scan(config, k, maps=("brain",))
        brain = scan.data[scan.maps["brain"] > 0.5].astype(np.float64)
        rows.append(np.percentile(brain / np.median(brain), [5, 25, 75, 95]))
        sites.append(k % config.sites)
    return np.array(rows), np.array(sites)


def _fisher_ratio(x: np.ndarray, site: np.ndarray) -> float:
    """Mean over features of between-site / within-site sum of squares."""
    groups = [x[site == s] for s in np.unique(site)]
    between = sum(len(g) * (g.mean(0) - x.mean(0)) ** 2 for g in groups)
    within = sum(((g - g.mean(0)) ** 2).sum(0) for g in groups)
    return float(np.mean(between / within))


def _nearest_centroid_accuracy(x: np.ndarray, site: np.ndarray) -> float:
    """Leave-one-out accuracy of a nearest-centroid classifier on standardised features."""
    z = (x - x.mean(0)) / x.std(0)
    hits = 0
    for i in range(len(site)):
        rest = np.arange(len(site)) != i
        centres = {s: z[rest & (site == s)].mean(0) for s in np.unique(site)}
        hits += min(centres, key=lambda s: float(np.sum((z[i] - centres[s]) ** 2))) == site[i]
    return hits / len(site)


def test_site_is_more_decodable_from_intensities_with_strong_effects() -> None:
    """24 scans at 4 sites (chance 0.25): none 0.29, default 0.75, strong 0.96 at seed 0."""
    options = {"none": {"site_effects": 0.0}, "default": {},
               "strong": {"site_contrast": 4.0, "site_noise": 4.0, "site_bias": 4.0}}
    ratio, accuracy = {}, {}
    for name, extra in options.items():
        x, site = _intensity_features(make_config(n=24, sites=4, seed=0, voxel_size=8.0,
                                                  **extra))
        ratio[name], accuracy[name] = _fisher_ratio(x, site), _nearest_centroid_accuracy(x, site)
    assert ratio["none"] < 1 < ratio["default"] and ratio["strong"] > 2 * ratio["default"]
    assert accuracy["none"] < 0.5 < accuracy["default"] < accuracy["strong"]
    assert accuracy["strong"] >= 0.9


def test_site_ages_confound_age_with_site() -> None:
    config = make_config(n=60, sites=3, seed=4, site_ages="6-20, 40-60,70-85")
    assert config.site_ages == ((6.0, 20.0), (40.0, 60.0), (70.0, 85.0))
    assert [s.age_range for s in plan_sites(config)] == list(config.site_ages)
    ages = {j: [] for j in range(3)}
    for subject in plan_cohort(config):
        lo, hi = config.site_ages[subject.site]
        assert lo - 0.05 <= subject.ages[0] <= hi + 0.05
        ages[subject.site].append(subject.ages[0])
    means = [np.mean(ages[j]) for j in range(3)]
    assert means[0] < 20 < 40 < means[1] < 60 < 70 < means[2]
    same = make_config(n=60, sites=3, seed=4, site_ages=[[6, 20], [40, 60], [70, 85]])
    assert same == config  # pairs or text, one value


@pytest.mark.parametrize(("options", "flag"), [
    ({"site_ages": "6-20,40-60"}, "--site-ages"),  # two ranges for three sites
    ({"site_ages": "20-6,40-60,60-85"}, "--site-ages"),
    ({"site_ages": "young,old,older"}, "--site-ages"),
    ({"site_contrast": -1.0}, "--site-contrast"),
    ({"site_noise": 6.0}, "--site-noise"),
    ({"site_intensity": 4.0}, "--site-intensity"),
])
def test_bad_site_options_are_refused(options: dict, flag: str) -> None:
    with pytest.raises(ValidationError, match=f"{flag}: got"):
        make_config(n=3, sites=3, **options)


def test_cli_site_options(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from brainage.cli.simulate import register

    app = typer.Typer()
    register(app)
    app.callback()(lambda: None)
    result = CliRunner().invoke(app, [
        "simulate", str(tmp_path / "out"), "--n", "2", "--sites", "2", "--voxel-size", "8",
        "--site-ages", "10-20,60-70", "--site-contrast", "3", "--site-noise", "2",
        "--site-bias", "2", "--site-intensity", "0.5"])
    assert result.exit_code == 0, result.output
    truth = json.loads((tmp_path / "out" / "derivatives" / "simulation" /
                        "ground_truth.json").read_text())
    assert truth["config"]["site_contrast"] == 3.0
    assert [s["age_range"] for s in truth["sites"]] == [[10.0, 20.0], [60.0, 70.0]]
    bad = CliRunner().invoke(app, ["simulate", str(tmp_path / "bad"), "--n", "2",
                                   "--site-ages", "1-2,3-4,5-6"])
    assert isinstance(bad.exception, BrainAgeError) and "--site-ages" in str(bad.exception)
