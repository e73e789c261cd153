"""Griffe extension used by the documentation build (``mkdocs.yml``): make vbtjax's docstrings read as Markdown.

vbtjax's docstrings are Markdown in the Equinox style (``**Arguments:**`` followed by a list), with a few
reStructuredText habits that Python-Markdown does not understand. Before mkdocstrings renders them, this extension
rewrites, in every docstring of the package:

- Sphinx roles (``:func:`simulate```, ``:class:`~vbtjax.Network```, ``:mod:``, ``:meth:``, ``:data:``, ...) into
  optional cross-references: a link when the target is rendered somewhere in the site, plain code otherwise (so a
  reference to a private helper never fails ``mkdocs build --strict``);
- a reStructuredText literal-block marker (``text::`` before an indented block) into ``text:``;
- a list that starts right after a line of text (``**Arguments:**`` then ``- `net`: ...``) gets the blank line that
  Python-Markdown needs to see a list.

The source files are not changed; only what the documentation shows.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?P<role>func|class|meth|mod|data|attr|obj|exc|const):`(?P<body>[^`]+)`")
_LIST_ITEM = re.compile(r"^(?:[-*+]|\d+[.)])\s")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _target(obj: griffe.Object, name: str) -> str | None:
    """The full path of ``name`` as seen from ``obj``'s scope, or None."""
    name = name.lstrip(".")
    if name.startswith("vbtjax.") or name == "vbtjax":
        return name
    head, _, rest = name.partition(".")
    try:
        path = obj.resolve(head)
    except (griffe.NameResolutionError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    return f"{path}.{rest}" if rest else path


def _roles(obj: griffe.Object, text: str) -> str:
    def replace(match: re.Match) -> str:
        body = match["body"].strip()
        explicit = re.fullmatch(r"(?P<title>.+?)\s*<(?P<path>[^>]+)>", body)
        if explicit:
            title, path = explicit["title"], explicit["path"]
        elif body.startswith("~"):
            path = body[1:]
            title = path.rsplit(".", 1)[-1]
        else:
            path = title = body
        if match["role"] in ("func", "meth") and not title.endswith(")"):
            title = f"{title}()"
        code = f"<code>{html.escape(title)}</code>"
        target = _target(obj, path)
        if target is None:
            return code
        return f'<autoref identifier="{html.escape(target)}" optional>{code}</autoref>'

    return _ROLE.sub(replace, text)


def _markdown_blocks(text: str) -> str:
    """Blank lines before lists that follow text; ``::`` literal-block markers reduced to ``:``."""
    out: list[str] = []
    in_list = False
    in_fence = False
    previous = ""
    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            stripped = line.rstrip()
            if stripped.endswith("::") and not stripped.endswith(":::"):
                line = stripped[:-1] if stripped[:-2].strip() else ""
            if not line.strip():
                in_list = False
            elif _LIST_ITEM.match(line):
                if previous.strip() and not in_list:
                    out.append("")
                in_list = True
        out.append(line)
        previous = line
    return "\n".join(out)


class MarkdownDocstrings(griffe.Extension):
    """Rewrite the docstrings of a package as described in this module's docstring."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        seen: set[str] = set()
        self._walk(pkg, seen)

    def _walk(self, obj: griffe.Object, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            obj.docstring.value = _markdown_blocks(_roles(obj, obj.docstring.value))
        for member in obj.members.values():
            if not member.is_alias:
                self._walk(member, seen)
