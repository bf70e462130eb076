"""Beta calibration and Platt scaling with ``dict_minimize``, checked against betacal and sklearn.

A classifier's score p in (0, 1) is *calibrated* when, among the samples it scores p, a fraction
p is positive. Two classic post-hoc calibrators learn a map from the score to a new probability
p' on held-out labels:

- **Platt scaling** (logistic calibration): ``logit p' = A * logit(p) + B``;
- **beta calibration** (Kull, Silva Filho and Flach, AISTATS 2017):
  ``logit p' = a * ln(p) - b * ln(1 - p) + c`` with ``a, b >= 0``.

Platt scaling stretches the logit by the same factor at both ends, so it fixes a model that is
over- or under-confident symmetrically. Beta calibration has one slope per end (``a`` rules near
p = 0, ``b`` near p = 1; ``a = b`` gives Platt scaling back), so it also fixes a distortion on
one side only. Its bounds ``a, b >= 0`` keep the map increasing in p; here they are one bound
dict, ``lb_dict={"a": 0.0, "b": 0.0}``, and ``c`` (like Platt's ``A`` and ``B``) is unbounded by
being left out of it.

Both calibrators are fitted by maximum likelihood (the mean log-loss on a training split) with
L-BFGS-B through :func:`dict_minimize.minimize`, over a dict of 0-d tensors, in two variants:

- PyTorch, with the objective returning only the loss and ``jac="autodiff"`` (the
  beta-calibration loss and starting point are those of ``examples/beta_calibration.py``);
- NumPy, with the analytic gradient (the mean of ``(sigmoid(z) - y) * feature``) and
  ``jac=True``.

The runs use tight tolerances (:data:`OPTIONS`) so that the comparison measures the model and
not the stopping rule: with them our fits agree with scikit-learn's to about 1e-7 (relative);
with SciPy's default tolerances, to about 2e-4.

The data are synthetic, from a fixed seed, in three scenarios (each split in half, train/test):

- ``overconfident``: true probability q with ``logit q ~ N(0, 1.5**2)``; the model reports
  ``logit p = K * logit q`` with K = 2.5. Both calibrators can undo this (``A = a = b = 1/K``).
- ``one-sided``: scores with ``logit p ~ N(0, 2**2)`` and q the beta map ``ONE_SIDED`` of p
  (a = 1, b = 0.1, c = 0): calibrated near p = 0, very over-confident near p = 1. Beta
  calibration is the right model; Platt scaling cannot fix one end without breaking the other.
- ``negative-b``: ``logit p ~ N(0, 1.5**2)`` and q the beta map ``NEGATIVE_B`` of p
  (a = 1.3, b = -0.5, c = 0.4), outside the family (b < 0: not monotone): the
  unconstrained optimum has b < 0 and the bound ``b >= 0`` is active. L-BFGS-B stops on the
  bound; betacal's ``"abm"`` model sees the negative coefficient, drops the feature
  ``-ln(1 - p)`` and refits on ``ln p`` alone -- another way to the same constrained optimum.
  There the fitted map stays below 1/2 for every score, so betacal's midpoint m does not exist.

References, fitted on the same training split:

- the ``betacal`` package, ``BetaCalibration(parameters="abm")``. It fits a logistic regression
  on the features ``[ln p, -ln(1 - p)]``, so its coefficients are (a, b) and its intercept is c.
  It reports the map as (a, b, m) with m the score that maps to 1/2:
  ``a ln m - b ln(1 - m) + c = 0``, so ``c = b ln(1 - m) - a ln m``. betacal finds m by a
  bounded scalar search, so c recomputed from m is only as exact as that search: c is read from
  the intercept here, and the table shows the gap.
- scikit-learn's ``LogisticRegression(C=np.inf)`` (no penalty, tight tolerance) on
  ``[ln p, -ln(1 - p)]`` for beta calibration and ``[logit p]`` for Platt scaling. It is not
  bounded: on ``negative-b`` it shows the unconstrained optimum (b < 0).

Printed, per scenario: parameters, train and test log-loss, and the test Brier score and expected
calibration error (ECE, 10 equal-width bins) of the uncalibrated scores, the true
probabilities (the oracle), and every fit; then the L-BFGS-B iterations and evaluations of our
fits (with the evaluations needed to come within 1e-6 of the final loss, read from ``res.trace``
when ``minimize`` records one). With ``--out DIR``, one reliability diagram per scenario (before
and after calibration) is saved as a PNG; that needs matplotlib (``pip install
'dict_minimize[plot]'``), drawn on a bare ``Figure`` (rendered by Agg, no GUI, no pyplot state).
PyTorch, scikit-learn, betacal and matplotlib are all optional: what is missing is skipped, and
the example says so.

Run::

    python examples/calibration.py                   # 20000 samples per scenario
    python examples/calibration.py --size 4000 --seed 1 --out /tmp/calibration
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from _shared import available
from scipy.special import expit, logit

from dict_minimize import minimize

#: the scenarios, in the order they are printed
SCENARIOS = ("overconfident", "one-sided", "negative-b")
#: over-confidence of the ``overconfident`` scores: logit p = K * logit q
K = 2.5
#: the true calibration map of ``one-sided``: fine near p = 0, over-confident near p = 1
ONE_SIDED = {"a": 1.0, "b": 0.1, "c": 0.0}
#: the true map of ``negative-b``: b < 0 is outside beta calibration's family
NEGATIVE_B = {"a": 1.3, "b": -0.5, "c": 0.4}
#: scores are clipped to [EPS, 1 - EPS] so that ln p and ln(1 - p) stay finite
EPS = 1e-9
#: the L-BFGS-B options of our fits: tight, so that they can be compared with the references
OPTIONS = {"ftol": 1e-13, "gtol": 1e-9, "maxiter": 1000}
#: the bounds of beta calibration (c unbounded: not named)
BETA_BOUNDS = {"a": 0.0, "b": 0.0}
#: our fits' row names, per (model, framework)
OURS = {
    ("beta", "torch"): "beta torch",
    ("beta", "numpy"): "beta numpy",
    ("platt", "torch"): "platt torch",
    ("platt", "numpy"): "platt numpy",
}
#: how to install what an optional part of the example needs
INSTALL = {
    "torch": "pip install 'dict_minimize[torch]'",
    "sklearn": "pip install scikit-learn",
    "betacal": "pip install betacal",
    "matplotlib": "pip install 'dict_minimize[plot]'",
}


# --- data and metrics (NumPy) --------------------------------------------------------------------


def beta_logit(params: Mapping[str, Any], scores: np.ndarray) -> np.ndarray:
    """The beta-calibration logit ``a ln p - b ln(1 - p) + c`` of each score (NumPy).

    Example:
        >>> beta_logit({"a": 1.0, "b": 1.0, "c": 0.0}, np.array([0.5, 0.8])).round(4)
        array([0.    , 1.3863])
    """
    return params["a"] * np.log(scores) - params["b"] * np.log1p(-scores) + params["c"]


def platt_logit(params: Mapping[str, Any], scores: np.ndarray) -> np.ndarray:
    """The Platt-scaling logit ``A logit(p) + B`` of each score (NumPy).

    Example:
        >>> platt_logit({"A": 0.5, "B": 1.0}, np.array([0.5, 0.8])).round(4)
        array([1.    , 1.6931])
    """
    return params["A"] * logit(scores) + params["B"]


#: the calibrated logit of each model
MODELS: dict[str, Callable[[Mapping[str, Any], np.ndarray], np.ndarray]] = {
    "beta": beta_logit,
    "platt": platt_logit,
}


def make_data(kind: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` synthetic (score, label, true probability) triples of scenario ``kind``.

    Args:
        kind: one of :data:`SCENARIOS`.
        n: the number of samples.
        seed: the seed (each scenario draws from its own stream of it).

    Returns:
        The scores p (clipped to ``[EPS, 1 - EPS]``), the 0/1 labels drawn from q (float64), and
        the true probabilities q.

    Example:
        >>> p, y, q = make_data("one-sided", 4, seed=0)
        >>> p.shape, y.dtype, bool(((0 < p) & (p < 1)).all()), set(y.tolist()) <= {0.0, 1.0}
        ((4,), dtype('float64'), True, True)
    """
    if kind not in SCENARIOS:
        raise ValueError(f"unknown scenario {kind!r}; expected one of {SCENARIOS}")
    rng = np.random.default_rng([seed, SCENARIOS.index(kind)])
    if kind == "overconfident":
        z = rng.normal(0.0, 1.5, n)
        q, scores = expit(z), expit(K * z)
    elif kind == "one-sided":
        scores = expit(rng.normal(0.0, 2.0, n))
        q = expit(beta_logit(ONE_SIDED, scores))
    else:
        scores = expit(rng.normal(0.0, 1.5, n))
        q = expit(beta_logit(NEGATIVE_B, scores))
    labels = (rng.random(n) < q).astype(np.float64)
    return np.clip(scores, EPS, 1.0 - EPS), labels, q


def log_loss(labels: np.ndarray, logits: np.ndarray) -> float:
    """The mean log-loss of 0/1 ``labels`` under probabilities ``sigmoid(logits)`` (stable).

    Example:
        >>> round(log_loss(np.array([1.0, 0.0]), np.array([0.0, 0.0])), 6)  # ln 2
        0.693147
    """
    return float(np.mean(np.logaddexp(0.0, logits) - labels * logits))


def brier_score(labels: np.ndarray, probs: np.ndarray) -> float:
    """The mean squared difference between the probabilities and the 0/1 labels.

    Example:
        >>> brier_score(np.array([1.0, 0.0]), np.array([0.75, 0.5]))
        0.15625
    """
    return float(np.mean((probs - labels) ** 2))


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """The expected calibration error: over ``bins`` equal-width bins of predicted probability,
    the sample-weighted mean of ``|fraction of positives - mean predicted probability|``.

    Example:
        >>> y = np.array([0.0, 1.0, 1.0, 1.0])
        >>> expected_calibration_error(y, np.array([0.05, 0.05, 0.95, 0.95]))  # 2 bins used
        0.25
    """
    counts, positives, predicted = _bin_sums(labels, probs, bins)
    used = counts > 0
    gaps = np.abs(positives[used] - predicted[used])
    return float(np.sum(gaps) / len(labels))


def _bin_sums(
    labels: np.ndarray, probs: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin of ``probs``: the count, the number of positives, the sum of probs."""
    if bins < 1:
        raise ValueError(f"bins must be a positive integer; got {bins!r}")
    index = np.minimum((np.asarray(probs) * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins).astype(np.float64)
    positives = np.bincount(index, weights=labels, minlength=bins)
    predicted = np.bincount(index, weights=probs, minlength=bins)
    return counts, positives, predicted


# --- our fits: dict_minimize + L-BFGS-B ----------------------------------------------------------


def _features(model: str, scores: np.ndarray) -> dict[str, np.ndarray | float]:
    """The feature that multiplies each parameter of ``model`` in the logit (1.0: intercept)."""
    if model == "beta":
        return {"a": np.log(scores), "b": -np.log1p(-scores), "c": 1.0}
    if model == "platt":
        return {"A": logit(scores), "B": 1.0}
    raise ValueError(f"unknown model {model!r}; expected 'beta' or 'platt'")


def numpy_loss_and_grad(
    params: Mapping[str, np.ndarray],
    features: Mapping[str, np.ndarray | float],
    labels: np.ndarray,
) -> tuple[float, dict[str, np.ndarray]]:
    """The NumPy objective: mean log-loss of the logit ``sum(params[k] * features[k])`` and its
    analytic gradient, ``mean((sigmoid(logit) - y) * features[k])`` for each key.

    Example:
        >>> feats = _features("platt", np.array([0.25, 0.75]))
        >>> loss, grad = numpy_loss_and_grad(
        ...     {"A": np.array(1.0), "B": np.array(0.0)}, feats, np.array([0.0, 1.0]))
        >>> round(loss, 4), {k: round(float(v), 4) for k, v in grad.items()}
        (0.2877, {'A': -0.2747, 'B': 0.0})
    """
    z = sum(params[k] * f for k, f in features.items())
    residual = (expit(z) - labels) / len(labels)
    grad = {k: np.asarray(np.sum(residual * f), dtype=np.float64) for k, f in features.items()}
    return log_loss(labels, np.asarray(z)), grad


def _platt_loss_torch(params: dict[str, Any], logits: Any, labels: Any) -> Any:
    """The PyTorch Platt-scaling objective (value only, for ``jac="autodiff"``)."""
    import torch

    return torch.nn.functional.binary_cross_entropy_with_logits(
        params["A"] * logits + params["B"], labels
    )


def _beta_calibration_example() -> ModuleType:
    """examples/beta_calibration.py (its torch loss and starting point are reused here)."""
    name = "_dict_minimize_example_beta_calibration"  # the name tests/test_examples.py uses
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("beta_calibration.py")
        )
        if spec is None or spec.loader is None:
            raise ImportError("examples/beta_calibration.py is missing beside calibration.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


@dataclass
class Fit:
    """One calibrator (or the uncalibrated scores), fitted on train and scored on test.

    Attributes:
        name: the row's name ("beta torch", "beta betacal", "platt sklearn", "uncalibrated"...).
        params: the fitted parameters (a, b, c for beta calibration, A, B for Platt scaling).
        train_log_loss: the mean log-loss on the training split.
        test_log_loss: the mean log-loss on the test split.
        brier: the Brier score on the test split.
        ece: the expected calibration error on the test split (10 bins).
        success, nit, nfev: our L-BFGS-B runs' result fields (None for references).
        evals_to_final: gradient evaluations until the loss came within 1e-6 of its final value,
            from ``res.trace`` (None for references, or when ``minimize`` gave no trace).
    """

    name: str
    params: dict[str, float]
    train_log_loss: float
    test_log_loss: float
    brier: float
    ece: float
    success: bool | None = None
    nit: int | None = None
    nfev: int | None = None
    evals_to_final: int | None = None


def fit_ours(
    model: str, framework: str, scores: np.ndarray, labels: np.ndarray
) -> tuple[dict[str, float], Any]:
    """Fit ``model`` ("beta" or "platt") with ``dict_minimize.minimize`` and L-BFGS-B.

    Args:
        model: "beta" (bounded by :data:`BETA_BOUNDS`) or "platt".
        framework: "torch" (loss only, ``jac="autodiff"``) or "numpy" (analytic gradient).
        scores: the training scores.
        labels: the training labels (0/1 floats).

    Returns:
        The fitted parameters as floats, and the ``OptimizeResult`` (its ``x`` a dict of 0-d
        tensors; ``res.trace`` when ``minimize`` records traces).

    Example:
        >>> p, y, _ = make_data("one-sided", 400, seed=0)
        >>> params, res = fit_ours("beta", "numpy", p, y)
        >>> sorted(params), res.success, params["a"] >= 0 and params["b"] >= 0
        (['a', 'b', 'c'], True, True)
    """
    if framework not in ("torch", "numpy"):
        raise ValueError(f"unknown framework {framework!r}; expected 'torch' or 'numpy'")
    bounds = BETA_BOUNDS if model == "beta" else None
    kwargs: dict[str, Any] = {"method": "L-BFGS-B", "lb_dict": bounds, "options": OPTIONS}
    if "trace" in inspect.signature(minimize).parameters:  # recorded where minimize can
        kwargs["trace"] = True
    x0: dict[str, Any]
    if framework == "numpy":
        x0 = {k: np.array(1.0 if k in ("a", "b", "A") else 0.0) for k in _features(model, scores)}
        args: tuple[Any, ...] = (_features(model, scores), labels)
        res = minimize(numpy_loss_and_grad, x0, args=args, jac=True, **kwargs)
    else:
        try:
            import torch
        except ImportError as exc:
            raise ImportError(f"fit_ours(..., 'torch') needs PyTorch: {INSTALL['torch']}") from exc

        t_scores, t_labels = torch.from_numpy(scores), torch.from_numpy(labels)
        if model == "beta":
            example = _beta_calibration_example()
            x0 = example.identity_params()
            res = minimize(
                example.log_loss, x0, args=(t_scores, t_labels), jac="autodiff", **kwargs
            )
        elif model == "platt":
            x0 = {k: torch.tensor(v, dtype=torch.float64) for k, v in (("A", 1.0), ("B", 0.0))}
            args = (torch.logit(t_scores), t_labels)
            res = minimize(_platt_loss_torch, x0, args=args, jac="autodiff", **kwargs)
        else:
            raise ValueError(f"unknown model {model!r}; expected 'beta' or 'platt'")
    return {k: float(v) for k, v in res.x.items()}, res


def fit_sklearn(model: str, scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Fit ``model`` with scikit-learn's unpenalized ``LogisticRegression`` (unbounded).

    Example:
        >>> p, y, _ = make_data("overconfident", 400, seed=0)
        >>> sorted(fit_sklearn("platt", p, y))
        ['A', 'B']
    """
    from sklearn.linear_model import LogisticRegression

    features = _features(model, scores)
    keys = [k for k, f in features.items() if isinstance(f, np.ndarray)]
    design = np.column_stack([features[k] for k in keys])
    lr = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(design, labels)
    params = dict(zip(keys, (float(v) for v in lr.coef_[0]), strict=True))
    intercept = next(k for k, f in features.items() if not isinstance(f, np.ndarray))
    params[intercept] = float(lr.intercept_[0])
    return params


def fit_betacal(
    scores: np.ndarray, labels: np.ndarray
) -> tuple[dict[str, float], float, Callable[[np.ndarray], np.ndarray]]:
    """Fit betacal's ``BetaCalibration(parameters="abm")``.

    Returns:
        Its (a, b, c), with c the intercept of its logistic regression; c recomputed from its
        reported midpoint m by ``c = b ln(1 - m) - a ln m``; and its ``predict``.

    Example:
        >>> p, y, _ = make_data("one-sided", 400, seed=0)
        >>> params, c_from_m, predict = fit_betacal(p, y)
        >>> sorted(params), predict(p[:3]).shape
        (['a', 'b', 'c'], (3,))
    """
    from betacal import BetaCalibration

    # betacal calls warnings.filterwarnings("ignore") while fitting: keep that change local
    with warnings.catch_warnings():
        cal = BetaCalibration(parameters="abm").fit(scores, labels)
    a, b, m = (float(v) for v in cal.calibrator_.map_)
    params = {"a": a, "b": b, "c": float(cal.calibrator_.lr_.intercept_[0])}
    return params, b * np.log1p(-m) - a * np.log(m), cal.predict


# --- all fits, per scenario ----------------------------------------------------------------------


@dataclass
class Scenario:
    """The fits of one scenario and what the diagrams need.

    Attributes:
        name: the scenario (one of :data:`SCENARIOS`).
        n_train: the size of the training split.
        n_test: the size of the test split.
        fits: the rows of the table by name: "uncalibrated", "oracle" (the true q), our fits
            ("beta torch", "beta numpy", "platt torch", "platt numpy") and the references
            ("beta betacal", "beta sklearn", "platt sklearn"); missing libraries leave rows out.
        betacal_c_from_m: betacal's c recomputed from its midpoint m (None without betacal).
        test_labels: the test labels.
        test_probs: calibrated test probabilities for the reliability diagram, by curve name.
        notes: what was left out of this scenario, and why.
    """

    name: str
    n_train: int
    n_test: int
    fits: dict[str, Fit]
    betacal_c_from_m: float | None
    test_labels: np.ndarray
    test_probs: dict[str, np.ndarray]
    notes: list[str] = field(default_factory=list)


@dataclass
class Results:
    """Everything :func:`fit_all` measured.

    Attributes:
        n: samples per scenario.
        seed: the data seed.
        scenarios: the scenarios by name.
        skipped: the optional libraries that were missing, with how to install them.
    """

    n: int
    seed: int
    scenarios: dict[str, Scenario]
    skipped: list[str] = field(default_factory=list)


def _score(name: str, logits: tuple[np.ndarray, np.ndarray], labels: tuple[Any, Any]) -> Fit:
    """A row from the train and test logits of one calibrator."""
    test_probs = expit(logits[1])
    return Fit(
        name=name,
        params={},
        train_log_loss=log_loss(labels[0], logits[0]),
        test_log_loss=log_loss(labels[1], logits[1]),
        brier=brier_score(labels[1], test_probs),
        ece=expected_calibration_error(labels[1], test_probs),
    )


def _scored(
    name: str, model: str, params: dict[str, float], scores: tuple[Any, Any], labels: Any
) -> Fit:
    """A row for fitted parameters of ``model``."""
    fit = _score(name, (MODELS[model](params, scores[0]), MODELS[model](params, scores[1])), labels)
    fit.params = params
    return fit


def fit_scenario(kind: str, n: int, seed: int = 0, frameworks: Sequence[str] = ()) -> Scenario:
    """Fit every calibrator on one scenario's training half and score it on the test half.

    Args:
        kind: the scenario, one of :data:`SCENARIOS`.
        n: samples, split in half (train first).
        seed: the data seed.
        frameworks: our variants to run ("torch", "numpy"); the references (sklearn, betacal)
            run when installed.

    Example:
        >>> sc = fit_scenario("overconfident", 600, frameworks=["numpy"])
        >>> sc.fits["beta numpy"].test_log_loss < sc.fits["uncalibrated"].test_log_loss
        True
    """
    if n < 20:
        raise ValueError(f"n must be at least 20 (10 training samples); got {n!r}")
    scores, labels, q = make_data(kind, n, seed)
    half = n // 2
    p = (scores[:half], scores[half:])
    y = (labels[:half], labels[half:])
    fits = {
        "uncalibrated": _score("uncalibrated", (logit(p[0]), logit(p[1])), y),
        "oracle": _score("oracle", (logit(q[:half]), logit(q[half:])), y),
    }
    curves = {"uncalibrated": p[1]}
    for model in MODELS:
        for framework in frameworks:
            name = OURS[(model, framework)]
            params, res = fit_ours(model, framework, p[0], y[0])
            fit = _scored(name, model, params, p, y)
            trace = getattr(res, "trace", None)
            fit.success, fit.nit, fit.nfev = res.success, res.nit, res.nfev
            if trace is not None and len(trace):
                fit.evals_to_final = trace.evals_to(res.fun + 1e-6)
            fits[name] = fit
            curves.setdefault(f"{model} (ours)", expit(MODELS[model](params, p[1])))
    c_from_m = None
    notes = []
    if len(np.unique(y[0])) < 2:  # scikit-learn (and so betacal) refuses a single class
        notes.append("references skipped: the training labels are all of one class")
    elif available("betacal") and available("sklearn"):
        params, c_from_m, _ = fit_betacal(p[0], y[0])
        fits["beta betacal"] = _scored("beta betacal", "beta", params, p, y)
    if available("sklearn") and not notes:
        for model in MODELS:
            name = f"{model} sklearn"
            fits[name] = _scored(name, model, fit_sklearn(model, p[0], y[0]), p, y)
    return Scenario(kind, half, n - half, fits, c_from_m, y[1], curves, notes)


def fit_all(n: int = 20_000, seed: int = 0, scenarios: Sequence[str] = SCENARIOS) -> Results:
    """Run every scenario: our fits in each installed framework, and the installed references.

    Args:
        n: samples per scenario (half train, half test).
        seed: the data seed.
        scenarios: which of :data:`SCENARIOS` to run.

    Returns:
        A :class:`Results` with one :class:`Scenario` per name.

    Example:
        >>> r = fit_all(600, seed=0, scenarios=["one-sided"])
        >>> fits = r.scenarios["one-sided"].fits
        >>> fits["beta numpy"].test_log_loss < fits["uncalibrated"].test_log_loss
        True
    """
    frameworks = ["numpy"]
    skipped = []
    if available("torch"):
        frameworks.insert(0, "torch")
    else:
        skipped.append(f"torch (not installed: {INSTALL['torch']})")
    for name in ("sklearn", "betacal"):
        if not available(name):
            skipped.append(f"{name} (not installed: {INSTALL[name]})")
    results = {kind: fit_scenario(kind, n, seed, frameworks) for kind in scenarios}
    return Results(n, seed, results, skipped)


def reaches_one_half(params: Mapping[str, float]) -> bool:
    """Whether the beta map (a, b >= 0) gives 1/2 to some score in (0, 1), i.e. has a midpoint m.

    The logit ``a ln p - b ln(1 - p) + c`` increases from ``c`` (a = 0) or -inf (a > 0) at
    p = 0 to ``c`` (b = 0) or +inf (b > 0) at p = 1; it must cross 0 on the way.

    Example:
        >>> reaches_one_half({"a": 1.0, "b": 0.0, "c": -0.5}), reaches_one_half(ONE_SIDED)
        (False, True)
    """
    low = -np.inf if params["a"] > 0 else params["c"]
    high = np.inf if params["b"] > 0 else params["c"]
    return bool(low < 0 < high)


# --- the report ----------------------------------------------------------------------------------


def _params_text(params: Mapping[str, float]) -> str:
    return "  ".join(f"{k}={v:8.4f}" for k, v in params.items()) or "-"


def format_report(results: Results) -> str:
    """The printed tables: one per scenario, then the convergence of our fits.

    Example:
        >>> text = format_report(fit_all(600, scenarios=["overconfident"]))
        >>> "overconfident" in text and "test LL" in text and "beta numpy" in text
        True
    """
    lines = [f"calibration: {results.n} samples per scenario, seed {results.seed}"]
    lines += [f"skipped: {s}" for s in results.skipped]
    for sc in results.scenarios.values():
        lines += [
            "",
            f"{sc.name} (train {sc.n_train}, test {sc.n_test}; Brier and ECE on test)",
            f"  {'fit':14} {'parameters':36} {'train LL':>9} {'test LL':>9} {'Brier':>7} "
            f"{'ECE':>7}",
        ]
        lines += [f"  {note}" for note in sc.notes]
        for fit in sc.fits.values():
            lines.append(
                f"  {fit.name:14} {_params_text(fit.params):36} {fit.train_log_loss:9.5f} "
                f"{fit.test_log_loss:9.5f} {fit.brier:7.4f} {fit.ece:7.4f}"
            )
        if sc.betacal_c_from_m is not None:
            params = sc.fits["beta betacal"].params
            gap = sc.betacal_c_from_m - params["c"]
            lines.append(
                f"  betacal's c from its midpoint m differs from its intercept by {gap:.1e}"
            )
            if not reaches_one_half(params):
                lines.append(
                    "  (its map never reaches 1/2 for p in (0, 1), so m is wherever its bounded "
                    "search stopped)"
                )
    lines += ["", "L-BFGS-B (ours): iterations, evaluations, gradient evaluations to 1e-6 of final"]
    for sc in results.scenarios.values():
        for fit in sc.fits.values():
            if fit.nit is not None:
                to_final = "-" if fit.evals_to_final is None else str(fit.evals_to_final)
                ok = "converged" if fit.success else "NOT CONVERGED"
                lines.append(
                    f"  {sc.name:14} {fit.name:12} nit {fit.nit:3}  nfev {fit.nfev:3}  "
                    f"to 1e-6: {to_final:>3}  {ok}"
                )
    return "\n".join(lines)


# --- reliability diagrams ------------------------------------------------------------------------


def reliability_diagram(
    labels: np.ndarray,
    probs: Mapping[str, np.ndarray],
    *,
    bins: int = 10,
    title: str | None = None,
) -> Any:
    """A reliability diagram: per bin of predicted probability, the fraction of positives.

    The top panel plots, for each curve in ``probs``, the observed fraction of positives
    against the mean predicted probability in each of ``bins`` equal-width bins (a calibrated
    model lies on the diagonal); the bottom panel shows how the predictions spread over the
    bins.

    Args:
        labels: the 0/1 labels.
        probs: predicted probabilities for ``labels``, by curve name (e.g. before and after).
        bins: the number of equal-width bins.
        title: the figure's title.

    Returns:
        A ``matplotlib.figure.Figure`` (not registered with pyplot: save it with ``savefig``).

    Raises:
        ImportError: when matplotlib is not installed.

    Example:
        >>> y = np.array([0.0, 1.0, 1.0, 0.0])
        >>> fig = reliability_diagram(y, {"model": np.array([0.1, 0.9, 0.7, 0.3])})
        >>> len(fig.axes)
        2
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(f"reliability_diagram needs matplotlib: {INSTALL['matplotlib']}") from exc
    fig = Figure(figsize=(6.0, 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    top.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="calibrated")
    edges = np.linspace(0.0, 1.0, bins + 1)
    for name, p in probs.items():
        counts, positives, predicted = _bin_sums(labels, p, bins)
        used = counts > 0
        ece = expected_calibration_error(labels, p, bins)
        top.plot(
            predicted[used] / counts[used],
            positives[used] / counts[used],
            marker="o",
            label=f"{name} (ECE {ece:.3f})",
        )
        bottom.stairs(counts / len(labels), edges, label=name)
    top.set(ylabel="fraction of positives", xlim=(0, 1), ylim=(0, 1))
    top.legend(loc="upper left", fontsize="small")
    bottom.set(xlabel="predicted probability", ylabel="share of samples")
    if title:
        fig.suptitle(title)
    return fig


def save_diagrams(results: Results, out: Path) -> list[Path]:
    """Save one reliability diagram per scenario as ``out/reliability_<scenario>.png``.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     paths = save_diagrams(fit_all(600, scenarios=["one-sided"]), Path(tmp))
        ...     [p.name for p in paths], paths[0].stat().st_size > 0
        (['reliability_one-sided.png'], True)
    """
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for sc in results.scenarios.values():
        fig = reliability_diagram(
            sc.test_labels, sc.test_probs, title=f"{sc.name}: test split, {sc.n_test} samples"
        )
        path = out / f"reliability_{sc.name}.png"
        fig.savefig(path, dpi=80)
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """Fit, print the tables, and save the diagrams when ``--out`` is given; returns 0.

    Args:
        argv: the command line (``sys.argv[1:]`` when None): ``--size`` (samples per scenario,
            at least 20), ``--seed`` (non-negative), ``--out`` (a folder for the PNG files).

    Example:
        >>> main(["--size", "100"])  # doctest: +ELLIPSIS
        calibration: 100 samples per scenario, seed 0
        ...
        reliability diagrams: pass --out DIR to save them as PNG files
        0
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20_000, help="samples per scenario")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--out", type=Path, default=None, help="folder for the PNG diagrams")
    opts = parser.parse_args(argv)
    if opts.size < 20:
        parser.error(f"--size must be at least 20; got {opts.size}")
    if opts.seed < 0:
        parser.error(f"--seed must be non-negative; got {opts.seed}")
    results = fit_all(opts.size, opts.seed)
    print(format_report(results))
    if opts.out is None:
        print("\nreliability diagrams: pass --out DIR to save them as PNG files")
    elif not available("matplotlib"):
        print(
            f"\nreliability diagrams skipped: matplotlib is not installed ({INSTALL['matplotlib']})"
        )
    else:
        print("\nreliability diagrams:")
        for path in save_diagrams(results, opts.out):
            print(f"  {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
