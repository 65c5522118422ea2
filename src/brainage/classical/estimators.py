"""Ridge, kernel ridge and Gaussian-process regression on standardised features.

Each estimator is fitted with scikit-learn (hyper-parameters chosen on the training subjects
only: generalised cross-validation for ridge, a seeded inner 5-fold grid search for kernel
ridge, the marginal likelihood for the Gaussian process) and then exported as arrays + JSON
numbers; prediction rebuilds the kernels with scikit-learn's kernel classes and needs no
pickle. ``predict(export(fit(X, y)), X)`` equals the fitted estimator's own ``predict``
(tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brainage.registry import Registry

#: name -> (fit, predict) functions.
ESTIMATORS: Registry[tuple[Any, Any]] = Registry("classical estimator",
                                                 "ridge, svr, krr or gpr")
RIDGE_ALPHAS = np.logspace(-1, 6, 29)
KRR_ALPHAS = np.logspace(-3, 1, 5)
KRR_GAMMAS = (0.1, 0.3, 1.0, 3.0)  # times 1 / (number of features)
SVR_CS = (1.0, 10.0, 100.0, 1000.0)  # on unit-scale dot products
SVR_EPSILON = 1.0  # years inside which errors cost nothing


@dataclass
class Fitted:
    """An exported estimator: arrays (safetensors) and JSON-ready numbers."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


def standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X standardised, mean, scale); constant features get scale 1."""
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-8] = 1.0
    return (X - mean) / scale, mean, scale


def standardised(fitted: Fitted, X: np.ndarray) -> np.ndarray:
    """(N, F) features standardised with the training mean and scale of `fitted`."""
    return (np.asarray(X, dtype=np.float64) - fitted.arrays["mean"]) / fitted.arrays["scale"]



def fit_ridge(X: np.ndarray, y: np.ndarray, seed: int = 0) -> Fitted:
    from sklearn.linear_model import RidgeCV

    Xs, mean, scale = standardise(np.asarray(X, dtype=np.float64))
    est = RidgeCV(alphas=RIDGE_ALPHAS * Xs.shape[1] / 1e3).fit(Xs, y)
    return Fitted({"mean": mean, "scale": scale, "coef": est.coef_},
                  {"intercept": float(est.intercept_), "alpha": float(est.alpha_)})


def predict_ridge(fitted: Fitted, X: np.ndarray) -> np.ndarray:
    return standardised(fitted, X) @ fitted.arrays["coef"] + fitted.params["intercept"]


def fit_krr(X: np.ndarray, y: np.ndarray, seed: int = 0) -> Fitted:
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.model_selection import GridSearchCV, KFold

    Xs, mean, scale = standardise(np.asarray(X, dtype=np.float64))
    y_mean = float(np.mean(y))
    grid = {"alpha": list(KRR_ALPHAS), "gamma": [g / Xs.shape[1] for g in KRR_GAMMAS]}
    search = GridSearchCV(KernelRidge(kernel="rbf"), grid, scoring="neg_mean_absolute_error",
                          cv=KFold(5, shuffle=True, random_state=seed)).fit(Xs, y - y_mean)
    best = search.best_estimator_
    return Fitted({"mean": mean, "scale": scale, "train": Xs, "dual_coef": best.dual_coef_},
                  {"gamma": float(best.gamma), "alpha": float(best.alpha), "y_mean": y_mean})


def predict_krr(fitted: Fitted, X: np.ndarray) -> np.ndarray:
    from sklearn.metrics.pairwise import rbf_kernel

    K = rbf_kernel(standardised(fitted, X), fitted.arrays["train"], gamma=fitted.params["gamma"])
    return K @ fitted.arrays["dual_coef"] + fitted.params["y_mean"]


def fit_svr(X: np.ndarray, y: np.ndarray, seed: int = 0) -> Fitted:
    """Linear support-vector regression (epsilon-insensitive loss; the classic brain-age
    estimator on regional volumes), C by a seeded inner 5-fold grid search; exported as
    the linear weights it amounts to."""
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.svm import SVR

    Xs, mean, scale = standardise(np.asarray(X, dtype=np.float64))
    root = np.sqrt(Xs.shape[1])
    search = GridSearchCV(SVR(kernel="linear", epsilon=SVR_EPSILON), {"C": list(SVR_CS)},
                          scoring="neg_mean_absolute_error",
                          cv=KFold(5, shuffle=True, random_state=seed)).fit(Xs / root, y)
    best = search.best_estimator_
    coef = (best.dual_coef_ @ best.support_vectors_).ravel() / root
    return Fitted({"mean": mean, "scale": scale, "coef": coef},
                  {"intercept": float(best.intercept_[0]), "C": float(best.C)})


def _gp_kernel(params: dict[str, Any]) -> Any:
    from sklearn.gaussian_process.kernels import ConstantKernel, DotProduct

    return ConstantKernel(params["constant"], "fixed") * DotProduct(params["sigma_0"], "fixed")


def fit_gpr(X: np.ndarray, y: np.ndarray, seed: int = 0) -> Fitted:
    """A Gaussian process with a linear (dot-product) kernel plus noise (brainageR's choice
    of a linear kernel on tissue maps), hyper-parameters by maximum marginal likelihood."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, DotProduct, WhiteKernel

    Xs, mean, scale = standardise(np.asarray(X, dtype=np.float64))
    Xs /= np.sqrt(Xs.shape[1])  # unit-scale dot products
    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * DotProduct(1.0, (1e-3, 1e2)) \
        + WhiteKernel(0.1, (1e-4, 1e1))
    with warnings.catch_warnings():  # a bound reached (e.g. sigma_0 -> 0) is a valid optimum
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed).fit(Xs, y)
    k = gp.kernel_
    params = {"constant": float(k.k1.k1.constant_value), "sigma_0": float(k.k1.k2.sigma_0),
              "noise": float(k.k2.noise_level), "y_mean": float(gp._y_train_mean),
              "y_std": float(gp._y_train_std)}
    return Fitted({"mean": mean, "scale": scale * np.sqrt(Xs.shape[1]), "train": Xs,
                   "alpha": gp.alpha_.ravel()}, params)


def predict_gpr(fitted: Fitted, X: np.ndarray) -> np.ndarray:
    K = _gp_kernel(fitted.params)(standardised(fitted, X), fitted.arrays["train"])
    p = fitted.params
    return (K @ fitted.arrays["alpha"]) * p["y_std"] + p["y_mean"]


ESTIMATORS.add("ridge", (fit_ridge, predict_ridge))
ESTIMATORS.add("krr", (fit_krr, predict_krr))
ESTIMATORS.add("gpr", (fit_gpr, predict_gpr))
ESTIMATORS.add("svr", (fit_svr, predict_ridge))  # linear: the same prediction as ridge


def fit(name: str, X: np.ndarray, y: np.ndarray, seed: int = 0) -> Fitted:
    """Fit estimator `name` on (N, F) features and (N,) ages."""
    return ESTIMATORS.get(name)[0](X, np.asarray(y, dtype=np.float64), seed)


def predict(name: str, fitted: Fitted, X: np.ndarray) -> np.ndarray:
    """(N,) predicted ages of (N, F) features."""
    return np.asarray(ESTIMATORS.get(name)[1](fitted, X), dtype=np.float64)
