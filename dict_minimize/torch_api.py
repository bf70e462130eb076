"""Drop-in ``minimize`` for PyTorch tensors (the original ``dict_minimize.torch_api``)."""

from dict_minimize._dropin import make_dropin

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

__all__ = ["minimize"]
