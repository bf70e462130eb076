"""Thread caps around SciPy's solve: SciPy's BLAS, and the objective's BLAS and framework.

A small fit runs thousands of tiny operations. Thread pools cost more than they gain on those,
and on a machine whose cores are busy far more: OpenBLAS's and PyTorch's worker threads spin
and wait for cores (measured on a busy 2-core machine: a 3-32-1 PyTorch MLP 20-40x slower per
evaluation, 200 small NumPy fits 10x slower; ``benchmarks/threads.py``,
``docs/guide/performance.md``). During a solve :func:`solve_threads` caps

- the BLAS libraries SciPy loaded (L-BFGS-B's vector operations),
- every other BLAS library (NumPy's: the objective's ``X @ w``), through ``threadpoolctl``,
- the intra-op threads of ``x0``'s framework, through its backend's ``intra_op_threads`` hook
  (PyTorch: ``torch.set_num_threads``; JAX/XLA and TensorFlow fix theirs when they start, so
  they have no hook and keep theirs),

and restores each afterwards, on exceptions too.

``threads`` (every entry point's keyword): an int caps at that many threads; None leaves
everything alone; ``"auto"`` (the default) is one thread for problems below
:data:`AUTO_MAX_N` variables, lifted for the objective (its BLAS and framework; SciPy's BLAS
stays capped) when the first evaluation takes :data:`AUTO_SLOW_EVAL` seconds or more: an
objective that heavy gains from its threads. Problems of :data:`AUTO_MAX_N` variables or more
are left alone. The environment variable ``DICT_MINIMIZE_THREADS`` overrides the argument: an
integer, ``auto``, or ``off`` (also ``0``/``none``) to leave threads alone; the older
``DICT_MINIMIZE_BLAS_THREADS`` is read when it is not set.

Caps are process-wide (thread pools are), so they are shared: the first solve to enter sets a
resource's cap, the last to leave restores it, whichever threads they run in. (OpenBLAS
0.3.30/0.3.31 ignore a count set from a thread other than the main one once the main thread
has set one: solves in worker threads may then run OpenBLAS as it is. A library whose count is
per thread is capped and restored per thread.) Without ``threadpoolctl`` (an optional
dependency) the BLAS libraries are left alone.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

#: environment variable overriding ``threads``: an integer, ``auto``, or ``off``
ENV_VAR = "DICT_MINIMIZE_THREADS"
#: the older name, read when :data:`ENV_VAR` is not set
OLD_ENV_VAR = "DICT_MINIMIZE_BLAS_THREADS"
#: ``threads="auto"`` leaves problems of this many variables or more alone
AUTO_MAX_N = 1_000_000
#: ``threads="auto"`` lifts the objective's cap after a first evaluation this slow (seconds)
AUTO_SLOW_EVAL = 0.02

_OFF = ("off", "0", "none", "false", "no")
_lock = threading.RLock()
_controllers: dict[str, Any] = {}


def env_setting() -> int | str | bool | None:
    """The environment's ``threads``: an int, ``"auto"``, None (off), or False (not set).

    Example:
        >>> env_setting() in (False, None, "auto") or isinstance(env_setting(), int)
        True
    """
    raw = os.environ.get(ENV_VAR)
    if raw is None or not raw.strip():
        raw = os.environ.get(OLD_ENV_VAR)
    raw = (raw or "").strip().lower()
    if not raw:
        return False
    if raw in _OFF:
        return None
    if raw == "auto":
        return "auto"
    try:
        return max(int(raw), 1)
    except ValueError:
        return False


def check_threads(threads: Any, blas_threads: Any = None) -> int | str | None:
    """``threads`` validated, with the older ``blas_threads`` folded in.

    Example:
        >>> check_threads("auto"), check_threads(None), check_threads("auto", blas_threads=1)
        ('auto', None, 1)
    """
    if blas_threads is not None:
        if isinstance(blas_threads, bool) or not isinstance(blas_threads, int) or blas_threads < 1:
            raise ValueError(f"blas_threads must be None or a positive int; got {blas_threads!r}")
        if threads != "auto" and threads != blas_threads:
            raise ValueError(
                f"blas_threads={blas_threads!r} and threads={threads!r} disagree; pass threads "
                "alone (blas_threads is its older name)"
            )
        return blas_threads
    if threads is None or threads == "auto":
        return threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be 'auto', None or a positive int; got {threads!r}")
    return threads


def choose(threads: int | str | None, n: int) -> tuple[int | None, bool]:
    """(the cap for a problem of ``n`` variables or None, whether a slow first evaluation
    lifts the objective's cap), the environment variable first.

    Example:
        >>> import os
        >>> os.environ.get(ENV_VAR) or choose("auto", 10), choose(None, 10), choose(4, 10)
        ((1, True), (None, False), (4, False))
        >>> os.environ.get(ENV_VAR) or choose("auto", AUTO_MAX_N)
        (None, False)
    """
    env = env_setting()
    if env is not False:
        threads = env
    if threads is None:
        return None, False
    if threads == "auto":
        return (1, True) if n < AUTO_MAX_N else (None, False)
    return int(threads), False


# --- the resources ------------------------------------------------------------------------------


def _controller(scope: str) -> Any:
    """A cached threadpoolctl controller of the BLAS libraries in ``scope`` (``'scipy'``:
    those SciPy ships; ``'other'``: every other one, NumPy's; ``'all'``), or None."""
    if scope in _controllers:
        return _controllers[scope]
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        _controllers[scope] = None
        return None
    import scipy.linalg  # (makes sure SciPy's BLAS is loaded before the scan)

    blas = ThreadpoolController().select(user_api="blas")
    scipy_dir = os.path.dirname(os.path.dirname(os.path.abspath(scipy.linalg.__file__)))

    def is_scipy(path: str) -> bool:
        return os.path.basename(os.path.dirname(path)).startswith("scipy") or os.path.abspath(
            path
        ).startswith(scipy_dir)

    paths = [lib.filepath for lib in blas.lib_controllers]
    mine = [p for p in paths if is_scipy(p)]
    if scope == "scipy":
        controller = blas.select(filepath=mine) if mine else blas
    elif scope == "other":
        rest = [p for p in paths if p not in mine]
        controller = blas.select(filepath=rest) if rest and mine else None
    else:
        controller = blas
    _controllers[scope] = controller
    return controller


class _Resource:
    """One thread setting. A process-wide one (SciPy's OpenBLAS 0.3.30, PyTorch): the first
    holder caps it, the last restores it, whatever their threads. A per-thread one (NumPy's
    OpenBLAS 0.3.31 keeps its count per calling thread): each thread caps and restores its
    own, with its own count of holders."""

    def __init__(
        self, get: Callable[[], Any], put: Callable[[Any], None], per_thread: bool = False
    ) -> None:
        self.get, self.put = get, put
        self.per_thread = per_thread
        self.local = threading.local()
        self.holders = 0
        self.saved: Any = None

    def _state(self) -> Any:
        return self.local if self.per_thread else self

    def hold(self, n: int) -> None:
        with _lock:
            state = self._state()
            if getattr(state, "holders", 0) == 0:
                state.saved = self.get()
                self.put(n)
                state.holders = 0
            state.holders += 1

    def drop(self) -> None:
        with _lock:
            state = self._state()
            state.holders -= 1
            if state.holders == 0:
                self.put(state.saved)
                state.saved = None


def _lib_resource(lib: Any) -> _Resource:
    """A BLAS library's setting; per-thread when a count set here does not show in another
    thread (checked once, by setting a different count and reading it from a new thread)."""

    def put(k: int) -> None:
        if lib.num_threads != k:
            lib.set_num_threads(k)

    before = lib.num_threads
    probe = 2 if before == 1 else 1
    seen: list[int] = []
    try:
        lib.set_num_threads(probe)
        reader = threading.Thread(target=lambda: seen.append(lib.num_threads))
        reader.start()
        reader.join()
    finally:
        lib.set_num_threads(before)
    return _Resource(lambda: lib.num_threads, put, per_thread=seen != [probe])


_resources: dict[str, list[_Resource]] = {}


def _resources_of(name: str, hook: Any = None) -> list[_Resource]:
    """The shared resources ``name``: ``'blas:scipy'`` (SciPy's BLAS libraries),
    ``'blas:other'`` (every other one) or a framework's (``hook``: its backend's ``(get, set)``
    of intra-op threads)."""
    with _lock:
        if name not in _resources:
            if name.startswith("blas:"):
                controller = _controller(name[5:])
                libs = [] if controller is None else list(controller.lib_controllers)
                _resources[name] = [_lib_resource(lib) for lib in libs]
            else:
                get, put = hook
                _resources[name] = [_Resource(get, put)]
        return _resources[name]


class ThreadCap:
    """The caps of one solve (a context manager): SciPy's BLAS, then the objective's (other
    BLAS libraries, the framework's intra-op threads). :meth:`first_evaluation` lifts the
    objective's caps early when ``lift`` and the first evaluation was slow."""

    def __init__(
        self,
        n: int,
        lift: bool,
        framework: str | None = None,
        hook: Any = None,
        lift_scipy: bool = False,
    ) -> None:
        self.n, self.lift, self.lift_scipy = n, lift, lift_scipy
        self.framework, self.hook = framework, hook
        self.held: list[_Resource] = []
        self.objective: list[_Resource] = []
        self.lifted = False
        self.started = 0.0

    def __enter__(self) -> ThreadCap:
        try:
            for name in ("blas:scipy", "blas:other") + (
                (f"framework:{self.framework}",) if self.hook is not None else ()
            ):
                for res in _resources_of(name, self.hook):
                    res.hold(self.n)
                    self.held.append(res)
                    if name != "blas:scipy" or self.lift_scipy:
                        self.objective.append(res)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.started = time.perf_counter()
        return self

    def first_evaluation(self, seconds: float | None = None) -> None:
        """Called after the first evaluation (``seconds``: its time, by default the time since
        the ``with`` began): lifts the objective's caps when it took :data:`AUTO_SLOW_EVAL` or
        more and the policy allows it."""
        if seconds is None:
            seconds = time.perf_counter() - self.started
        if self.lift and not self.lifted and seconds >= AUTO_SLOW_EVAL:
            self.lifted = True
            for res in self.objective:
                self.held.remove(res)
                res.drop()

    def __exit__(self, *exc: Any) -> None:
        while self.held:
            self.held.pop().drop()


def solve_threads(
    threads: int | str | None, n: int, backend: Any = None, lift_scipy: bool = False
) -> ThreadCap | contextlib.nullcontext:
    """The thread caps of one solve of ``n`` variables (a context manager), per ``threads``
    and the environment; ``backend`` (x0's backend record) brings its framework's hook.
    ``lift_scipy``: a slow first evaluation lifts SciPy's BLAS cap too (least_squares and
    root, whose own LAPACK work grows with the residuals, as the evaluation does).

    Example:
        >>> import numpy as np, scipy.optimize
        >>> with solve_threads(1, 3):
        ...     res = scipy.optimize.minimize(lambda x: float(x @ x), np.ones(3))
        >>> bool(res.success)
        True
    """
    cap, lift = choose(threads, n)
    if cap is None:
        return contextlib.nullcontext()
    hook = getattr(backend, "intra_op_threads", None)
    return ThreadCap(cap, lift, getattr(backend, "name", None), hook, lift_scipy)


def timed_first(fn: Callable, caps: Any) -> Callable:
    """``fn`` that reports its first call's time to ``caps`` (a :class:`ThreadCap` whose
    policy lifts caps after a slow first evaluation); ``fn`` itself otherwise.

    Example:
        >>> timed_first(abs, None) is abs
        True
    """
    if not getattr(caps, "lift", False):
        return fn
    first = [True]

    def timed(*a: Any, **k: Any) -> Any:
        out = fn(*a, **k)
        if first[0]:
            first[0] = False
            caps.first_evaluation()
        return out

    return timed


@contextlib.contextmanager
def limit_blas_threads(limit: int | None = 1, *, scope: str = "scipy") -> Iterator[None]:
    """Cap BLAS threads at ``limit`` inside the ``with`` block.

    Args:
        limit: the number of threads (None: do nothing). The environment variable
            (:data:`ENV_VAR`) overrides it (``off`` disables; ``auto`` means 1).
        scope: ``'scipy'`` limits only the BLAS libraries SciPy ships and loaded (L-BFGS-B's);
            ``'all'`` every BLAS library in the process (NumPy's too).

    Example:
        >>> import numpy as np, scipy.optimize
        >>> with limit_blas_threads(1):
        ...     res = scipy.optimize.minimize(lambda x: float(x @ x), np.ones(3), method="L-BFGS-B")
        >>> bool(res.success)
        True
    """
    if scope not in ("scipy", "all"):
        raise ValueError(f"scope must be 'scipy' or 'all'; got {scope!r}")
    n = _setting(limit)
    if n is None:
        yield
        return
    held = []
    try:
        for name in ("blas:scipy", "blas:other") if scope == "all" else ("blas:scipy",):
            for res in _resources_of(name):
                res.hold(n)
                held.append(res)
        yield
    finally:
        for res in reversed(held):
            res.drop()


def _setting(limit: int | None) -> int | None:
    """:func:`limit_blas_threads`' limit in force: the environment variable wins."""
    env = env_setting()
    if env is False:
        return limit
    return 1 if env == "auto" else env  # type: ignore[return-value]


_UNLIMITED = contextlib.nullcontext()


def blas_limit(limit: int | None) -> contextlib.AbstractContextManager:
    """:func:`limit_blas_threads` where a limit is in force, else a context that does nothing.

    Example:
        >>> import os
        >>> env_setting() is not False or blas_limit(None) is blas_limit(None)
        True
        >>> with blas_limit(1):
        ...     pass
    """
    return _UNLIMITED if _setting(limit) is None else limit_blas_threads(limit)


__all__ = [
    "AUTO_MAX_N",
    "AUTO_SLOW_EVAL",
    "ENV_VAR",
    "ThreadCap",
    "blas_limit",
    "check_threads",
    "choose",
    "limit_blas_threads",
    "solve_threads",
    "timed_first",
]
