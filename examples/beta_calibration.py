"""Beta calibration of a classifier's scores in PyTorch, with a, b >= 0 given as ``lb_dict``.

Beta calibration (Kull, Silva Filho and Flach, 2017) maps a score p in (0, 1) to

    logit p' = a * ln(p) - b * ln(1 - p) + c,        a, b >= 0,

a family that contains the identity (a = b = 1, c = 0) and, unlike Platt scaling, can fix
scores that are over- or under-confident on one side only. The three parameters live in a dict
of 0-d tensors and are fitted by minimizing the log-loss with L-BFGS-B through
:func:`dict_minimize.minimize`; the constraint ``a, b >= 0`` is the bound dict
``lb_dict={"a": 0.0, "b": 0.0}`` (``c`` is unbounded, so it is left out).

The data are synthetic, from a fixed seed: scores p ~ Beta(2, 2), and labels drawn from the
"true" calibration map with (a, b, c) = TRUE_PARAMS, so the fit comes close to them, up to the
sampling error of the labels: at the default 10,000 samples, each parameter within about 0.15
(seeds 0 to 5: 0.04 to 0.15; a, b and c partly trade off against each other, so even 100,000
samples leave up to 0.1), while the fitted map itself stays within 0.02 of the true one.

With ``--out DIR`` (and matplotlib: ``pip install 'dict_minimize[plot]'``) it saves
``beta_calibration.png``: the true, fitted and identity maps from score to probability.

Run::

    python examples/beta_calibration.py              # 10000 samples
    python examples/beta_calibration.py --size 500 --seed 1 --out /tmp/beta
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _shared import INSTALL, available, requires

from dict_minimize import minimize

with requires(__file__):
    import torch

#: the calibration map the labels are drawn from
TRUE_PARAMS = {"a": 2.0, "b": 0.6, "c": -0.3}
#: scores are clipped to [EPS, 1 - EPS] so that ln(p) and ln(1 - p) stay finite
EPS = 1e-6


def make_data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` synthetic (score, label) pairs as float64 tensors, from a fixed seed."""
    rng = np.random.default_rng(seed)
    scores = np.clip(rng.beta(2.0, 2.0, size=n), EPS, 1.0 - EPS)
    t = TRUE_PARAMS
    logit = t["a"] * np.log(scores) - t["b"] * np.log1p(-scores) + t["c"]
    labels = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float64)
    return torch.from_numpy(scores), torch.from_numpy(labels)


def calibrated_logit(params: dict[str, torch.Tensor], scores: torch.Tensor) -> torch.Tensor:
    """logit p' = a * ln(p) - b * ln(1 - p) + c."""
    return params["a"] * torch.log(scores) - params["b"] * torch.log1p(-scores) + params["c"]


def log_loss(
    params: dict[str, torch.Tensor], scores: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Mean negative log-likelihood of ``labels`` under the calibrated probabilities."""
    return torch.nn.functional.binary_cross_entropy_with_logits(
        calibrated_logit(params, scores), labels
    )


def loss_and_grad(
    params: dict[str, torch.Tensor], scores: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The objective for ``dict_minimize``: (loss, gradient dict)."""
    loss = log_loss(params, scores, labels)
    grads = torch.autograd.grad(loss, list(params.values()))
    return loss, dict(zip(params.keys(), grads, strict=True))


def identity_params() -> dict[str, torch.Tensor]:
    """a = b = 1, c = 0: the calibrator that returns the scores unchanged."""
    return {
        "a": torch.tensor(1.0, dtype=torch.float64),
        "b": torch.tensor(1.0, dtype=torch.float64),
        "c": torch.tensor(0.0, dtype=torch.float64),
    }


@dataclass
class Fit:
    """The fitted parameters and how good they are."""

    a: float
    b: float
    c: float
    log_loss: float
    identity_log_loss: float
    success: bool


def fit(n: int = 10_000, seed: int = 0) -> Fit:
    """Fit beta calibration on ``n`` synthetic samples, starting from the identity."""
    scores, labels = make_data(n, seed)
    x0 = identity_params()
    res = minimize(
        loss_and_grad,
        x0,
        args=(scores, labels),
        method="L-BFGS-B",
        lb_dict={"a": 0.0, "b": 0.0},
    )
    with torch.no_grad():
        identity_loss = float(log_loss(x0, scores, labels))
    return Fit(
        a=float(res.x["a"]),
        b=float(res.x["b"]),
        c=float(res.x["c"]),
        log_loss=res.fun,
        identity_log_loss=identity_loss,
        success=res.success,
    )


def save_figure(r: Fit, out: Path) -> Path:
    """Save ``beta_calibration.png`` (the true, fitted and identity maps) under ``out``."""
    from matplotlib.figure import Figure

    out.mkdir(parents=True, exist_ok=True)
    p = torch.linspace(0.005, 0.995, 199, dtype=torch.float64)
    fig = Figure(figsize=(6, 5), layout="constrained")
    ax = fig.subplots()
    maps = [("true", TRUE_PARAMS, "-"), ("fitted", {"a": r.a, "b": r.b, "c": r.c}, "--")]
    for label, params, style in maps:
        tensors = {k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()}
        ax.plot(p, torch.sigmoid(calibrated_logit(tensors, p)), style, label=label)
    ax.plot(p, p, ":", color="grey", label="identity")
    ax.set(xlabel="score p", ylabel="calibrated probability p'", title="beta calibration maps")
    ax.legend()
    path = out / "beta_calibration.png"
    fig.savefig(path, dpi=80)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000, help="number of samples")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--out", type=Path, default=None, help="folder for the PNG figure")
    args = parser.parse_args(argv)
    if args.size < 1:
        parser.error("--size must be positive")

    r = fit(args.size, args.seed)
    print(f"beta calibration on {args.size} synthetic samples (seed {args.seed})")
    print(f"  {'':10} {'a':>7} {'b':>7} {'c':>7}")
    t = TRUE_PARAMS
    print(f"  {'true':10} {t['a']:7.3f} {t['b']:7.3f} {t['c']:7.3f}")
    print(f"  {'fitted':10} {r.a:7.3f} {r.b:7.3f} {r.c:7.3f}")
    print(f"  {'identity':10} {1.0:7.3f} {1.0:7.3f} {0.0:7.3f}")
    print(f"  log-loss: fitted {r.log_loss:.4f}, identity {r.identity_log_loss:.4f}")
    ok = r.success and r.log_loss <= r.identity_log_loss
    if not ok:
        print("  FAILED: the fit did not converge or did not beat the identity calibrator")
    if args.out is None:
        print("\nfigure: pass --out DIR to save it as a PNG file")
    elif not available("matplotlib"):
        print(f"\nfigure skipped: matplotlib is not installed ({INSTALL['matplotlib']})")
    else:
        print(f"\nfigure:\n  {save_figure(r, args.out)}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
