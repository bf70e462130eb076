"""Benchmarks of dict_minimize against plain SciPy, hand-written glue and the original package.

Run ``python -m benchmarks.run`` (``--quick`` for a run of a few minutes); see README.md here.
Nothing in this package is collected by pytest (``testpaths`` names only ``tests`` and
``dict_minimize``); ``tests/test_benchmarks_smoke.py`` runs its machinery on tiny sizes.
"""
