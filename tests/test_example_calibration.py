"""examples/calibration.py: beta calibration and Platt scaling vs betacal and scikit-learn.

Agreement measured when this file was written (sizes 2000 and 20000, seeds 0-3, every scenario):
ours vs scikit-learn's unpenalized LogisticRegression (tol=1e-12): parameters within 7e-7
relative, train log-loss equal to 6e-15; ours vs betacal (its default solver tolerance):
parameters within 1.3e-3 relative, our train log-loss lower by 2e-11 to 2e-8; PyTorch vs NumPy
variants within 1e-15. The tolerances below are about ten times looser than that.
"""

from __future__ import annotations

import doctest
import sys

import numpy as np
import pytest

from tests.test_examples import load_example

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def mod():
    return load_example("calibration")


@pytest.fixture(scope="module")
def scenarios(mod):
    """Every scenario at 4000 samples, all variants and references (skipped if one is missing)."""
    for name in ("torch", "sklearn", "betacal"):
        pytest.importorskip(name)
    return mod.fit_all(4000, seed=0).scenarios


def rel_diff(ours: dict[str, float], ref: dict[str, float]) -> float:
    assert ours.keys() == ref.keys()
    return max(abs(ours[k] - ref[k]) / max(1.0, abs(ref[k])) for k in ours)


# --- main ---------------------------------------------------------------------------------------


def test_main_prints_the_table(mod, capsys):
    assert mod.main(["--size", "400"]) == 0
    out = capsys.readouterr().out
    for scenario in mod.SCENARIOS:
        assert f"\n{scenario} (train 200, test 200" in out
    assert "train LL" in out and "test LL" in out and "Brier" in out and "ECE" in out
    for row in ("uncalibrated", "oracle", "beta numpy", "platt numpy"):
        assert out.count(f"  {row} ") >= 3, row
    assert "NOT CONVERGED" not in out
    assert "pass --out DIR" in out


def test_main_writes_real_pngs(mod, tmp_path, capsys):
    image = pytest.importorskip("matplotlib.image")
    assert mod.main(["--size", "400", "--seed", "3", "--out", str(tmp_path / "plots")]) == 0
    out = capsys.readouterr().out
    paths = sorted((tmp_path / "plots").iterdir())
    assert [p.name for p in paths] == sorted(f"reliability_{s}.png" for s in mod.SCENARIOS)
    for path in paths:
        assert str(path) in out
        data = path.read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 1000
        pixels = image.imread(path)
        assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 1


def test_main_without_matplotlib_skips_the_plot(mod, monkeypatch, tmp_path, capsys):
    real = mod.available  # what else is missing stays missing (PyTorch on newer Pythons)
    monkeypatch.setattr(mod, "available", lambda name: name != "matplotlib" and real(name))
    assert mod.main(["--size", "100", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "reliability diagrams skipped: matplotlib is not installed" in out
    assert "dict_minimize[plot]" in out and "train LL" in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--size", "19"], "--size must be at least 20"), (["--seed", "-1"], "non-negative")],
)
def test_main_bad_arguments(mod, argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        mod.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_optional_libraries_are_skipped(mod, monkeypatch):
    monkeypatch.setattr(mod, "available", lambda name: False)
    results = mod.fit_all(200, scenarios=["one-sided"])
    fits = results.scenarios["one-sided"].fits
    assert list(fits) == ["uncalibrated", "oracle", "beta numpy", "platt numpy"]
    assert results.scenarios["one-sided"].betacal_c_from_m is None
    assert len(results.skipped) == 3
    assert any("torch" in s and "dict_minimize[torch]" in s for s in results.skipped)
    text = mod.format_report(results)
    assert "skipped: sklearn (not installed: pip install scikit-learn)" in text


# --- agreement with the references ----------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["overconfident", "one-sided"])
def test_beta_agrees_with_sklearn_and_betacal(scenarios, scenario):
    fits = scenarios[scenario].fits
    for ours in ("beta torch", "beta numpy"):
        fit = fits[ours]
        assert fit.success
        # both references are maximum likelihood on the same model; the bounds are inactive
        assert min(fit.params["a"], fit.params["b"]) > 0.01
        assert rel_diff(fit.params, fits["beta sklearn"].params) < 1e-5
        assert rel_diff(fit.params, fits["beta betacal"].params) < 1e-2
        assert fit.train_log_loss <= fits["beta sklearn"].train_log_loss + 1e-12
        assert fit.train_log_loss <= fits["beta betacal"].train_log_loss + 1e-12
    assert rel_diff(fits["beta torch"].params, fits["beta numpy"].params) < 1e-9


@pytest.mark.parametrize("scenario", ["overconfident", "one-sided", "negative-b"])
def test_platt_agrees_with_sklearn(scenarios, scenario):
    fits = scenarios[scenario].fits
    for ours in ("platt torch", "platt numpy"):
        assert fits[ours].success
        assert rel_diff(fits[ours].params, fits["platt sklearn"].params) < 1e-6
        assert fits[ours].train_log_loss <= fits["platt sklearn"].train_log_loss + 1e-12


def test_betacal_parameters_map_to_its_predictions(mod, scenarios):
    """(a, b, c) with c = betacal's intercept reproduces betacal.predict: the mapping is right."""
    pytest.importorskip("betacal")
    scores, labels, _ = mod.make_data("one-sided", 4000, seed=0)
    params, c_from_m, predict = mod.fit_betacal(scores[:2000], labels[:2000])
    np.testing.assert_allclose(
        predict(scores[2000:]), mod.expit(mod.beta_logit(params, scores[2000:])), atol=1e-12
    )
    assert params == scenarios["one-sided"].fits["beta betacal"].params
    # where the midpoint exists, c = b ln(1 - m) - a ln m holds up to betacal's search tolerance
    assert mod.reaches_one_half(params)
    assert abs(c_from_m - params["c"]) < 1e-3


def test_overconfident_slopes_near_one_over_k(mod, scenarios):
    fits = scenarios["overconfident"].fits
    for value in (*fits["beta numpy"].params.values(), fits["platt numpy"].params["A"]):
        if abs(value) > 0.2:  # the slopes, not the intercepts
            assert value == pytest.approx(1 / mod.K, abs=0.1)


# --- what calibration buys ------------------------------------------------------------------------


def test_beta_beats_platt_on_the_one_sided_distortion(mod):
    scenario = mod.fit_scenario("one-sided", 8000, seed=0, frameworks=["numpy"])
    fits = scenario.fits
    beta, platt, raw = fits["beta numpy"], fits["platt numpy"], fits["uncalibrated"]
    # measured: beta 0.5441, Platt 0.5491, uncalibrated 0.7242 (population gap ~0.008)
    assert beta.test_log_loss < platt.test_log_loss - 0.002
    assert platt.test_log_loss < raw.test_log_loss - 0.05
    # measured ECE: beta 0.016, Platt 0.034, uncalibrated 0.18
    assert beta.ece < 0.75 * platt.ece < 0.75 * raw.ece
    assert beta.brier < platt.brier < raw.brier
    # the oracle (true q) bounds what any calibrator can reach on test, up to sampling noise
    assert fits["oracle"].test_log_loss < beta.test_log_loss + 0.005


@pytest.mark.parametrize("scenario", ["overconfident", "negative-b"])
def test_both_beat_the_uncalibrated_scores(mod, scenario):
    fits = mod.fit_scenario(scenario, 4000, seed=1, frameworks=["numpy"]).fits
    for name in ("beta numpy", "platt numpy"):
        assert fits[name].test_log_loss < fits["uncalibrated"].test_log_loss - 0.05, name
        assert fits[name].ece < 0.5 * fits["uncalibrated"].ece, name


# --- the bounds ---------------------------------------------------------------------------------


def test_bounds_active_where_the_unconstrained_optimum_has_b_negative(mod, scenarios):
    fits = scenarios["negative-b"].fits
    unconstrained = fits["beta sklearn"]
    assert unconstrained.params["b"] < -0.2  # measured -0.36: the data put the optimum outside
    betacal = fits["beta betacal"]
    assert betacal.params["b"] == 0.0  # betacal dropped -ln(1 - p) and refitted on ln p
    scores, labels, _ = mod.make_data("negative-b", 4000, seed=0)
    features = mod._features("beta", scores[:2000])
    for ours in ("beta torch", "beta numpy"):
        fit = fits[ours]
        assert fit.success
        assert 0.0 <= fit.params["b"] < 1e-8 and fit.params["a"] > 0.1  # stopped on the bound
        # the same constrained optimum as betacal's drop-and-refit
        assert rel_diff(fit.params, betacal.params) < 1e-2
        assert fit.train_log_loss <= betacal.train_log_loss + 1e-12
        # the bound costs likelihood against the unconstrained fit (measured 2.9e-3)
        assert fit.train_log_loss > unconstrained.train_log_loss + 1e-4
        # KKT: the loss increases into the feasible side of b = 0
        x = {k: np.array(v) for k, v in fit.params.items()}
        _, grad = mod.numpy_loss_and_grad(x, features, labels[:2000])
        assert float(grad["b"]) > 1e-4 and abs(float(grad["a"])) < 1e-6
    # betacal's midpoint m does not exist here (b = 0, c < 0): c from m is meaningless
    assert not mod.reaches_one_half(betacal.params)
    assert abs(scenarios["negative-b"].betacal_c_from_m - betacal.params["c"]) > 0.1


@pytest.mark.parametrize("seed", range(4))
def test_bounds_hold_on_tiny_samples(mod, seed, monkeypatch):
    frameworks = ["numpy"] + (["torch"] if mod.available("torch") else [])
    monkeypatch.setattr(mod, "available", lambda name: False)  # ours only: 10 training samples
    for kind in mod.SCENARIOS:
        fits = mod.fit_scenario(kind, 20, seed=seed, frameworks=frameworks).fits
        for framework in frameworks:
            fit = fits[f"beta {framework}"]
            assert fit.params["a"] >= 0.0 and fit.params["b"] >= 0.0, (kind, framework)
            # the identity (a = b = 1, c = 0) is the start: the fit can only improve on it
            assert fit.train_log_loss <= fits["uncalibrated"].train_log_loss + 1e-12


def test_one_class_training_labels(mod, monkeypatch, capsys):
    """All-positive training labels: ours still fit (within bounds), the references are skipped."""
    real = mod.make_data
    monkeypatch.setattr(mod, "make_data", lambda *a: (real(*a)[0], np.ones(a[1]), real(*a)[2]))
    results = mod.fit_all(40, scenarios=["one-sided"])
    sc = results.scenarios["one-sided"]
    assert sc.notes == ["references skipped: the training labels are all of one class"]
    assert not any(name.endswith(("sklearn", "betacal")) for name in sc.fits)
    fit = sc.fits["beta numpy"]
    assert fit.params["a"] >= 0 and fit.params["b"] >= 0
    assert fit.train_log_loss < sc.fits["uncalibrated"].train_log_loss
    assert "references skipped" in mod.format_report(results)


def test_trace_gives_the_convergence_numbers(mod):
    fit = mod.fit_scenario("overconfident", 400, frameworks=["numpy"]).fits["beta numpy"]
    assert fit.nit is not None and fit.nfev is not None and fit.nit >= 1
    _, res = mod.fit_ours("beta", "numpy", *mod.make_data("overconfident", 200)[:2])
    if getattr(res, "trace", None) is None:
        pytest.skip("minimize records no trace here")
    assert fit.evals_to_final is not None and 1 <= fit.evals_to_final <= fit.nfev
    assert res.trace.fun[-1] == pytest.approx(res.fun)


# --- metrics, data and errors ---------------------------------------------------------------------


def test_metrics(mod):
    y = np.array([0.0, 1.0, 1.0, 0.0])
    assert mod.brier_score(y, y) == 0.0
    assert mod.log_loss(y, np.zeros(4)) == pytest.approx(np.log(2.0))
    # one bin holds everything: the gap between the mean label and the mean prediction
    assert mod.expected_calibration_error(y, np.full(4, 0.8), bins=1) == pytest.approx(0.3)
    assert mod.expected_calibration_error(y, np.array([0.0, 1.0, 1.0, 0.0])) == 0.0
    # calibrated by construction: ECE small on many samples
    rng = np.random.default_rng(0)
    p = rng.random(20_000)
    assert mod.expected_calibration_error((rng.random(20_000) < p).astype(float), p) < 0.02
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        mod.expected_calibration_error(y, y, bins=0)


def test_data_are_reproducible_and_valid(mod):
    for kind in mod.SCENARIOS:
        p1, y1, q1 = mod.make_data(kind, 50, seed=7)
        p2, y2, _ = mod.make_data(kind, 50, seed=7)
        np.testing.assert_array_equal(p1, p2)
        np.testing.assert_array_equal(y1, y2)
        assert bool(((p1 > 0) & (p1 < 1)).all() and ((q1 > 0) & (q1 < 1)).all())
        assert set(y1.tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="unknown scenario 'nope'; expected one of"):
        mod.make_data("nope", 10)


def test_torch_missing_is_a_clear_import_error(mod, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    p, y, _ = mod.make_data("one-sided", 40)
    with pytest.raises(ImportError, match=r"needs PyTorch: pip install 'dict_minimize\[torch\]'"):
        mod.fit_ours("platt", "torch", p, y)


def test_bad_fit_arguments(mod):
    p, y, _ = mod.make_data("one-sided", 40)
    with pytest.raises(ValueError, match="unknown framework 'jax'; expected 'torch' or 'numpy'"):
        mod.fit_ours("beta", "jax", p, y)
    with pytest.raises(ValueError, match="unknown model 'isotonic'; expected 'beta' or 'platt'"):
        mod.fit_ours("isotonic", "numpy", p, y)
    with pytest.raises(ValueError, match="n must be at least 20"):
        mod.fit_scenario("one-sided", 10)


def test_reliability_diagram_returns_a_figure(mod):
    pytest.importorskip("matplotlib")
    p, y, q = mod.make_data("overconfident", 300)
    fig = mod.reliability_diagram(y, {"before": p, "true": q}, bins=5, title="t")
    assert len(fig.axes) == 2
    top = fig.axes[0]
    assert len(top.lines) == 3  # the diagonal and two curves
    assert [t.get_text() for t in top.get_legend().get_texts()][1].startswith("before (ECE ")
    assert fig._suptitle.get_text() == "t"


def test_module_doctests(mod):
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    pytest.importorskip("betacal")
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    result = doctest.testmod(mod, optionflags=flags)
    assert result.attempted > 10 and result.failed == 0
