"""A callback that writes a run to TensorBoard: one step per iteration, as the run goes.

:class:`TensorBoard` is a ``callback(intermediate_result)``: ``minimize`` calls it once per
iteration of the method (never per line-search trial), with the value there, so nothing is
evaluated again for it. It writes TensorBoard's event files with the ``tensorboard`` package's
own record writer and protocol buffers: neither PyTorch nor TensorFlow is needed or imported
(``torch.utils.tensorboard`` and ``tf.summary`` write the same files, but the first imports
TensorFlow when it is installed, the second needs it). Needs the ``[tensorboard]`` extra.
"""

from __future__ import annotations

import itertools
import math
import os
import socket
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from dict_minimize._errors import fmt_key, type_name

_counter = itertools.count()


def _tensorboard() -> tuple[Any, Any, Any]:
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter
    except ImportError as exc:
        raise ImportError(
            "dict_minimize.TensorBoard needs the tensorboard package: pip install "
            "'dict_minimize[tensorboard]'"
        ) from exc
    return event_pb2, summary_pb2, RecordWriter


def _leaves(x: Any, prefix: str) -> list[tuple[str, np.ndarray]]:
    """(tag, float64 values) per leaf of a dict like x0 (nested dicts, lists and tuples too)."""
    if isinstance(x, Mapping):
        items: Any = x.items()
    elif isinstance(x, (list, tuple)):
        items = enumerate(x)
    else:
        value = x
        if hasattr(value, "detach"):  # torch
            value = value.detach().cpu().numpy()
        elif hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # tensorflow
            value = value.numpy()
        return [(prefix, np.asarray(value, dtype=np.float64))]
    out = []
    for key, value in items:
        name = key if isinstance(key, str) else fmt_key(key)
        out.extend(_leaves(value, f"{prefix}/{name}" if prefix else str(name)))
    return out


class TensorBoard:
    """Write ``fun``, the gradient's norm and the time of every iteration to TensorBoard.

    Pass it as ``callback`` to :func:`~dict_minimize.minimize` (or with other callbacks, call
    it from yours with the ``intermediate_result``). Each iteration ``nit`` is one step with
    the scalars ``<prefix>fun``, ``<prefix>grad_norm`` (where the method computed a gradient
    at the iterate), ``<prefix>nfev``, ``<prefix>njev`` and ``<prefix>time`` (seconds since
    the callback was made), and, with ``histograms=True``, one histogram per key of ``x``
    (``<prefix>x/<key>``). Every step is flushed to the file at once, so TensorBoard shows a
    run as it goes, and a crash loses nothing written.

    Args:
        logdir: the directory of the event file (made if missing); point ``tensorboard
            --logdir`` at it or at its parent.
        histograms: also write a histogram of each key's values at every iteration.
        prefix: put before every tag (e.g. ``"fit/"``), to keep runs apart in one logdir.
        bins: the histograms' number of bins.

    Raises:
        ImportError: when the ``tensorboard`` package is not installed (the
            ``[tensorboard]`` extra).

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> from dict_minimize import minimize
        >>> from dict_minimize.tensorboard import TensorBoard
        >>> logdir = tempfile.mkdtemp()
        >>> tb = TensorBoard(logdir, histograms=True)
        >>> res = minimize(lambda d: (float(d["a"] @ d["a"]), {"a": 2 * d["a"]}),
        ...                {"a": np.ones(2)}, method="L-BFGS-B", callback=tb)
        >>> tb.steps == res.nit
        True

    See [History and TensorBoard](guide/history.md).
    """

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        *,
        histograms: bool = False,
        prefix: str = "",
        bins: int = 30,
    ) -> None:
        if not isinstance(logdir, (str, os.PathLike)):
            raise TypeError(f"logdir must be a directory path; got a {type_name(logdir)}")
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str; got a {type_name(prefix)}")
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise ValueError(f"bins must be a positive int; got {bins!r}")
        self._event_pb2, self._summary_pb2, self._record_writer = _tensorboard()
        self.logdir = os.fspath(logdir)
        self.histograms = bool(histograms)
        self.prefix = prefix
        self.bins = bins
        self.steps = 0
        self.t0 = time.perf_counter()
        os.makedirs(self.logdir, exist_ok=True)
        self.path = os.path.join(
            self.logdir,
            f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
            f"{os.getpid()}.{next(_counter)}",
        )
        self._write(self._event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def _write(self, event: Any) -> None:
        # the file is opened per step: nothing is left open between iterations or after a run
        with open(self.path, "ab") as f:
            self._record_writer(f).write(event.SerializeToString())

    def _histogram(self, values: np.ndarray) -> Any:
        v = values.ravel()
        v = v[np.isfinite(v)]
        if not v.size:
            return None
        counts, edges = np.histogram(v, bins=self.bins)
        return self._summary_pb2.HistogramProto(
            min=float(v.min()),
            max=float(v.max()),
            num=float(v.size),
            sum=float(v.sum()),
            sum_squares=float(v @ v),
            bucket_limit=edges[1:].tolist(),
            bucket=counts.astype(np.float64).tolist(),
        )

    def __call__(self, intermediate_result: Any) -> None:
        """Write one iteration (``minimize`` calls it; the argument is its ``intermediate_result``
        with ``x``, ``fun``, ``nit``, ``nfev``, ``njev`` and ``grad_norm``)."""
        res = intermediate_result
        summary = self._summary_pb2.Summary
        step = int(res.get("nit", self.steps + 1))
        scalars = {
            "fun": res.get("fun"),
            "grad_norm": res.get("grad_norm"),
            "nfev": res.get("nfev"),
            "njev": res.get("njev"),
            "time": time.perf_counter() - self.t0,
        }
        values = [
            summary.Value(tag=self.prefix + tag, simple_value=float(v))
            for tag, v in scalars.items()
            if v is not None and not (tag == "grad_norm" and math.isnan(v))
        ]
        if self.histograms and res.get("x") is not None:
            for tag, arr in _leaves(res["x"], ""):
                histo = self._histogram(arr)
                if histo is not None:
                    values.append(summary.Value(tag=f"{self.prefix}x/{tag}", histo=histo))
        self._write(
            self._event_pb2.Event(wall_time=time.time(), step=step, summary=summary(value=values))
        )
        self.steps += 1

    def __repr__(self) -> str:
        return f"TensorBoard({self.logdir!r}, {self.steps} steps written)"


__all__ = ["TensorBoard"]
