"""Drop-in ``minimize`` for PyTorch tensors (the original ``dict_minimize.torch_api``)."""

from dict_minimize._solvers.dropin import get_dtype, make_dropin

minimize = make_dropin(
    "torch",
    """
    >>> import torch
    >>> from dict_minimize.torch_api import minimize
    >>> def f(d):
    ...     loss = ((d["x"] - 2.0) ** 2).sum()
    ...     return loss, {"x": torch.autograd.grad(loss, d["x"])[0]}
    >>> minimize(f, {"x": torch.zeros(2)}, method="L-BFGS-B")["x"]
    tensor([2., 2.])
""",
)
# after make_dropin, which names the pip extra when the framework is missing
from dict_minimize._models.torch import ScipyOptimizer, minimize_module  # noqa: E402
from dict_minimize._solvers.implicit import ImplicitGradientWarning  # noqa: E402
from dict_minimize._solvers.implicit import torch_argmin as argmin  # noqa: E402
from dict_minimize.backends.torch import from_np, to_np  # noqa: E402
from dict_minimize.backends.torch_ad import value_and_grad  # noqa: E402

__all__ = [
    "ImplicitGradientWarning",
    "ScipyOptimizer",
    "argmin",
    "from_np",
    "get_dtype",
    "minimize",
    "minimize_module",
    "to_np",
    "value_and_grad",
]
