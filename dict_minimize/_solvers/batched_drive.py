"""The batch driver of :func:`~dict_minimize.minimize_batched`: one coroutine per problem, one
vectorized evaluation per round.

Every problem's solve runs in a greenlet. Its objective's evaluations are requests
(``("vg", i, x, None)`` for the value and gradient, ``("hvp", i, x, p)`` for a Hessian-vector
product) that switch to the driver; the driver gathers the requests of all live problems,
evaluates each kind in one call of the batched evaluator (at most ``max_rows`` rows per call),
and resumes each problem with its row. A problem that finishes leaves the batch at once. A
batched call that raises is split in halves until the rows that raise are found; each of those
problems gets its exception where its own evaluation would have raised, the others their rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dict_minimize._structure.types import BatchEval


def _greenlet() -> Any:
    try:
        import greenlet
    except ImportError:
        raise ImportError(
            "minimize_batched runs each problem's SciPy solve as a coroutine and needs greenlet: "
            "pip install 'dict_minimize[batched]'"
        ) from None
    return greenlet


class Driver:
    """Runs the problems' coroutines; ``rows`` lists the row count of every batched call."""

    def __init__(self, evaluator: BatchEval, max_rows: int | None, bar: Any = None) -> None:
        self.ev, self.max_rows, self.bar = evaluator, max_rows, bar
        self.rows: list[int] = []
        self.kinds: list[str] = []
        self.main: Any = None
        self.path = "generic"  # or "fast": SciPy's L-BFGS-B core driven for the whole batch
        self.flat: np.ndarray | None = None  # the fast path's solutions (B, n), where it has them

    def switch(self, request: tuple) -> Any:
        """Called from a problem's coroutine: hand the request to the driver, get the row."""
        return self.main.switch(request)

    def _evaluate(
        self, kind: str, idx: np.ndarray, X: np.ndarray, P: np.ndarray | None
    ) -> list[Any]:
        """One batched call; on an exception, the halves again, down to single rows (a row
        that raises alone gets its exception)."""
        self.rows.append(len(idx))
        self.kinds.append(kind)
        try:
            if kind == "vg":
                f, G = self.ev.value_and_grad(idx, X)
                return [(float(f[j]), G[j]) for j in range(len(idx))]
            assert P is not None
            H = self.ev.hvp(idx, X, P)
            return [H[j] for j in range(len(idx))]
        except Exception as exc:
            if len(idx) == 1:
                return [exc]
            h = len(idx) // 2
            return self._evaluate(
                kind, idx[:h], X[:h], None if P is None else P[:h]
            ) + self._evaluate(kind, idx[h:], X[h:], None if P is None else P[h:])

    def run(self, tasks: list[Callable[[], Any]]) -> list[Any]:
        """Each task's result (a task runs one problem's solve and returns its result)."""
        gl = _greenlet()
        self.main = gl.getcurrent()
        results: list[Any] = [None] * len(tasks)
        live: list[Any] = [gl.greenlet(t) for t in tasks]
        pending: list[tuple] = []

        def step(i: int, out: Any) -> None:
            g = live[i]
            if g.dead:
                results[i], live[i] = out, None
                if self.bar is not None:
                    self.bar.update(1)
            else:
                pending.append(out)

        try:
            for i, g in enumerate(live):
                step(i, g.switch())
            while pending:
                todo, pending[:] = list(pending), []
                for kind in ("vg", "hvp"):
                    reqs = [r for r in todo if r[0] == kind]
                    size = self.max_rows or max(1, len(reqs))
                    for a in range(0, len(reqs), size):
                        chunk = reqs[a : a + size]
                        idx = np.fromiter((r[1] for r in chunk), np.int64, len(chunk))
                        X = np.stack([r[2] for r in chunk])
                        P = np.stack([r[3] for r in chunk]) if kind == "hvp" else None
                        for r, out in zip(chunk, self._evaluate(kind, idx, X, P), strict=True):
                            g = live[r[1]]
                            step(
                                r[1],
                                g.throw(out) if isinstance(out, BaseException) else g.switch(out),
                            )
        except KeyboardInterrupt:
            # every live problem stops as minimize stops on Ctrl-C: with its best point
            for i, g in enumerate(live):
                out = None
                while g is not None and not g.dead:
                    out = g.throw(KeyboardInterrupt)
                if g is not None:
                    results[i] = out
        return results
