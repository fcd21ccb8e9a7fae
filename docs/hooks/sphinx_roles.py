"""griffe extension for the API reference: Sphinx roles in lit_dl's docstrings become code spans.

lit_dl's docstrings cross-reference with Sphinx roles (``:class:`~lit_dl.models.ClassificationTask```,
``:meth:`build_backbone```), which Google-style Markdown rendering would print literally. A role
becomes inline code of its target (the last dotted part where the target starts with ``~``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|data|obj|exc|const):`(~?)([^`]+)`")


def _code(match: re.Match[str]) -> str:
    target = match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"


class SphinxRoles(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_code, obj.docstring.value)
