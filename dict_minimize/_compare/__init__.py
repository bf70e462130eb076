"""Seeing and comparing: SciPy's methods beside ``torch.optim``, optax and Keras optimizers
on one gradient budget (``compare``, ``compare_table``), and the framework-neutral
operations behind ``dict_minimize.testfunctions``.

Imports ``_solvers`` and everything below it; never ``_models``, ``_scale`` or a public
module.
"""
