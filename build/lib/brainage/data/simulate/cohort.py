"""Who is scanned where: demographics, brain ages and per-site age ranges.

Every random draw comes from a generator derived from the master seed and a fixed key,
so subject ``k`` is the same whatever the number of subjects, and parallel workers draw
exactly what a single process would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainage.data.simulate.config import SimulationConfig

#: Stream numbers within a subject's seed sequence.
DEMOGRAPHICS, ANATOMY, SCANNER = 0, 1, 100


def subject_rng(seed: int, index: int, stream: int) -> np.random.Generator:
    """Generator for one subject's `stream` (DEMOGRAPHICS, ANATOMY, SCANNER + session)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, index, stream)))


def site_rng(seed: int, site: int) -> np.random.Generator:
    """Generator for one site's scanner parameters."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, site)))


@dataclass(frozen=True)
class Subject:
    """One simulated participant.

    Attributes:
        index: 0-based position in the cohort.
        participant_id: ``sub-<label>``.
        sex: ``"F"`` or ``"M"``.
        site: 0-based site index.
        group: ``"control"`` or ``"patient"``.
        gap: Individual brain-age gap (years), patient effect excluded.
        ages: Chronological age at each session.
        brain_ages: True brain age at each session.
    """

    index: int
    participant_id: str
    sex: str
    site: int
    group: str
    gap: float
    ages: tuple[float, ...]
    brain_ages: tuple[float, ...]

    @property
    def sessions(self) -> list[str | None]:
        """Session labels (``ses-1`` ...), or ``[None]`` for a single session."""
        if len(self.ages) == 1:
            return [None]
        return [f"ses-{k + 1}" for k in range(len(self.ages))]


def participant_id(index: int, n: int) -> str:
    """``sub-001`` style id, zero-padded to at least 3 digits."""
    return f"sub-{index + 1:0{max(3, len(str(n)))}d}"


def age_ranges(config: SimulationConfig) -> list[tuple[float, float]]:
    """Chronological age range of each site's first sessions.

    ``site_ages`` when given; else with ``confound`` 0 every site covers
    ``age_min .. age_max``, and with 1 the range is cut into disjoint slices, one per site,
    dealt to the sites in a seeded random order.
    """
    if config.site_ages is not None:
        return list(config.site_ages)
    lo, hi, s, c = config.age_min, config.age_max, config.sites, config.confound
    width = (hi - lo) / s
    order = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(2,)))
    slot = order.permutation(s)
    return [(lo + c * slot[j] * width, hi - c * (s - 1 - slot[j]) * width) for j in range(s)]


def draw_subject(config: SimulationConfig, index: int,
                 ranges: list[tuple[float, float]]) -> Subject:
    """Draw subject `index`'s site, sex, group, ages and brain ages."""
    rng = subject_rng(config.seed, index, DEMOGRAPHICS)
    site = index % config.sites
    sex = "M" if rng.random() < 0.5 else "F"
    patient = rng.random() < config.patient_fraction
    age0 = round(float(rng.uniform(*ranges[site])), 1)
    gap = float(rng.standard_normal() * config.gap_sd)
    effect = config.patient_effect if patient else 0.0
    rate = config.patient_rate if patient else 1.0
    ages = tuple(round(age0 + k * config.interval, 2) for k in range(config.sessions))
    brain = tuple(age0 + gap + effect + rate * (a - age0) for a in ages)
    return Subject(index, participant_id(index, config.n), sex, site,
                   "patient" if patient else "control", gap, ages, brain)


def plan_cohort(config: SimulationConfig) -> list[Subject]:
    """All subjects of the cohort (cheap: no images)."""
    ranges = age_ranges(config)
    return [draw_subject(config, k, ranges) for k in range(config.n)]
