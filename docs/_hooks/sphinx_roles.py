"""mkdocs hook: Sphinx roles in docstrings (``:func:`dict_minimize.minimize```) become links,
and the table of contents may break a dotted name after a dot.

The docstrings are written for ``help()`` and Sphinx-style tools as well as for this site;
mkdocstrings renders a role as the literal text ``:func:`` before the code span. This hook
drops the role and hands the name to mkdocs-autorefs as an optional cross-reference, so a name
documented on the site (``dict_minimize.Trace``) becomes a link and any other name stays code.
A leading ``~`` shows the last component only, as in Sphinx.
"""

from __future__ import annotations

import re
from typing import Any

from mkdocs.structure.pages import Page
from mkdocs.structure.toc import AnchorLink

ROLE = re.compile(
    r":(?:py:)?(?:func|class|meth|attr|exc|mod|data|obj):<code>(?P<tilde>~?)(?P<name>[\w.]+)"
    r"(?P<call>\(\))?</code>"
)


def _link(m: re.Match[str]) -> str:
    name = m.group("name")
    shown = (name.rsplit(".", 1)[-1] if m.group("tilde") else name) + (m.group("call") or "")
    if "." not in name:  # a bare name is not an identifier autorefs can resolve
        return f"<code>{shown}</code>"
    return f'<autoref identifier="{name}" optional><code>{shown}</code></autoref>'


#: a dot between two name characters, in text (the theme prints the titles unescaped)
DOT = re.compile(r"(?<=\w)\.(?=\w)")


def _break_after_dots(items: list[AnchorLink]) -> None:
    for item in items:
        item.title = DOT.sub(".<wbr>", item.title)
        _break_after_dots(item.children)


def on_page_content(html: str, page: Page, **kwargs: Any) -> str:
    """Rewrite the roles of one page's HTML (before autorefs resolves references), and let
    its table-of-contents entries (`torch_api.minimize_module`) wrap after a dot."""
    _break_after_dots(page.toc.items)
    return ROLE.sub(_link, html)
