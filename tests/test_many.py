"""minimize_many and multistart: in this process, on threads and on a process pool.

Results on every executor must equal the sequential ones bit for bit (same inputs, same
arithmetic: the problems are small enough that no BLAS threading is involved), keep x0's
framework and dtypes, and one failing problem must never lose the others. The Dask client is
tested in tests/test_dask.py.
"""

from __future__ import annotations

import concurrent.futures
import io
import math
import multiprocessing
import pickle
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dict_minimize
from dict_minimize import minimize, minimize_many, multistart
from dict_minimize._scale.tasks import _codec, _from_flat, _to_flat
from dict_minimize._solvers.minimize import _prepare_x0
from tests.conftest import Framework, derandomized


@pytest.fixture(scope="module")
def pool() -> Iterator[concurrent.futures.ProcessPoolExecutor]:
    """Two spawned worker processes (not forked: the test process runs JAX and TF threads)."""
    with concurrent.futures.ProcessPoolExecutor(
        2, mp_context=multiprocessing.get_context("spawn")
    ) as ex:
        yield ex


def quadratic(fw: Framework) -> Any:
    """A value-only objective in fw (NumPy: value and gradient), minimum at x = target."""
    if fw.name == "numpy":

        def fun(d: Any, target: float) -> Any:
            r = d["x"] - target
            w = d["nest"]["w"]
            return float(r @ r) + float(w.astype(np.float64) ** 2), {
                "x": 2 * r,
                "nest": {"w": 2 * w},
            }

        return fun, {}

    if fw.name == "tensorflow":
        import tensorflow as tf

        def fun(d: Any, target: float) -> Any:
            r = d["x"] - target
            w = tf.cast(d["nest"]["w"], tf.float64)
            return tf.reduce_sum(r * r) + w * w

        return fun, {"jac": "autodiff"}

    def fun(d: Any, target: float) -> Any:
        r = d["x"] - target
        w = d["nest"]["w"]
        return (r * r).sum() + (w * w).sum()

    return fun, {"jac": "autodiff"}


def problems(fw: Framework, n: int) -> list[Any]:
    return [
        {"x": fw.tensor([0.5, -1.0, 2.0], "float64"), "nest": {"w": fw.tensor(1.5, "float32")}}
        for _ in range(n)
    ]


def same(a: Any, b: Any, fw: Framework) -> None:
    """Two results equal bit for bit, with the same framework and dtypes."""
    assert a.success == b.success and a.nfev == b.nfev and a.nit == b.nit
    assert a.fun == b.fun or (math.isnan(a.fun) and math.isnan(b.fun))
    for key in ("x", "jac"):
        for path, av, bv in (
            ("x", a[key]["x"], b[key]["x"]),
            ("w", a[key]["nest"]["w"], b[key]["nest"]["w"]),
        ):
            assert fw.type_check(bv), (key, path)
            assert fw.dtype_name(av) == fw.dtype_name(bv), (key, path)
            assert np.array_equal(fw.to_numpy(av), fw.to_numpy(bv)), (key, path)


@pytest.mark.parametrize("where", ["threads", "processes"])
def test_executors_equal_sequential_bit_for_bit(fw: Framework, where: str, pool: Any) -> None:
    fun, kw = quadratic(fw)
    x0s = problems(fw, 5)
    args = [(float(t),) for t in range(5)]
    seq = minimize_many(fun, x0s, args=args, **kw)
    assert [round(float(fw.to_numpy(r.x["x"])[0]), 5) for r in seq] == [0, 1, 2, 3, 4]
    if where == "threads":
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            other = minimize_many(fun, x0s, args=args, executor=ex, **kw)
    else:
        other = minimize_many(fun, x0s, args=args, executor=pool, chunksize=2, **kw)
    for a, b in zip(seq, other, strict=True):
        same(a, b, fw)
        assert b.x["nest"]["w"] is not None and fw.dtype_name(b.x["nest"]["w"]) == "float32"


def test_each_problem_equals_minimize(fw: Framework) -> None:
    fun, kw = quadratic(fw)
    x0s = problems(fw, 2)
    many = minimize_many(fun, x0s, args=(3.0,), lb_dict={"x": 3.5}, method="L-BFGS-B", **kw)
    for x0, r in zip(x0s, many, strict=True):
        one = minimize(fun, x0, args=(3.0,), lb_dict={"x": 3.5}, method="L-BFGS-B", **kw)
        same(one, r, fw)
        assert np.all(fw.to_numpy(r.x["x"]) >= 3.5)


def numpy_fun(d: dict, target: float) -> tuple[float, dict]:
    r = d["x"] - target
    return float(r @ r), {"x": 2 * r}


def test_per_problem_args_and_bounds() -> None:
    x0s = [{"x": np.zeros(2)} for _ in range(3)]
    res = minimize_many(
        numpy_fun,
        x0s,
        args=[(1.0,), (2.0,), 3.0],  # a non-tuple entry is one argument
        lb_dict=None,
        ub_dict=[None, {"x": 1.5}, {"x": [2.5, 10.0]}],
    )
    got = [r.x["x"].round(6).tolist() for r in res]
    assert got == [[1.0, 1.0], [1.5, 1.5], [2.5, 3.0]]
    shared = minimize_many(numpy_fun, x0s, args=(2.0,), ub_dict={"x": 1.0})
    assert [r.x["x"].round(6).tolist() for r in shared] == [[1.0, 1.0]] * 3


def test_x0s_may_be_any_iterable_and_inputs_are_not_mutated() -> None:
    x0 = {"x": np.zeros(2)}
    res = minimize_many(numpy_fun, (x0 for _ in range(2)), args=(1.0,))
    assert len(res) == 2 and all(r.success for r in res)
    assert np.array_equal(x0["x"], np.zeros(2))
    assert minimize_many(numpy_fun, [], args=(1.0,)) == []


def raising_fun(d: dict, target: float) -> tuple[float, dict]:
    if target == 1.0:
        raise ZeroDivisionError("no good at 1")
    return numpy_fun(d, target)


@pytest.mark.parametrize("where", ["sequential", "processes"])
def test_one_failure_never_loses_the_others(where: str, pool: Any) -> None:
    x0s: list[Any] = [{"x": np.zeros(2)} for _ in range(4)]
    x0s[2] = {"x": np.full(2, np.nan)}  # not finite at x0
    x0s.append({"x": "not a tensor"})  # malformed
    args = [(0.0,), (1.0,), (2.0,), (3.0,), (4.0,)]
    executor = None if where == "sequential" else pool
    res = minimize_many(raising_fun, x0s, args=args, executor=executor, chunksize=5)
    assert [r.success for r in res] == [True, False, False, True, False]
    assert [r.get("exception") for r in res] == [
        None,
        "ZeroDivisionError",
        "NonFiniteError",
        None,
        "TypeError",
    ]
    assert res[1].message == "ZeroDivisionError: no good at 1" and res[1].status == -1
    assert "ZeroDivisionError" in res[1].traceback
    assert "x0['x']" in res[4].message
    assert res[4].x == {"x": "not a tensor"}  # what was given, unchanged
    np.testing.assert_array_equal(res[1].x["x"], np.zeros(2))  # x0: no finite point seen
    assert res[3].x["x"].round(6).tolist() == [3.0, 3.0]


def test_trace_and_callback_run_where_the_problem_runs(pool: Any) -> None:
    pytest.importorskip("torch")
    import torch

    def fun(d: Any) -> Any:
        return ((d["x"] - 2.0) ** 2).sum()

    x0s = [{"x": torch.zeros(2, dtype=torch.float32)} for _ in range(2)]
    seq = minimize_many(fun, x0s, jac="autodiff", trace="x")
    par = minimize_many(fun, x0s, jac="autodiff", trace="x", executor=pool)
    for a, b in zip(seq, par, strict=True):
        assert len(a.trace) == len(b.trace) == a.nit + 1
        np.testing.assert_array_equal(a.trace.fun, b.trace.fun)
        assert b.trace.x is not None and isinstance(b.trace.x[-1]["x"], torch.Tensor)
        assert b.trace.x[-1]["x"].dtype == torch.float32
        assert torch.equal(b.trace.x[-1]["x"], b.x["x"])


def test_progress_bar_counts_problems() -> None:
    pytest.importorskip("tqdm")
    out = io.StringIO()
    minimize_many(
        numpy_fun, [{"x": np.zeros(1)}] * 3, args=(1.0,), progress={"file": out, "mininterval": 0}
    )
    assert "3/3" in out.getvalue() and "problem" in out.getvalue()


def _bar_counts(text: str, total: int) -> list[int]:
    return [int(m) for m in re.findall(rf"(\d+)/{total} ", text)]


def test_progress_bar_moves_as_each_problem_finishes() -> None:
    """In this process: when problem i starts, the bar already shows the i problems before it."""
    pytest.importorskip("tqdm")
    out = io.StringIO()
    seen_at_start: dict[float, int] = {}

    def fun(d: dict, target: float) -> tuple[float, dict]:
        if target not in seen_at_start:
            seen_at_start[target] = _bar_counts(out.getvalue(), 6)[-1]
        r = d["x"] - target
        return float(r @ r), {"x": 2 * r}

    minimize_many(
        fun,
        [{"x": np.zeros(2)}] * 6,
        args=[(float(t),) for t in range(6)],
        progress={"file": out, "mininterval": 0, "miniters": 1},
    )
    assert seen_at_start == {float(t): t for t in range(6)}
    counts = _bar_counts(out.getvalue(), 6)
    assert counts == sorted(counts) and sorted(set(counts)) == list(range(7))


@pytest.mark.parametrize("chunksize", [1, 2])
def test_progress_bar_on_an_executor_counts_every_finished_chunk(chunksize: int) -> None:
    pytest.importorskip("tqdm")
    out = io.StringIO()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        minimize_many(
            numpy_fun,
            [{"x": np.zeros(1)}] * 6,
            args=(1.0,),
            executor=pool,
            chunksize=chunksize,
            progress={"file": out, "mininterval": 0, "miniters": 1},
        )
    counts = _bar_counts(out.getvalue(), 6)
    assert counts[0] == 0 and counts[-1] == 6 and counts == sorted(counts)
    assert set(range(0, 7, chunksize)) <= set(counts)


def test_malformed_arguments_raise() -> None:
    x0s = [{"x": np.zeros(1)}] * 2
    with pytest.raises(ValueError, match=r"args is a list of 3 entries.*2 problems"):
        minimize_many(numpy_fun, x0s, args=[(1.0,)] * 3)
    with pytest.raises(ValueError, match="lb_dict is a list of 1"):
        minimize_many(numpy_fun, x0s, args=(1.0,), lb_dict=[None])
    with pytest.raises(TypeError, match="one dict: wrap it in a list"):
        minimize_many(numpy_fun, {"x": np.zeros(1)})
    with pytest.raises(TypeError, match="x0s must be a list"):
        minimize_many(numpy_fun, 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"executor must be None, a concurrent\.futures"):
        minimize_many(numpy_fun, x0s, args=(1.0,), executor=object())
    with pytest.raises(ValueError, match="chunksize must be None or a positive int"):
        minimize_many(numpy_fun, x0s, args=(1.0,), chunksize=0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'x0'"):
        minimize_many(numpy_fun, x0s, x0=x0s[0])
    with pytest.raises(TypeError, match="fun must be callable"):
        minimize_many(3, x0s)  # type: ignore[arg-type]


def test_unpicklable_fun_is_a_clear_error(pool: Any) -> None:
    class Local:
        def __reduce__(self) -> Any:
            raise TypeError("refuses to be pickled")

        def __call__(self, d: Any) -> Any:
            return numpy_fun(d, 1.0)

    with pytest.raises(TypeError, match="could not serialize fun"):
        minimize_many(Local(), [{"x": np.zeros(1)}], executor=pool)


# --- what crosses the wire --------------------------------------------------------------------


def test_layouts_pickle_in_every_framework(fw: Framework) -> None:
    x0 = {"a": fw.tensor([1.0, 2.0], "float32"), "b": {"c": fw.tensor(3.0, "float64")}}
    _, layout, _ = _prepare_x0(x0, None, False)
    back = pickle.loads(pickle.dumps(layout))
    assert back == layout and back.fast_build is not None
    codec = _codec(back)
    flat = _to_flat(x0, layout, _codec(layout))
    rebuilt = _from_flat(flat, back, codec)
    for path in (("a",), ("b", "c")):
        a, b = x0, rebuilt
        for k in path:
            a, b = a[k], b[k]
        assert fw.dtype_name(a) == fw.dtype_name(b)
        np.testing.assert_array_equal(fw.to_numpy(a), fw.to_numpy(b))


@derandomized("HYPOTHESIS_MANY", 40)
@given(
    shapes=st.lists(st.lists(st.integers(0, 3), max_size=3), min_size=1, max_size=4),
    dtypes=st.lists(st.sampled_from(["float16", "float32", "float64"]), min_size=4, max_size=4),
    seed=st.integers(0, 2**16),
)
def test_values_cross_exactly(shapes: list, dtypes: list, seed: int) -> None:
    """x0 -> float64 vector -> x0 is exact for every floating dtype and shape."""
    rng = np.random.default_rng(seed)
    x0 = {f"k{i}": rng.normal(size=s).astype(dtypes[i]) for i, s in enumerate(shapes)}
    if all(v.size == 0 for v in x0.values()):
        x0["last"] = np.float64(1.0)
    _, layout, _ = _prepare_x0(x0, None, False)
    back = pickle.loads(pickle.dumps(layout))
    rebuilt = _from_flat(_to_flat(x0, layout, _codec(layout)), back, _codec(back))
    assert list(rebuilt) == list(x0)
    for k in x0:
        assert rebuilt[k].dtype == x0[k].dtype and rebuilt[k].shape == x0[k].shape
        np.testing.assert_array_equal(rebuilt[k], x0[k])


# --- multistart -------------------------------------------------------------------------------


def two_wells(d: dict) -> tuple[float, dict]:
    """Minima at x close to -1 (f = -0.5) and close to 1 (f = 0.5), per coordinate."""
    x = d["x"]
    f = float(np.sum((x**2 - 1) ** 2 + 0.5 * x))
    return f, {"x": 4 * x * (x**2 - 1) + 0.5}


def test_multistart_finds_the_better_well_and_reports_every_start(pool: Any) -> None:
    bounds = {"lb_dict": {"x": -2.0}, "ub_dict": {"x": 2.0}}
    res = multistart(two_wells, {"x": np.zeros(2)}, 12, seed=3, **bounds)
    assert len(res.starts) == 12 and res.starts[res.best_index].fun == res.fun
    assert res.fun == min(s.fun for s in res.starts)
    np.testing.assert_allclose(res.x["x"], [-1.06, -1.06], atol=0.01)
    for s in res.starts:
        assert np.all(np.abs(s.x0["x"]) <= 2.0) and s.x0["x"].dtype == np.float64
    again = multistart(two_wells, {"x": np.zeros(2)}, 12, seed=3, executor=pool, **bounds)
    for a, b in zip(res.starts, again.starts, strict=True):
        np.testing.assert_array_equal(a.x0["x"], b.x0["x"])
        np.testing.assert_array_equal(a.x["x"], b.x["x"])
        assert a.fun == b.fun
    other = multistart(two_wells, {"x": np.zeros(2)}, 12, seed=4, **bounds)
    assert not np.array_equal(other.starts[0].x0["x"], res.starts[0].x0["x"])


def test_multistart_with_a_sampler_in_every_framework(fw: Framework) -> None:
    fun, kw = quadratic(fw)

    def sampler(rng: np.random.Generator) -> dict:
        return {
            "x": fw.tensor(rng.normal(size=3), "float64"),
            "nest": {"w": fw.tensor(rng.normal(), "float32")},
        }

    res = multistart(fun, sampler, 3, seed=0, args=(1.0,), **kw)
    assert res.success and len(res.starts) == 3
    np.testing.assert_allclose(fw.to_numpy(res.x["x"]), [1.0, 1.0, 1.0], atol=1e-4)
    assert fw.dtype_name(res.x["nest"]["w"]) == "float32"
    first = multistart(fun, sampler, 3, seed=0, args=(1.0,), **kw)
    for a, b in zip(res.starts, first.starts, strict=True):
        np.testing.assert_array_equal(fw.to_numpy(a.x0["x"]), fw.to_numpy(b.x0["x"]))


def test_multistart_keeps_a_failed_start_and_picks_a_finite_one() -> None:
    calls = iter(range(100))

    def sampler(rng: np.random.Generator) -> dict:
        i = next(calls)
        return {"x": np.full(1, np.nan if i == 0 else rng.uniform(-2, 2))}

    res = multistart(two_wells, sampler, 4, seed=1)
    assert res.starts[0].exception == "NonFiniteError" and res.best_index != 0
    assert math.isfinite(res.fun)


def test_multistart_errors() -> None:
    with pytest.raises(ValueError, match=r"key\(s\) 'b' have no finite lower and upper bound"):
        multistart(
            two_wells,
            {"a": np.zeros(1), "b": np.zeros(1)},
            2,
            seed=0,
            lb_dict={"a": -1.0, "b": -1.0},
            ub_dict={"a": 1.0},
        )
    with pytest.raises(ValueError, match="n must be a positive int"):
        multistart(two_wells, {"x": np.zeros(1)}, 0, seed=0)
    with pytest.raises(TypeError, match="seed"):
        multistart(two_wells, {"x": np.zeros(1)}, 2)  # type: ignore[call-arg]


def test_exported_and_documented() -> None:
    assert dict_minimize.minimize_many is minimize_many
    assert dict_minimize.multistart is multistart


def dies_at_two(d: dict, target: float) -> tuple[float, dict]:
    if target == 2.0:
        import os

        os._exit(1)  # the worker process dies: the pool is broken for good
    return numpy_fun(d, target)


def test_a_broken_process_pool_reports_the_problems_it_held() -> None:
    x0s = [{"x": np.zeros(1)} for _ in range(4)]
    args = [(float(i),) for i in range(4)]
    with concurrent.futures.ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn")
    ) as ex:
        res = minimize_many(dies_at_two, x0s, args=args, executor=ex, chunksize=1)
    assert len(res) == 4 and res[2].success is False
    failed = [r for r in res if not r.success]
    assert all(r.exception == "BrokenProcessPool" for r in failed)
    for r in failed:  # x0 back as given
        np.testing.assert_array_equal(r.x["x"], np.zeros(1))
    for i, r in enumerate(res):
        if r.success:
            assert float(r.x["x"][0]) == pytest.approx(float(i))
