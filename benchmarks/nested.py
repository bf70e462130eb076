"""Nested parameters against the same leaves flat: the cost of one evaluation.

The same 2,000 leaves of shape (8,), held as ``{"layer_i": {"w": ..., "b": ...}}`` (1,000
layers) and as a flat dict ``{"layer_i.w": ..., "layer_i.b": ...}``: the per-evaluation time of
the objective SciPy calls (the dict built from the flat vector, ``fun``, the gradient matched
back by path and flattened), interleaved flat/nested, medians of ``--rounds`` runs; and the
bridge's own extra cost for the nesting (each evaluation less the user's ``fun``, nested minus
flat), as a share of the flat evaluation. The target is within 5%.

    python -m benchmarks.nested                   # NumPy and PyTorch, 2,000 leaves
    python -m benchmarks.nested --leaves 200 --rounds 3 --frameworks numpy   # a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from dict_minimize._problem.objective import Objective
from dict_minimize._solvers.minimize import _prepare_x0
from dict_minimize._structure.layout import values_by_key


def _trees(framework: str, leaves: int) -> tuple[dict, dict, Callable, Callable]:
    """(flat x0, nested x0, flat fun, nested fun): the same quartic, value and gradient."""
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=8) for _ in range(leaves)]
    if framework == "torch":
        import torch

        def tensor(a: np.ndarray) -> Any:
            return torch.tensor(a, dtype=torch.float64)

        def vg(x: Any) -> tuple[Any, Any]:
            return (x**4).sum(), 4 * x**3

    else:

        def tensor(a: np.ndarray) -> Any:
            return a

        def vg(x: Any) -> tuple[Any, Any]:
            return float(np.sum(x**4)), 4 * x**3

    layers = leaves // 2
    flat = {
        f"layer_{i}.{p}": tensor(arrays[2 * i + j])
        for i in range(layers)
        for j, p in enumerate("wb")
    }
    nested = {
        f"layer_{i}": {p: tensor(arrays[2 * i + j]) for j, p in enumerate("wb")}
        for i in range(layers)
    }

    def flat_fun(d: dict) -> tuple[float, dict]:
        total, grad = 0.0, {}
        for k, v in d.items():
            f, g = vg(v)
            total = total + f
            grad[k] = g
        return total, grad

    def nested_fun(d: dict) -> tuple[float, dict]:
        total, grad = 0.0, {}
        for name, layer in d.items():
            grad[name] = {}
            for k, v in layer.items():
                f, g = vg(v)
                total = total + f
                grad[name][k] = g
        return total, grad

    return flat, nested, flat_fun, nested_fun


def _objective(x0: dict, fun: Callable) -> tuple[Objective, np.ndarray]:
    be, layout, leaves = _prepare_x0(x0, None, compat=False)
    codec = be.make_codec(layout)
    run = Objective(fun, (), layout, codec, mode="pair", nonfinite="inf")
    _, x = codec.flatten(None, leaves)
    return run, x


def _per_eval(run: Objective, x: np.ndarray, evals: int) -> float:
    start = time.perf_counter()
    for i in range(evals):
        run.value_and_grad(x + i * 1e-9)
    return (time.perf_counter() - start) / evals


def _per_call(fun: Callable, d: dict, evals: int) -> float:
    start = time.perf_counter()
    for _ in range(evals):
        fun(d)
    return (time.perf_counter() - start) / evals


def measure(framework: str, leaves: int, rounds: int, evals: int) -> dict[str, float]:
    flat, nested, flat_fun, nested_fun = _trees(framework, leaves)
    (run_f, x_f), (run_n, x_n) = _objective(flat, flat_fun), _objective(nested, nested_fun)
    np.testing.assert_array_equal(x_f, x_n)  # the same leaves, the same order
    times: dict[str, list[float]] = {"flat": [], "nested": [], "flat_fun": [], "nested_fun": []}
    _per_eval(run_f, x_f, 2), _per_eval(run_n, x_n, 2)  # warm up
    for _ in range(rounds):  # interleaved
        times["flat"].append(_per_eval(run_f, x_f, evals))
        times["nested"].append(_per_eval(run_n, x_n, evals))
        times["flat_fun"].append(_per_call(flat_fun, flat, evals))
        times["nested_fun"].append(_per_call(nested_fun, nested, evals))
    med = {k: statistics.median(v) for k, v in times.items()}
    # the bridge's own extra cost for the nesting: what is left after the user's fun
    extra = (med["nested"] - med["nested_fun"]) - (med["flat"] - med["flat_fun"])
    return {
        "flat_ms": 1e3 * med["flat"],
        "nested_ms": 1e3 * med["nested"],
        "ratio": med["nested"] / med["flat"],
        "bridge_extra": extra / med["flat"],
    }


def walks(leaves: int, rounds: int, evals: int) -> dict[str, float]:
    """Microseconds of the bridge's two nesting steps alone (the dict built from the leaves,
    the gradient matched back), medians of interleaved rounds: flat dict, the nested layout's
    generated code (``_tree_compile``), and the node-by-node walks it replaces."""
    from dict_minimize._structure.tree import leaves_of

    flat, nested, _, _ = _trees("numpy", leaves)
    lay_f = _prepare_x0(flat, None, compat=False)[1]
    lay_n = _prepare_x0(nested, None, compat=False)[1]
    tree = lay_n.tree
    assert tree is not None and lay_n.fast_build is not None
    values = list(flat.values())
    steps = {
        "flat": lambda: values_by_key(lay_f.build(values), lay_f),
        "generated": lambda: values_by_key(lay_n.build(values), lay_n),
        "walks": lambda: leaves_of(tree.build(iter(values)), tree, "gradient"),
    }
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            times[name].append(_per_call(lambda _, f=step: f(), {}, evals))
    return {k: 1e6 * statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leaves", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--evals", type=int, default=20)
    parser.add_argument("--frameworks", default="numpy,torch")
    args = parser.parse_args(argv)
    print(
        "| framework | leaves | flat ms/eval | nested ms/eval | nested / flat "
        "| bridge's extra for nesting |"
    )
    print("|---|---|---|---|---|---|")
    for fw in args.frameworks.split(","):
        r = measure(fw, args.leaves, args.rounds, args.evals)
        print(
            f"| {fw} | {args.leaves} | {r['flat_ms']:.3f} | {r['nested_ms']:.3f} | "
            f"{r['ratio']:.3f} | {100 * r['bridge_extra']:+.1f}% |"
        )
    w = walks(args.leaves, args.rounds, 10 * args.evals)
    print(
        f"\nbuild + gradient match alone, {args.leaves} leaves (us): flat {w['flat']:.0f}, "
        f"nested generated {w['generated']:.0f}, nested walks {w['walks']:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
