"""The OpenBHB challenge's linear probes of a learned representation.

The "brain age prediction with site-effect removal" challenge (Dufumier et al., OpenBHB;
the protocol Barbano et al., ISBI 2023, report on) maps every subject to a representation
of at most 10,000 numbers, then fits on the training subjects

* an age probe ``GridSearchCV(Ridge(), alpha ∈ {0.01, 0.1, 1, 10, 100}, cv=5, scoring="r2")``,
* a site probe ``GridSearchCV(LogisticRegression(solver="saga", max_iter=150),
  C ∈ {0.01, 0.1, 1, 10, 100}, cv=5, scoring="balanced_accuracy")``,

and reports the MAE on the internal (seen-site) and external (unseen-site) test subjects and
the site balanced accuracy on the internal test (lower is better: less site information).

As in the challenge's RAMP kit (``problem.py`` of ``ramp-kits/brain_age_with_site_removal``),
the features are **not** standardised before the probes, and ``cv=5`` is scikit-learn's
default splitter: ``KFold(5)`` for the ridge and ``StratifiedKFold(5)`` for the logistic
regression, both unshuffled. Internal test subjects from a site the site probe never saw
are left out of the balanced accuracy, as the kit does. Two deliberate differences: the
logistic regression gets ``random_state=0`` (saga shuffles; the kit's runs were not
seeded) and its expected ``ConvergenceWarning`` at 150 iterations is silenced.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GridSearchCV

from brainage.errors import BrainAgeError
from brainage.estimators.representation import ProbeNotFittedError, check_representation

#: Ridge penalties and inverse logistic penalties searched, ``10 ** arange(-2, 3)``.
GRID: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0)
#: Site classes of OpenBHB's training set (the RAMP score's fixed ``n_sites``).
OPENBHB_SITES = 64


def _check_fitted(probe: BaseEstimator) -> None:
    if not hasattr(probe, "search_"):
        raise ProbeNotFittedError(
            f"this {type(probe).__name__} is not fitted yet. Fix: call fit(x, y) first."
        )


def _rows(x: np.ndarray, y: Any, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(x):
        raise BrainAgeError(f"{where}: expected {len(x)} labels (one per row), got shape "
                            f"{y.shape}. Fix: pass one value per subject.")
    return y


class AgeProbe(BaseEstimator):
    """Ridge regression of age on the representation, penalty chosen by 5-fold R².

    Attributes:
        search_: The fitted ``GridSearchCV``.
        best_alpha_: The chosen penalty.
        n_train_: Training subjects.
    """

    def __init__(self, alphas: tuple[float, ...] = GRID, cv: Any = 5,
                 n_jobs: int | None = None) -> None:
        self.alphas = alphas
        self.cv = cv
        self.n_jobs = n_jobs

    def fit(self, x: Any, age: Any) -> AgeProbe:
        """Fit on ``(N, F)`` representations and ``(N,)`` ages; returns self."""
        x = check_representation(x, "age probe")
        age = _rows(x, age, "age probe").astype(np.float64)
        self.search_ = GridSearchCV(Ridge(), {"alpha": list(self.alphas)}, cv=self.cv,
                                    scoring="r2", n_jobs=self.n_jobs).fit(x, age)
        self.best_alpha_ = float(self.search_.best_params_["alpha"])
        self.n_train_ = len(x)
        return self

    def predict(self, x: Any) -> np.ndarray:
        """Predicted ages ``(N,)``."""
        _check_fitted(self)
        return self.search_.predict(check_representation(x, "age probe"))


class SiteProbe(BaseEstimator):
    """Multinomial logistic regression of site, C chosen by 5-fold balanced accuracy.

    Attributes:
        search_: The fitted ``GridSearchCV``.
        classes_: Training sites.
        best_C_: The chosen inverse penalty.
    """

    def __init__(self, Cs: tuple[float, ...] = GRID, cv: Any = 5, max_iter: int = 150,
                 n_jobs: int | None = None, random_state: int | None = 0) -> None:
        self.Cs = Cs
        self.cv = cv
        self.max_iter = max_iter
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, x: Any, site: Any) -> SiteProbe:
        """Fit on ``(N, F)`` representations and ``(N,)`` site labels; returns self."""
        x = check_representation(x, "site probe")
        site = _rows(x, site, "site probe")
        if len(np.unique(site)) < 2:
            raise BrainAgeError("site probe: the training subjects come from one site; "
                                "expected at least two. Fix: probe a multi-site training set.")
        model = LogisticRegression(solver="saga", max_iter=self.max_iter,
                                   random_state=self.random_state)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # 150 iterations by design
            self.search_ = GridSearchCV(model, {"C": list(self.Cs)}, cv=self.cv,
                                        scoring="balanced_accuracy",
                                        n_jobs=self.n_jobs).fit(x, site)
        self.classes_ = self.search_.classes_
        self.best_C_ = float(self.search_.best_params_["C"])
        return self

    def predict(self, x: Any) -> np.ndarray:
        """Predicted sites ``(N,)``."""
        _check_fitted(self)
        return self.search_.predict(check_representation(x, "site probe"))

    def balanced_accuracy(self, x: Any, site: Any) -> float:
        """Balanced accuracy (a fraction) on subjects from the training sites only.

        Raises:
            BrainAgeError: no subject comes from a training site.
        """
        _check_fitted(self)
        x = check_representation(x, "site probe")
        site = _rows(x, site, "site probe")
        seen = np.isin(site, self.classes_)
        if not seen.any():
            raise BrainAgeError("site probe: no internal test subject comes from a training "
                                "site. Fix: pass the seen-site (internal) test subjects.")
        return float(balanced_accuracy_score(site[seen], self.predict(x[seen])))


def challenge_score(bacc: float, mae_external: float) -> float:
    """The leaderboard's score ``BAcc^0.3 × MAE_ext`` (BAcc a fraction; lower is better).

    E.g. ``challenge_score(0.052, 3.564)`` is 1.468.
    """
    return float(bacc**0.3 * mae_external)


def page_text_score(bacc: float, mae_external: float, mae_internal: float,
                    n_sites: int = OPENBHB_SITES) -> float:
    """The challenge page's formula ``BAcc^0.3·MAE_ext + (1/n_sites)^0.3·MAE_int``."""
    return float(bacc**0.3 * mae_external + (1.0 / n_sites) ** 0.3 * mae_internal)


def ramp_score(bacc: float, mae_external: float, mae_internal: float,
               n_sites: int = OPENBHB_SITES) -> float:
    """The RAMP kit's combined metric ``MAE_ext·BAcc + MAE_int/n_sites`` (n_sites 64 there)."""
    return float(mae_external * bacc + mae_internal / n_sites)


@dataclass(frozen=True)
class ProbeSplit:
    """One set of subjects: representations ``x`` ``(N, F)``, ``age`` ``(N,)`` and
    ``site`` ``(N,)`` (optional for the external test)."""

    x: Any
    age: Any
    site: Any = None


@dataclass(frozen=True)
class ProbeResult:
    """The challenge metrics (MAE in years, BAcc as a fraction) and the chosen penalties.

    ``n_sites`` is the number of training sites, used by the two scores with an internal
    term (64 on OpenBHB, the RAMP kit's fixed value).
    """

    mae_internal: float
    mae_external: float
    site_bacc: float
    score: float
    score_page_text: float
    score_ramp: float
    n_sites: int
    n_features: int
    n_train: int
    n_internal: int
    n_external: int
    best_alpha: float
    best_C: float

    def to_dict(self) -> dict[str, float | int]:
        """Plain numbers, ready for ``json.dump``."""
        return asdict(self)


def _mae(probe: AgeProbe, x: np.ndarray, age: Any, where: str) -> float:
    age = _rows(x, age, f"{where} ages").astype(np.float64)
    return float(np.mean(np.abs(probe.predict(x) - age)))


def openbhb_probes(train: ProbeSplit, internal: ProbeSplit, external: ProbeSplit, *,
                   cv: Any = 5, n_jobs: int | None = None,
                   random_state: int | None = 0) -> ProbeResult:
    """Fit both probes on `train` and score them on the internal and external tests.

    Args:
        train: Training subjects (with sites).
        internal: Test subjects from the training sites (with sites).
        external: Test subjects from unseen sites (sites not needed).
        cv: Cross-validation of both grid searches (5, as the challenge).
        n_jobs: Parallel fits of the grid searches (None = 1).
        random_state: Seed of the saga solver.

    Raises:
        BrainAgeError: bad shapes, a dimension above 10,000, or missing site labels.
    """
    age_probe, site_probe = fit_probes(train, cv=cv, n_jobs=n_jobs, random_state=random_state)
    return score_probes(age_probe, site_probe, internal, external)


def fit_probes(train: ProbeSplit, *, cv: Any = 5, n_jobs: int | None = None,
               random_state: int | None = 0) -> tuple[AgeProbe, SiteProbe]:
    """The challenge's age and site probes fitted on the training subjects only."""
    x_train = check_representation(train.x, "train representation")
    if train.site is None:
        raise BrainAgeError("site labels are missing for the train set. "
                            "Fix: pass ProbeSplit(x, age, site).")
    age_probe = AgeProbe(cv=cv, n_jobs=n_jobs).fit(x_train, train.age)
    site_probe = SiteProbe(cv=cv, n_jobs=n_jobs, random_state=random_state)
    return age_probe, site_probe.fit(x_train, train.site)


def score_probes(age_probe: AgeProbe, site_probe: SiteProbe, internal: ProbeSplit,
                 external: ProbeSplit) -> ProbeResult:
    """The challenge metrics of fitted probes on the internal and external test subjects.

    Raises:
        BrainAgeError: bad shapes, another dimension than the training one, or missing
            internal site labels.
    """
    _check_fitted(age_probe)
    _check_fitted(site_probe)
    n_features = int(age_probe.search_.n_features_in_)
    sets = {"internal": check_representation(internal.x, "internal representation"),
            "external": check_representation(external.x, "external representation")}
    for name, x in sets.items():
        if x.shape[1] != n_features:
            raise BrainAgeError(f"{name} representation: {x.shape[1]} features, but the "
                                f"training one has {n_features}. Fix: use one encoder.")
    if internal.site is None:
        raise BrainAgeError("site labels are missing for the internal set. "
                            "Fix: pass ProbeSplit(x, age, site) for it.")
    mae = {name: _mae(age_probe, x, split.age, name)
           for (name, x), split in zip(sets.items(), (internal, external), strict=True)}
    bacc = site_probe.balanced_accuracy(sets["internal"], internal.site)
    n_sites = len(site_probe.classes_)
    return ProbeResult(
        mae_internal=mae["internal"], mae_external=mae["external"], site_bacc=bacc,
        score=challenge_score(bacc, mae["external"]),
        score_page_text=page_text_score(bacc, mae["external"], mae["internal"], n_sites),
        score_ramp=ramp_score(bacc, mae["external"], mae["internal"], n_sites),
        n_sites=n_sites, n_features=n_features, n_train=age_probe.n_train_,
        n_internal=len(sets["internal"]), n_external=len(sets["external"]),
        best_alpha=age_probe.best_alpha_,
        best_C=site_probe.best_C_,
    )
