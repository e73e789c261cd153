"""One compilation for tests and users: the suite compiles with options users do not have (``conftest.py`` appends
``--xla_llvm_disable_expensive_passes=true`` to ``XLA_FLAGS``; ``test_gradients.py`` compiles gradients at
``xla_backend_optimization_level=0`` without the CPU fusion emitters). Here the same float64 computations, TVB
reference replays and a gradient through ``simulate`` against central finite differences, run in two fresh
interpreters: one with the users' default flags (``XLA_FLAGS`` without the suite's addition, plain ``jax.jit``),
one with the suite's. Each must pass the tolerance of its test (TVB: ``1e-5`` of each variable's scale,
``test_tvb_reference.py``; gradient: ``1e-4`` relative, ``test_gradients.py``), and the two must agree far within
it: XLA may reorder floating-point operations (a few ulps, 1e-16 relative per step), and each replay's window ends
where TVB's own 1e-9 perturbation has grown at most 100-fold, so the two compilations may differ by 1e-12 of a scale
at most."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path

TESTS = Path(__file__).resolve().parent
CI_FLAG = "--xla_llvm_disable_expensive_passes=true"
RUNS = ("Generic2dOscillator", "JansenRit")  # a limit cycle, and the run whose small variables the old check missed
TVB_TOL = 1e-5  # test_tvb_reference.TOL
GRAD_RTOL = 1e-4  # test_gradients.RTOL
AGREE = 1e-12  # between the two compilations, of each variable's scale (see the docstring)

CHILD = textwrap.dedent(
    """
    import os
    import sys
    from pathlib import Path

    import equinox as eqx
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    import vbtjax as vbt
    from _tvb_replay import errors, load, replay

    shared, out, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    runs = sys.argv[4].split(",")
    options = {}
    if mode == "ci":  # the options of test_gradients._fast_compile_options (those this XLA knows)
        for key, value in {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}.items():
            try:
                jax.jit(lambda x: x + 1.0, compiler_options={key: value})(1.0)
                options[key] = value
            except Exception:
                pass
    res = {"env": np.array(os.environ.get("XLA_FLAGS", ""))}
    for name in runs:
        ref = load(shared, name)
        got = replay(ref)
        res[f"{name}_traj"] = got
        res[f"{name}_err"] = errors(got, ref.trajectory)

    # a gradient through simulate: 4 regions, interpolated delays, 30 ms of Generic2dOscillator
    rng = np.random.default_rng(0)
    W = rng.uniform(0.2, 1.0, (4, 4)) * (1 - np.eye(4))
    L = rng.uniform(2.0, 10.0, (4, 4)) * (1 - np.eye(4))
    x0 = jnp.asarray(rng.uniform(-0.5, 0.5, (2, 4)) + np.array([[1.0], [0.0]]))
    R = jnp.asarray(rng.normal(size=(30, 2, 4)))

    base = vbt.Network(model=vbt.models.Generic2dOscillator(I=0.3), connectome=vbt.Connectome(weights=W, lengths=L),
                       coupling=vbt.coupling.Linear(a=0.1), speed=2.0, delay_mode="interpolate", speed_range=(1.5, 2.5))

    def loss(p):
        net = eqx.tree_at(lambda n: (n.model.I, n.coupling.a, n.speed), base, (p[0], p[1], p[2]))
        ys = vbt.simulate(net, 30.0, 0.1, history=x0, monitors=vbt.monitors.TemporalAverage(period=1.0)).ys
        return jnp.mean(R * ys**2)

    p0 = jnp.array([0.3, 0.1, 2.0])
    grad = jax.jit(jax.grad(loss), compiler_options=options or None)(p0)
    f = jax.jit(loss, compiler_options=options or None)
    h = 1e-5 * np.abs(np.asarray(p0))
    fd = np.array([(f(p0.at[i].add(h[i])) - f(p0.at[i].add(-h[i]))) / (2 * h[i]) for i in range(3)])
    res["grad"], res["fd"], res["loss"] = np.asarray(grad), fd, np.asarray(f(p0))
    np.savez(out, **res)
    """
)


def _run(tmp_path, mode, xla_flags):
    env = dict(
        os.environ, XLA_FLAGS=xla_flags, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    )
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    out = tmp_path / f"{mode}.npz"
    shared = shared_path()
    for name in RUNS:
        shared_path("reference", f"{name}.npz")
    proc = subprocess.run(
        [sys.executable, str(script), str(shared), str(out), mode, ",".join(RUNS)],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.slow
def test_users_default_compilation_agrees_with_the_suites(tmp_path):
    flags = os.environ.get("XLA_FLAGS", "")  # conftest.py appended CI_FLAG unless the option was already named
    users = " ".join(f for f in flags.split() if not f.startswith("--xla_llvm_disable_expensive_passes"))
    suite = f"{users} {CI_FLAG}".strip()
    default = _run(tmp_path, "default", users)
    ci = _run(tmp_path, "ci", suite)
    assert "expensive_passes" not in str(default["env"]) and CI_FLAG in str(ci["env"])
    for res, mode in ((default, "default"), (ci, "ci")):
        for name in RUNS:
            assert np.all(res[f"{name}_err"] <= TVB_TOL), (mode, name, res[f"{name}_err"])
        np.testing.assert_allclose(res["grad"], res["fd"], rtol=GRAD_RTOL, err_msg=mode)
        assert np.all(np.abs(res["grad"]) > 1e-6), res["grad"]  # a gradient worth comparing
    for name in RUNS:
        a, b = default[f"{name}_traj"], ci[f"{name}_traj"]
        scale = np.max(np.abs(a), axis=(0, 2))
        diff = np.max(np.abs(a - b), axis=(0, 2)) / scale
        assert np.all(diff <= AGREE), (name, diff)
    np.testing.assert_allclose(default["grad"], ci["grad"], rtol=1e-10)
    np.testing.assert_allclose(default["loss"], ci["loss"], rtol=1e-12)
