"""The flat problem SciPy sees, and the way back: preparation of x0 (layout, codec, float64
start), bounds and constraints as SciPy objects, the objective that SciPy calls (one
unflatten, the user's function, one flatten), the result with dicts, and the trace.

Imports SciPy, ``backends``, ``_structure`` and the ground; never a solver, a model helper or
a public module.
"""
