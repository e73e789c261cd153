"""Griffe extensions used by the documentation build (``mkdocs.yml``): API pages that show every public class.

- :class:`PublicReexports`: a name re-exported with a redundant alias (``from .jansen_rit import JansenRit as
  JansenRit``, the Equinox convention of ``vbtjax/models/__init__.py`` and ``vbtjax/observation/monitors/__init__.py``)
  is public, so ``::: vbtjax.models`` renders every model; without it Griffe treats imported names as private in a
  package without ``__all__`` and the page shows only the package docstring.
- :class:`FieldsInit`: an ``eqx.Module`` has no ``__init__`` in its source (Equinox writes a dataclass one from the
  fields), nor has a typed ``NamedTuple``, so Griffe finds no signature. This extension writes that ``__init__`` from
  the source, as Griffe's own extension does for ``@dataclass``: the annotated fields of the class and its parents in
  dataclass order, without class variables and ``field(init=False)``; defaults from ``param(3.25)``
  (``vbtjax._params.param``), ``eqx.field(default=...)``, ``eqx.field(default_factory=f)`` (shown as ``f()``) or a
  plain value, as written (``7.0 * 0.34``), a private module constant replaced by its value. With
  ``merge_init_into_class`` the page shows ``JansenRit(A: Float[Array, "*N"] = 3.25, B: ... = 22.0, ...)``.
  ``tests/test_docs.py`` checks these signatures against the imported classes.

Both work from the source, without importing vbtjax. The source files are not changed; only what the documentation
shows.
"""

from __future__ import annotations

import ast
from typing import Any

import griffe


class PublicReexports(griffe.Extension):
    """Mark module-level ``from x import Y as Y`` re-exports as public (PEP 484's convention for re-exports)."""

    def on_alias_instance(self, *, node: ast.AST | griffe.ObjectNode, alias: griffe.Alias, **kwargs: Any) -> None:
        if not isinstance(node, ast.ImportFrom) or not alias.parent or not alias.parent.is_module:
            return
        if any(name.asname == name.name == alias.name for name in node.names):
            alias.public = True


def _path(expr: str | griffe.Expr) -> str:
    return str(expr if isinstance(expr, str) else expr.canonical_path)


def _last_name(expr: str | griffe.Expr) -> str:
    return _path(expr).rsplit(".", 1)[-1]


def _field(attribute: griffe.Attribute) -> griffe.Parameter | None:
    """The ``__init__`` parameter of a dataclass field, or None when the attribute is not one."""
    if attribute.annotation is None or "property" in attribute.labels:
        return None
    if "class-attribute" in attribute.labels and "instance-attribute" not in attribute.labels:
        return None  # ClassVar
    value = attribute.value
    default: str | griffe.Expr | None = value
    kind = griffe.ParameterKind.positional_or_keyword
    if isinstance(value, griffe.ExprCall) and _last_name(value.function) in ("field", "param"):
        positional = [a for a in value.arguments if not isinstance(a, griffe.ExprKeyword)]
        keywords = {a.name: a.value for a in value.arguments if isinstance(a, griffe.ExprKeyword)}
        if str(keywords.get("init")) == "False":
            return None
        if str(keywords.get("kw_only")) == "True":
            kind = griffe.ParameterKind.keyword_only
        default = keywords.get(
            "default", positional[0] if _last_name(value.function) == "param" and positional else None
        )
        if "default_factory" in keywords:
            default = griffe.ExprCall(function=keywords["default_factory"], arguments=[])
    if isinstance(default, griffe.ExprName) and default.name.startswith("_"):
        # a private module constant (``param(_P_E)``): show its value, the reader cannot look the name up
        try:
            target = attribute.modules_collection[default.canonical_path]
        except (KeyError, griffe.AliasResolutionError):
            target = None
        if isinstance(target, griffe.Attribute) and target.value is not None:
            default = target.value
    return griffe.Parameter(
        attribute.name, annotation=attribute.annotation, kind=kind, default=default, docstring=attribute.docstring
    )


def _has_fields(mro: list[griffe.Class]) -> bool:
    """Whether a class of ``mro`` names ``equinox.Module`` (``eqx.Module``) or ``typing.NamedTuple`` as a base."""
    return any(
        _path(base).startswith("equinox.") or _path(base) == "typing.NamedTuple"
        for klass in mro
        for base in klass.bases
    )


class FieldsInit(griffe.Extension):
    """Give the Equinox modules and NamedTuples without an ``__init__`` in their source (theirs or a parent's) the
    one Python generates from their fields."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        classes: list[griffe.Class] = []
        self._collect(pkg, classes, set())
        # Decide from the source alone which classes have an ``__init__`` (theirs or a parent's) before adding any.
        todo = []
        for cls in classes:
            try:
                mro = [cls, *cls.mro()]
            except ValueError:
                continue
            if _has_fields(mro) and not any("__init__" in klass.members for klass in mro):
                todo.append((cls, mro))
        for cls, mro in todo:
            fields: dict[str, griffe.Parameter] = {}
            for klass in reversed(mro):  # dataclass order: parents' fields first, an override keeps its place
                for member in klass.members.values():
                    if member.is_alias or not member.is_attribute:
                        continue
                    parameter = _field(member)
                    if parameter is not None:
                        fields[member.name] = parameter
                    elif member.name in fields and member.annotation is not None:
                        del fields[member.name]  # redeclared as a ClassVar or with init=False
            # keyword-only fields go last, as in the generated __init__
            ordered = sorted(fields.values(), key=lambda p: p.kind is griffe.ParameterKind.keyword_only)
            init = griffe.Function(
                "__init__",
                lineno=0,
                endlineno=0,
                parameters=griffe.Parameters(
                    griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword), *ordered
                ),
                returns="None",
            )
            cls.set_member("__init__", init)

    def _collect(self, obj: griffe.Module | griffe.Class, out: list[griffe.Class], seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if isinstance(obj, griffe.Class):
            out.append(obj)
        for member in obj.members.values():
            if not member.is_alias and (member.is_module or member.is_class):
                self._collect(member, out, seen)
