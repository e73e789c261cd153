"""The documentation site builds without a warning (``mkdocs build --strict``), as the issue asks of CI, and its API
pages render every public name of the modules they document (a heading with the name's anchor, not a mention in
prose), classes with their fields and defaults in the signature."""

import ast
import html
import importlib
import inspect
import math
import operator
import os
import pkgutil
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# one worker builds the site once for every test of this file
pytestmark = pytest.mark.xdist_group("docs")

# API page (docs/api/<page>.md) -> the modules whose public names it renders
API_PAGES = {
    "models": ["vbtjax.models"],
    "coupling": ["vbtjax.coupling"],
    "monitors": ["vbtjax.monitors"],
    "noise-stimulus": ["vbtjax.noise", "vbtjax.stimulus"],
    "features": ["vbtjax.features"],
    "data": [
        "vbtjax.data.connectome",
        "vbtjax.data.datasets",
        "vbtjax.data.empirical",
        "vbtjax.data.sensors",
        "vbtjax.data.recordings",
        "vbtjax.data.parcellation",
        "vbtjax.data.tractogram",
        "vbtjax.data.structural",
        "vbtjax.files",
    ],
    "inference": ["vbtjax.inference"],
    "sbi": ["vbtjax.sbi"],
    "vep": ["vbtjax.vep"],
    "scenarios": ["vbtjax.scenarios"],
    "twin": ["vbtjax.twin.twin", "vbtjax.outcomes"],
}

# Public constants without a docstring: mkdocstrings leaves undocumented objects out (``show_if_no_docstring`` is off,
# or every undocumented method would show). A new constant needs a docstring to be rendered; so do these.
UNDOCUMENTED: dict[str, set[str]] = {}  # module -> public names allowed without a heading (none at present)

# Modules without an API page: the command line (docs/getting-started.md) and the simulator's inner floor, used
# through vbt.simulate and vbt.sweep (docs/design.md).
INTERNAL = ("vbtjax.cli", "vbtjax.simulation.")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("docs") / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    res = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return site


def _page(site: Path, page: str) -> str:
    return (site / "api" / page / "index.html").read_text(encoding="utf-8")


def public_names(module: types.ModuleType) -> dict[str, object]:
    """``__all__``; without it, the names whose objects were defined in the module or, for a package, below it."""
    if hasattr(module, "__all__"):
        return {name: getattr(module, name) for name in module.__all__}
    prefix = module.__name__
    below = prefix + "." if hasattr(module, "__path__") else None
    names = {}
    for name, obj in vars(module).items():
        home = getattr(obj, "__module__", None)
        if name.startswith("_") or isinstance(obj, types.ModuleType) or not isinstance(home, str):
            continue
        if home == prefix or (below and home.startswith(below)):
            names[name] = obj
    return names


def anchors(module: types.ModuleType, name: str, obj: object, everywhere: bool = False) -> set[str]:
    """The anchors under which ``module.name`` may be rendered: its path in any loaded module of the package that
    holds it (``vbtjax.models.JansenRit``, ``vbtjax.models.jansen_rit.JansenRit``), or of any vbtjax module
    (``everywhere``: ``vbtjax.simulate`` for ``vbtjax.simulation.simulate.simulate``), or a module's own path."""
    found = {f"{module.__name__}.{name}"}
    if isinstance(obj, types.ModuleType):
        found.add(obj.__name__)
    elif isinstance(getattr(obj, "__module__", None), str):
        found.add(f"{obj.__module__}.{name}")
    package = module.__name__.rpartition(".")[0] if not hasattr(module, "__path__") else module.__name__
    package = "vbtjax" if everywhere else package
    for path, mod in list(sys.modules.items()):
        if (path == package or path.startswith(package + ".")) and getattr(mod, name, None) is obj:
            found.add(f"{mod.__name__}.{name}")
    return found


def headings(page_html: str) -> set[str]:
    """The anchors of the page's headings (``<h2 id="vbtjax.models.JansenRit" ...>``)."""
    return set(re.findall(r'<h[1-6][^>]*\bid="([^"]+)"', page_html))


def _outside(module: types.ModuleType, obj: object) -> bool:
    """Whether ``obj`` was defined outside ``module``'s package (a re-export documented on its own page)."""
    home = getattr(obj, "__module__", None)
    package = module.__name__.split(".")[:2]
    return isinstance(home, str) and not isinstance(obj, types.ModuleType) and home.split(".")[:2] != package


def missing(page_html: str, module: types.ModuleType, elsewhere: set[str] = frozenset()) -> list[str]:
    """The public names of ``module`` that have no heading on the page; a name re-exported from another package
    may have its heading on another page (``elsewhere``: the anchors of the other pages)."""
    ids = headings(page_html)
    return sorted(
        name
        for name, obj in public_names(module).items()
        if not anchors(module, name, obj) & (ids | elsewhere if _outside(module, obj) else ids)
    )


def signature(page_html: str, anchor: str) -> str:
    """The text of the signature block that follows the heading ``anchor``."""
    start = page_html.index(f'id="{anchor}"')
    heading_end = page_html.index("</h", start)
    block = re.match(
        r'\s*<div class="doc-signature[^"]*">(.*?)</div>', page_html[page_html.index(">", heading_end) + 1 :], re.S
    )
    if block is None:
        return ""
    return html.unescape(re.sub(r'<a id="__codelineno[^>]*></a>|<[^>]+>', "", block[1]))


def rendered_parameters(page_html: str, anchor: str) -> dict[str, ast.expr | None] | None:
    """The parameters of the signature under the heading ``anchor`` (``JansenRit(A: ... = 3.25, ...)``), read as the
    parameters of a Python ``def``: ``{name: default expression or None}``; None when the page shows no signature."""
    text = signature(page_html, anchor)
    if "(" not in text:
        return None
    args = ast.parse(f"def _{text[text.index('(') :].strip()}: pass").body[0].args
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + args.defaults
    return {
        **{arg.arg: default for arg, default in zip(positional, defaults, strict=True)},
        **{arg.arg: default for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True)},
    }


_NAMES = {"None": None, "True": True, "False": False, "inf": math.inf, "nan": math.nan}
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def literal(node: ast.expr) -> object:
    """The value of a rendered default: literals, arithmetic, ``float("inf")``; ValueError for anything else."""
    match node:
        case ast.Constant(value=value):
            return value
        case ast.Name(id=name) if name in _NAMES:
            return _NAMES[name]
        case ast.Tuple(elts=elts):
            return tuple(literal(e) for e in elts)
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            return -literal(operand)
        case ast.BinOp(left=left, op=op, right=right) if type(op) in _OPS:
            return _OPS[type(op)](literal(left), literal(right))
        case ast.Call(func=ast.Name(id="float"), args=[ast.Constant(value=str(value))], keywords=[]):
            return float(value)
    raise ValueError(ast.unparse(node))


def _same(shown: object, value: object) -> bool:
    if isinstance(value, tuple):
        return isinstance(shown, tuple) and len(shown) == len(value) and all(map(_same, shown, value))
    if isinstance(value, float) and isinstance(shown, int | float) and not isinstance(shown, bool):
        return math.isclose(shown, value, rel_tol=1e-12) or (math.isnan(shown) and math.isnan(value))
    return type(shown) is type(value) and shown == value


def dataclass_init(cls: type) -> bool:
    """Whether ``cls.__init__`` was written by ``dataclasses`` (every ``eqx.Module`` without an ``__init__``)."""
    return getattr(getattr(cls.__init__, "__code__", None), "co_filename", None) == "<string>"


def unrendered_fields(page_html: str, module: types.ModuleType) -> list[str]:
    """``Class.argument`` for each ``__init__`` argument of each public class of ``module`` that its signature on the
    page lacks, or shows in excess; for a generated ``__init__`` (an ``eqx.Module`` without one, a NamedTuple), also
    each argument shown with another default than the class's (numbers, strings, tuples, None)."""
    ids = headings(page_html)
    bad = []
    for name, cls in public_names(module).items():
        anchor = next(iter(sorted(anchors(module, name, cls) & ids)), None)
        if not isinstance(cls, type) or anchor is None:
            continue  # not a class, or reported by missing()
        try:
            parameters = inspect.signature(cls).parameters.values()
        except (TypeError, ValueError):
            continue  # a built-in __init__ (exceptions)
        expected = {p.name: p for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        shown = rendered_parameters(page_html, anchor) or {}
        bad += [f"{name}.{arg}" for arg in expected.keys() ^ shown.keys()]
        if not (dataclass_init(cls) or (issubclass(cls, tuple) and hasattr(cls, "_fields"))):
            continue  # written in the source: Griffe shows it as written
        for arg, p in expected.items():
            plain = isinstance(p.default, int | float | str | tuple | None)
            if arg in shown and p.default is not p.empty and plain:
                try:
                    ok = shown[arg] is not None and _same(literal(shown[arg]), p.default)
                except ValueError:
                    ok = False
                if not ok:
                    bad.append(f"{name}.{arg}")
    return sorted(bad)


def test_mkdocs_build_strict(site):
    assert (site / "api" / "vbtjax" / "index.html").is_file()


def _api_anchors(site: Path, but: str = "") -> set[str]:
    return set().union(
        *(headings(_page(site, p.name)) for p in (site / "api").iterdir() if p.is_dir() and p.name != but)
    )


@pytest.mark.parametrize("page", sorted(API_PAGES))
def test_api_page_renders_public_names(site, page):
    page_html = _page(site, page)
    elsewhere = _api_anchors(site, but=page)
    for path in API_PAGES[page]:
        module = importlib.import_module(path)
        assert public_names(module), path
        absent = set(missing(page_html, module, elsewhere)) - UNDOCUMENTED.get(module.__name__, set())
        assert not absent, f"api/{page}.md does not render these names of {path}: {sorted(absent)}"
        assert unrendered_fields(page_html, module) == [], f"api/{page}.md: fields without signature or default"


def test_top_level_names_on_an_api_page(site):
    """Every name of ``import vbtjax as vbt`` that is not a module has a heading on some API page."""
    import vbtjax

    assert missing("".join(f'<h2 id="{i}">' for i in _api_anchors(site)), vbtjax) == []


def test_every_public_module_on_an_api_page(site):
    """Every public name of every public module (but the INTERNAL ones) has a heading on some API page: a new module
    or class that no page lists fails here."""
    import vbtjax

    ids = _api_anchors(site)
    absent = {}
    for info in pkgutil.walk_packages(vbtjax.__path__, "vbtjax."):
        if "._" in info.name or info.name.startswith(INTERNAL):
            continue
        module = importlib.import_module(info.name)
        names = {
            name for name, obj in public_names(module).items() if not anchors(module, name, obj, everywhere=True) & ids
        }
        if names - UNDOCUMENTED.get(module.__name__, set()):
            absent[info.name] = sorted(names - UNDOCUMENTED.get(module.__name__, set()))
    assert absent == {}


def test_checks_fail_on_a_page_that_misses_a_class(site):
    """Negative control: the checks above see a class whose heading is gone (even when its name and path are still in
    the text), a field shown with another default, and a class shown without its signature."""
    import vbtjax.models

    page_html = _page(site, "models")

    def after(anchor: str, old: str, new: str) -> str:  # the page with the first ``old`` after the heading replaced
        return re.sub(rf'(id="{re.escape(anchor)}".*?){old}', rf"\g<1>{new}", page_html, count=1, flags=re.S)

    assert missing(page_html, vbtjax.models) == []
    no_heading = page_html.replace('id="vbtjax.models.JansenRit"', 'id="jansenrit"')
    assert missing(no_heading + "<p>JansenRit <code>vbtjax.models.JansenRit</code></p>", vbtjax.models) == ["JansenRit"]
    assert unrendered_fields(after("vbtjax.models.JansenRit", ">3\\.25<", ">3.0<"), vbtjax.models) == ["JansenRit.A"]
    no_signature = after("vbtjax.models.Linear", '<div class="doc-signature.*?</div>', "")
    assert unrendered_fields(no_signature, vbtjax.models) == ["Linear.gamma"]
