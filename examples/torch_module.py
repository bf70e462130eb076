"""Fit a PyTorch ``nn.Sequential`` with L-BFGS-B: ``minimize_module`` and ``ScipyOptimizer``.

A small tanh network learns y = sin(2x) from noisy samples, full batch, in float64. It is fitted
three ways, from the same initial weights:

1. :func:`dict_minimize.torch_api.minimize_module`: one call, L-BFGS-B, with the output layer's
   bias bounded to ``[-BIAS_BOUND, BIAS_BOUND]`` (``lb_dict``/``ub_dict`` keyed by the
   parameter's name, ``"2.bias"``); the module's parameters are updated in place.
2. :class:`dict_minimize.torch_api.ScipyOptimizer` in the closure loop written for
   ``torch.optim.LBFGS``: the same closure, the same bound (a param group of its own).
3. ``torch.optim.LBFGS`` itself, for comparison, with the same closure and no bound (it takes
   none).

Run::

    python examples/torch_module.py               # 200 samples
    python examples/torch_module.py --size 50 --seed 1
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from _shared import requires

with requires(__file__):
    import torch

    from dict_minimize.torch_api import ScipyOptimizer, minimize_module

#: the output layer's bias is kept in [-BIAS_BOUND, BIAS_BOUND]
BIAS_BOUND = 0.05
HIDDEN = 16


def make_data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples of y = sin(2x) + noise on [-2, 2], as float64 ``(n, 1)`` tensors."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, size=(n, 1))
    y = np.sin(2.0 * x) + 0.05 * rng.standard_normal((n, 1))
    return torch.from_numpy(x), torch.from_numpy(y)


def make_model(seed: int = 0) -> torch.nn.Sequential:
    """The network, float64, with initial weights from ``seed``."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(1, HIDDEN), torch.nn.Tanh(), torch.nn.Linear(HIDDEN, 1)
    ).double()


def mse(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The loss ``minimize_module`` takes: ``loss_fn(module, *args)``."""
    return torch.nn.functional.mse_loss(model(x), y)


@dataclass
class Fit:
    how: str
    loss_before: float
    loss_after: float
    bias: float
    evaluations: int


def fit_minimize_module(n: int, seed: int = 0, maxiter: int = 500) -> Fit:
    """One call: the parameters are updated in place, the bias bound is keyed by name."""
    x, y = make_data(n, seed)
    model = make_model(seed)
    before = mse(model, x, y).item()
    bias = model[2].bias  # the same Parameter object before and after
    res = minimize_module(
        model,
        mse,
        args=(x, y),
        method="L-BFGS-B",
        lb_dict={"2.bias": -BIAS_BOUND},
        ub_dict={"2.bias": BIAS_BOUND},
        options={"maxiter": maxiter},
    )
    assert model[2].bias is bias
    return Fit("minimize_module", before, float(res.fun), bias.item(), int(res.nfev))


def _closure_loop(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x, y, steps: int):
    """The training loop written for torch.optim.LBFGS; returns the number of closure calls."""
    calls = 0

    def closure() -> torch.Tensor:
        nonlocal calls
        calls += 1
        optimizer.zero_grad()
        loss = mse(model, x, y)
        loss.backward()
        return loss

    for _ in range(steps):
        optimizer.step(closure)
    return calls


def fit_scipy_optimizer(n: int, seed: int = 0, maxiter: int = 500) -> Fit:
    """The LBFGS closure loop, with ScipyOptimizer: one param group carries the bias bound."""
    x, y = make_data(n, seed)
    model = make_model(seed)
    before = mse(model, x, y).item()
    bias = model[2].bias
    others = [p for p in model.parameters() if p is not bias]
    optimizer = ScipyOptimizer(
        [{"params": others}, {"params": [bias], "lb": -BIAS_BOUND, "ub": BIAS_BOUND}],
        method="L-BFGS-B",
        options={"maxiter": maxiter},
    )
    calls = _closure_loop(model, optimizer, x, y, steps=1)
    return Fit("ScipyOptimizer", before, mse(model, x, y).item(), bias.item(), calls)


def fit_torch_lbfgs(n: int, seed: int = 0, maxiter: int = 500) -> Fit:
    """torch.optim.LBFGS with the same closure (it takes no bounds)."""
    x, y = make_data(n, seed)
    model = make_model(seed)
    before = mse(model, x, y).item()
    optimizer = torch.optim.LBFGS(
        model.parameters(), max_iter=maxiter, line_search_fn="strong_wolfe"
    )
    calls = _closure_loop(model, optimizer, x, y, steps=1)
    return Fit("torch.optim.LBFGS", before, mse(model, x, y).item(), model[2].bias.item(), calls)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200, help="number of samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--maxiter", type=int, default=500)
    opts = parser.parse_args(argv)
    print(
        f"y = sin(2x) + noise, {opts.size} samples, a 1-{HIDDEN}-1 tanh network (float64); "
        f"output bias bounded to +-{BIAS_BOUND} where the method takes bounds"
    )
    print(f"{'how':<20} {'loss before':>12} {'loss after':>12} {'output bias':>12} {'evals':>6}")
    for fit in (fit_minimize_module, fit_scipy_optimizer, fit_torch_lbfgs):
        r = fit(opts.size, opts.seed, opts.maxiter)
        print(
            f"{r.how:<20} {r.loss_before:12.4g} {r.loss_after:12.4g} {r.bias:12.4g} "
            f"{r.evaluations:6d}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
