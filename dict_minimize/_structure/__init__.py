"""What x0 looks like: the tree of containers and leaves, the immutable layout (keys,
shapes, dtypes, devices, offsets) computed once before SciPy starts, the code generated for
the per-evaluation walks, and the typing Protocols every floor shares.

The lowest floor above the ground (``_errors``, ``_threads``, ``_version``): it imports NumPy
and the ground only — no SciPy, no framework, no other floor of the package.
"""
