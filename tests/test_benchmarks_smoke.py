"""The benchmark suite's machinery on tiny sizes, so that ``benchmarks/`` stays runnable.

The suite itself (``python -m benchmarks.run``) is not collected by pytest; this runs its
problems, contenders, worker protocol and report on tiny sizes in a few seconds.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import scipy.optimize

from benchmarks import problems as P
from benchmarks import run as R
from benchmarks import worker as W


@pytest.mark.parametrize("name", list(P.DTYPES))
def test_problem_gradients_and_floor_agree(name: str) -> None:
    """Each problem's hand-written gradient matches finite differences, dict and flat alike."""
    prob = P.build(name, "float64", "tiny")
    rng = np.random.default_rng(0)
    x = prob.flat_x0() + 0.1 * rng.normal(size=prob.n)
    value, grad = prob.flat_vg(x, *prob.data)
    d_value, d_grad = prob.numpy_vg(prob.split(x), *prob.data)
    assert value == pytest.approx(d_value)
    np.testing.assert_allclose(grad, np.concatenate([np.ravel(d_grad[k]) for k in prob.keys]))
    fd = scipy.optimize.approx_fprime(x, lambda z: prob.flat_vg(z, *prob.data)[0], 1e-7)
    np.testing.assert_allclose(grad, fd, rtol=1e-4, atol=1e-4)


def _contenders(fw: str) -> list[str]:
    names = [c for c in R.OURS[fw] if c not in ("ours-autodiff",)]
    return names


@pytest.mark.parametrize("fw", ["numpy", "torch"])
def test_contenders_run_in_process(fw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every contender of a framework solves the calibration problem to the same optimum."""
    if importlib.util.find_spec(fw) is None:
        pytest.skip(f"{fw} is not installed")
    import dict_minimize

    monkeypatch.setattr(scipy.optimize, "minimize", W.timed_scipy_minimize)
    bench = W.Bench(
        W.FRAMEWORKS[fw](), dict_minimize, P.build("calibration", "float64", "tiny"), "tiny"
    )
    results = {c: bench.runner(c)() for c in _contenders(fw)}
    for c, r in results.items():
        assert r["nfev"] > 0 and r["total"] > 0, (c, r)
        if c != "adam":
            assert r["fun"] == pytest.approx(results[_contenders(fw)[0]]["fun"], rel=1e-4), c
        if c not in ("torch-lbfgs", "adam"):
            assert r["in_fun"] >= r["objective"] > 0, (c, r)


def test_worker_protocol_and_report(tmp_path) -> None:
    """A real worker process: setup, interleaved rounds, teardown; then the markdown report."""
    with open(tmp_path / "log", "w") as log:
        worker = R.Worker("numpy", "ours", None, log, 1)
        try:
            assert worker.hello["ready"] and worker.hello["package"] == "ours"
            entries = R.run_problem(
                "many_small",
                "float64",
                "tiny",
                2,
                ["numpy"],
                {("numpy", "ours"): worker},
                False,
                log,
            )
        finally:
            worker.close()
    by_name = {e.contender: e for e in entries}
    assert set(by_name) == set(R.OURS["numpy"])
    for e in entries:
        assert e.error is None and len(e.rounds) == 2, e
        assert e.per_eval("total") > 0
    suite = {
        "scale": "tiny",
        "rounds": 2,
        "entries": entries,
        "notes": ["smoke"],
        "hellos": {"numpy/ours": worker.hello},
        "seconds": 1.0,
    }
    text = R.markdown(suite, [], None)
    assert "| many_small | float64 | numpy | floor |" in text
    assert "many_small float64 numpy: best of ours" in text


def test_nested_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks/nested.py on a tiny tree: the table comes out, with both dicts alike."""
    from benchmarks import nested

    assert (
        nested.main(["--leaves", "20", "--rounds", "1", "--evals", "1", "--frameworks", "numpy"])
        == 0
    )
    out = capsys.readouterr().out
    assert "| numpy | 20 |" in out and "bridge's extra" in out


def test_scale_out_benchmark_runs_quick(capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks/many.py --quick: a local cluster and a process pool, every table printed."""
    pytest.importorskip("distributed")
    from benchmarks import many

    assert many.main(["--quick"]) == 0
    out = capsys.readouterr().out
    for title in ("Per solve", "calibration fits", "Sharded objective"):
        assert title in out
    assert out.count("| contender |") == 3


def test_threads_benchmark_runs_quick(capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks/threads.py --quick on tiny sizes: every problem and setting, one table."""
    pytest.importorskip("threadpoolctl")
    from benchmarks import threads

    threads.main(["--quick", "--only", "many", "logistic", "matmul", "big_n", "mlp"])
    out = capsys.readouterr().out
    assert "load average" in out and "| none / auto |" in out
    for name in ("many", "logistic", "matmul", "big_n"):
        assert f"| {name} |" in out
