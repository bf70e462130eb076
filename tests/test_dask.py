"""Scale-out on a real dask.distributed LocalCluster: 2 worker processes on 127.0.0.1.

The cluster starts inside the test run and is shut down at the end of the module; the last
test checks that no worker process is left behind.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

from dict_minimize import minimize, minimize_many, multistart  # noqa: E402
from dict_minimize.dask import ShardedObjective, sharded  # noqa: E402

# no per-test limit below pyproject's 600 s: a cluster starts slowly on a loaded machine
pytestmark = [
    # the cluster's own chatter when workers are killed or shut down, not ours
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*Restarting worker.*"),
]


def cluster(n_workers: int = 2, **config: Any) -> Any:
    import dask

    with dask.config.set(config):
        return distributed.LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=50,
        )


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with cluster() as c, distributed.Client(c) as cl:
        yield cl


# --- many problems ----------------------------------------------------------------------------


def calibration_data(seed: int, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.98, n)
    y = (rng.uniform(size=n) < p**1.5).astype(np.float64)
    return p, y


def beta_loss(d: dict, p: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
    """Beta calibration's log-loss (a ln p - b ln(1 - p) + c), value and gradient.

    Sums, not BLAS dot products: Dask workers run BLAS on one thread, and a dot product's
    last bits may depend on the thread count (they do with OPENBLAS_CORETYPE=Prescott).
    """
    lp, l1p = np.log(p), np.log1p(-p)
    z = d["a"] * lp - d["b"] * l1p + d["c"]
    q = 1.0 / (1.0 + np.exp(-z))
    r = (q - y) / len(y)
    f = float(np.mean(np.logaddexp(0.0, z) - y * z))
    return f, {"a": (r * lp).sum(), "b": -(r * l1p).sum(), "c": r.sum()}


def x0_beta() -> dict:
    return {"a": np.float64(1.0), "b": np.float64(1.0), "c": np.float64(0.0)}


def test_minimize_many_on_dask_equals_sequential(client: Any) -> None:
    args = [calibration_data(s) for s in range(12)]
    bounds = {"lb_dict": {"a": 0.0, "b": 0.0}, "method": "L-BFGS-B"}
    seq = minimize_many(beta_loss, [x0_beta()] * 12, args=args, **bounds)
    par = minimize_many(beta_loss, [x0_beta()] * 12, args=args, executor=client, **bounds)
    one = minimize_many(
        beta_loss, [x0_beta()] * 12, args=args, executor=client, chunksize=1, **bounds
    )
    assert all(r.success for r in seq)
    for a, b, c in zip(seq, par, one, strict=True):
        assert a.fun == b.fun == c.fun and a.nfev == b.nfev == c.nfev
        for k in ("a", "b", "c"):
            assert a.x[k] == b.x[k] == c.x[k] and a.jac[k] == b.jac[k]


def test_torch_float32_problems_come_back_as_torch(client: Any) -> None:
    torch = pytest.importorskip("torch")

    def fun(d: Any, t: float) -> Any:
        return ((d["w"] - t) ** 2).sum()

    x0s = [{"w": torch.zeros(3, dtype=torch.float32)} for _ in range(4)]
    args = [(float(i),) for i in range(4)]
    seq = minimize_many(fun, x0s, args=args, jac="autodiff")
    par = minimize_many(fun, x0s, args=args, jac="autodiff", executor=client)
    for a, b in zip(seq, par, strict=True):
        assert isinstance(b.x["w"], torch.Tensor) and b.x["w"].dtype == torch.float32
        assert torch.equal(a.x["w"], b.x["w"]) and a.fun == b.fun


def test_multistart_on_dask_equals_sequential(client: Any) -> None:
    from dict_minimize.testfunctions import rastrigin

    fn = rastrigin()
    fun = fn.objective("numpy")
    (lo_x, hi_x), (lo_y, hi_y) = fn.domain
    box = {"lb_dict": {"x": lo_x, "y": lo_y}, "ub_dict": {"x": hi_x, "y": hi_y}}
    x0 = {"x": np.float64(0.0), "y": np.float64(0.0)}
    seq = multistart(fun, x0, 16, seed=7, **box)
    par = multistart(fun, x0, 16, seed=7, executor=client, **box)
    assert seq.best_index == par.best_index and seq.fun == par.fun
    for a, b in zip(seq.starts, par.starts, strict=True):
        assert a.x == b.x and a.fun == b.fun
    # more starts reach lower wells: the best of 16 is at least as good as the first start
    assert seq.fun <= seq.starts[0].fun


def failing(d: dict, p: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
    if len(y) == 13:
        raise RuntimeError("bad segment")
    return beta_loss(d, p, y)


def test_progress_bar_on_dask_moves_per_finished_chunk(client: Any) -> None:
    pytest.importorskip("tqdm")
    out = io.StringIO()
    results = minimize_many(
        beta_loss,
        [x0_beta()] * 4,
        args=[calibration_data(s, 50) for s in range(4)],
        executor=client,
        chunksize=1,
        progress={"file": out, "mininterval": 0, "miniters": 1},
    )
    counts = [int(m) for m in re.findall(r"(\d+)/4 ", out.getvalue())]
    assert all(r.success for r in results)
    assert counts == sorted(counts) and sorted(set(counts)) == [0, 1, 2, 3, 4]


def test_a_failing_problem_on_dask_keeps_the_others(client: Any) -> None:
    args = [calibration_data(s, n=13 if s == 2 else 100) for s in range(5)]
    res = minimize_many(failing, [x0_beta()] * 5, args=args, executor=client, chunksize=5)
    assert [r.success for r in res] == [True, True, False, True, True]
    assert res[2].exception == "RuntimeError" and "bad segment" in res[2].message


def killer(d: dict, t: float) -> tuple[float, dict]:
    if t == 2.0:
        import os

        os._exit(1)  # the worker process dies
    r = d["x"] - t
    return float(r @ r), {"x": 2 * r}


# Dask restarts each killed worker (a new process: minutes on a loaded machine), and problem 2
# kills up to 8 of them; the limit leaves room for that
@pytest.mark.timeout(1800)
def test_a_lost_worker_loses_only_its_problem() -> None:
    # Dask retries a task whose worker died on other workers (allowed-failures, 3 by default)
    # before it calls it a KilledWorker: a problem that only shared a dead worker completes.
    # Retries are what keep an innocent task that was queued on a dying worker alive, so they
    # stay on; three workers (not two) let the retries run while killed workers restart.
    with cluster(3) as c, distributed.Client(c) as cl:
        x0s = [{"x": np.zeros(2)} for _ in range(6)]
        args = [(float(i),) for i in range(6)]
        res = minimize_many(killer, x0s, args=args, executor=cl, chunksize=3)
    assert [r.success for r in res] == [True, True, False, True, True, True]
    assert "worker may have died" in res[2].message and res[2].exception == "KilledWorker"
    np.testing.assert_array_equal(res[2].x["x"], np.zeros(2))  # x0, as a NumPy array again
    assert res[5].x["x"].round(6).tolist() == [5.0, 5.0]


# --- one problem, sharded data ----------------------------------------------------------------


def shard_loss(x: dict, shard: tuple) -> tuple[float, dict]:
    """Least squares of one shard: sum of (a @ w + c - b)^2."""
    a, b = shard
    r = a @ x["w"] + x["c"] - b
    return float(r @ r), {"w": 2 * a.T @ r, "c": 2 * r.sum()}


def make_shards(k: int = 4, rows: int = 60) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(11)
    w_true = np.array([1.5, -2.0, 0.5])
    out = []
    for _ in range(k):
        a = rng.normal(size=(rows, 3))
        out.append((a, a @ w_true + 0.25 + 0.01 * rng.normal(size=rows)))
    return out


def transfers(client: Any) -> int:
    counts = client.run(lambda dask_worker: dask_worker.state.transfer_incoming_count_total)
    return sum(counts.values())


def test_sharded_objective_matches_the_in_process_sum_and_moves_no_data(client: Any) -> None:
    data = make_shards()
    futures = client.scatter(data)
    before = transfers(client)
    fun = sharded(shard_loss, futures, client)
    assert isinstance(fun, ShardedObjective) and len(fun.shards) == 4
    x0 = {"w": np.zeros(3), "c": np.float64(0.0)}
    res = minimize(fun, x0, method="L-BFGS-B")
    assert transfers(client) == before  # each task ran where its shard is

    def local(x: dict) -> tuple[float, dict]:
        value, grad = 0.0, None
        for shard in data:
            v, g = shard_loss(x, shard)
            value += v
            grad = g if grad is None else {k: grad[k] + g[k] for k in g}
        return value, grad

    ref = minimize(local, x0, method="L-BFGS-B")
    assert res.success and ref.success and fun.evaluations == res.nfev
    np.testing.assert_allclose(res.x["w"], ref.x["w"], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(res.x["w"], [1.5, -2.0, 0.5], atol=0.01)
    np.testing.assert_allclose(float(res.x["c"]), 0.25, atol=0.01)
    value, grad = fun({"w": np.ones(3), "c": np.float64(0.1)})
    ref_value, ref_grad = local({"w": np.ones(3), "c": np.float64(0.1)})
    assert value == pytest.approx(ref_value, rel=1e-12)
    np.testing.assert_allclose(grad["w"], ref_grad["w"], rtol=1e-12)


@pytest.mark.parametrize("method", ["BFGS", "CG", "TNC", "SLSQP"])
def test_sharded_works_with_gradient_methods(client: Any, method: str) -> None:
    # plain data: sharded scatters it once (hash=False: Dask's content-hashed keys would be
    # shared with another test's scatter of the same data, and released with it)
    fun = sharded(shard_loss, make_shards(2, 40), client)
    res = minimize(fun, {"w": np.zeros(3), "c": np.float64(0.0)}, method=method)
    np.testing.assert_allclose(res.x["w"], [1.5, -2.0, 0.5], atol=0.02)


def test_sharded_dask_array_partitions(client: Any) -> None:
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(5)
    a = rng.normal(size=(400, 2))
    arr = da.from_array(a, chunks=(100, 2))

    def mean_square(x: dict, block: np.ndarray) -> tuple[float, dict]:
        r = block @ x["w"] - 1.0
        return float(r @ r), {"w": 2 * block.T @ r}

    fun = sharded(mean_square, arr, client)
    assert len(fun.shards) == 4
    res = minimize(fun, {"w": np.zeros(2)})
    expected = np.linalg.lstsq(a, np.ones(400), rcond=None)[0]
    np.testing.assert_allclose(res.x["w"], expected, rtol=1e-5)


@pytest.mark.parametrize("as_list", [True, False], ids=["list", "object-array"])
def test_sharded_delayed_partitions(client: Any, as_list: bool) -> None:
    """dask.array's to_delayed() partitions: computed on the cluster, fun_shard gets blocks."""
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(6)
    a = rng.normal(size=(300, 2))
    blocks = da.from_array(a, chunks=(100, 2)).to_delayed()  # an object array of Delayed

    def mean_square(x: dict, block: np.ndarray) -> tuple[float, dict]:
        r = block @ x["w"] - 1.0
        return float(r @ r), {"w": 2 * block.T @ r}

    shards = list(blocks.ravel()) if as_list else blocks
    fun = sharded(mean_square, shards, client)
    assert len(fun.shards) == 3
    assert all(isinstance(f, distributed.Future) for f in fun.shards)
    types = client.gather(client.map(lambda b: type(b).__name__, fun.shards))
    assert types == ["ndarray"] * 3
    value, grad = fun({"w": np.zeros(2)})
    assert value == pytest.approx(300.0) and grad["w"] == pytest.approx(-2 * a.sum(axis=0))
    res = minimize(fun, {"w": np.zeros(2)})
    expected = np.linalg.lstsq(a, np.ones(300), rcond=None)[0]
    np.testing.assert_allclose(res.x["w"], expected, rtol=1e-5)


def test_sharded_errors(client: Any) -> None:
    with pytest.raises(TypeError, match=r"client must be a dask\.distributed\.Client"):
        sharded(shard_loss, [], object())
    with pytest.raises(ValueError, match="shards is empty"):
        sharded(shard_loss, [], client)
    with pytest.raises(TypeError, match="fun_shard must be callable"):
        sharded(3, [1], client)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="shards must be a list"):
        sharded(shard_loss, 3, client)
    fun = sharded(shard_loss, make_shards(1, 5), client)  # plain data: scattered once
    with pytest.raises(TypeError, match=r"x\['w'\] is a str"):
        fun({"w": "no", "c": 0.0})


def test_no_worker_process_is_left_behind() -> None:
    """Runs last in this module: the module's cluster may still be up, but none started by a
    finished test is."""
    with cluster() as c, distributed.Client(c) as cl:
        pids = list(cl.run(lambda: __import__("os").getpid()).values())
        assert len(pids) == 2
    _, alive = psutil.wait_procs(
        [psutil.Process(p) for p in pids if psutil.pid_exists(p)], timeout=10
    )
    assert not alive
