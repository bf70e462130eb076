"""The entry points: ``minimize``, ``least_squares``, ``root``, the drop-in ``minimize`` of
the ``*_api`` modules, and gradients through a solve (``argmin``). Each is a thin call over
the one preparation in ``_problem``.

Imports ``_problem``, ``backends``, ``_structure`` and the ground; never ``_models``,
``_scale``, ``_compare`` or a public module.
"""
