"""Messages for errors a user can cause: one place, so every message names the key and the fix."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

#: pip extra that installs each framework.
EXTRAS = {"torch": "torch", "jax": "jax", "tensorflow": "tensorflow", "numpy": None}
#: how each framework is called in messages.
FRAMEWORK_NAMES = {"numpy": "NumPy", "torch": "PyTorch", "jax": "JAX", "tensorflow": "TensorFlow"}
#: what one entry of each framework is called in messages.
TENSOR_NAMES = {
    "numpy": "NumPy array",
    "torch": "PyTorch tensor",
    "jax": "JAX array",
    "tensorflow": "TensorFlow tensor",
}


def type_name(obj: Any) -> str:
    """``'torch.Tensor'``-style name of ``type(obj)``, for messages."""
    return class_name(type(obj))


def class_name(cls: type) -> str:
    """``'torch.Tensor'``-style name of the class ``cls``, for messages."""
    module = cls.__module__.split(".")[0]
    if module == "builtins":
        return cls.__qualname__
    if module in ("jaxlib", "jax"):
        # a traced value (inside jax.jit) stands for an array: name it as the user sees it
        return "jax.ArrayImpl" if cls.__qualname__.endswith("Tracer") else f"jax.{cls.__qualname__}"
    if module == "tensorflow" and cls.__qualname__ in ("SymbolicTensor", "EagerTensor"):
        return "tensorflow.Tensor"  # graph and eager tensors read the same in messages
    return f"{module}.{cls.__qualname__}"


def a_class(cls: type) -> str:
    """:func:`class_name` with its article: ``'a dict'``, ``'an equinox.MLP'``."""
    name = class_name(cls)
    return ("an " if name[:1] in "aeiou" else "a ") + name


@dataclass(frozen=True)
class Attr:
    """An attribute step of a :class:`Path` (JAX's ``GetAttrKey``: an Equinox module's field,
    a dataclass field): it reads ``.name`` where a key reads ``['name']``."""

    name: str


class Path(tuple):
    """Where a leaf sits in a nested ``x0``: the keys, indices and attributes from the root.

    :meth:`at` writes it the way every message of the package names an entry:
    ``x0['params']['w'][0]``, and ``x0.layers[0].weight`` through a JAX pytree node's
    attributes (:class:`Attr`). Without attributes its ``repr`` is the part between the outer
    brackets, so that ``f"x0[{path!r}]"`` reads the same.

    Example:
        >>> from dict_minimize._errors import Attr, Path
        >>> Path(("params", "Dense_0", "kernel")).at("x0")
        "x0['params']['Dense_0']['kernel']"
        >>> Path((Attr("layers"), 0, Attr("weight"))).at("x0")
        'x0.layers[0].weight'
    """

    __slots__ = ()

    def __repr__(self) -> str:
        if any(type(part) is Attr for part in self):
            return self.suffix()
        return "][".join(repr(part) for part in self)

    def suffix(self) -> str:
        """The path after the root's name: ``['params']['w']``, ``.layers[0].weight``."""
        return "".join(f".{p.name}" if type(p) is Attr else f"[{p!r}]" for p in self)

    def at(self, where: str) -> str:
        """The entry of ``where`` at this path: ``at("x0")`` -> ``x0.layers[0].weight``."""
        return where + self.suffix()


def at(where: str, key: Hashable) -> str:
    """How messages name entry ``key`` of ``where``: ``x0['w']`` for a key of a flat dict,
    ``x0['params']['w']`` or ``x0.layers[0].bias`` for a :class:`Path` (``where`` alone for the
    root's empty path)."""
    return key.at(where) if isinstance(key, Path) else f"{where}[{key!r}]"


def fmt_key(key: Hashable) -> str:
    """A key as it appears in messages: ``'w'`` (the key's repr); a :class:`Path` as what
    follows ``x0``: ``['params']['w']``, ``.layers[0].bias``."""
    return key.suffix() if isinstance(key, Path) else repr(key)


def entry(key: Hashable) -> str:
    """A gradient's entry in messages: ``'w'`` for a flat dict's key, ``x0.layers[0].bias``
    (the leaf of x0 it belongs to) for a :class:`Path`."""
    return key.at("x0") if isinstance(key, Path) else repr(key)


def fmt_keys(keys: Iterable[Hashable], limit: int = 8) -> str:
    keys = list(keys)
    shown = ", ".join(fmt_key(k) for k in keys[:limit])
    if len(keys) > limit:
        shown += f", ... ({len(keys) - limit} more)"
    return shown


def fmt_shape(shape: Iterable[int]) -> str:
    return str(tuple(int(s) for s in shape))


def fmt_dtype(dtype: Any) -> str:
    """A dtype of any framework as it appears in messages: ``'complex64'``, ``'torch.bool'``."""
    text = str(dtype)
    name = getattr(dtype, "name", None)  # TensorFlow's DType prints as "<dtype: 'bool'>"
    return name if text.startswith("<dtype") and isinstance(name, str) else text


def missing_framework(backend: str) -> ImportError:
    name = FRAMEWORK_NAMES[backend]
    return ImportError(
        f"{name} is not installed, so dict_minimize cannot use its tensors: "
        f"pip install 'dict_minimize[{EXTRAS[backend]}]'"
    )


def not_floating(where: str, key: Hashable, dtype: Any) -> TypeError:
    what = f"gradient for {entry(key)}" if where == "gradient" else at(where, key)
    return TypeError(
        f"{what} has dtype {dtype}; expected a real floating dtype "
        "(float16, bfloat16, float32 or float64). Cast it, e.g. x.astype(float) / x.float()."
    )


def grad_shape(key: Hashable, got: Iterable[int], expected: Iterable[int]) -> ValueError:
    return ValueError(
        f"gradient for {entry(key)} has shape {fmt_shape(got)}, expected {fmt_shape(expected)} "
        f"- the shape of {at('x0', key)}"
    )


def grad_type(key: Hashable, value: Any, expected: str) -> TypeError:
    hint = ""
    if value is None:
        hint = (
            " - the objective does not depend on this entry? Return zeros for it "
            "(TensorFlow: tape.gradient(..., unconnected_gradients='zero'))"
        )
    return TypeError(
        f"gradient for {entry(key)} is a {type_name(value)}; expected {expected}{hint}"
    )


def pair_error(out: Any) -> TypeError:
    """``fun`` was to return ``(value, grad_dict)`` (``jac=True``) and returned ``out``."""
    got = (
        f"a {type_name(out)} of length {len(out)}"
        if isinstance(out, (tuple, list))
        else f"a single {type_name(out)}"
    )
    return TypeError(
        f"with jac=True, fun must return (value, grad_dict); it returned {got}. "
        "Return the gradient dict too, pass jac='autodiff' to let the framework "
        "differentiate fun, jac=<callable returning the gradient dict>, or "
        "jac='2-point' for finite differences."
    )


#: the option names of ``scipy.optimize.minimize``'s methods (``options={...}``)
SCIPY_OPTIONS = frozenset(
    {
        "accuracy", "adaptive", "barrier_tol", "c1", "c2", "catol", "direc", "disp", "eps",
        "eta", "f_target", "factorization_method", "fatol", "feasibility_tol",
        "final_tr_radius", "finite_diff_rel_step", "ftol", "gtol", "hess_inv0", "inexact",
        "initial_barrier_parameter", "initial_barrier_tolerance", "initial_constr_penalty",
        "initial_simplex", "initial_tr_radius", "initial_trust_radius", "iprint", "maxCGit",
        "max_trust_radius", "maxcor", "maxfev", "maxfun", "maxiter", "maxls", "mesg_num",
        "minfev", "norm", "offset", "rescale", "return_all", "rhobeg", "rhoend", "scale",
        "sparse_jacobian", "stepmx", "tol", "verbose", "workers", "xatol", "xrtol", "xtol",
    }
)  # fmt: skip


def unknown_keyword(unknown: dict[str, Any], where: str = "minimize") -> TypeError:
    """Keywords ``minimize`` does not take: Python's message, and the way to say them.

    Example:
        >>> print(unknown_keyword({"maxiter": 5}))
        minimize() got an unexpected keyword argument 'maxiter'...pass options={'maxiter': 5}
    """
    name = next(iter(unknown))
    message = f"{where}() got an unexpected keyword argument {name!r}"
    options = {k: v for k, v in unknown.items() if k in SCIPY_OPTIONS}
    if options:
        return TypeError(f"{message}: it is a method option, pass options={options!r}")
    return TypeError(message)
