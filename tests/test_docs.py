"""The documentation site: it builds with ``mkdocs build --strict`` and every example runs.

Each page's ```python blocks run in order in one namespace, in a subprocess of their own (so a
page may import any framework or flip JAX flags without touching this process), with warnings
turned into errors as in the test suite. A page is skipped when a framework it uses is not
installed.

The examples a reader sees hold no test code (``test_no_assert_on_the_site``). What a block
shows is checked in two ways, both next to the block in the Markdown source:

- **Shown output.** A fence ```` ```text title="Output" ```` right after a ```python block is
  what that block prints: the test captures the block's stdout and compares it with the fence
  (``output_matches``: whitespace runs are equal, ``...`` matches anything, and a number with a
  decimal point or exponent matches to the precision it is written with, as doctest's
  ``NUMBER``; never to the last bits of floating point).
- **Hidden checks.** An HTML comment that opens with ``<!-- check`` on its own line holds
  Python that runs right there, in the page's namespace, after the blocks above it (the site and
  GitHub do not show comments). These keep the ``assert``s that guard what the prose claims.

Doctest-style ``>>>`` examples are not used in the pages: pytest's ``--doctest-glob='*.md'``
would run them as a separate doctest, without the page's earlier blocks.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: the docs pages, and the README, whose examples must run too
PAGES = [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]
#: pages made only of mkdocstrings directives
NO_EXAMPLES = {"api.md", "architecture.md"}

#: a ```python fence (possibly indented, e.g. inside an admonition) up to its closing fence
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```python[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
#: a shown output: the fence right after a ```python block holds what that block prints
OUTPUT = re.compile(
    r'^```text title="Output"[ \t]*\n(?P<body>.*?)^```[ \t]*$', re.MULTILINE | re.DOTALL
)
#: a hidden check: Python in an HTML comment, run at that place of the page
CHECK = re.compile(r"^<!-- check[ \t]*\n(?P<body>.*?)^-->[ \t]*$", re.MULTILINE | re.DOTALL)
#: an assert statement (test code, which belongs in a hidden check)
ASSERT = re.compile(r"^[ \t]*assert\b", re.MULTILINE)
IMPORT = re.compile(r"^[ \t]*(?:import|from)[ \t]+([\w.]+)", re.MULTILINE)
#: drop-in modules and the framework each needs
DROPIN = re.compile(r"dict_minimize\.(numpy|torch|jax|tensorflow)_api")

#: runs in the subprocess: JSON [[path, first_line, code, capture], ...] on stdin; the stdout
#: of each block with ``capture`` goes, as a JSON list, to the file named by argv[1]
RUNNER = r"""
import contextlib, io, json, sys, warnings
warnings.filterwarnings("error")
# third-party import-time noise, as in pyproject.toml
for mod in ("tensorflow", "keras", "google.protobuf", "flatbuffers"):
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=mod + r"(\..*)?$")
namespace = {"__name__": "__main__"}
captured = []
try:
    for path, line, code, capture in json.load(sys.stdin):
        # pad so that tracebacks give the line numbers of the Markdown file
        compiled = compile("\n" * (line - 1) + code, path, "exec")
        if not capture:
            exec(compiled, namespace)
            continue
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer):
                exec(compiled, namespace)
        finally:
            captured.append(buffer.getvalue())
            sys.stdout.write(buffer.getvalue())
finally:
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump(captured, f)
"""


@dataclass
class Block:
    """One piece of a page's code, in page order."""

    line: int  #: line of the first code line in the Markdown file
    code: str  #: dedented code
    hidden: bool = False  #: a ``<!-- check`` comment rather than a ```python block
    output: str | None = None  #: the shown output that follows the block, if any
    output_line: int = 0  #: its first line


def page_blocks(page: Path) -> list[Block]:
    """The ```python blocks and hidden checks of ``page`` in order, with their shown outputs.

    Raises ValueError for an output fence that does not follow a ```python block.
    """
    text = page.read_text(encoding="utf-8")

    def line_of(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    checks = list(CHECK.finditer(text))
    found: list[tuple[int, str, re.Match[str]]] = [(m.start(), "check", m) for m in checks]
    for m in FENCE.finditer(text):
        if not any(c.start() <= m.start() < c.end() for c in checks):
            found.append((m.start(), "python", m))
    found += [(m.start(), "output", m) for m in OUTPUT.finditer(text)]
    out: list[Block] = []
    previous_end = 0
    for _, kind, m in sorted(found, key=lambda item: item[0]):
        if kind == "output":
            last = out[-1] if out else None
            if (
                last is None
                or last.hidden
                or last.output is not None
                or text[previous_end : m.start()].strip()
            ):
                raise ValueError(
                    f"{page}:{line_of(m.start())}: "
                    "an Output fence must come right after a ```python block"
                )
            last.output, last.output_line = m.group("body"), line_of(m.start("body"))
        else:
            indent = m.group("indent") if kind == "python" else ""
            lines = [
                ln[len(indent) :] if ln.startswith(indent) else ln
                for ln in m.group("body").splitlines()
            ]
            out.append(
                Block(line_of(m.start("body")), "\n".join(lines) + "\n", hidden=kind == "check")
            )
        previous_end = m.end()
    return out


def blocks(page: Path) -> list[tuple[int, str]]:
    """(line of the first code line, dedented code) of every ```python block of ``page``: the
    code the site shows."""
    return [(b.line, b.code) for b in page_blocks(page) if not b.hidden]


#: a number as written in a shown output; one with a decimal point or an exponent is compared
#: to the precision it is written with
NUMBER = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?"
_WANT_TOKEN = re.compile(rf"(?P<ellipsis>\.\.\.)|(?P<number>{NUMBER})|(?P<space>\s+)")


def output_matches(want: str, got: str) -> bool:
    """Whether printed output ``got`` matches the shown output ``want``: runs of whitespace are
    equal, ``...`` matches any text, integers match exactly, and a number written with a decimal
    point or an exponent matches within one unit of its last written digit (``3.0000`` matches
    ``2.99996``, ``1e-06`` matches ``1.3e-06``); ``2.``, NumPy's and PyTorch's way of printing a
    whole float, matches within 1e-4."""
    pattern, numbers, pos = [], [], 0
    want = want.strip()
    for m in _WANT_TOKEN.finditer(want):
        pattern.append(re.escape(want[pos : m.start()]))
        if m.group("ellipsis"):
            pattern.append(".*?")
        elif m.group("space"):
            pattern.append(r"\s+")
        else:
            numbers.append(m.group("number"))
            pattern.append(f"({NUMBER})")
        pos = m.end()
    pattern.append(re.escape(want[pos:]))
    match = re.fullmatch("".join(pattern), got.strip(), re.DOTALL)
    if match is None:
        return False
    for written, printed in zip(numbers, match.groups(), strict=True):
        mantissa, _, exponent = written.lower().partition("e")
        if "." not in mantissa and not exponent:
            if int(written) != int(float(printed)) or not re.fullmatch(r"[-+]?\d+", printed):
                return False
            continue
        decimals = len(mantissa.partition(".")[2]) if mantissa[-1] != "." else 4
        tolerance = 10.0 ** (int(exponent or 0) - decimals)
        if not abs(float(printed) - float(written)) <= tolerance * (1 + 1e-9):
            return False
    return True


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


@dataclass
class PageRun:
    """A page's run: the subprocess, and the stdout of each block with a shown output."""

    proc: subprocess.CompletedProcess[str]
    printed: list[str]


def run_page(page: Path) -> PageRun:
    """Run every ```python block and hidden check of ``page``, in order, in one fresh
    interpreter, capturing what each block with a shown output prints."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="")
    payload = json.dumps(
        [[str(page), b.line, b.code, b.output is not None] for b in page_blocks(page)]
    )
    with tempfile.TemporaryDirectory() as tmp:
        printed_file = Path(tmp) / "printed.json"
        proc = subprocess.run(
            [sys.executable, "-c", RUNNER, str(printed_file)],
            input=payload,
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=600,
        )
        printed = json.loads(printed_file.read_text()) if printed_file.exists() else []
    return PageRun(proc, printed)


def skip_reason(page: Path) -> str | None:
    """Why ``page``'s examples cannot run here, or None."""
    found = page_blocks(page)
    if not any(not b.hidden for b in found):
        return "no python blocks"
    missing = missing_modules("".join(b.code for b in found))
    return f"not installed: {', '.join(missing)}" if missing else None


@pytest.fixture(scope="module")
def page_runs(request: pytest.FixtureRequest) -> Iterator[dict[Path, Future[PageRun]]]:
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
def test_examples_run(page: Path, page_runs: dict[Path, Future[PageRun]]) -> None:
    reason = skip_reason(page)
    if reason is not None:
        pytest.skip(reason)
    run = page_runs[page].result() if page in page_runs else run_page(page)
    proc = run.proc
    assert proc.returncode == 0, (
        f"examples of {page_id(page)} failed:\n{proc.stderr[-6000:]}\n{proc.stdout[-2000:]}"
    )
    shown = [b for b in page_blocks(page) if b.output is not None]
    assert len(run.printed) == len(shown)
    wrong = [
        f"{page}:{b.output_line}: the block above shows\n{b.output}but printed\n{got}"
        for b, got in zip(shown, run.printed, strict=True)
        if not output_matches(b.output or "", got)
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_no_assert_on_the_site(page: Path) -> None:
    """The examples a reader sees are free of test code: asserts go in hidden checks."""
    found = [line for line, code in blocks(page) if ASSERT.search(code)]
    assert not found, f"{page_id(page)}: assert in the ```python blocks at lines {found}"


@pytest.mark.parametrize(
    ("want", "got", "ok"),
    [
        ("True {'w': tensor(3.0000)}", "True  {'w': tensor(2.99996)}\n", True),
        ("True {'w': tensor(3.0000)}", "True {'w': tensor(2.9997)}", False),
        ("1e-06 ...", "1.3e-06 and more", True),
        ("4 4 12", "4 4 12", True),
        ("4 4 12", "4 4 13", False),
        ("4 4", "4.0 4", False),
        ("[1. 2.]", "[1.00004 2.]", True),
        ("[1. 2.]", "[1.4 2.]", False),
        ("tensor(2.)", "tensor(2.5000)", False),
        ("x0['w'] is a str", "x0['w'] is a str", True),
        ("a\n  b", "a b", True),
        ("False", "True", False),
    ],
)
def test_output_matches(want: str, got: str, ok: bool) -> None:
    assert output_matches(want, got) is ok


def test_page_blocks(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        'Text\n\n```python\nprint(1)\n```\n\n```text title="Output"\n1\n```\n\n'
        "<!-- check\nassert True\n-->\n\n```python\nx = 2\n```\n",
        encoding="utf-8",
    )
    found = page_blocks(page)
    assert [(b.line, b.code, b.hidden, b.output) for b in found] == [
        (4, "print(1)\n", False, "1\n"),
        (12, "assert True\n", True, None),
        (16, "x = 2\n", False, None),
    ]
    page.write_text('Text\n\n```text title="Output"\n1\n```\n', encoding="utf-8")
    with pytest.raises(ValueError, match="must come right after"):
        page_blocks(page)


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
    # mkdocstrings formats signatures only with ruff or black at hand (the docs extra has ruff)
    assert "Formatting signatures requires" not in proc.stderr + proc.stdout
    check_api_page((tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8"))
    home = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert "stylesheets/extra.css" in home


def check_api_page(html: str) -> None:
    """The API page reads well: formatted signatures, a table of contents that names each
    object's module, and links where the docstrings point elsewhere."""
    signature = re.search(r'<div class="doc-signature[^"]*"><pre>(.*?)</pre>', html, re.DOTALL)
    assert signature is not None
    lines = re.sub(r"<[^>]+>", "", signature.group(1)).strip().splitlines()
    # minimize(\n    fun: Callable,\n ...) -> OptimizeResult, one parameter a line
    assert len(lines) > 10 and max(map(len, lines)) <= 80, lines
    assert lines[0] == "minimize(" and lines[1].strip().startswith("fun:"), lines[:2]
    # each object documented with `::: path` has a table-of-contents entry with its module
    toc = html[html.index("md-nav--secondary") :]
    labels = {}
    for path in re.findall(r"^::: ([\w.]+)", (DOCS / "api.md").read_text(), re.MULTILINE):
        entry = re.search(rf'href="#{re.escape(path)}" class="md-nav__link">(.*?)</a>', toc, re.S)
        assert entry is not None, path
        labels[path] = re.sub(r"<[^>]+>|&nbsp;", "", entry.group(1)).strip()
    assert all(labels[p] == p.removeprefix("dict_minimize.") for p in labels), labels
    # Sphinx roles and file names of the docstrings are links, not literal text
    assert not re.search(r":(func|class|meth|attr|exc|mod|data):<code>", html)
    assert "docs/guide/" not in html
    assert 'href="#dict_minimize.Trace"' in html


def test_home_page_code_fits() -> None:
    """The home page hides its table of contents, so that its code lines are not cut."""
    text = (DOCS / "index.md").read_text(encoding="utf-8")
    assert text.startswith("---\nhide:\n  - toc\n---\n")
    fences = re.findall(r"^```\w*[^\n]*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert fences and all(len(line) <= 100 for body in fences for line in body.splitlines())


def test_docs_extra_formats_signatures() -> None:
    """mkdocstrings needs ruff (or black) to format signatures: the docs extra installs it."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    docs_extra = re.search(r"^docs = \[(.*?)\]$", pyproject, re.MULTILINE)
    assert docs_extra is not None and '"ruff' in docs_extra.group(1)
