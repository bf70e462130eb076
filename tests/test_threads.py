"""Concurrent calls: ``minimize`` keeps no global state, so threads get the sequential answers;
and the thread pools that ``threads=`` caps during a solve (the second half).

Eight problems, each with its own target, dtypes, method and API (generic or drop-in), are solved
one after the other, then all at once from eight threads (several rounds, started together by a
barrier). Every thread must reproduce its sequential result bit for bit: solution, objective,
counts, message and the values its callback saw.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from dict_minimize import minimize
from tests.conftest import INSTALLED, Framework, flat_objective, get_framework

THREADS = 8
ROUNDS = 3
#: (method, bounded): one per problem; every method runs its own SciPy code path
METHODS = [
    ("L-BFGS-B", True),
    ("BFGS", False),
    ("Nelder-Mead", False),
    ("TNC", True),
    ("SLSQP", True),
    ("CG", False),
    ("trust-constr", True),
    ("Powell", False),
]


def target(i: int) -> dict[str, np.ndarray]:
    return {"a": np.linspace(-1.0, 1.0, 3) + 0.25 * i, "b": np.full((2, 2), 0.5 - 0.125 * i)}


def coupled(t: np.ndarray) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """A smooth objective with its minimum near ``t``, coupling neighbouring elements."""

    def f(x: np.ndarray) -> tuple[float, np.ndarray]:
        r = x - t
        c = x[1:] - x[:-1]
        value = float(r @ r + 0.1 * (c @ c))
        grad = 2 * r
        grad[1:] += 0.2 * c
        grad[:-1] -= 0.2 * c
        return value, grad

    return f


def reduce_sum(fw: Framework) -> Callable[[Any], Any]:
    """The framework's sum of all elements (for value-only objectives)."""
    if fw.name == "torch":
        import torch

        return torch.sum
    if fw.name == "jax":
        import jax.numpy as jnp

        return jnp.sum
    if fw.name == "tensorflow":
        import tensorflow as tf

        return tf.reduce_sum
    return np.sum


def autodiff_missing(fw: Framework) -> str | None:
    """Why ``jac='autodiff'`` cannot run in ``fw`` (None when it can)."""
    if fw.name == "numpy":
        return "NumPy has no automatic differentiation"
    try:
        minimize(lambda d: reduce_sum(fw)(d["x"] ** 2), {"x": fw.tensor([1.0])}, jac="autodiff")
    except ValueError as exc:
        if "jac must be" in str(exc):
            return f"jac='autodiff' is not implemented yet: {exc}"
        raise
    return None


def job(fw: Framework, i: int, autodiff: bool) -> Callable[[], tuple]:
    """Solve problem ``i``; returns everything that must not depend on other threads."""
    t = target(i)
    dtype = "float32" if i % 4 == 3 else "float64"
    b_dtype = dtype if autodiff else "float64"  # TensorFlow adds no float32 to a float64
    x0 = {"a": fw.tensor(np.zeros(3), dtype), "b": fw.tensor(np.ones((2, 2)), b_dtype)}
    method, bounded = METHODS[i % len(METHODS)]
    options = {"maxfun": 400} if method == "TNC" else {"maxiter": 200}
    kwargs: dict[str, Any] = {"method": method, "options": options}
    if bounded:
        kwargs["lb_dict"] = {"a": -0.5 + 0.1 * i}
        kwargs["ub_dict"] = {"b": 0.25}
    if autodiff:
        ta, tb = fw.tensor(t["a"], dtype), fw.tensor(t["b"], b_dtype)
        total = reduce_sum(fw)

        def fun(d: Any) -> Any:
            return total((d["a"] - ta) ** 2) + total((d["b"] - tb) ** 2)

    else:
        fun = flat_objective(fw, coupled(np.concatenate([t["a"], t["b"].ravel()])))
    dropin = i % 2 == 1 and not autodiff

    def solve() -> tuple:
        seen: list[float] = []

        def callback(intermediate_result: Any) -> None:
            seen.append(intermediate_result.fun)

        if dropin:
            api = importlib.import_module(f"dict_minimize.{fw.name}_api")
            x = api.minimize(fun, x0, callback=callback, **kwargs)
            counts: tuple = ()
        else:
            extra: dict[str, Any] = {"jac": "autodiff"} if autodiff else {}
            res = minimize(fun, x0, callback=callback, **kwargs, **extra)
            x = res.x
            counts = (res.fun, res.nit, res.nfev, res.get("njev"), res.status, res.message)
        values = tuple((k, fw.dtype_name(v), fw.to_numpy(v).tobytes()) for k, v in x.items())
        return values, counts, tuple(seen)

    return solve


def run_concurrently(jobs: list[tuple[Framework, Callable[[], tuple]]]) -> list[list[tuple]]:
    """Each job ROUNDS times in its own thread, all threads started together."""
    barrier = threading.Barrier(len(jobs))

    def work(fw_job: tuple[Framework, Callable[[], tuple]]) -> list[tuple]:
        fw, solve = fw_job
        with fw.x64():  # JAX's x64 switch is per thread
            barrier.wait(timeout=600)
            return [solve() for _ in range(ROUNDS)]

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(work, jobs))


@pytest.mark.parametrize("autodiff", [False, True], ids=["jac=True", "jac=autodiff"])
def test_threads_match_sequential(
    fw: Framework, autodiff: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # thread pools left alone: "auto" caps them process-wide, and OpenBLAS ignores a count set
    # from a thread other than the main one once the main thread has set one, so SLSQP (whose
    # last bits depend on the BLAS thread count) would differ between threads
    monkeypatch.setenv("DICT_MINIMIZE_THREADS", "off")
    if autodiff and (reason := autodiff_missing(fw)):
        pytest.skip(reason)
    jobs = [job(fw, i, autodiff) for i in range(THREADS)]
    sequential = [solve() for solve in jobs]
    assert len({s[0] for s in sequential}) == THREADS  # the problems really differ
    concurrent = run_concurrently([(fw, solve) for solve in jobs])
    for i, rounds in enumerate(concurrent):
        for r in rounds:
            assert r == sequential[i], f"problem {i} ({METHODS[i][0]}) differs in a thread"


def test_threads_across_frameworks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every installed framework at once: the backends share nothing between calls."""
    monkeypatch.setenv("DICT_MINIMIZE_THREADS", "off")  # as in test_threads_match_sequential
    frameworks = [get_framework(name) for name in INSTALLED]
    jobs = []
    for i in range(THREADS):
        fw = frameworks[i % len(frameworks)]
        with fw.x64():
            jobs.append((fw, job(fw, i, autodiff=False)))
    sequential = []
    for fw, solve in jobs:
        with fw.x64():
            sequential.append(solve())
    concurrent = run_concurrently(jobs)
    for i, rounds in enumerate(concurrent):
        for r in rounds:
            assert r == sequential[i], f"problem {i} ({jobs[i][0].name}) differs in a thread"


# --- thread pools: threads= caps them during the solve, restores them after --------------------


def _pools() -> dict[str, int]:
    """Every thread setting the caps touch: each BLAS library's, and PyTorch's when imported."""
    import threadpoolctl

    # (a single-threaded build, e.g. the OpenBLAS cyipopt-wheels bundles, stays at 1 whatever
    # the caps say: it has no pool to set)
    out = {
        i["filepath"]: i["num_threads"]
        for i in threadpoolctl.threadpool_info()
        if i["user_api"] == "blas" and i.get("threading_layer") != "disabled"
    }
    torch = __import__("sys").modules.get("torch")
    if torch is not None:
        out["torch"] = torch.get_num_threads()
    return out


def _values(pools: dict[str, int], fw: Framework | None = None) -> set[int]:
    """The thread counts of the pools a solve over ``fw``'s tensors caps: every BLAS library,
    and PyTorch's own only when x0 holds PyTorch tensors."""
    return {n for k, n in pools.items() if k != "torch" or (fw is not None and fw.name == "torch")}


def _scipy_libs() -> set[str]:
    from dict_minimize._threads import _controller

    controller = _controller("scipy")
    return {lib.filepath for lib in controller.lib_controllers} if controller else set()


@pytest.fixture
def two_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Every pool at 2 threads (so that a cap to 1 shows), the environment unset, and no first
    evaluation slow enough to lift ``"auto"``'s caps (the watching objective's
    ``threadpool_info`` takes milliseconds); the pools as they were afterwards."""
    from dict_minimize import _threads

    threadpoolctl = pytest.importorskip("threadpoolctl")
    monkeypatch.delenv(_threads.ENV_VAR, raising=False)
    monkeypatch.delenv(_threads.OLD_ENV_VAR, raising=False)
    monkeypatch.setattr(_threads, "AUTO_SLOW_EVAL", float("inf"))
    torch = importlib.import_module("torch") if "torch" in INSTALLED else None
    before_torch = torch.get_num_threads() if torch is not None else None
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        if torch is not None:
            torch.set_num_threads(2)
        if not _scipy_libs():
            pytest.skip("threadpoolctl finds no BLAS library of SciPy's")
        try:
            yield _pools()
        finally:
            if torch is not None:
                torch.set_num_threads(before_torch)


def _watching(fw: Framework, seen: list[dict[str, int]]) -> Callable[[Any], Any]:
    """A small (value, grad) objective in ``fw`` that records the pools at each evaluation."""
    flat = flat_objective(fw, coupled(np.linspace(0.0, 1.0, 5)))

    def fun(d: Any) -> Any:
        seen.append(_pools())
        return flat(d)

    return fun


def _x0(fw: Framework) -> dict[str, Any]:
    return {"x": fw.tensor(np.zeros(5))}


def test_auto_caps_every_pool_during_a_small_solve(fw: Framework, two_threads: dict) -> None:
    seen: list[dict[str, int]] = []
    res = minimize(_watching(fw, seen), _x0(fw), method="L-BFGS-B")
    assert res.success and len(seen) > 2
    for pools in seen:
        assert _values(pools, fw) == {1}, pools  # SciPy's BLAS, NumPy's, PyTorch's
    assert _pools() == two_threads


@pytest.mark.parametrize("threads", [None, 1, 3])
def test_an_explicit_setting_is_applied_and_none_touches_nothing(
    fw: Framework, two_threads: dict, threads: Any
) -> None:
    seen: list[dict[str, int]] = []
    minimize(_watching(fw, seen), _x0(fw), method="L-BFGS-B", threads=threads)
    expected = {2} if threads is None else {threads}
    assert all(_values(p, fw) == expected for p in seen), seen[0]
    assert _pools() == two_threads


def test_blas_threads_is_the_older_name(two_threads: dict) -> None:
    seen: list[dict[str, int]] = []
    fw = get_framework("numpy")
    minimize(_watching(fw, seen), _x0(fw), blas_threads=1)
    assert all(_values(p) == {1} for p in seen)
    minimize(_watching(fw, seen), _x0(fw), blas_threads=2, threads=2)  # agreeing: fine
    with pytest.raises(ValueError, match="blas_threads=1 and threads=2 disagree"):
        minimize(_watching(fw, seen), _x0(fw), blas_threads=1, threads=2)


@pytest.mark.parametrize("bad", [0, -1, 1.0, True, "fast", "1"])
def test_bad_threads_are_refused(bad: Any) -> None:
    fw = get_framework("numpy")
    with pytest.raises(ValueError, match="threads must be 'auto', None or a positive int"):
        minimize(_watching(fw, []), _x0(fw), threads=bad)


def test_restored_after_an_error(fw: Framework, two_threads: dict) -> None:
    seen: list[dict[str, int]] = []

    def fun(d: Any) -> Any:
        seen.append(_pools())
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        minimize(fun, _x0(fw))
    assert _values(seen[0], fw) == {1}
    assert _pools() == two_threads


def test_nested_solves_restore_at_the_outermost_exit(two_threads: dict) -> None:
    fw = get_framework("numpy")
    inner_seen: list[dict[str, int]] = []
    after_inner: list[dict[str, int]] = []
    inner = _watching(fw, inner_seen)

    def outer(d: Any) -> Any:
        minimize(inner, _x0(fw), threads=1)
        after_inner.append(_pools())  # the outer solve's caps still hold
        r = d["y"] - 2.0
        return float(r @ r), {"y": 2 * r}

    minimize(outer, {"y": np.zeros(2)}, options={"maxiter": 3})
    assert all(_values(p) == {1} for p in inner_seen + after_inner)
    assert _pools() == two_threads


@pytest.mark.skipif("torch" not in INSTALLED, reason="needs PyTorch")
def test_concurrent_solves_share_the_caps_and_restore_them(two_threads: dict) -> None:
    """PyTorch's count is process-wide and settable from any thread: every evaluation of four
    threads' overlapping solves sees it capped (the first solve in caps it, the last out
    restores it), and afterwards every pool is as before. (OpenBLAS ignores a count set from
    a thread other than the main one once the main thread has set one, so its libraries are
    not the witness here.)"""
    import torch

    fw = get_framework("torch")
    seen: list[dict[str, int]] = []
    barrier = threading.Barrier(4)

    def work(i: int) -> bool:
        barrier.wait(timeout=60)
        return all(minimize(_watching(fw, seen), _x0(fw)).success for _ in range(5))

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, range(4)))
    assert len(seen) > 20 and {p["torch"] for p in seen} == {1}
    assert _pools() == two_threads and torch.get_num_threads() == 2


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DICT_MINIMIZE_THREADS", "off", {2}),
        ("DICT_MINIMIZE_THREADS", "3", {3}),
        ("DICT_MINIMIZE_THREADS", "auto", {1}),
        ("DICT_MINIMIZE_BLAS_THREADS", "0", {2}),
        ("DICT_MINIMIZE_BLAS_THREADS", "3", {3}),
    ],
)
def test_the_environment_overrides_the_argument(
    two_threads: dict, monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: set
) -> None:
    monkeypatch.setenv(name, value)
    fw = get_framework("numpy")
    for threads in ("auto", None, 2):
        seen: list[dict[str, int]] = []
        minimize(_watching(fw, seen), _x0(fw), threads=threads)
        assert all(_values(p) == expected for p in seen), (threads, seen[0])
    assert _pools() == two_threads


def test_auto_chooses_by_size(monkeypatch: pytest.MonkeyPatch) -> None:
    from dict_minimize import _threads

    monkeypatch.delenv(_threads.ENV_VAR, raising=False)
    monkeypatch.delenv(_threads.OLD_ENV_VAR, raising=False)
    assert _threads.choose("auto", 1) == (1, True)
    assert _threads.choose("auto", _threads.AUTO_MAX_N - 1) == (1, True)
    assert _threads.choose("auto", _threads.AUTO_MAX_N) == (None, False)
    assert _threads.choose("auto", 10**8) == (None, False)
    assert _threads.choose(4, 10**8) == (4, False)
    assert _threads.choose(None, 1) == (None, False)


def test_auto_leaves_a_large_problem_alone(
    fw: Framework, two_threads: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dict_minimize import _threads

    monkeypatch.setattr(_threads, "AUTO_MAX_N", 5)  # x0 has 5 values: "large"
    seen: list[dict[str, int]] = []
    minimize(_watching(fw, seen), _x0(fw), method="L-BFGS-B")
    assert all(_values(p, fw) == {2} for p in seen)


@pytest.mark.parametrize("slow", [True, False], ids=["slow first evaluation", "fast"])
def test_auto_lifts_the_objectives_caps_after_a_slow_first_evaluation(
    fw: Framework, two_threads: dict, monkeypatch: pytest.MonkeyPatch, slow: bool
) -> None:
    from dict_minimize import _threads

    # no clock in the test: every first evaluation is "slow" (0 s or more), or none is
    monkeypatch.setattr(_threads, "AUTO_SLOW_EVAL", 0.0 if slow else float("inf"))
    seen: list[dict[str, int]] = []
    minimize(_watching(fw, seen), _x0(fw), method="L-BFGS-B")
    scipy_libs = _scipy_libs()
    assert _values(seen[0], fw) == {1}  # the first evaluation runs capped
    for pools in seen[1:]:
        for name, n in pools.items():
            if name == "torch" and fw.name != "torch":
                continue
            assert n == (1 if name in scipy_libs or not slow else 2), (name, pools)
    assert _pools() == two_threads


def test_every_entry_point_takes_threads(two_threads: dict) -> None:
    from dict_minimize import least_squares, minimize_many, multistart, root

    fw = get_framework("numpy")
    for threads, expected in (("auto", {1}), (None, {2})):
        seen: list[dict[str, int]] = []

        def residuals(d: Any, seen: list = seen) -> np.ndarray:
            seen.append(_pools())
            return np.stack([d["x"] - 1.0, d["y"] + d["x"]])

        x0 = {"x": np.array(0.0), "y": np.array(0.0)}
        assert least_squares(residuals, x0, jac="2-point", threads=threads).success
        assert root(residuals, x0, jac=None, threads=threads).success
        watched = _watching(fw, seen)
        assert minimize_many(watched, [_x0(fw)] * 2, threads=threads)[1].success
        starts = multistart(
            watched, _x0(fw), 2, seed=0, lb_dict={"x": -1.0}, ub_dict={"x": 1.0}, threads=threads
        )
        assert starts.success
        assert all(_values(p) == expected for p in seen), (threads, seen[0])
        assert _pools() == two_threads


@pytest.mark.skipif("torch" not in INSTALLED, reason="needs PyTorch")
def test_torch_model_helpers_take_threads(two_threads: dict) -> None:
    import torch

    from dict_minimize.torch_api import ScipyOptimizer, minimize_module

    x = torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(4, 3)
    for threads, expected in (("auto", 1), (None, 2), (3, 3)):
        seen: list[int] = []
        net = torch.nn.Linear(3, 1).double()

        def loss(m: Any, seen: list = seen) -> Any:
            seen.append(torch.get_num_threads())
            return torch.mean((m(x) - 1.0) ** 2)

        minimize_module(net, loss, threads=threads)
        opt = ScipyOptimizer(net.parameters(), threads=threads)

        def closure(net: Any = net, opt: Any = opt, loss: Any = loss) -> Any:
            opt.zero_grad()
            value = loss(net)
            value.backward()
            return value

        opt.step(closure)
        assert set(seen) == {expected}
        assert torch.get_num_threads() == 2
    with pytest.raises(ValueError, match="threads must be"):
        ScipyOptimizer(net.parameters(), threads=0)
