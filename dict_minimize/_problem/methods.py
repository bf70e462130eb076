"""Every method ``minimize`` runs, with what it can do: the one table of those facts.

The tables the driver reads (``METHODS``, ``GRADIENT_FREE``, ``BOUNDED``, ``TAKES_HESS``,
``TAKES_HESSP`` in ``_solvers/minimize_steps.py``, ``CONSTRAINED`` in ``constraints.py``) are
derived from :data:`REGISTRY`; :func:`methods` shows it to users, and :func:`resolve` turns a
user's spelling (any case; NLopt's full or short algorithm names) into the registry's name, with
a "did you mean" for a misspelt one. Nothing here imports SciPy's optimizers, NLopt or Ipopt:
whether an extra is installed is looked up without importing it.
"""

from __future__ import annotations

import difflib
import importlib.util
from dataclasses import dataclass

#: the prefix of NLopt's methods: ``method="nlopt:<algorithm>"``
NLOPT_PREFIX = "nlopt:"
_EQ_INEQ = frozenset({"eq", "ineq"})
_INEQ = frozenset({"ineq"})
_NONE: frozenset[str] = frozenset()
#: the module each extra provides (whether it is installed is looked up by this name)
_EXTRA_MODULES = {"nlopt": "nlopt", "ipopt": "cyipopt"}


@dataclass(frozen=True)
class Method:
    """One method of :func:`dict_minimize.minimize` and what it can do.

    Attributes:
        name: the name to pass as ``method=`` (lower case; any case is accepted).
        family: ``'scipy'`` (``scipy.optimize.minimize``), ``'nlopt'`` or ``'ipopt'``.
        gradient: whether it uses the objective's gradient.
        bounds: whether it honours bounds.
        constraints: the constraint kinds it takes: ``'eq'``, ``'ineq'``, both or none.
        hess: whether it can use the Hessian (``hess=``).
        hessp: whether it can use Hessian-vector products (``hessp=``).
        extra: the pip extra it needs (``pip install 'dict_minimize[<extra>]'``), or None.
        needs_bounds: whether it needs finite bounds on every variable (NLopt's global
            algorithms search the whole box).
        description: what it is, in a few words.

    Example:
        >>> from dict_minimize import methods
        >>> mma = next(m for m in methods() if m.name == "nlopt:ld_mma")
        >>> mma.gradient, mma.bounds, "ineq" in mma.constraints, "eq" in mma.constraints
        (True, True, True, False)
    """

    name: str
    family: str
    gradient: bool
    bounds: bool
    constraints: frozenset[str]
    hess: bool
    hessp: bool
    extra: str | None
    needs_bounds: bool
    description: str

    @property
    def installed(self) -> bool:
        """Whether the extra it needs is installed (looked up without importing it)."""
        if self.extra is None:
            return True
        return importlib.util.find_spec(_EXTRA_MODULES[self.extra]) is not None

    def __str__(self) -> str:
        return _row(self, self.installed)


def _scipy(
    name: str,
    description: str,
    *,
    gradient: bool = True,
    bounds: bool = False,
    constraints: frozenset[str] = _NONE,
    hess: bool = False,
    hessp: bool = False,
) -> Method:
    return Method(
        name, "scipy", gradient, bounds, constraints, hess, hessp, None, False, description
    )


def _nlopt(
    algorithm: str,
    description: str,
    *,
    bounds: bool = True,
    constraints: frozenset[str] = _NONE,
) -> Method:
    gradient = algorithm[1] == "d"  # NLopt's prefixes: LN/GN derivative-free, LD/GD gradient
    glob = algorithm[0] == "g"
    return Method(
        NLOPT_PREFIX + algorithm,
        "nlopt",
        gradient,
        bounds,
        constraints,
        False,
        False,
        "nlopt",
        glob,
        description,
    )


#: every method, SciPy's first (in ``scipy.optimize.minimize``'s order)
REGISTRY: tuple[Method, ...] = (
    _scipy("nelder-mead", "Nelder-Mead simplex", gradient=False, bounds=True),
    _scipy("powell", "Powell's conjugate directions", gradient=False, bounds=True),
    _scipy("cg", "nonlinear conjugate gradient"),
    _scipy("bfgs", "quasi-Newton BFGS"),
    _scipy("newton-cg", "truncated Newton, CG inner solves", hess=True, hessp=True),
    _scipy("l-bfgs-b", "limited-memory BFGS with bounds", bounds=True),
    _scipy("tnc", "truncated Newton with bounds", bounds=True),
    _scipy(
        "cobyla",
        "linear approximations, constraints",
        gradient=False,
        bounds=True,
        constraints=_EQ_INEQ,
    ),
    _scipy(
        "cobyqa",
        "quadratic models, constraints",
        gradient=False,
        bounds=True,
        constraints=_EQ_INEQ,
    ),
    _scipy("slsqp", "sequential least squares QP", bounds=True, constraints=_EQ_INEQ),
    _scipy(
        "trust-constr",
        "trust-region interior point / SQP",
        bounds=True,
        constraints=_EQ_INEQ,
        hess=True,
        hessp=True,
    ),
    _scipy("dogleg", "dog-leg trust region (needs hess)", hess=True),
    _scipy("trust-ncg", "trust region, CG (needs hess or hessp)", hess=True, hessp=True),
    _scipy("trust-exact", "nearly exact trust region (needs hess)", hess=True),
    _scipy("trust-krylov", "trust region, Krylov (needs hess or hessp)", hess=True, hessp=True),
    # NLopt's local algorithms, derivative-free then gradient-based, then global ones that
    # need no sub-optimizer
    _nlopt("ln_bobyqa", "bound-constrained quadratic models"),
    _nlopt("ln_cobyla", "linear approximations, constraints", constraints=_EQ_INEQ),
    _nlopt("ln_newuoa", "quadratic models, unbounded", bounds=False),
    _nlopt("ln_newuoa_bound", "quadratic models (NEWUOA) with bounds"),
    _nlopt("ln_praxis", "principal axis (PRAXIS)"),
    _nlopt("ln_neldermead", "Nelder-Mead simplex"),
    _nlopt("ln_sbplx", "subplex (Nelder-Mead on subspaces)"),
    _nlopt("ld_mma", "method of moving asymptotes", constraints=_INEQ),
    _nlopt("ld_ccsaq", "conservative convex separable quadratic", constraints=_INEQ),
    _nlopt("ld_slsqp", "sequential least squares QP", constraints=_EQ_INEQ),
    _nlopt("ld_lbfgs", "limited-memory BFGS"),
    _nlopt("ld_tnewton", "truncated Newton"),
    _nlopt("ld_tnewton_restart", "truncated Newton, steepest-descent restarts"),
    _nlopt("ld_tnewton_precond", "preconditioned truncated Newton"),
    _nlopt("ld_tnewton_precond_restart", "preconditioned truncated Newton, restarts"),
    _nlopt("ld_var1", "shifted limited-memory variable metric, rank 1"),
    _nlopt("ld_var2", "shifted limited-memory variable metric, rank 2"),
    _nlopt("gn_isres", "global: evolution strategy, constraints", constraints=_EQ_INEQ),
    _nlopt("gn_crs2_lm", "global: controlled random search"),
    _nlopt("gn_direct_l", "global: DIRECT-L (locally biased)"),
    _nlopt("gn_esch", "global: evolutionary algorithm"),
    Method(
        "ipopt",
        "ipopt",
        True,
        True,
        _EQ_INEQ,
        True,
        False,
        "ipopt",
        False,
        "interior point (Ipopt, MUMPS)",
    ),
)
#: the registry by name
BY_NAME = {m.name: m for m in REGISTRY}


def names(family: str | None = None) -> tuple[str, ...]:
    """The registry's names, all or of one family, in the registry's order."""
    return tuple(m.name for m in REGISTRY if family is None or m.family == family)


def _aliases() -> dict[str, str]:
    """Every accepted spelling (lower case) -> the registry's name.

    NLopt's algorithms answer to ``nlopt:ld_mma`` (NLopt's full name), ``nlopt:mma`` (the name
    without its ``LN_``/``LD_``/``GN_`` prefix, where that is unique), and ``nlopt:nlopt_ld_mma``.
    """
    out = {m.name: m.name for m in REGISTRY}
    short: dict[str, list[str]] = {}
    for m in REGISTRY:
        if m.family == "nlopt":
            algorithm = m.name[len(NLOPT_PREFIX) :]
            out[f"{NLOPT_PREFIX}nlopt_{algorithm}"] = m.name
            short.setdefault(algorithm[3:], []).append(m.name)
    for alias, targets in short.items():
        if len(targets) == 1:
            out[NLOPT_PREFIX + alias] = targets[0]
    return out


ALIASES = _aliases()


def resolve(method: str) -> str:
    """The registry's name for a user's spelling of a method; ValueError with a "did you mean".

    Example:
        >>> resolve("L-BFGS-B"), resolve("nlopt:BOBYQA"), resolve("nlopt:LD_MMA")
        ('l-bfgs-b', 'nlopt:ln_bobyqa', 'nlopt:ld_mma')
    """
    key = method.lower().strip()
    found = ALIASES.get(key)
    if found is not None:
        return found
    raise ValueError(unknown_method_message(method))


def unknown_method_message(method: str) -> str:
    """``unknown method 'x'; did you mean ...? expected one of ...`` for a misspelt name.

    Example:
        >>> print(unknown_method_message("trust_constr"))  # doctest: +ELLIPSIS
        unknown method 'trust_constr'; did you mean 'trust-constr' or 'trust-exact'? expected ...
    """
    key = method.lower().strip()
    candidates = list(ALIASES)
    # NLopt's names compared without the prefix too, so "mma" finds "nlopt:mma"
    bare = {c[len(NLOPT_PREFIX) :]: c for c in candidates if c.startswith(NLOPT_PREFIX)}
    close = difflib.get_close_matches(key, candidates, n=3, cutoff=0.6)
    close += [bare[c] for c in difflib.get_close_matches(key, list(bare), n=3, cutoff=0.75)]
    seen: dict[str, str] = {}  # one spelling per method: the registry's name -> the closest
    for c in close:
        seen.setdefault(ALIASES[c], c)
    guess = ""
    if seen:
        quoted = [repr(c) for c in list(seen.values())[:3]]
        guess = "did you mean " + (" or ".join(quoted) if len(quoted) < 3 else _either(quoted))
        guess += "? "
    return (
        f"unknown method {method!r}; {guess}expected one of {', '.join(names('scipy'))} "
        f"(any case), {NLOPT_PREFIX}<algorithm> for NLopt's (e.g. 'nlopt:bobyqa', "
        "'nlopt:LD_MMA') or 'ipopt'; dict_minimize.methods() lists them all with what they "
        "can do"
    )


def _either(quoted: list[str]) -> str:
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


class MethodTable(tuple):
    """The registry as :func:`methods` returns it: a tuple of :class:`Method` records whose
    ``str`` is a plain-text table (no pandas needed)."""

    def __str__(self) -> str:
        head = ("method", "gradient", "bounds", "constraints", "hessian", "extra", "description")
        rows = [head] + [_cells(m, m.installed) for m in self]
        widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
        return "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1]
            for r in rows
        )

    def __repr__(self) -> str:
        return f"MethodTable({len(self)} methods)"


def _cells(m: Method, installed: bool) -> tuple[str, ...]:
    cons = "eq, ineq" if m.constraints == _EQ_INEQ else ", ".join(sorted(m.constraints)) or "-"
    second = "hess, hessp" if m.hess and m.hessp else "hess" if m.hess else "-"
    extra = "-" if m.extra is None else f"[{m.extra}]" + ("" if installed else " missing")
    bounds = "needed" if m.needs_bounds else "yes" if m.bounds else "-"
    gradient = "yes" if m.gradient else "-"
    return (m.name, gradient, bounds, cons, second, extra, m.description)


def _row(m: Method, installed: bool) -> str:
    return "  ".join(_cells(m, installed))


def methods() -> MethodTable:
    """Every method ``minimize`` runs, with what each can do.

    Returns the registry: SciPy's methods of ``scipy.optimize.minimize``, NLopt's algorithms
    (``method="nlopt:<algorithm>"``, the ``[nlopt]`` extra) and Ipopt (``method="ipopt"``, the
    ``[ipopt]`` extra), each a :class:`Method` record with the flags ``gradient``, ``bounds``,
    ``constraints`` (the kinds: ``'eq'``, ``'ineq'``), ``hess``, ``hessp``, ``extra`` and
    ``installed``. ``print(methods())`` shows them as a table. See
    [Methods: SciPy, NLopt, Ipopt](guide/methods.md).

    Example:
        >>> import dict_minimize
        >>> table = dict_minimize.methods()
        >>> print(*[m.name for m in table if m.constraints == {"eq", "ineq"} and m.gradient])
        slsqp trust-constr nlopt:ld_slsqp ipopt
        >>> print(str(table).splitlines()[6])  # doctest: +NORMALIZE_WHITESPACE
        l-bfgs-b   yes   yes   -   -   -   limited-memory BFGS with bounds
    """
    return MethodTable(REGISTRY)


__all__ = [
    "ALIASES",
    "BY_NAME",
    "NLOPT_PREFIX",
    "REGISTRY",
    "Method",
    "MethodTable",
    "methods",
    "names",
    "resolve",
    "unknown_method_message",
]
