"""Exactly one host->device and one device->host transfer per evaluation, whatever the key count.

Every codec moves data through one function per direction, ``_to_device`` and ``_to_host`` in
its backend module; these tests count the calls of those functions (1 key and 500 keys: one
each way), and, so that the count is honest, the framework calls that cross between host and
device: ``torch.from_numpy``/``Tensor.to`` and ``Tensor.numpy``/``Tensor.cpu``;
``jax.device_put`` and ``jax.device_get``; ``tf.constant``/``tf.convert_to_tensor`` and
``EagerTensor.numpy`` (TensorFlow's zero-copy ``np.asarray`` goes through the buffer protocol,
which cannot be wrapped). Those must not grow with the number of keys.
"""

from __future__ import annotations

import collections
import importlib
import itertools
from typing import Any

import numpy as np
import pytest

from dict_minimize import minimize
from dict_minimize._structure.layout import make_layout
from dict_minimize.backends import get_backend
from tests.conftest import Framework

KEY_COUNTS = (1, 500)


def _owner(cls: type, name: str) -> type:
    """The class in ``cls``'s MRO that defines ``name`` (where a patch must go)."""
    return next(c for c in cls.__mro__ if name in vars(c))


def _primitives(fw: Framework, sample: Any) -> dict[str, list[tuple[Any, str]]]:
    """(object, attribute) pairs of the framework's host<->device calls, per direction."""
    if fw.name == "torch":
        import torch

        return {
            "h2d": [(torch, "from_numpy"), (torch.Tensor, "to")],
            "d2h": [(torch.Tensor, "numpy"), (torch.Tensor, "cpu")],
        }
    if fw.name == "jax":
        import jax

        return {
            "h2d": [(jax, "device_put")],
            "d2h": [(jax, "device_get")],
        }
    if fw.name == "tensorflow":
        import tensorflow as tf

        cls = type(sample)
        return {
            "h2d": [(tf, "constant"), (tf, "convert_to_tensor")],
            # np.asarray reads CPU tensors through the buffer protocol, which cannot be wrapped
            "d2h": [(_owner(cls, "numpy"), "numpy")],
        }
    return {"h2d": [], "d2h": []}


class Counts:
    """Counts calls of patched functions by label."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()

    def wrap(self, mp: pytest.MonkeyPatch, obj: Any, name: str, label: str) -> None:
        original = getattr(obj, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[label] += 1
            return original(*args, **kwargs)

        mp.setattr(obj, name, counted)


def make_x0(fw: Framework, n_keys: int) -> dict[str, Any]:
    rng = np.random.default_rng(n_keys)
    return {f"k{i}": fw.tensor(rng.uniform(-1, 1, size=3), "float32") for i in range(n_keys)}


def mixed_x0(fw: Framework, n_keys: int) -> dict[str, Any]:
    """Entries of several shapes and dtypes (0-d, 1-D, 2-D; float32 and float64)."""
    shapes = [(), (2,), (2, 3)]
    return {
        f"k{i}": fw.tensor(np.full(shapes[i % 3], 0.1 * i), "float64" if i % 4 else "float32")
        for i in range(n_keys)
    }


def install(mp: pytest.MonkeyPatch, fw: Framework, sample: Any) -> Counts:
    """Count the backend's two transfer functions and the framework's transfer calls."""
    counts = Counts()
    module = importlib.import_module(f"dict_minimize.backends.{fw.name}")
    counts.wrap(mp, module, "_to_device", "to_device")
    counts.wrap(mp, module, "_to_host", "to_host")
    for direction, pairs in _primitives(fw, sample).items():
        for obj, name in pairs:
            counts.wrap(mp, obj, name, direction)
    return counts


@pytest.mark.parametrize("make", [make_x0, mixed_x0], ids=["uniform", "mixed"])
def test_codec_round_trip_transfers_once_each_way(fw: Framework, make) -> None:
    """One unflatten and one flatten: one call each way, framework calls independent of keys."""
    seen = {}
    for n_keys in KEY_COUNTS:
        x0 = make(fw, n_keys)
        backend = get_backend(fw.name)
        layout = make_layout(x0, backend)
        codec = backend.make_codec(layout)
        vec = np.linspace(-1.0, 1.0, layout.n)
        values = codec.unflatten(vec, for_objective=True)  # warm up (compiles, caches)
        value = values[0].sum() if fw.name != "tensorflow" else _tf_sum(values[0])
        codec.flatten(value, values)

        with pytest.MonkeyPatch.context() as mp:
            counts = install(mp, fw, values[0])
            values = codec.unflatten(vec, for_objective=True)
            _, flat = codec.flatten(value, values)
        np.testing.assert_allclose(flat, vec, rtol=1e-6, atol=1e-6)
        assert counts.calls["to_device"] == 1
        assert counts.calls["to_host"] == 1
        seen[n_keys] = (counts.calls["h2d"], counts.calls["d2h"])
        if make is make_x0 and fw.name != "numpy":
            assert counts.calls["h2d"] == 1, counts.calls
            assert counts.calls["d2h"] >= 1, counts.calls  # the counters are live
    if make is make_x0:
        assert seen[KEY_COUNTS[0]] == seen[KEY_COUNTS[-1]], seen


def _tf_sum(t: Any) -> Any:
    import tensorflow as tf

    return tf.reduce_sum(t)


@pytest.mark.parametrize("n_keys", KEY_COUNTS)
def test_each_evaluation_transfers_once_each_way(
    fw: Framework, monkeypatch: pytest.MonkeyPatch, n_keys: int
) -> None:
    """Between two calls of the objective: exactly one transfer back and one transfer in."""
    x0 = make_x0(fw, n_keys)
    counts = install(monkeypatch, fw, next(iter(x0.values())))
    marks: list[tuple[int, int]] = []
    target = np.linspace(-0.5, 0.5, 3)

    def fun(d: dict) -> tuple[float, dict]:
        marks.append((counts.calls["to_device"], counts.calls["to_host"]))
        grads, value = {}, 0.0
        for k, v in d.items():
            r = fw.to_numpy(v) - target
            value += float(r @ r)
            grads[k] = fw.tensor(2 * r, "float32")
        return value, grads

    minimize(fun, x0, method="L-BFGS-B", options={"maxiter": 3})
    assert len(marks) >= 3
    assert marks[0][0] == 1  # the first evaluation's one transfer in
    steps = [(b[0] - a[0], b[1] - a[1]) for a, b in itertools.pairwise(marks)]
    assert all(step == (1, 1) for step in steps), steps
