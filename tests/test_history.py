"""The SQLite history (``minimize(..., log=path)``, ``read_log``) and the TensorBoard callback.

The log's rows are checked against ``trace=True`` on a separate run of the same problem (the
log must not change the run, and must hold the trace's rows), read back from another process
while the run waits in a callback, and after a run SIGKILLed in the middle of an evaluation.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize

from dict_minimize import Trace, minimize, read_log
from tests.conftest import Framework, flat_objective

ROOT = Path(__file__).resolve().parents[1]
X0 = np.array([-1.2, 1.0, 0.5])
COLUMNS = ("nit", "fun", "grad_norm", "nfev", "njev")


def rosen(x: np.ndarray) -> tuple[float, np.ndarray]:
    return float(scipy.optimize.rosen(x)), scipy.optimize.rosen_der(x)


def rosen_d(d: dict) -> tuple[float, dict]:
    f, g = rosen(d["x"])
    return f, {"x": g}


def split(fw: Framework, x: np.ndarray) -> dict:
    return {"a": fw.tensor(x[:2]), "b": fw.tensor(x[2])}


def assert_same_rows(got: Trace, want: Trace) -> None:
    assert len(got) == len(want)
    for column in COLUMNS:
        np.testing.assert_array_equal(getattr(got, column), getattr(want, column), column)


@pytest.mark.parametrize("method", ["L-BFGS-B", "Nelder-Mead"])
def test_rows_equal_the_trace_of_the_same_run(fw: Framework, method: str, tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    fun = flat_objective(fw, rosen)
    want = minimize(fun, split(fw, X0), method=method, trace="x")  # (fun returns a pair)
    res = minimize(fun, split(fw, X0), method=method, log=path)
    assert "trace" not in res  # the log alone shows no trace
    trace, evals = read_log(path, evaluations=True, x=True)
    assert_same_rows(trace, want.trace)
    assert trace.label == method.lower() and res.fun == want.fun
    # the points: float64 NumPy dicts keyed like x0, equal to trace='x''s
    assert trace.x is not None and want.trace.x is not None
    for got, ref in zip(trace.x, want.trace.x, strict=True):
        assert list(got) == ["a", "b"] and got["b"].shape == () and got["a"].dtype == np.float64
        for k in ("a", "b"):
            np.testing.assert_array_equal(got[k], fw.to_numpy(ref[k]))
    # every evaluation, in order, with the value and gradient computed there
    assert len(evals) == res.nfev_ran
    np.testing.assert_array_equal(evals.nfev, np.arange(1, len(evals) + 1))
    flat = [np.concatenate([d["a"], d["b"].ravel()]) for d in evals.x if d is not None]
    np.testing.assert_array_equal(evals.fun, [rosen(x)[0] for x in flat])
    if method == "L-BFGS-B":
        np.testing.assert_allclose(
            evals.grad_norm, [np.linalg.norm(rosen(x)[1]) for x in flat], rtol=1e-12
        )
    else:
        assert np.isnan(evals.grad_norm).all() and (evals.njev == 0).all()
    assert np.all(np.diff(evals.time) >= 0) and np.all(np.diff(trace.time) >= 0)
    assert trace.result is not None and trace.result.success == res.success
    assert trace.result.message == res.message and trace.result.fun == res.fun


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        ("BFGS", {"jac": lambda d: {"x": rosen(d["x"])[1]}}),  # row 0's gradient comes later
        ("COBYLA", {}),  # the result is not the last iterate: a last row
        ("trust-constr", {}),
    ],
)
def test_rows_equal_the_trace_for_other_paths(method: str, kwargs: dict, tmp_path: Path) -> None:
    path = tmp_path / "run.db"

    def fun(d: dict) -> float:
        return rosen(d["x"])[0]

    objective = rosen_d if method == "trust-constr" else fun
    options = {"maxiter": 30}
    want = minimize(objective, {"x": X0}, method=method, options=options, trace=True, **kwargs)
    minimize(objective, {"x": X0}, method=method, options=options, log=path, **kwargs)
    assert_same_rows(read_log(path), want.trace)


def test_one_file_holds_many_runs_and_nested_keys(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"

    def fun(d: dict) -> tuple[float, dict]:
        w = d["params"]["w"]
        return float(w @ w + d["b"] ** 2), {"params": {"w": 2 * w}, "b": 2 * d["b"]}

    x0 = {"params": {"w": np.ones(2)}, "b": np.float64(3.0)}
    first = minimize(fun, x0, method="L-BFGS-B", log=path, trace=True)
    minimize(fun, x0, method="BFGS", log=path)
    assert read_log(path).label == "bfgs" and read_log(path, run=0).label == "l-bfgs-b"
    assert_same_rows(read_log(path, run=-2), first.trace)
    trace = read_log(path, run=0, x=True)
    assert trace.x is not None and list(trace.x[0]) == ["['params']['w']", "['b']"]
    with pytest.raises(ValueError, match="holds 2 run"):
        read_log(path, run=2)


def test_nonfinite_evaluations_are_logged_as_they_were(tmp_path: Path) -> None:
    path = tmp_path / "run.db"

    def fun(d: dict) -> tuple[float, dict]:
        x = d["x"]
        if x[0] > 2.0:
            return float("nan"), {"x": np.zeros(1)}
        return float((x[0] - 3.0) ** 2), {"x": 2 * (x - 3.0)}

    with pytest.warns(RuntimeWarning, match="not finite"):
        res = minimize(fun, {"x": np.zeros(1)}, method="L-BFGS-B", log=path)
    _, evals = read_log(path, evaluations=True)
    assert len(evals) == res.nfev_ran and np.isnan(evals.fun).sum() == res.nonfinite_count >= 1


def test_errors_name_what_was_expected(tmp_path: Path) -> None:
    x0 = {"x": np.ones(2)}

    def fun(d: dict) -> tuple[float, dict]:
        return float(d["x"] @ d["x"]), {"x": 2 * d["x"]}

    with pytest.raises(TypeError, match="log must be a file path"):
        minimize(fun, x0, log=3)
    other = tmp_path / "not-a-db.txt"
    other.write_text("hello, this is not SQLite\n" * 10)
    with pytest.raises(ValueError, match="not a dict_minimize log"):
        minimize(fun, x0, log=other)
    with pytest.raises(FileNotFoundError, match="no log file"):
        read_log(tmp_path / "missing.db")
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(ValueError, match="not a dict_minimize log"):
        read_log(empty)
    with pytest.raises(TypeError, match="run must be an int"):
        read_log(other, run="last")  # type: ignore[arg-type]


# -- from another process -----------------------------------------------------------------------
_CHILD = """
import json, os, signal, sys, time
import numpy as np, scipy.optimize
from dict_minimize import minimize

log, ready, go, kill_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
count = 0

def fun(d):
    global count
    count += 1
    if count == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)  # in the middle of this evaluation
    x = d["x"]
    return float(scipy.optimize.rosen(x)), {"x": scipy.optimize.rosen_der(x)}

def callback(intermediate_result):
    if intermediate_result.nit == 3:
        open(ready, "w").close()
        start = time.monotonic()
        while not os.path.exists(go):
            if time.monotonic() - start > 60:
                raise SystemExit("never released")
            time.sleep(0.01)

res = minimize(fun, {"x": np.array([-1.2, 1.0, 0.5])}, method="L-BFGS-B", log=log,
               callback=callback, trace=True)
print(json.dumps({c: getattr(res.trace, c).tolist() for c in ("nit", "nfev", "njev", "fun")}))
"""


def _child(tmp_path: Path, kill_at: int) -> tuple[subprocess.Popen, Path, Path, Path]:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(_CHILD))
    log, ready, go = tmp_path / "run.db", tmp_path / "ready", tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(log), str(ready), str(go), str(kill_at)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    return proc, log, ready, go


def test_read_mid_run_from_another_process(tmp_path: Path) -> None:
    proc, log, ready, go = _child(tmp_path, kill_at=0)
    try:
        start = time.monotonic()
        while not ready.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() - start < 60, "the child never reached iteration 3"
            time.sleep(0.01)
        mid, evals = read_log(log, evaluations=True)
        assert mid.result is None  # still running
        np.testing.assert_array_equal(mid.nit, [0, 1, 2, 3])
        assert len(evals) == mid.nfev[-1]  # every evaluation so far is there
    finally:
        go.touch()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    final = read_log(log)
    want = json.loads(out)
    for column, values in want.items():
        np.testing.assert_array_equal(getattr(final, column), values, column)
    for column in COLUMNS:  # what was read mid-run is the start of the final trace
        np.testing.assert_array_equal(getattr(mid, column), getattr(final, column)[:4])
    assert final.result is not None and final.result.success


def test_a_killed_run_keeps_every_evaluation_before_the_one_in_flight(tmp_path: Path) -> None:
    proc, log, _, go = _child(tmp_path, kill_at=8)
    go.touch()  # no waiting at iteration 3
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err
    trace, evals = read_log(log, evaluations=True, x=True)
    assert trace.result is None  # it never ended
    np.testing.assert_array_equal(evals.nfev, np.arange(1, 8))
    # the same evaluations as a run in this process
    here = tmp_path / "here.db"
    res = minimize(rosen_d, {"x": X0}, method="L-BFGS-B", log=here, trace=True)
    _, want = read_log(here, evaluations=True)
    np.testing.assert_array_equal(evals.fun, want.fun[:7])
    for got, ref in zip(evals.x, want.x[:7], strict=True):
        assert got is not None and ref is not None
        np.testing.assert_array_equal(got["x"], ref["x"])
    assert 1 <= len(trace) < len(res.trace)
    assert_same_rows(trace, _head(res.trace, len(trace)))


def _head(trace: Trace, n: int) -> Trace:
    return Trace(**{c: getattr(trace, c)[:n] for c in COLUMNS})


# -- TensorBoard --------------------------------------------------------------------------------
def test_tensorboard_writes_one_step_per_iteration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tensorboard")
    # TensorBoard's reader takes its file access from TensorFlow where installed (4-15 s to
    # import here); its own stub reads local files the same way
    notf = "tensorboard.compat.notf"
    monkeypatch.setitem(sys.modules, notf, sys.modules.get(notf) or types.ModuleType(notf))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from dict_minimize.tensorboard import TensorBoard

    tb = TensorBoard(tmp_path, histograms=True, prefix="fit/")
    x0 = {"a": np.array([-1.2, 1.0]), "b": np.float64(0.5)}

    def fun(d: dict) -> tuple[float, dict]:
        f, g = rosen(np.concatenate([d["a"], np.ravel(d["b"])]))
        return f, {"a": g[:2], "b": g[2]}

    res = minimize(fun, x0, method="L-BFGS-B", callback=tb, trace=True)
    acc = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    tags = acc.Tags()
    scalars = ("fun", "grad_norm", "nfev", "njev", "time")
    assert set(tags["scalars"]) == {f"fit/{t}" for t in scalars}
    assert set(tags["histograms"]) == {"fit/x/a", "fit/x/b"}
    # one step per iteration (line-search trials are not iterations), the trace's rows 1..nit
    tr = res.trace
    fun_events = acc.Scalars("fit/fun")
    assert [e.step for e in fun_events] == list(range(1, res.nit + 1)) and tb.steps == res.nit
    assert len(fun_events) < res.nfev
    np.testing.assert_array_equal([e.value for e in fun_events], tr.fun[1:].astype(np.float32))
    np.testing.assert_array_equal(
        [e.value for e in acc.Scalars("fit/grad_norm")], tr.grad_norm[1:].astype(np.float32)
    )
    np.testing.assert_array_equal([e.value for e in acc.Scalars("fit/nfev")], tr.nfev[1:])
    histo = acc.Histograms("fit/x/a")[0].histogram_value
    assert histo.num == 2 and sum(histo.bucket) == 2


def test_tensorboard_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from dict_minimize.tensorboard import TensorBoard

    with pytest.raises(TypeError, match="logdir must be a directory path"):
        TensorBoard(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bins must be a positive int"):
        TensorBoard(tmp_path, bins=0)
    monkeypatch.setitem(sys.modules, "tensorboard.compat.proto", None)
    with pytest.raises(ImportError, match=r"dict_minimize\[tensorboard\]"):
        TensorBoard(tmp_path)


def test_benchmark_runs_at_tiny_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import history as bench

    out = bench.main(["--keys", "2", "--rounds", "1", "--iterations", "2,4"])
    assert [r["keys"] for r in out["rows"]] == [2] and "log extra" in capsys.readouterr().out
    assert bench.history.SYNCHRONOUS == "NORMAL"  # restored after the FULL variant


def test_minimize_many_writes_one_run_per_problem(tmp_path: Path) -> None:
    from dict_minimize import minimize_many

    path = tmp_path / "many.db"

    def fun(d: dict, target: float) -> tuple[float, dict]:
        r = d["x"] - target
        return float(r @ r), {"x": 2 * r}

    results = minimize_many(
        fun, [{"x": np.zeros(2)}] * 3, args=[(1.0,), (2.0,), (3.0,)], log=path, trace=True
    )
    for i, res in enumerate(results):
        assert_same_rows(read_log(path, run=i), res.trace)
