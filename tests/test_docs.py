"""The documentation site: it builds with ``mkdocs build --strict`` and every example runs.

Each page's ```python blocks run in order in one namespace, in a subprocess of their own (so a
page may import any framework or flip JAX flags without touching this process), with warnings
turned into errors as in the test suite. A page is skipped when a framework it uses is not
installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: the docs pages, and the README, whose examples must run too
PAGES = [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]
#: pages made only of mkdocstrings directives
NO_EXAMPLES = {"api.md"}

#: a ```python fence (possibly indented, e.g. inside an admonition) up to its closing fence
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```python[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
IMPORT = re.compile(r"^[ \t]*(?:import|from)[ \t]+([\w.]+)", re.MULTILINE)
#: drop-in modules and the framework each needs
DROPIN = re.compile(r"dict_minimize\.(numpy|torch|jax|tensorflow)_api")

#: runs in the subprocess: JSON [[path, first_line, code], ...] on stdin
RUNNER = r"""
import json, sys, warnings
warnings.filterwarnings("error")
# third-party import-time noise, as in pyproject.toml
for mod in ("tensorflow", "keras", "google.protobuf", "flatbuffers"):
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=mod + r"(\..*)?$")
namespace = {"__name__": "__main__"}
for path, line, code in json.load(sys.stdin):
    # pad so that tracebacks give the line numbers of the Markdown file
    exec(compile("\n" * (line - 1) + code, path, "exec"), namespace)
"""


def blocks(page: Path) -> list[tuple[int, str]]:
    """(line of the first code line, dedented code) of every ```python block of ``page``."""
    text = page.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        indent = m.group("indent")
        body = m.group("body")
        lines = [ln[len(indent) :] if ln.startswith(indent) else ln for ln in body.splitlines()]
        out.append((text.count("\n", 0, m.start("body")) + 1, "\n".join(lines) + "\n"))
    return out


def missing_modules(code: str) -> list[str]:
    """Top-level modules the code imports (drop-in modules count as their framework) that are
    not installed."""
    needed = {name.split(".")[0] for name in IMPORT.findall(code)}
    needed |= set(DROPIN.findall(code))
    return sorted(name for name in needed if importlib.util.find_spec(name) is None)


def page_id(page: Path) -> str:
    return page.relative_to(DOCS).as_posix() if page.is_relative_to(DOCS) else page.name


def test_docs_exist() -> None:
    expected = {
        "index.md",
        "quickstart.md",
        "migration.md",
        "api.md",
        "guide/models.md",
        "guide/nested.md",
        "guide/bounds.md",
        "guide/dtypes.md",
        "guide/devices.md",
        "guide/callbacks.md",
        "guide/result.md",
        "guide/errors.md",
        "guide/derivatives.md",
        "guide/constraints.md",
        "guide/failure-modes.md",
        "guide/performance.md",
        "guide/testfunctions.md",
        "guide/tracing.md",
        "guide/plots.md",
        "guide/comparing.md",
    }
    assert expected <= {page_id(p) for p in PAGES}


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_page_has_examples(page: Path) -> None:
    if page_id(page) in NO_EXAMPLES:
        pytest.skip("reference page")
    assert blocks(page), f"{page_id(page)} has no ```python example"


def run_page(page: Path) -> subprocess.CompletedProcess[str]:
    """Run every ```python block of ``page``, in order, in one fresh interpreter."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="")
    payload = json.dumps([[str(page), line, code] for line, code in blocks(page)])
    return subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=payload,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )


def skip_reason(page: Path) -> str | None:
    """Why ``page``'s examples cannot run here, or None."""
    found = blocks(page)
    if not found:
        return "no python blocks"
    missing = missing_modules("".join(code for _, code in found))
    return f"not installed: {', '.join(missing)}" if missing else None


@pytest.fixture(scope="module")
def page_runs(request: pytest.FixtureRequest) -> Iterator[dict[Path, Future]]:
    """Start the selected pages' subprocesses together: most of their time is imports."""
    selected = {
        item.callspec.params["page"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_examples_run"
    }
    pool = ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 1)))
    try:
        yield {
            page: pool.submit(run_page, page)
            for page in PAGES
            if page in selected and skip_reason(page) is None
        }
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_examples_run(page: Path, page_runs: dict[Path, Future]) -> None:
    reason = skip_reason(page)
    if reason is not None:
        pytest.skip(reason)
    proc = page_runs[page].result() if page in page_runs else run_page(page)
    assert proc.returncode == 0, (
        f"examples of {page_id(page)} failed:\n{proc.stderr[-6000:]}\n{proc.stdout[-2000:]}"
    )


def test_site_builds_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings_handlers.python")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(tmp_path / "site"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stderr}\n{proc.stdout}"
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "api" / "index.html").is_file()
