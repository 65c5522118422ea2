"""Settings of the synthetic aging cohort, validated before anything is written."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from brainage.errors import Problem, ValidationError

#: Bump when a change makes the same seed give different images.
SIMULATOR_VERSION = "1"


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that decides the simulated images (the number of jobs does not).

    Attributes:
        n: Number of subjects.
        sites: Number of acquisition sites; subject ``k`` is scanned at site ``k % sites``.
        seed: Master seed; subject ``k`` draws from ``SeedSequence(seed, spawn_key=(0, k))``.
        voxel_size: Template-space resolution in mm (1 to 8); native voxels are close to it.
        sessions: Sessions per subject (``ses-1`` ... ``ses-K`` when more than one).
        interval: Years between sessions.
        age_min: Youngest chronological age at the first session.
        age_max: Oldest chronological age at the first session.
        confound: 0 = every site samples the whole age range; 1 = each site its own
            disjoint slice of it, so that site and age are fully confounded.
        gap_sd: Standard deviation (years) of the individual brain-age gap.
        patient_fraction: Probability that a subject is in the ``patient`` group.
        patient_effect: Years added to a patient's brain age.
        patient_rate: Brain-age years per calendar year for patients between sessions
            (controls age at 1).
        site_effects: Strength of scanner effects (0 = none: no noise, bias, gamma or blur).
        variability: Strength of inter-subject anatomical variability (0 = none).
        interp_order: Spline order of the single resampling (1 = linear, fast; 3 = cubic).
        site_contrast: Multiplies the spread of the per-site gamma (contrast) on top of
            `site_effects`; e.g. 3 with site_effects 1 gives gammas in exp(±0.45).
        site_intensity: Multiplies the spread of the per-site intensity scale: scales lie
            in 1200 · 4^(±site_intensity / 2) (600 to 2400 at 1; one value, 1200, at 0).
        site_noise: Multiplies the per-site Rician noise SD.
        site_bias: Multiplies the per-site bias-field amplitude.
        site_ages: Optional ``(low, high)`` first-session age range of each site, one pair
            per site, e.g. ``((6, 20), (20, 40), (60, 85))`` or the text
            ``"6-20,20-40,60-85"``; when given it replaces ``age_min``, ``age_max`` and
            ``confound`` (which cuts one range into slices) for a strongly site-confounded
            age distribution.
    """

    n: int = 200
    sites: int = 4
    seed: int = 0
    voxel_size: float = 2.0
    sessions: int = 1
    interval: float = 2.0
    age_min: float = 20.0
    age_max: float = 85.0
    confound: float = 0.3
    gap_sd: float = 3.0
    patient_fraction: float = 0.25
    patient_effect: float = 5.0
    patient_rate: float = 1.5
    site_effects: float = 1.0
    variability: float = 1.0
    interp_order: int = 1
    site_contrast: float = 1.0
    site_intensity: float = 1.0
    site_noise: float = 1.0
    site_bias: float = 1.0
    site_ages: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "site_ages", _as_ranges(self.site_ages))

    def validate(self) -> SimulationConfig:
        """Return self if every field is valid.

        Raises:
            ValidationError: listing every bad field at once.
        """
        problems = [p for p in _problems(self) if p is not None]
        if problems:
            raise ValidationError(problems, what="simulation settings")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain fields, for the ground-truth JSON."""
        return asdict(self)


def _as_ranges(value: Any) -> Any:
    """``"6-20,20-40"`` or pairs -> ``((6.0, 20.0), (20.0, 40.0))``; anything else unchanged
    (validation reports it)."""
    if value is None:
        return None
    try:
        if isinstance(value, str):
            value = [part.strip().split("-") for part in value.split(",")]
        ranges = tuple((float(lo), float(hi)) for lo, hi in value)
    except (TypeError, ValueError):
        return value
    return ranges


def _site_ages_problem(c: SimulationConfig) -> Problem | None:
    ranges = c.site_ages
    if ranges is None:
        return None
    ok = (isinstance(ranges, tuple) and len(ranges) == c.sites and all(
        isinstance(r, tuple) and len(r) == 2 and all(_finite(a) for a in r)
        and 0.0 <= r[0] < r[1] <= 120.0 for r in ranges))
    return _check(ok, "site_ages", ranges,
                  f"one LOW-HIGH age range per site ({c.sites}), 0 <= LOW < HIGH <= 120",
                  'pass e.g. --site-ages "6-20,20-40,60-85" (as many ranges as --sites)')


def _field(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def _check(ok: bool, name: str, value: object, expected: str, fix: str) -> Problem | None:
    if ok:
        return None
    return Problem(where=_field(name), value=value, expected=expected, fix=fix)


def _finite(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _problems(c: SimulationConfig) -> list[Problem | None]:
    def count(name: str, lo: int, hi: int) -> Problem | None:
        v = getattr(c, name)
        return _check(_is_int(v) and lo <= v <= hi, name, v,
                      f"an integer from {lo} to {hi}", f"pass e.g. {_field(name)} {max(lo, 1)}")

    def number(name: str, lo: float, hi: float, fix: str) -> Problem | None:
        v = getattr(c, name)
        return _check(_finite(v) and lo <= v <= hi, name, v, f"a number from {lo} to {hi}", fix)

    return [
        count("n", 1, 1_000_000), count("sites", 1, 1000), count("sessions", 1, 100),
        _check(_is_int(c.seed) and c.seed >= 0, "seed", c.seed, "an integer >= 0",
               "pass e.g. --seed 0"),
        number("voxel_size", 1.0, 8.0, "use --voxel-size 2 (or 4 for quick tests)"),
        number("interval", 0.01, 50.0, "give the years between sessions, e.g. --interval 2"),
        number("age_min", 0.0, 120.0, "use an age in years, e.g. 20"),
        number("age_max", 0.0, 120.0, "use an age in years, e.g. 85"),
        _check(not (_finite(c.age_min) and _finite(c.age_max)) or c.age_min < c.age_max,
               "age_max", c.age_max, f"more than age_min ({c.age_min})",
               "give an age range with age_min < age_max"),
        number("confound", 0.0, 1.0, "use 0 (no site/age confound) to 1 (full confound)"),
        number("gap_sd", 0.0, 50.0, "use a standard deviation in years, e.g. --gap-sd 3"),
        number("patient_fraction", 0.0, 1.0, "use a fraction, e.g. --patient-fraction 0.25"),
        number("patient_effect", -50.0, 50.0, "use years, e.g. --patient-effect 5"),
        number("patient_rate", 0.0, 10.0, "use brain-age years per year, e.g. 1.5"),
        number("site_effects", 0.0, 5.0, "use 0 (none) to 1 (default strength)"),
        number("variability", 0.0, 5.0, "use 0 (none) to 1 (default strength)"),
        _check(c.interp_order in (1, 3), "interp_order", c.interp_order, "1 or 3",
               "use 1 (linear, fast) or 3 (cubic)"),
        *[number(name, 0.0, 5.0, f"use 0 (none) to 1 (default), e.g. {_field(name)} 3 for a "
                 "strongly multi-site cohort")
          for name in ("site_contrast", "site_noise", "site_bias")],
        number("site_intensity", 0.0, 3.0,
               "use 0 (one scale) to 1 (default); above 3 int16 images would clip"),
        _site_ages_problem(c),
    ]
