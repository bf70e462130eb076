"""Model helpers: fitting a PyTorch ``nn.Module`` (``minimize_module``, ``ScipyOptimizer``)
or a Keras 3 model (``minimize_model``) in place, as calls of the solvers.

Imports ``_solvers`` and everything below it; never ``_scale``, ``_compare`` or a public
module.
"""
