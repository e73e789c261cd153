"""The package layout (docs/architecture.md): the earlier module paths still import as the layer modules, twins that
name classes by them still load, and the layers hold (the structure check, run on the source)."""

import ast
import importlib
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import vbtjax as vbt
from vbtjax._serialise import content_hash

EARLIER = {
    "vbtjax.connectome": "vbtjax.data.connectome",
    "vbtjax.recordings": "vbtjax.data.recordings",
    "vbtjax.sensors": "vbtjax.data.sensors",
    "vbtjax.structural": "vbtjax.data.structural",
    "vbtjax.delays": "vbtjax.simulation.delays",
    "vbtjax.solvers": "vbtjax.simulation.solvers",
    "vbtjax.simulate": "vbtjax.simulation.simulate",
    "vbtjax.sweep": "vbtjax.simulation.sweep",
    "vbtjax.monitors": "vbtjax.observation.monitors",
    "vbtjax.monitors.bold": "vbtjax.observation.monitors.bold",
    "vbtjax.features": "vbtjax.observation.features",
    "vbtjax.scenarios": "vbtjax.twin.scenarios",
    "vbtjax.outcomes": "vbtjax.twin.outcomes",
    "vbtjax.vep": "vbtjax.applications.vep",
    "vbtjax.vep.infer": "vbtjax.applications.vep.infer",
}


@pytest.mark.parametrize("old, new", EARLIER.items())
def test_earlier_paths_are_the_layer_modules(old, new):
    assert importlib.import_module(old) is importlib.import_module(new)


def test_public_names_unchanged():
    from vbtjax.connectome import Connectome
    from vbtjax.monitors.bold import Bold
    from vbtjax.vep import infer_ez

    assert Connectome is vbt.Connectome and Bold is vbt.monitors.Bold and infer_ez is vbt.vep.infer_ez
    assert callable(vbt.simulate) and callable(vbt.sweep)  # functions, not the modules of the same name
    assert vbt.twin.Twin is vbt.Twin and vbt.scenarios is importlib.import_module("vbtjax.twin.scenarios")


def test_a_twin_naming_classes_by_earlier_paths_loads(tmp_path):
    """A twin saved before the layer folders names its classes ``vbtjax.connectome:Connectome``,
    ``vbtjax.monitors...``: it loads as the same twin."""
    n = 4
    rng = np.random.default_rng(0)
    w = rng.uniform(0, 1, (n, n))
    net = vbt.Network(
        model=vbt.models.Generic2dOscillator(),
        connectome=vbt.Connectome(weights=w, lengths=rng.uniform(5, 30, (n, n))),
        coupling=vbt.coupling.Linear(a=0.01),
        noise=vbt.noise.Additive(nsig=1e-4),
    )
    twin = vbt.Twin(net, simulation={"t1": 10.0, "dt": 0.1, "history": np.full((2, n), 0.1)})
    folder = twin.save(tmp_path / "twin")
    text = (folder / "twin.json").read_text()
    assert "vbtjax.data.connectome:Connectome" in text
    for new, old in (("vbtjax.data.connectome", "vbtjax.connectome"), ("vbtjax.simulation.solvers", "vbtjax.solvers")):
        text = text.replace(f'"{new}:', f'"{old}:')
    meta = json.loads(text)
    meta.pop("content_hash")
    with np.load(folder / "arrays.npz") as z:
        arrays = {k: z[k] for k in z.files}
    meta["content_hash"] = content_hash(meta, arrays)
    (folder / "twin.json").write_text(json.dumps(meta))
    assert '"vbtjax.connectome:Connectome"' in (folder / "twin.json").read_text()
    loaded = vbt.Twin.load(folder)
    np.testing.assert_array_equal(np.asarray(loaded.network.connectome.weights), np.asarray(net.connectome.weights))
    # a path that is not the class's own module (nor an earlier path of it) is still refused
    meta["network"]["__module__"] = "vbtjax.twin.twin:Network"  # imported there, defined elsewhere
    meta["content_hash"] = content_hash({k: v for k, v in meta.items() if k != "content_hash"}, arrays)
    (folder / "twin.json").write_text(json.dumps(meta))
    with pytest.raises(vbt.twin.TwinFileError):
        vbt.Twin.load(folder)


def test_the_library_does_not_choose_a_matplotlib_backend():
    """Scripts and the CLI may pick a backend; library modules must not (issue 24)."""
    root = Path(vbt.__file__).parent
    library = [p for p in root.rglob("*.py") if "cli" not in p.relative_to(root).parts]
    chooses = [p.relative_to(root).as_posix() for p in library if "matplotlib.use(" in p.read_text()]
    assert chooses == []


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )


def test_earlier_paths_can_be_switched_off():
    """``VBTJAX_EARLIER_PATHS=0``: no alias modules are registered, the public names stay."""
    code = (
        "import importlib, sys, vbtjax as vbt\n"
        "assert not vbt.EARLIER_PATHS_REGISTERED\n"
        "assert 'vbtjax.connectome' not in sys.modules and 'vbtjax.vep.infer' not in sys.modules\n"
        "assert vbt.structural is importlib.import_module('vbtjax.data.structural')\n"
        "assert callable(vbt.vep.infer_ez) and vbt.monitors.Bold and callable(vbt.simulate)\n"
        "try:\n    importlib.import_module('vbtjax.sweep')\nexcept ImportError:\n    print('refused')\n"
    )
    off = _run_python(code, VBTJAX_EARLIER_PATHS="0")
    assert off.returncode == 0, off.stderr
    assert off.stdout.strip() == "refused"
    on = _run_python(
        "import vbtjax as vbt, sys; assert vbt.EARLIER_PATHS_REGISTERED; print(sys.modules['vbtjax.sweep'].__name__)"
    )
    assert on.returncode == 0, on.stderr
    assert on.stdout.strip() == "vbtjax.simulation.sweep"


def test_inference_package_is_a_plain_module_with_function_names():
    """No module of ``vbtjax.inference`` has the name of a function it exports, so the package needs no module class
    of its own: importing every submodule leaves ``fit``, ``nuts``, ``sbc``, ``smc`` and ``compare`` functions."""
    for name in vbt.inference._MODULES:
        importlib.import_module(f"vbtjax.inference.{name}")
    assert type(vbt.inference) is types.ModuleType
    for name in ("fit", "nuts", "sbc", "smc", "compare"):
        assert isinstance(getattr(vbt.inference, name), types.FunctionType), name


def test_problem_kinds_are_registered_not_imported():
    """``problem_from_spec`` finds the VEP through the registry the application filled on import, and a user's
    own kind the same way; the inference layer names no application module."""
    from vbtjax.sbi import problems

    assert problems.registered_problem("vep").make is vbt.vep.vep_problem is vbt.sbi.vep_problem
    for path in Path(problems.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [node.value] if isinstance(node, ast.Constant) and isinstance(node.value, str) else []
            assert not any(n.startswith(("vbtjax.applications", "..applications")) for n in names), path.name
    seen = {}

    def from_spec(conn, spec):
        seen.update(n=conn.n_regions, spec=spec)
        return "built"

    problems.register_problem("toy-test", lambda: None, from_spec)
    try:
        assert problems.problem_from_spec("toy-test", {"connectome": "76", "a": 1}) == "built"
        assert seen["n"] == 76 and seen["spec"]["a"] == 1
    finally:
        problems._KINDS.pop("toy-test")
    with pytest.raises(ValueError, match="unknown problem 'toy-test'"):
        problems.problem_from_spec("toy-test", {"connectome": "76"})
