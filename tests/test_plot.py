"""dict_minimize.plot, rendered headless (Agg): real PNGs of the right size, and what is drawn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from dict_minimize import Trace, minimize, plot  # noqa: E402
from dict_minimize.testfunctions import flower, himmelblau, rosenbrock  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def png_check(fig, path: Path, size=(4, 3), dpi=50) -> None:
    fig.set_size_inches(*size)
    fig.savefig(path, dpi=dpi)
    data = path.read_bytes()
    assert data[:8] == PNG
    img = matplotlib.image.imread(path)
    assert img.shape[:2] == (size[1] * dpi, size[0] * dpi)
    assert len(np.unique(img.reshape(-1, img.shape[-1]), axis=0)) > 1


def runs() -> dict:
    fn = rosenbrock()
    return {
        m: minimize(fn.objective("numpy"), fn.x0("numpy"), method=m, trace="x")
        for m in ("L-BFGS-B", "BFGS", "Nelder-Mead")
    }


@pytest.mark.parametrize("x", ["nfev", "njev", "time", "nit"])
def test_convergence_draws_each_run(tmp_path, x) -> None:
    results = runs()
    ax = plot.convergence(results, x=x, f_min=0.0)
    lines = ax.get_lines()
    assert len(lines) == 3 and ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(results)
    for line, res in zip(lines, results.values(), strict=True):
        np.testing.assert_array_equal(line.get_xdata(), getattr(res.trace, x))
        np.testing.assert_allclose(line.get_ydata(), np.maximum(res.trace.fun, plot.GAP_FLOOR))
    assert ax.get_xlabel() == plot.X_AXES[x]
    png_check(ax.figure, tmp_path / "c.png")


def test_convergence_linear_when_values_are_not_positive_and_running_min() -> None:
    tr = Trace(fun=[1.0, -2.0, 0.5, -3.0], nfev=[1, 2, 3, 4])
    ax = plot.convergence(tr)
    assert ax.get_yscale() == "linear" and ax.get_legend() is None
    ax2 = plot.convergence(tr, running_min=True, title="t")
    np.testing.assert_array_equal(ax2.get_lines()[0].get_ydata(), [1.0, -2.0, -2.0, -3.0])
    assert ax2.get_title() == "t" and "best" in ax2.get_ylabel()


def test_convergence_floor_and_distinct_runs() -> None:
    """Every run its own colour, line style and marker; a floor clips the gaps and the axis."""
    results = runs()
    ax = plot.convergence(results, f_min=0.0, floor=1e-12)
    lines = ax.get_lines()
    looks = {(ln.get_color(), ln.get_linestyle(), ln.get_marker()) for ln in lines}
    assert len({ln.get_linestyle() for ln in lines}) == 3 and len(looks) == 3
    assert len({ln.get_marker() for ln in lines}) == 3
    for line, res in zip(lines, results.values(), strict=True):
        np.testing.assert_allclose(line.get_ydata(), np.maximum(res.trace.fun, 1e-12))
    assert ax.get_ylim()[0] == 1e-12
    with pytest.raises(ValueError, match="floor must be None or a positive number"):
        plot.convergence(results, f_min=0.0, floor=0.0)


def test_convergence_errors() -> None:
    with pytest.raises(ValueError, match="x must be one of"):
        plot.convergence(Trace(fun=[1.0], nfev=[1]), x="evals")
    res = minimize(rosenbrock().objective("numpy"), rosenbrock().x0("numpy"))
    with pytest.raises(TypeError, match="trace=True"):
        plot.convergence(res)
    with pytest.raises(TypeError, match="expected a Trace"):
        plot.convergence({"a": [1, 2]})


@pytest.mark.parametrize("make", [himmelblau, flower])
def test_paths_on_a_test_function(tmp_path, make) -> None:
    fn = make()
    res = minimize(fn.objective("numpy"), fn.x0("numpy"), method="BFGS", trace="x")
    by_hand = [{"x": 1.0, "y": 1.0}, {"x": 2.0, "y": 2.0}]
    ax = plot.paths(fn, {"BFGS": res, "hand": by_hand})
    path = ax.get_lines()[0]
    assert path.get_xdata()[0] == fn.start["x"] and path.get_ydata()[0] == fn.start["y"]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["BFGS", "hand"]
    assert ("minimum" in labels) == bool(fn.minima)
    assert ("infimum (not attained)" in labels) == bool(fn.infimum_at)
    assert ax.get_xlim() == tuple(fn.domain[0])
    png_check(ax.figure, tmp_path / "p.png")


def test_paths_colour_bar_and_legend() -> None:
    """Rosenbrock spans decades: log levels, a labelled colour bar ticked at whole decades;
    the start and end markers have legend entries."""
    fn = rosenbrock()
    res = minimize(fn.objective("numpy"), fn.x0("numpy"), method="BFGS", trace="x")
    ax = plot.paths(fn, {"BFGS": res})
    bar = ax.figure.axes[-1]
    assert "f(x, y)" in bar.get_ylabel() and "log" in bar.get_ylabel()
    ticks = bar.get_yticks()
    assert len(ticks) >= 5 and np.allclose(np.log10(ticks), np.round(np.log10(ticks)))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["BFGS", "start", "end", "minimum"]
    himmel = plot.paths(himmelblau(), {"BFGS": res}, log_levels=False, cmap="Greys")
    assert himmel.figure.axes[-1].get_ylabel() == "f(x, y)"


@pytest.mark.parametrize("framework", ["numpy", "torch", "jax", "tensorflow"])
def test_paths_take_points_of_every_framework(framework) -> None:
    pytest.importorskip(framework)
    fn = himmelblau()
    pts = [fn.x0(framework), fn.x0(framework)]
    ax = plot.paths(fn, pts, resolution=20)
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [fn.start["x"]] * 2)


def test_paths_errors() -> None:
    fn = himmelblau()
    res = minimize(fn.objective("numpy"), fn.x0("numpy"), trace=True)
    with pytest.raises(ValueError, match="trace='x'"):
        plot.paths(fn, res)
    with pytest.raises(TypeError, match="expected a dict with 'x', 'y'"):
        plot.paths(fn, [[1.0, 2.0]])


def test_live_redraws_every_k_iterations(tmp_path) -> None:
    fn = rosenbrock()
    view = plot.live(every=4, x="nfev", f_min=0.0)
    res = minimize(fn.objective("numpy"), fn.x0("numpy"), method="BFGS", callback=view)
    assert len(view.trace) == res.nit and view.redraws == res.nit // 4
    assert view.trace.nfev[-1] <= res.nfev and len(view.ax.get_lines()) == 1
    png_check(view.ax.figure, tmp_path / "l.png")
    other = plot.live(every=1)
    other({"fun": 2.0})  # a plain mapping without counts
    other({"fun": 1.0})
    np.testing.assert_array_equal(other.trace.nit, [1, 2])
    with pytest.raises(ValueError, match="positive int"):
        plot.live(every=0)


def test_plot_needs_matplotlib_only_when_used() -> None:
    code = (
        "import sys, dict_minimize, dict_minimize.plot\n"
        "assert 'matplotlib' not in sys.modules\n"
        "sys.modules['matplotlib'] = None; sys.modules['matplotlib.pyplot'] = None\n"
        "from dict_minimize import Trace\n"
        "try:\n"
        "    dict_minimize.plot.convergence(Trace(fun=[1.0], nfev=[1]))\n"
        "except ImportError as exc:\n"
        "    assert 'dict_minimize[plot]' in str(exc), exc\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
