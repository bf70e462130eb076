"""The examples, the demo, and the original dict_minimize README's four examples, verbatim."""

from __future__ import annotations

import importlib.util
import itertools
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from dict_minimize import demo

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def load_example(name: str) -> ModuleType:
    """Import examples/<name>.py (examples/ is not a package)."""
    mod_name = f"_dict_minimize_example_{name}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    if str(EXAMPLES) not in sys.path:  # the scripts import examples/_shared.py, as Python does
        sys.path.insert(0, str(EXAMPLES))  # for a script run from its own folder
    spec = importlib.util.spec_from_file_location(mod_name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach()
    return np.asarray(value, dtype=np.float64)


def assert_like(result, x0) -> None:
    """``result`` is an OrderedDict with x0's keys (in order), tensor types, dtypes and shapes."""
    assert type(result) is OrderedDict
    assert list(result) == list(x0)
    for key, value in x0.items():
        assert type(result[key]) is type(value), key
        assert result[key].dtype == value.dtype, key
        assert tuple(result[key].shape) == tuple(value.shape), key


def two_term_rosen(params, shift: float) -> float:
    """The README's torch/TF objective, in NumPy: 0 on the valley X[1] = X[0]**2 (shifted)."""
    x = to_numpy(params["x_half_a"]) - shift
    y = to_numpy(params["x_half_b"]) - shift
    return float(100 * (x[1] - x[0] ** 2) ** 2 + 100 * (y[1] - y[0] ** 2) ** 2)


# --- examples/original_readme.py ----------------------------------------------------------------


@pytest.mark.parametrize("framework", ["numpy", "torch", "jax", "tensorflow"])
def test_original_readme_main(framework, capsys):
    pytest.importorskip(framework)
    mod = load_example("original_readme")
    assert mod.main(["--size", "2", "--frameworks", framework]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{framework} (n_a=2, n_b=2):")
    assert "x_half_a = " in out and "x_half_b = " in out


@pytest.mark.parametrize("framework", ["numpy", "torch", "jax", "tensorflow"])
def test_original_readme_examples_solve(framework):
    pytest.importorskip(framework)
    mod = load_example("original_readme")
    example, (n_a, n_b) = mod.EXAMPLES[framework]
    params = example(n_a, n_b)
    assert type(params) is OrderedDict and list(params) == ["x_half_a", "x_half_b"]
    assert params["x_half_a"].shape == (n_a,) and params["x_half_b"].shape == (n_b,)
    if framework in ("torch", "tensorflow"):  # a valley of minima: check the objective only
        assert two_term_rosen(params, shift=-1.0) < 1e-6
    else:  # full Rosenbrock of x - shift: minimum at x = 1 + shift = 0
        atol = 1e-4 if framework == "numpy" else 1e-3  # JAX runs in float32
        for value in params.values():
            np.testing.assert_allclose(to_numpy(value), 0.0, atol=atol)


def test_original_readme_skips_missing_framework(monkeypatch, capsys):
    mod = load_example("original_readme")
    monkeypatch.setattr(mod.importlib.util, "find_spec", lambda name: None)
    assert mod.main(["--frameworks", "torch", "jax"]) == 0
    out = capsys.readouterr().out
    assert "torch: skipped (not installed)" in out and "jax: skipped (not installed)" in out


# --- examples/beta_calibration.py ---------------------------------------------------------------


def test_beta_calibration_main(capsys):
    pytest.importorskip("torch")
    mod = load_example("beta_calibration")
    assert mod.main(["--size", "500"]) == 0
    out = capsys.readouterr().out
    assert "fitted" in out and "identity" in out and "log-loss" in out


def test_beta_calibration_saves_its_figure(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    mod = load_example("beta_calibration")
    assert mod.main(["--size", "300", "--out", str(tmp_path / "fig")]) == 0
    path = tmp_path / "fig" / "beta_calibration.png"
    assert str(path) in capsys.readouterr().out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_beta_calibration_recovers_the_true_map():
    torch = pytest.importorskip("torch")
    mod = load_example("beta_calibration")
    fit = mod.fit(20_000, seed=0)
    assert fit.success
    assert fit.log_loss < fit.identity_log_loss
    # the maximum-likelihood fit is at least as good as the true map on its training data
    scores, labels = mod.make_data(20_000, seed=0)
    true = {k: torch.tensor(v, dtype=torch.float64) for k, v in mod.TRUE_PARAMS.items()}
    assert fit.log_loss <= float(mod.log_loss(true, scores, labels)) + 1e-12
    # and close to it, as a calibration map and parameter by parameter
    grid = torch.linspace(0.02, 0.98, 49, dtype=torch.float64)
    fitted = {k: torch.tensor(getattr(fit, k), dtype=torch.float64) for k in "abc"}
    gap = torch.sigmoid(mod.calibrated_logit(fitted, grid)) - torch.sigmoid(
        mod.calibrated_logit(true, grid)
    )
    assert float(gap.abs().max()) < 0.03
    for k in "abc":
        assert abs(getattr(fit, k) - mod.TRUE_PARAMS[k]) < 0.3, k


def test_beta_calibration_data_are_reproducible():
    torch = pytest.importorskip("torch")
    mod = load_example("beta_calibration")
    s1, y1 = mod.make_data(50, seed=7)
    s2, y2 = mod.make_data(50, seed=7)
    assert torch.equal(s1, s2) and torch.equal(y1, y2)
    assert s1.dtype == torch.float64 and bool(((s1 > 0) & (s1 < 1)).all())
    assert set(y1.tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("n", [1, 3])
def test_beta_calibration_bounds_hold(n):
    pytest.importorskip("torch")
    mod = load_example("beta_calibration")
    fit = mod.fit(n, seed=0)  # so few samples that an unbounded fit would leave a, b >= 0
    assert fit.a >= 0.0 and fit.b >= 0.0
    assert fit.log_loss <= fit.identity_log_loss


# --- examples/callbacks.py ----------------------------------------------------------------------


def test_callbacks_main(capsys):
    mod = load_example("callbacks")
    assert mod.main(["--size", "4", "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "1. tracking" in out and "2. early stop" in out and "3. callback(x_dict)" in out


def test_callbacks_saves_its_figure(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    mod = load_example("callbacks")
    assert mod.main(["--size", "4", "--steps", "3", "--out", str(tmp_path)]) == 0
    path = tmp_path / "callbacks.png"
    assert str(path) in capsys.readouterr().out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_callbacks_without_matplotlib_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    mod = load_example("callbacks")
    monkeypatch.setattr(mod, "available", lambda name: name != "matplotlib")
    assert mod.main(["--size", "4", "--steps", "3", "--out", str(tmp_path)]) == 0
    assert "pip install 'dict_minimize[plot]'" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())


def test_callbacks_track_objective():
    mod = load_example("callbacks")
    res, history = mod.track_objective(4)
    assert res.success and len(history) == res.nit
    assert all(b <= a for a, b in itertools.pairwise(history))  # L-BFGS-B descends
    assert history[-1] == pytest.approx(res.fun)


def test_callbacks_stop_at_target():
    mod = load_example("callbacks")
    res, history = mod.stop_at_target(4, target=1e-2)
    assert not res.success
    assert res.message == "`callback` raised `StopIteration`."
    assert res.fun < 1e-2 <= min(history[:-1])
    assert res.fun == history[-1]


def test_callbacks_record_path():
    mod = load_example("callbacks")
    res, path = mod.record_path(4, max_steps=3)
    assert len(path) == 3 and not res.success
    np.testing.assert_array_equal(np.concatenate([res.x["head"], res.x["tail"]]), path[-1])


# --- python -m dict_minimize.demo ---------------------------------------------------------------


def test_demo_subprocess(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dict_minimize.demo",
            "--size",
            "4",
            "--budget",
            "60",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("framework"))
    assert all(col in lines[header] for col in ("dtype", "method", "success", "nfev", "wall time"))
    rows = {line.split()[0]: line.split() for line in lines[header + 2 :] if line.strip()}
    assert rows["numpy"][1:4] == ["float64", "L-BFGS-B", "yes"]
    for fw in ("torch", "jax", "tensorflow"):
        if demo.is_installed(fw):
            assert rows[fw][3] == "yes"
    # the comparison: its table, and the two figures, saved where --out says
    assert "L-BFGS-B against Adam and SGD" in proc.stdout
    table = lines[next(i for i, ln in enumerate(lines) if "against Adam" in ln) + 1 :]
    assert any(ln.startswith("L-BFGS-B") for ln in table)
    if demo.is_installed("torch"):
        assert any(ln.startswith("Adam lr=0.05") for ln in table)
    if demo.is_installed("matplotlib"):
        for name in ("convergence.png", "paths.png"):
            path = tmp_path / name
            assert f"saved {path}" in proc.stdout
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_main_numpy(capsys):
    assert demo.main(["--size", "3", "--frameworks", "numpy", "--budget", "0"]) == 0
    out = capsys.readouterr().out
    assert "Rosenbrock in 3 dims" in out
    assert any(line.startswith("numpy ") for line in out.splitlines())


def test_demo_prints_each_row_as_it_is_done(capsys):
    """Rows come out as each solve ends, after a note of what runs; notes go to stderr."""
    events = []
    rows, _ = demo.run(
        3,
        ["numpy", "numpy"],
        on_row=lambda row: events.append(("row", row.framework)),
        status=lambda note: events.append(("status", note)),
    )
    assert events == [("status", "solving with numpy ..."), ("row", "numpy")] * 2
    assert len(rows) == 2
    assert demo.main(["--size", "3", "--frameworks", "numpy", "--budget", "0"]) == 0
    out, err = capsys.readouterr()
    assert "solving with numpy ..." in err and "solving" not in out
    lines = out.splitlines()
    header = demo.format_header().splitlines()
    at = lines.index(header[0])
    assert lines[at : at + 2] == header
    assert any(line.startswith("threads: ") for line in lines[:at])  # the policy it runs under
    assert lines[at + 2].split()[:4] == ["numpy", "float64", "L-BFGS-B", "yes"]
    assert len(lines[at + 2]) == len(lines[at + 1])  # the row fills the header's fixed widths


def test_demo_comparison_rows_as_they_come():
    from dict_minimize import _demo_compare

    events = []
    table, figures = _demo_compare.run(
        5, None, echo=lambda line: events.append(line), status=lambda n: events.append(n)
    )
    assert figures == [] and table.startswith(events[0])
    header = events[1]
    columns = [c.strip() for c in header.split("  ") if c.strip()]
    assert columns[:3] == ["optimizer", "final - f_min", "best - f_min"]  # gaps, no "final"
    names = list(_demo_compare.optimizers("torch" if demo.is_installed("torch") else "numpy"))
    after_rule = events[3:]
    for i, name in enumerate(names):  # a note, then the row
        assert after_rule[2 * i] == f"running {name} ..."
        assert after_rule[2 * i + 1].startswith(name)
    # fixed widths: the columns line up with the header
    rule = events[2]
    starts = [i for i, c in enumerate(rule) if c == "-" and (i == 0 or rule[i - 1] == " ")]
    for line in after_rule[1::2]:
        assert all(line[s - 1] == " " for s in starts[1:]), line


def test_demo_problem_shapes():
    for size in (3, 4, 6, 7, 20):
        problem = demo.make_problem(size)
        assert len(problem.shapes["a"]) == 1 and len(problem.shapes["b"]) == 2
        assert sum(int(np.prod(s)) for s in problem.shapes.values()) == size
        assert all(v.shape == problem.shapes[k] for k, v in problem.x0.items())
    with pytest.raises(ValueError, match="at least 3"):
        demo.make_problem(2)


@pytest.mark.parametrize("framework", demo.FRAMEWORKS)
def test_demo_solve_each_framework(framework):
    pytest.importorskip(framework)
    row = demo.solve(framework, demo.make_problem(5))
    assert row.error is None and row.ok
    assert row.dtype == ("float32" if framework == "jax" else "float64")
    assert row.nit > 0 and row.nfev >= row.nit and row.seconds > 0


def test_demo_skips_missing_frameworks(monkeypatch, capsys):
    monkeypatch.setattr(demo, "is_installed", lambda fw: fw == "numpy")
    assert demo.main(["--size", "3", "--frameworks", "numpy,torch", "jax", "--budget", "0"]) == 0
    out = capsys.readouterr().out
    assert "skipped torch: not installed" in out and "skipped jax: not installed" in out


def test_demo_reports_failure(monkeypatch, capsys):
    monkeypatch.setitem(demo.OPTIONS, "float64", {"maxiter": 2})
    assert demo.main(["--size", "6", "--frameworks", "numpy", "--budget", "0"]) == 1
    assert "FAILED numpy" in capsys.readouterr().out


def test_demo_repeat_and_blas_options(capsys):
    argv = ["--size", "3", "--frameworks", "numpy", "--repeat", "2", "--blas-threads", "0"]
    assert demo.main(argv) == 0
    assert "numpy " in capsys.readouterr().out
    rows, skipped = demo.run(3, ["numpy"], repeat=2, blas=2)
    assert skipped == [] and [r.framework for r in rows] == ["numpy"] and rows[0].ok


@pytest.mark.parametrize(
    "argv",
    [["--frameworks", "mxnet"], ["--size", "2"], ["--repeat", "0"], ["--blas-threads", "-1"]],
)
def test_demo_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        demo.main(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


# --- the original dict_minimize README, verbatim ------------------------------------------------
# Only change: `from collections import OrderedDict` added. options={"disp": True} stays: SciPy
# >= 1.17 deprecates it for L-BFGS-B, so dict_minimize prints its own summary instead, and these
# tests run with warnings as errors to prove no deprecation reaches the user.

README_TORCH = '''
from collections import OrderedDict

import torch
from dict_minimize.torch_api import minimize

def rosen_obj(params, shift):
    """Based on augmented Rosenbrock from botorch."""
    X, Y = params["x_half_a"], params["x_half_b"]
    X = X - shift
    Y = Y - shift
    obj = 100 * (X[1] - X[0] ** 2) ** 2 + 100 * (Y[1] - Y[0] ** 2) ** 2
    return obj

def d_rosen_obj(params, shift):
    obj = rosen_obj(params, shift=shift)
    da, db = torch.autograd.grad(obj, [params["x_half_a"], params["x_half_b"]])
    d_obj = OrderedDict([("x_half_a", da), ("x_half_b", db)])
    return obj, d_obj

torch.manual_seed(123)

n_a = 2
n_b = 2
shift = -1.0

params = OrderedDict([("x_half_a", torch.randn((n_a,))), ("x_half_b", torch.randn((n_b,)))])

params = minimize(d_rosen_obj, params, args=(shift,), method="L-BFGS-B", options={"disp": True})
'''

README_TENSORFLOW = '''
from collections import OrderedDict

import tensorflow as tf
from dict_minimize.tensorflow_api import minimize

def rosen_obj(params, shift):
    """Based on augmented Rosenbrock from botorch."""
    X, Y = params["x_half_a"], params["x_half_b"]
    X = X - shift
    Y = Y - shift
    obj = 100 * (X[1] - X[0] ** 2) ** 2 + 100 * (Y[1] - Y[0] ** 2) ** 2
    return obj

def d_rosen_obj(params, shift):
    with tf.GradientTape(persistent=True) as t:
        t.watch(params["x_half_a"])
        t.watch(params["x_half_b"])

        obj = rosen_obj(params, shift=shift)

    da = t.gradient(obj, params["x_half_a"])
    db = t.gradient(obj, params["x_half_b"])
    d_obj = OrderedDict([("x_half_a", da), ("x_half_b", db)])
    del t  # Explicitly drop the reference to the tape
    return obj, d_obj

tf.random.set_seed(123)

n_a = 2
n_b = 2
shift = -1.0

params = OrderedDict([("x_half_a", tf.random.normal((n_a,))), ("x_half_b", tf.random.normal((n_b,)))])

params = minimize(d_rosen_obj, params, args=(shift,), method="L-BFGS-B", options={"disp": True})
'''  # noqa: E501

README_NUMPY = """
from collections import OrderedDict

import numpy as np
from scipy.optimize import rosen, rosen_der
from dict_minimize.numpy_api import minimize

def rosen_obj(params, shift):
    val = rosen(params["x_half_a"] - shift) + rosen(params["x_half_b"] - shift)

    dval = OrderedDict(
        [
            ("x_half_a", rosen_der(params["x_half_a"] - shift)),
            ("x_half_b", rosen_der(params["x_half_b"] - shift)),
        ]
    )
    return val, dval

np.random.seed(0)

n_a = 3
n_b = 5
shift = -1.0

params = OrderedDict([("x_half_a", np.random.randn(n_a)), ("x_half_b", np.random.randn(n_b))])

params = minimize(rosen_obj, params, args=(shift,), method="L-BFGS-B", options={"disp": True})
"""

README_JAX = """
from collections import OrderedDict

from jax import random, value_and_grad
import jax.numpy as np
from dict_minimize.jax_api import minimize

def rosen(x):
    r = np.sum(100.0 * (x[1:] - x[:-1] ** 2.0) ** 2.0 + (1 - x[:-1]) ** 2.0, axis=0)
    return r

def rosen_obj(params, shift):
    val = rosen(params["x_half_a"] - shift) + rosen(params["x_half_b"] - shift)
    return val

n_a = 3
n_b = 5
shift = -1.0

# Jax makes it this simple:
d_rosen_obj = value_and_grad(rosen_obj, argnums=0)

# Setup randomness in JAX
key = random.PRNGKey(0)
key, subkey_a = random.split(key)
key, subkey_b = random.split(key)

params = OrderedDict(
    [("x_half_a", random.normal(subkey_a, shape=(n_a,))), ("x_half_b", random.normal(subkey_b, shape=(n_b,)))]
)

params = minimize(d_rosen_obj, params, args=(shift,), method="L-BFGS-B", options={"disp": True})
"""  # noqa: E501

README_SNIPPETS = {
    "torch": README_TORCH,
    "tensorflow": README_TENSORFLOW,
    "numpy": README_NUMPY,
    "jax": README_JAX,
}


def run_snippet(source: str) -> tuple[dict, OrderedDict, OrderedDict]:
    """Run a README snippet; return its namespace, the starting params and the result."""
    cut = source.rindex("params = minimize(")
    namespace: dict = {"__name__": "readme_snippet"}
    exec(compile(source[:cut], "<README setup>", "exec"), namespace)
    x0 = namespace["params"]
    exec(compile(source[cut:], "<README minimize>", "exec"), namespace)
    return namespace, x0, namespace["params"]


@pytest.mark.parametrize("framework", list(README_SNIPPETS))
def test_original_readme_verbatim(framework):
    pytest.importorskip(framework)
    namespace, x0, result = run_snippet(README_SNIPPETS[framework])
    assert_like(result, x0)
    shift = namespace["shift"]
    assert shift == -1.0
    if framework in ("torch", "tensorflow"):
        # only 100 * (.)**2 terms: every point with X[1] = X[0]**2 (after the shift) is a minimum
        assert float(namespace["rosen_obj"](result, shift)) < 1e-6
        assert two_term_rosen(result, shift) < 1e-6
    else:
        # full Rosenbrock of x - shift, minimum at x - shift = 1, i.e. x = 1 + shift = 0
        atol = 1e-4 if framework == "numpy" else 1e-3  # the JAX snippet runs in float32
        for key in x0:
            np.testing.assert_allclose(to_numpy(result[key]), 1.0 + shift, atol=atol)
        value = namespace["rosen_obj"](result, shift)
        value = value[0] if framework == "numpy" else value
        assert float(value) < 1e-6
    # x0 was only read
    assert not np.allclose(to_numpy(x0["x_half_a"]), to_numpy(result["x_half_a"]))


def test_shared_example_helpers() -> None:
    """examples/_shared.py, which the example scripts import: its doctests run."""
    import doctest

    pytest.importorskip("torch")
    result = doctest.testmod(load_example("_shared"))
    assert result.attempted >= 5 and result.failed == 0
