"""Deep dream on a tiny digit classifier: input optimization with pixel bounds, L-BFGS-B vs Adam.

A small convolutional network learns scikit-learn's bundled digits (``load_digits``: 1797
grey 8x8 images with pixels 0..16, no download) in a few seconds of ``torch.optim.Adam``
training, float64, from fixed seeds. Then, for each digit ``c``, the example *dreams*: it
looks for the 8x8 image that the network finds most like a ``c``, by minimizing over the
image

    ``-logit_c(image) + L2 * sum(u**2) + TV * sum((neighbour differences of u)**2)``

with ``u = image / 16`` (a small L2 penalty and a smooth total-variation penalty, so that the
dream stays a picture rather than any extreme point), subject to the pixel bounds
``0 <= image <= 16``: one dict key, ``{"image": (8, 8) tensor}``, bounded by
``lb_dict={"image": 0.0}`` and ``ub_dict={"image": 16.0}``.

Every dream starts from the same noise image (or a blank one, ``--start blank``), and
:func:`dict_minimize.compare` runs SciPy's L-BFGS-B (gradients by autograd, bounds honoured
by the method) beside ``torch.optim.Adam`` at a few learning rates and ``torch.optim.SGD``
(projected: compare clamps the image into its bounds after every step), each on the same
budget of ``--budget`` gradient evaluations.

Printed: the classifier's test accuracy; the comparison table for one digit (``--digit``);
then, over all dreamed digits, the mean of the best objective each optimizer reached within
10, 25, 50, ... gradient evaluations, the number of digits where it ended best, and the
network's confidence in each optimizer's dreams. With ``--out DIR`` (and matplotlib:
``pip install 'dict_minimize[plot]'``) it saves ``dream_convergence.png`` (the objective per
gradient evaluation: one digit's runs, and the mean best-so-far over all digits) and
``dreams.png`` (the start image and every optimizer's dream of each digit).

What it shows, measured when this was written (defaults: 8 epochs, budget 100, seed 0; test
accuracy 0.969; about 8 seconds in all): the bounds hold exactly for every optimizer (L-BFGS-B
by construction, the first-order methods by projection), a quarter to a third of the pixels
end at 0 and about a fifth at 16, and every dream is classified as its digit with confidence
above 0.997 (above 0.9999 for L-BFGS-B's). The objective is piecewise quadratic (ReLU and
max-pooling make the logit piecewise linear in the pixels), so the optimizers end in nearby
local optima: L-BFGS-B ends best on 5 of the 10 digits (Adam at lr 1 on 3) and has the lowest
mean objective from 25 gradient evaluations on (-15.63 within 25, -15.92 within 100); Adam at
lr 3 is ahead within 10 (-13.69 against -12.63) and then falls behind, Adam at lr 1 ends 0.12
behind (-15.80); SGD and the too-small Adam step (lr 0.3) lag further.

Run::

    python examples/deep_dream.py                        # 8 epochs, budget 100, all digits
    python examples/deep_dream.py --budget 200 --start blank --out /tmp/dreams
    python examples/deep_dream.py --epochs 3 --budget 20 --seed 1
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _shared import available, requires, torch_threads

from dict_minimize import Trace, compare, compare_table

with requires(__file__):
    import torch

#: pixel bounds of the digits images (and of the dreams)
PIXEL_MAX = 16.0
#: the weights of the regularizers (on u = image / 16): sum of squares, squared differences
L2 = 0.05
TV = 0.1
#: the learning rates of the Adam runs (in pixel units) and of the SGD run
ADAM_LRS = (0.3, 1.0, 3.0)
SGD_LR = 10.0
#: the gradient-evaluation counts the summary reports the best-so-far objective at
CHECKPOINTS = (10, 25, 50, 100, 200, 400)
#: training: Adam's learning rate and the minibatch size
TRAIN_LR = 1e-2
BATCH = 64
#: the noise start: pixels uniform in [0, NOISE_MAX]
NOISE_MAX = 4.0
DTYPE = torch.float64
#: SciPy's BLAS threads during L-BFGS-B: its tiny vector operations are faster on one thread,
#: and a spinning BLAS pool slows PyTorch's own threads down (about 10x per evaluation here)
BLAS_THREADS = 1
#: PyTorch's intra-op threads while training and dreaming: the tensors are tiny, and two
#: threads contending on a busy machine made the default run 20x slower (2.7 min against 8 s)
TORCH_THREADS = 1
INSTALL_PLOT = "pip install 'dict_minimize[plot]'"


# --- data and classifier --------------------------------------------------------------------


@dataclass(frozen=True)
class Digits:
    """The digits, split once: images in pixel units (float64, ``(n, 8, 8)``), labels."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


def load_data(rng: np.random.Generator, test_fraction: float = 0.2) -> Digits:
    """scikit-learn's digits, shuffled by ``rng`` and split into train and test.

    Example:
        >>> data = load_data(np.random.default_rng(0))
        >>> tuple(data.train_images.shape), tuple(data.test_images.shape)
        ((1438, 8, 8), (359, 8, 8))
        >>> float(data.train_images.min()), float(data.train_images.max())
        (0.0, 16.0)
    """
    with requires(__file__):
        from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(np.asarray(bunch.images, dtype=np.float64))
    labels = torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))
    order = torch.from_numpy(rng.permutation(len(labels)))
    n_test = round(test_fraction * len(labels))
    test, train = order[:n_test], order[n_test:]
    return Digits(images[train], labels[train], images[test], labels[test])


class DigitNet(torch.nn.Module):
    """A tiny CNN on 8x8 images in pixel units (0..16): two 3x3 conv + ReLU + 2x2 max-pool
    blocks (8 and 16 channels) and a linear layer to 10 logits. float64.

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> DigitNet()(torch.zeros(3, 8, 8, dtype=torch.float64)).shape
        torch.Size([3, 10])
    """

    def __init__(self) -> None:
        super().__init__()
        nn = torch.nn
        self.layers = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1, dtype=DTYPE),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1, dtype=DTYPE),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * 2 * 2, 10, dtype=DTYPE),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, 10)`` of images ``(n, 8, 8)`` (or one ``(8, 8)`` image: ``(1, 10)``)."""
        return self.layers(images.reshape(-1, 1, 8, 8) / PIXEL_MAX)


def train(net: DigitNet, data: Digits, epochs: int, rng: np.random.Generator) -> list[float]:
    """Minibatch Adam on the cross-entropy, ``epochs`` passes; the mean loss of each epoch.

    The batches' order comes from ``rng``; at the end the network is in eval mode with its
    parameters frozen (``requires_grad=False``), ready to be dreamed on.
    """
    opt = torch.optim.Adam(net.parameters(), lr=TRAIN_LR)
    n = len(data.train_labels)
    losses = []
    net.train()
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(n))
        total = 0.0
        for start in range(0, n, BATCH):
            batch = order[start : start + BATCH]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(
                net(data.train_images[batch]), data.train_labels[batch]
            )
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(batch)
        losses.append(total / n)
    net.eval()
    net.requires_grad_(False)
    return losses


def accuracy(net: DigitNet, images: torch.Tensor, labels: torch.Tensor) -> float:
    """The fraction of ``images`` that ``net`` classifies as their label."""
    with torch.no_grad():
        return float((net(images).argmax(dim=1) == labels).double().mean())


# --- dreaming -------------------------------------------------------------------------------


def regularizer(image: torch.Tensor) -> torch.Tensor:
    """``L2 * sum(u**2) + TV * (squared differences of neighbours)`` with ``u = image / 16``.

    Example:
        >>> float(regularizer(torch.zeros(8, 8, dtype=torch.float64)))
        0.0
        >>> round(float(regularizer(torch.full((8, 8), 16.0, dtype=torch.float64))), 6)
        3.2
    """
    u = image / PIXEL_MAX
    tv = ((u[1:, :] - u[:-1, :]) ** 2).sum() + ((u[:, 1:] - u[:, :-1]) ** 2).sum()
    return L2 * (u**2).sum() + TV * tv


def dream_objective(net: DigitNet, digit: int) -> Callable[[Mapping[str, Any]], torch.Tensor]:
    """``fun({"image": (8, 8) tensor})``: minus digit's logit, plus :func:`regularizer`.

    Value only: :func:`dict_minimize.compare` differentiates it with autograd.
    """
    if not 0 <= digit <= 9:
        raise ValueError(f"digit must be in 0..9; got {digit}")

    def fun(x: Mapping[str, Any]) -> torch.Tensor:
        image = x["image"]
        return -net(image)[0, digit] + regularizer(image)

    return fun


def start_image(kind: str, rng: np.random.Generator) -> torch.Tensor:
    """The dreams' start: ``"noise"`` (uniform in [0, NOISE_MAX]) or ``"blank"`` (zeros).

    Example:
        >>> float(start_image("blank", np.random.default_rng(0)).abs().max())
        0.0
    """
    if kind == "blank":
        return torch.zeros(8, 8, dtype=DTYPE)
    if kind == "noise":
        return torch.from_numpy(rng.uniform(0.0, NOISE_MAX, size=(8, 8)))
    raise ValueError(f"start must be 'noise' or 'blank'; got {kind!r}")


def optimizers() -> dict[str, Any]:
    """What the dreams compare, by name (see :data:`ADAM_LRS`, :data:`SGD_LR`)."""
    chosen: dict[str, Any] = {"L-BFGS-B": ("L-BFGS-B", {"blas_threads": BLAS_THREADS})}
    for lr in ADAM_LRS:
        chosen[f"Adam lr={lr:g}"] = (torch.optim.Adam, {"lr": lr})
    chosen[f"SGD lr={SGD_LR:g}"] = (torch.optim.SGD, {"lr": SGD_LR})
    return chosen


@dataclass
class Dreams:
    """Everything one run of the example computed."""

    epochs: int
    budget: int
    start_kind: str
    train_losses: list[float]
    test_accuracy: float
    start: torch.Tensor
    #: digit -> optimizer name -> trace (each row's image kept)
    traces: dict[int, dict[str, Trace]]
    net: DigitNet

    def final_image(self, digit: int, name: str) -> torch.Tensor:
        """The last image of ``name``'s dream of ``digit`` (within the budget)."""
        x = self.traces[digit][name].x
        assert x is not None  # compare keeps them: dream(..., keep_x=True)
        return x[-1]["image"]

    def logit(self, image: torch.Tensor, digit: int) -> float:
        """The network's logit of ``digit`` for ``image``."""
        with torch.no_grad():
            return float(self.net(image)[0, digit])

    def confidence(self, image: torch.Tensor, digit: int) -> float:
        """The network's softmax probability of ``digit`` for ``image``."""
        with torch.no_grad():
            return float(self.net(image).softmax(dim=1)[0, digit])


def dream(
    *,
    epochs: int = 8,
    budget: int = 100,
    digits: Sequence[int] = tuple(range(10)),
    start: str = "noise",
    seed: int = 0,
) -> Dreams:
    """Train the classifier, then dream each of ``digits`` with every optimizer.

    Args:
        epochs: training epochs (each a few tenths of a second).
        budget: gradient evaluations per optimizer and digit.
        digits: the digits to dream.
        start: ``"noise"`` or ``"blank"`` (the same start image for every dream).
        seed: seeds PyTorch (the initial weights) and the NumPy Generator (split, batches,
            noise).

    Example:
        >>> res = dream(epochs=1, budget=5, digits=[3])
        >>> sorted(res.traces[3]) == sorted(optimizers()), res.budget
        (True, 5)
    """
    rng = np.random.default_rng(seed)
    with torch_threads(TORCH_THREADS):
        torch.manual_seed(seed)
        data = load_data(rng)
        net = DigitNet()
        losses = train(net, data, epochs, rng)
        acc = accuracy(net, data.test_images, data.test_labels)
        x0 = start_image(start, rng)
        traces = {}
        for digit in digits:
            traces[digit] = compare(
                dream_objective(net, digit),
                {"image": x0},
                optimizers(),
                max_grad_evals=budget,
                lb_dict={"image": 0.0},
                ub_dict={"image": PIXEL_MAX},
                keep_x=True,
            )
    return Dreams(epochs, budget, start, losses, acc, x0, traces, net)


def best_within(trace: Trace, grad_evals: int) -> float:
    """The lowest objective among the rows reached within ``grad_evals`` gradient evaluations.

    Example:
        >>> tr = Trace(fun=[3.0, 1.0, 2.0, 0.5], nfev=[1, 2, 3, 4], njev=[1, 2, 3, 4])
        >>> best_within(tr, 3), best_within(tr, 10)
        (1.0, 0.5)
    """
    keep = (trace.njev <= grad_evals) & np.isfinite(trace.fun)
    return float(trace.fun[keep].min()) if keep.any() else float("nan")


def mean_best_so_far(runs: Mapping[int, Mapping[str, Trace]], budget: int) -> dict[str, Trace]:
    """Per optimizer, a trace whose row k is the mean over digits of the best objective
    within k + 1 gradient evaluations (for a convergence plot of all the digits at once).
    """
    names = list(next(iter(runs.values())))
    ks = np.arange(1, budget + 1)
    out = {}
    for name in names:
        means = [np.mean([best_within(r[name], int(k)) for r in runs.values()]) for k in ks]
        out[name] = Trace(fun=means, nfev=ks, njev=ks, label=name)
    return out


# --- report and figures ---------------------------------------------------------------------


def format_report(res: Dreams, digit: int) -> str:
    """The report: accuracy, one digit's comparison table, the summary over all digits."""
    names = list(next(iter(res.traces.values())))
    lines = [
        f"deep dream: {res.epochs} epochs of Adam on scikit-learn's digits, test accuracy "
        f"{res.test_accuracy:.3f} (train loss {res.train_losses[-1]:.3g})",
        f"dreams: minimize -logit + {L2:g} * sum(u^2) + {TV:g} * TV(u), u = image / 16, "
        f"image in [0, 16], from a {res.start_kind} image, at most {res.budget} gradient "
        "evaluations per optimizer",
        "",
        f"digit {digit}:",
        compare_table(res.traces[digit]),
        "",
    ]
    checkpoints = [k for k in CHECKPOINTS if k < res.budget] + [res.budget]
    n = len(res.traces)
    finals = {name: np.array([r[name].fun[-1] for r in res.traces.values()]) for name in names}
    best = np.min(np.stack(list(finals.values())), axis=0)
    header = ["optimizer"] + [f"<= {k}" for k in checkpoints] + ["best on", "confidence"]
    rows = []
    for name in names:
        cells = [name]
        for k in checkpoints:
            cells.append(f"{np.mean([best_within(r[name], k) for r in res.traces.values()]):.4g}")
        cells.append(f"{int(np.sum(finals[name] <= best + 1e-9))} of {n}")
        conf = min(res.confidence(res.final_image(d, name), d) for d in res.traces)
        cells.append(f"{conf:.4f}")
        rows.append(cells)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines.append(
        f"all {n} digits: mean best objective within k gradient evaluations; digits where it "
        "ended best; lowest softmax confidence in its dreams"
    )
    lines.append("  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    for cells in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    return "\n".join(lines)


def save_figures(res: Dreams, digit: int, out: Path) -> list[Path]:
    """Save ``dream_convergence.png`` and ``dreams.png`` under ``out``; return their paths."""
    from matplotlib.figure import Figure

    from dict_minimize import plot

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    plot.convergence(res.traces[digit], x="njev", ax=left, title=f"digit {digit}")
    plot.convergence(
        mean_best_so_far(res.traces, res.budget),
        x="njev",
        ax=right,
        title=f"mean over {len(res.traces)} digits",
    )
    right.set_ylabel("mean best objective so far")
    fig.suptitle("Dreams: objective per gradient evaluation")
    path = out / "dream_convergence.png"
    fig.savefig(path, dpi=80)
    paths.append(path)

    names = list(next(iter(res.traces.values())))
    digits = list(res.traces)
    fig = Figure(figsize=(1.2 * len(digits) + 1.5, 1.3 * (len(names) + 1)), layout="constrained")
    axes = np.asarray(fig.subplots(len(names) + 1, len(digits), squeeze=False))
    for j, d in enumerate(digits):
        rows = [("start", res.start)] + [(n, res.final_image(d, n)) for n in names]
        for i, (name, image) in enumerate(rows):
            ax = axes[i, j]
            ax.imshow(image.numpy(), cmap="gray_r", vmin=0.0, vmax=PIXEL_MAX)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"digit {d}")
            else:
                ax.set_xlabel(f"p={res.confidence(image, d):.3f}", fontsize="small")
            if j == 0:
                ax.set_ylabel(name, fontsize="small")
    fig.suptitle("Dreamed digits (pixels 0..16, dark = 16), with the network's confidence")
    path = out / "dreams.png"
    fig.savefig(path, dpi=80)
    paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """Train, dream, print the report, and save the figures when ``--out`` is given.

    Args:
        argv: the command line (``sys.argv[1:]`` when None): ``--epochs``, ``--budget``
            (gradient evaluations per dream), ``--digit`` (the one whose table is printed),
            ``--digits`` (how many digits to dream, 0 up), ``--start`` (noise or blank),
            ``--seed``, ``--out`` (a folder for the PNG files).

    Returns:
        int: 0.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="training epochs")
    parser.add_argument("--budget", type=int, default=100, help="gradient evaluations per dream")
    parser.add_argument("--digit", type=int, default=0, help="the digit whose table is printed")
    parser.add_argument("--digits", type=int, default=10, help="dream digits 0 .. digits - 1")
    parser.add_argument("--start", choices=("noise", "blank"), default="noise")
    parser.add_argument("--seed", type=int, default=0, help="seed of torch and NumPy")
    parser.add_argument("--out", type=Path, default=None, help="folder for the PNG figures")
    opts = parser.parse_args(argv)
    if opts.epochs < 1:
        parser.error(f"--epochs must be at least 1; got {opts.epochs}")
    if opts.budget < 2:
        parser.error(f"--budget must be at least 2; got {opts.budget}")
    if not 1 <= opts.digits <= 10:
        parser.error(f"--digits must be in 1..10; got {opts.digits}")
    if not 0 <= opts.digit < opts.digits:
        parser.error(f"--digit must be in 0..{opts.digits - 1} (see --digits); got {opts.digit}")
    if opts.seed < 0:
        parser.error(f"--seed must be non-negative; got {opts.seed}")
    res = dream(
        epochs=opts.epochs,
        budget=opts.budget,
        digits=range(opts.digits),
        start=opts.start,
        seed=opts.seed,
    )
    print(format_report(res, opts.digit))
    if opts.out is None:
        print("\nfigures: pass --out DIR to save them as PNG files")
    elif not available("matplotlib"):
        print(f"\nfigures skipped: matplotlib is not installed ({INSTALL_PLOT})")
    else:
        print("\nfigures:")
        for path in save_figures(res, opts.digit, opts.out):
            print(f"  {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
