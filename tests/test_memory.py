"""Repeated calls leave memory flat: 1,000 small solves per framework and API, RSS measured.

After a warm-up (imports, caches, compilation), the resident set size is read before and after
1,000 calls of a small bounded problem with a callback; it must not grow by more than a generous
30 MB. The number of objects the garbage collector tracks is compared too: a leak of one small
object per call (a dict of the iterate kept alive) is far below what RSS shows, but not below
this. Run with ``pytest -s`` to see the figures and the time of each run.
"""

from __future__ import annotations

import gc
import importlib
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from dict_minimize import minimize
from tests.conftest import Framework, flat_objective
from tests.test_threads import autodiff_missing, reduce_sum

CALLS = 1000
WARMUP = 100
MAX_GROWTH_MB = 30.0
MAX_NEW_OBJECTS = CALLS // 10
STATM = "/proc/self/statm"


def rss_mb() -> float:
    """The resident set size of this process, in MiB (Linux: /proc/self/statm)."""
    with open(STATM) as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def growth_over_calls(solve: Callable[[], Any]) -> tuple[float, int, float]:
    """(RSS growth in MiB, growth of gc-tracked objects, seconds) over CALLS calls of ``solve``,
    after WARMUP calls."""
    for _ in range(WARMUP):
        solve()
    gc.collect()
    rss, objects = rss_mb(), len(gc.get_objects())
    start = time.perf_counter()
    for _ in range(CALLS):
        solve()
    elapsed = time.perf_counter() - start
    gc.collect()
    return rss_mb() - rss, len(gc.get_objects()) - objects, elapsed


def quad(x: np.ndarray) -> tuple[float, np.ndarray]:
    r = x - 0.5
    return float(r @ r), 2 * r


@pytest.mark.skipif(not os.path.exists(STATM), reason="needs /proc/self/statm (Linux)")
@pytest.mark.parametrize("mode", ["jac=True", "drop-in", "jac=autodiff"])
def test_repeated_calls_keep_memory_flat(fw: Framework, mode: str) -> None:
    if mode == "jac=autodiff" and (reason := autodiff_missing(fw)):
        pytest.skip(reason)
    b_dtype = "float64" if mode == "jac=autodiff" else "float32"  # TF: no float32 + float64
    x0 = {"a": fw.tensor([0.0, 1.0, 2.0]), "b": fw.tensor(np.ones((2, 2)), b_dtype)}
    kwargs: dict[str, Any] = {
        "method": "L-BFGS-B",
        "lb_dict": {"a": 0.0},
        "ub_dict": {"b": 0.75},
        "callback": lambda intermediate_result: None,
    }
    if mode == "jac=autodiff":
        total = reduce_sum(fw)
        half = {k: fw.tensor(np.full(tuple(v.shape), 0.5), fw.dtype_name(v)) for k, v in x0.items()}

        def value(d: Any) -> Any:  # defined once, as a user would
            return total((d["a"] - half["a"]) ** 2) + total((d["b"] - half["b"]) ** 2)

        def solve() -> Any:
            return minimize(value, x0, jac="autodiff", **kwargs)

    elif mode == "drop-in":
        api = importlib.import_module(f"dict_minimize.{fw.name}_api")
        fun = flat_objective(fw, quad)

        def solve() -> Any:
            return api.minimize(fun, x0, **kwargs)

    else:
        fun = flat_objective(fw, quad)

        def solve() -> Any:
            return minimize(fun, x0, **kwargs)

    growth, objects, elapsed = growth_over_calls(solve)
    print(
        f"\n{fw.name:10s} {mode:12s} RSS growth {growth:+6.1f} MB, {objects:+d} objects over "
        f"{CALLS} calls ({elapsed:.1f} s, {1000 * elapsed / CALLS:.2f} ms per call)"
    )
    assert growth < MAX_GROWTH_MB, f"{fw.name} {mode}: RSS grew {growth:.1f} MB"
    assert objects < MAX_NEW_OBJECTS, f"{fw.name} {mode}: {objects} more objects"
