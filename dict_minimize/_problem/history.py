"""A run's history in SQLite, written as the run goes and read back from any process.

``minimize(..., log="run.db")`` opens a :class:`HistoryWriter`: the
:class:`~dict_minimize._problem.objective.Objective` hands it every evaluation (its ``on_eval``
hook) and the :class:`~dict_minimize._problem.trace.Monitor` every trace row, the same numbers
it puts in ``res.trace``. Each row is its own transaction, committed before the evaluation that
follows starts, so a run killed at any moment loses at most the evaluation in flight. The
database is in WAL mode: readers (:func:`read_log`, another process, the ``sqlite3`` shell) read
it while the run writes. Commits use ``synchronous=NORMAL``: a committed row survives the
process being killed (the row is in the operating system's hands when the commit returns); only
a power loss or an operating-system crash can lose the last rows, and the database stays
consistent even then. ``FULL`` would wait for the disk at every evaluation.

The parameters are stored once per evaluation as the flat float64 vector SciPy evaluated (a
blob), with x0's keys and shapes stored once per run, so that the reader rebuilds dicts of NumPy
arrays keyed like ``x0`` without the framework. One file holds any number of runs (one per
``minimize`` call; ``minimize_many`` puts its problems in one file, one run each).

Nothing here imports a framework.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult

from dict_minimize._errors import Path, type_name
from dict_minimize._problem.trace import Trace
from dict_minimize._structure.layout import values_by_key

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run INTEGER PRIMARY KEY, method TEXT, started REAL, n INTEGER, layout TEXT,
    ended REAL, success INTEGER, status INTEGER, message TEXT, fun REAL);
CREATE TABLE IF NOT EXISTS evaluations (
    run INTEGER, eval INTEGER, nfev INTEGER, njev INTEGER, fun REAL, grad_norm REAL,
    time REAL, x BLOB, PRIMARY KEY (run, eval));
CREATE TABLE IF NOT EXISTS iterations (
    run INTEGER, row INTEGER, nit INTEGER, fun REAL, grad_norm REAL, nfev INTEGER,
    njev INTEGER, time REAL, x BLOB, PRIMARY KEY (run, row));
"""
#: how long a writer or reader waits for another process's write to finish (milliseconds)
_BUSY_MS = 30_000
#: SQLite's ``synchronous`` for the writer: NORMAL keeps every committed row through a killed
#: process (benchmarks/history.py measures FULL beside it)
SYNCHRONOUS = "NORMAL"


def check_log_arg(log: Any) -> str | None:
    """``minimize``'s ``log`` argument as a path (None: no log)."""
    if log is None or log is False:
        return None
    if isinstance(log, (str, os.PathLike)):
        path = os.fspath(log)
        if isinstance(path, str) and path:
            return path
    raise TypeError(f"log must be a file path (a str or os.PathLike) or None; got {log!r}")


def _connect(path: str) -> sqlite3.Connection:
    # autocommit (isolation_level=None): every INSERT is its own committed transaction
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    con.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
    return con


def _key_code(key: Hashable) -> list[Any]:
    """A key as JSON: strings and ints as they are, a nested path as x0's suffix
    (``['params']['w']``), anything else as its repr."""
    if isinstance(key, Path):
        return ["p", key.suffix()]
    if isinstance(key, str):
        return ["s", key]
    if isinstance(key, int) and not isinstance(key, bool):
        return ["i", key]
    return ["r", repr(key)]


def _layout_json(layout: Any) -> str:
    return json.dumps(
        {
            "keys": [_key_code(k) for k in layout.keys],
            "shapes": [list(s) for s in layout.shapes],
            "dtypes": [str(d) for d in layout.dtypes],
            "backend": layout.backend_name,
            "nested": layout.tree is not None,
        }
    )


def _blob(x: Any) -> bytes:
    return np.ascontiguousarray(x, dtype=np.float64).tobytes()


class HistoryWriter:
    """One run's rows into a SQLite file: one committed transaction per row.

    ``clock`` gives the seconds since the run started (the monitor that writes the rows sets
    its own, so that the log's times are the trace's); ``flatten`` turns a result's ``x`` dict
    back into the flat vector (for a last trace row at the result's point).
    """

    def __init__(
        self,
        path: str,
        layout: Any,
        method: str,
        clock: Callable[[], float] = time.perf_counter,
        flatten: Callable[[Any], np.ndarray] | None = None,
    ) -> None:
        self.path = path
        self.n = layout.n
        self.clock = clock
        self._flatten = flatten
        self.evals = 0
        self.rows = 0
        try:
            con = _connect(path)
        except sqlite3.Error as exc:
            raise OSError(f"log={path!r}: cannot open the SQLite file ({exc})") from exc
        self.con: sqlite3.Connection | None = con
        try:
            con.execute("PRAGMA journal_mode = WAL")
            con.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
            con.executescript(_SCHEMA)
            cur = con.execute(
                "INSERT INTO runs (method, started, n, layout) VALUES (?, ?, ?, ?)",
                (method, time.time(), self.n, _layout_json(layout)),
            )
        except sqlite3.DatabaseError as exc:
            con.close()
            self.con = None
            raise ValueError(
                f"log={path!r} is not a dict_minimize log (SQLite says: {exc}); give a new file "
                "name or one written by an earlier run"
            ) from exc
        self.run = int(cur.lastrowid or 0)

    # -- the objective's hook: every evaluation ---------------------------------------------
    def evaluation(
        self, x: np.ndarray, f: float | None, g: np.ndarray | None, nfev: int, njev: int
    ) -> None:
        """Write evaluation ``nfev``/``njev``: value ``f`` (None: a gradient alone) and
        gradient ``g`` (None: a value alone) at ``x``."""
        if self.con is None:
            return
        self.evals += 1
        norm = None if g is None else float(np.linalg.norm(g))
        self.con.execute(
            "INSERT INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (self.run, self.evals, nfev, njev, f, norm, self.clock(), _blob(x)),
        )

    # -- the monitor's rows -----------------------------------------------------------------
    def row(
        self, nit: int, f: float, grad_norm: float, nfev: int, njev: int, t: float, x: Any
    ) -> None:
        """Write the next trace row (``x``: its flat point, or None)."""
        if self.con is None:
            return
        self.con.execute(
            "INSERT INTO iterations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.run,
                self.rows,
                nit,
                f,
                grad_norm,
                nfev,
                njev,
                t,
                None if x is None else _blob(x),
            ),
        )
        self.rows += 1

    def flatten(self, x_dict: Any) -> np.ndarray | None:
        """A result's ``x`` dict as the flat vector (None when no way to flatten was given)."""
        return None if self._flatten is None else self._flatten(x_dict)

    def first_grad(self, grad_norm: float, njev: int) -> None:
        """Row 0's gradient, computed after its value (a ``jac`` callable), as the monitor
        filled it in its trace."""
        if self.con is not None:
            self.con.execute(
                "UPDATE iterations SET grad_norm = ?, njev = ? WHERE run = ? AND row = 0",
                (grad_norm, njev, self.run),
            )

    def close(self, result: Any = None) -> None:
        """Write how the run ended (when ``result`` is given) and close the file."""
        con, self.con = self.con, None
        if con is None:
            return
        try:
            if result is not None:
                fun = result.get("fun")
                con.execute(
                    "UPDATE runs SET ended = ?, success = ?, status = ?, message = ?, fun = ? "
                    "WHERE run = ?",
                    (
                        time.time(),
                        int(bool(result.get("success", False))),
                        int(result.get("status", 0)),
                        str(result.get("message", "")),
                        None if fun is None else float(fun),
                        self.run,
                    ),
                )
            else:
                con.execute("UPDATE runs SET ended = ? WHERE run = ?", (time.time(), self.run))
        finally:
            con.close()


def open_log(path: str, run: Any, method: str) -> HistoryWriter:
    """A writer for the run of ``run`` (an ``Objective``), hooked to its evaluations."""
    layout, codec = run.layout, run.codec

    def flatten(x_dict: Any) -> np.ndarray:
        return codec.flatten(None, values_by_key(x_dict, layout, what="x"))[1]

    writer = HistoryWriter(path, layout, method, flatten=flatten)
    run.on_eval = writer.evaluation
    return writer


# -- reading ----------------------------------------------------------------------------------
def _f(v: Any) -> float:
    return math.nan if v is None else float(v)


def _key(code: list[Any]) -> Hashable:
    kind, value = code
    return int(value) if kind == "i" else str(value)


class _Unflatten:
    """Flat float64 blobs back to dicts of NumPy arrays keyed like x0 (nested x0: keyed by
    each leaf's path as written after ``x0``, e.g. ``"['params']['w']"``)."""

    def __init__(self, layout_json: str) -> None:
        spec = json.loads(layout_json)
        self.keys = [_key(c) for c in spec["keys"]]
        self.shapes = [tuple(s) for s in spec["shapes"]]
        sizes = [math.prod(s) for s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).tolist()

    def __call__(self, blob: bytes | None) -> dict[Hashable, np.ndarray] | None:
        if blob is None:
            return None
        flat = np.frombuffer(blob, dtype=np.float64).copy()
        return {
            k: flat[a:b].reshape(s)
            for k, s, a, b in zip(
                self.keys, self.shapes, self.offsets[:-1], self.offsets[1:], strict=True
            )
        }


class Evaluations:
    """Every evaluation of a logged run, in order: what :func:`read_log` gives with
    ``evaluations=True``.

    Attributes:
        fun: the value (NaN for an evaluation of the gradient alone; the raw value, also where
            it was not finite).
        grad_norm: the gradient's Euclidean norm (NaN where no gradient was computed).
        nfev, njev: cumulative counts of evaluations of ``fun`` and of its gradient.
        time: seconds since the run started.
        x: the points, as dicts of float64 NumPy arrays keyed like ``x0`` (built on access).
    """

    def __init__(self, rows: list[tuple], unflatten: _Unflatten) -> None:
        self._rows = rows
        self._unflatten = unflatten
        self.nfev = np.array([r[0] for r in rows], dtype=np.int64)
        self.njev = np.array([r[1] for r in rows], dtype=np.int64)
        self.fun = np.array([_f(r[2]) for r in rows], dtype=np.float64)
        self.grad_norm = np.array([_f(r[3]) for r in rows], dtype=np.float64)
        self.time = np.array([_f(r[4]) for r in rows], dtype=np.float64)

    @property
    def x(self) -> list[dict[Hashable, np.ndarray] | None]:
        return [self._unflatten(r[5]) for r in self._rows]

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The rows as dicts (``nfev``, ``njev``, ``fun``, ``grad_norm``, ``time``, ``x``)."""
        for i, r in enumerate(self._rows):
            yield {
                "nfev": int(self.nfev[i]),
                "njev": int(self.njev[i]),
                "fun": float(self.fun[i]),
                "grad_norm": float(self.grad_norm[i]),
                "time": float(self.time[i]),
                "x": self._unflatten(r[5]),
            }

    def __repr__(self) -> str:
        return f"Evaluations({len(self)} rows)"


def read_log(
    path: str | os.PathLike[str], evaluations: bool = False, *, run: int = -1, x: bool = False
) -> Any:
    """The trace of a run logged with ``minimize(..., log=path)``, while it runs or after.

    The file can be read from any process at any time: during the run (the rows committed so
    far), after it ended, or after it crashed or was killed (every evaluation up to the one in
    flight). The trace's rows equal those ``trace=True`` gives for the same run (times aside).

    Args:
        path: the SQLite file given as ``log``.
        evaluations: also return every evaluation (line-search trials included), as an
            :class:`Evaluations` table: ``(trace, evaluations)``.
        run: which run of the file (one per ``minimize`` call; ``minimize_many`` writes one per
            problem): an index in the order they started, ``-1`` (the default) the latest.
        x: keep each trace row's point, as ``trace='x'`` does: dicts of float64 NumPy arrays
            keyed like ``x0`` (a nested ``x0``'s leaves keyed by their path, e.g.
            ``"['params']['w']"``).

    Returns:
        Trace: ``label`` is the method; once the run has ended, ``trace.result`` is an
            ``OptimizeResult`` with its ``success``, ``status``, ``message``, ``fun``,
            ``method``, and ``started``/``ended`` (Unix times); None while it runs or after
            a crash. With ``evaluations=True``, the pair ``(trace, evaluations)``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a dict_minimize log, or has no such run.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from dict_minimize import minimize, read_log
        >>> path = os.path.join(tempfile.mkdtemp(), "run.db")
        >>> res = minimize(lambda d: (float(d["a"] @ d["a"]), {"a": 2 * d["a"]}),
        ...                {"a": np.ones(2)}, method="L-BFGS-B", log=path, trace=True)
        >>> trace, evals = read_log(path, evaluations=True)
        >>> bool((trace.fun == res.trace.fun).all()), len(evals) == res.nfev_ran
        (True, True)
        >>> evals.x[0]
        {'a': array([1., 1.])}

    See [History and TensorBoard](guide/history.md).
    """
    name = os.fspath(path)
    if not isinstance(name, str) or not os.path.isfile(name):
        raise FileNotFoundError(f"read_log: no log file at {name!r}")
    if isinstance(run, bool) or not isinstance(run, int):
        raise TypeError(f"read_log: run must be an int; got a {type_name(run)}")
    con = _connect(name)
    try:
        try:
            con.execute("BEGIN")  # one snapshot for every table, while a writer goes on
            runs = con.execute(
                "SELECT run, method, started, layout, ended, success, status, message, fun "
                "FROM runs ORDER BY run"
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"read_log: {name!r} is not a dict_minimize log ({exc})") from exc
        if not -len(runs) <= run < len(runs):
            raise ValueError(f"read_log: {name!r} holds {len(runs)} run(s); no run {run}")
        rid, method, started, layout_json, ended, success, status, message, fun = runs[run]
        rows = con.execute(
            "SELECT nit, fun, grad_norm, nfev, njev, time, x FROM iterations WHERE run = ? "
            "ORDER BY row",
            (rid,),
        ).fetchall()
        evals = (
            con.execute(
                "SELECT nfev, njev, fun, grad_norm, time, x FROM evaluations WHERE run = ? "
                "ORDER BY eval",
                (rid,),
            ).fetchall()
            if evaluations
            else None
        )
    finally:
        con.close()
    unflatten = _Unflatten(layout_json)
    trace = Trace(
        nit=[r[0] for r in rows],
        fun=[_f(r[1]) for r in rows],
        grad_norm=[_f(r[2]) for r in rows],
        nfev=[r[3] for r in rows],
        njev=[r[4] for r in rows],
        time=[_f(r[5]) for r in rows],
        x=[unflatten(r[6]) for r in rows] if x else None,
        label=method,
    )
    if ended is not None:
        trace.result = OptimizeResult(
            method=method,
            started=started,
            ended=ended,
            success=None if success is None else bool(success),
            status=status,
            message=message,
            fun=_f(fun),
        )
    if evals is None:
        return trace
    return trace, Evaluations(evals, unflatten)


__all__ = ["Evaluations", "HistoryWriter", "check_log_arg", "open_log", "read_log"]
