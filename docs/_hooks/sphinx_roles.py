"""mkdocs hook: Sphinx roles in docstrings (``:func:`dict_minimize.minimize```) become links.

The docstrings are written for ``help()`` and Sphinx-style tools as well as for this site;
mkdocstrings renders a role as the literal text ``:func:`` before the code span. This hook
drops the role and hands the name to mkdocs-autorefs as an optional cross-reference, so a name
documented on the site (``dict_minimize.Trace``) becomes a link and any other name stays code.
A leading ``~`` shows the last component only, as in Sphinx.
"""

from __future__ import annotations

import re
from typing import Any

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


def on_page_content(html: str, **kwargs: Any) -> str:
    """Rewrite the roles of one page's HTML (before autorefs resolves references)."""
    return ROLE.sub(_link, html)
