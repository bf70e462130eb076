"""Drop-in ``minimize`` for TensorFlow tensors (the original ``dict_minimize.tensorflow_api``)."""

from dict_minimize._solvers.dropin import get_dtype, make_dropin

minimize = make_dropin(
    "tensorflow",
    """
    >>> import tensorflow as tf
    >>> from dict_minimize.tensorflow_api import minimize
    >>> def f(d):
    ...     with tf.GradientTape() as tape:
    ...         tape.watch(d["x"])
    ...         loss = tf.reduce_sum((d["x"] - 2.0) ** 2)
    ...     return loss, {"x": tape.gradient(loss, d["x"])}
    >>> minimize(f, {"x": tf.zeros(2)}, method="L-BFGS-B")["x"].numpy()
    array([2., 2.], dtype=float32)
""",
)
# after make_dropin, which names the pip extra when the framework is missing
from dict_minimize._models.keras import minimize_model  # noqa: E402
from dict_minimize.backends.tensorflow import from_np, to_np  # noqa: E402
from dict_minimize.backends.tensorflow_ad import value_and_grad  # noqa: E402

__all__ = ["from_np", "get_dtype", "minimize", "minimize_model", "to_np", "value_and_grad"]
