"""Drop-in ``minimize`` for JAX arrays (the original ``dict_minimize.jax_api``)."""

from dict_minimize._solvers.dropin import get_dtype, make_dropin

minimize = make_dropin(
    "jax",
    """
    >>> import jax, jax.numpy as jnp
    >>> from dict_minimize.jax_api import minimize
    >>> f = jax.value_and_grad(lambda d: jnp.sum((d["x"] - 2.0) ** 2))
    >>> minimize(f, {"x": jnp.zeros(2)}, method="L-BFGS-B")["x"]
    Array([2., 2.], dtype=float32)
""",
)

# after make_dropin, which names the pip extra when the framework is missing
from dict_minimize._solvers.implicit import ImplicitGradientWarning  # noqa: E402
from dict_minimize._solvers.implicit import jax_argmin as argmin  # noqa: E402
from dict_minimize.backends.jax import from_np, to_np  # noqa: E402
from dict_minimize.backends.jax_ad import value_and_grad  # noqa: E402

__all__ = [
    "ImplicitGradientWarning",
    "argmin",
    "from_np",
    "get_dtype",
    "minimize",
    "to_np",
    "value_and_grad",
]
