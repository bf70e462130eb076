"""Many problems: ``minimize_many`` and ``multistart`` on no executor, a
``concurrent.futures`` executor or a Dask client, and how problems and results travel.

Imports ``_solvers`` and everything below it; never ``_models``, ``_compare`` or a public
module.
"""
