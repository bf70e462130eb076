"""mkdocs hook: the docs' figures, drawn at build time (never committed).

Every ``docs/_hooks/*_figures.py`` module defines ``FIGURES = {"name.png": make}``, where
``make()`` returns the PNG's bytes; each becomes the site file ``figures/name.png``, which pages
show as ``![...](../figures/name.png)``. matplotlib draws with Agg (no display needed).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File

HERE = Path(__file__).resolve().parent


def _modules() -> list[Any]:
    root = str(HERE.parents[1])  # the repository, so that dict_minimize imports from it
    if root not in sys.path:
        sys.path.insert(0, root)
    out = []
    for path in sorted(HERE.glob("*_figures.py")):
        spec = importlib.util.spec_from_file_location(f"_docs_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out.append(module)
    return out


def on_files(files: Any, config: Any) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    for module in _modules():
        for name, make in module.FIGURES.items():
            files.append(File.generated(config, f"figures/{name}", content=make()))
    return files
