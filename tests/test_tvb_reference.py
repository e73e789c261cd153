"""Equivalence with TVB 2.10: every reference run in ../shared/reference, replayed in float64 through the public API,
within the tolerance of the references' README (max abs error <= 1e-4 x max|trajectory| up to compare_until)."""

import json

import jax
import numpy as np
import pytest

import vbtjax as vbt

jax.config.update("jax_enable_x64", True)

RUNS = [
    "Generic2dOscillator",
    "Generic2dOscillator_Difference",
    "MontbrioPazoRoxin",
    "JansenRit",
    "JansenRit_SigmoidalJansenRit",
    "ReducedWongWang",
    "ReducedWongWangExcInh",
    "Epileptor",
    "SupHopf",
    "Kuramoto",
    "WilsonCowan",
    "LarterBreakspear",
]


def _value(v):
    v = np.asarray(v, dtype=float).reshape(-1)
    return float(v[0]) if v.size == 1 else v


def load_reference(shared_dir, name):
    d = np.load(shared_dir / "reference" / f"{name}.npz")
    until = json.loads((shared_dir / "reference" / "compare_until.json").read_text())[name]
    return d, until


def build(d):
    params = {k[6:]: _value(d[k]) for k in d.files if k.startswith("param_")}
    cparams = {k[9:]: _value(d[k]) for k in d.files if k.startswith("coupling_") and k != "coupling_name"}
    model = getattr(vbt.models, str(d["model_name"]))(**params)
    coupling = getattr(vbt.coupling, str(d["coupling_name"]))(**cparams)
    conn = vbt.Connectome(weights=d["weights"], lengths=d["tract_lengths"])
    return vbt.Network(model=model, connectome=conn, coupling=coupling, speed=float(d["speed"]))


@pytest.mark.parametrize("name", RUNS)
def test_reproduces_tvb(shared_dir, name):
    d, until = load_reference(shared_dir, name)
    net = build(d)
    dt = float(d["dt"])
    assert list(net.model.state_variables) == [str(s) for s in d["state_variables"]]
    assert list(net.model.cvar) == list(d["cvar"])
    assert net.horizon(dt) <= int(d["horizon"])
    n_keep = int(np.searchsorted(d["time_rel"], until, side="right"))
    n_steps = int(d["step_index"][n_keep - 1]) + 1
    sol = vbt.simulate(net, t1=n_steps * dt, dt=dt, history=d["initial_history"], solver=vbt.Heun())
    ys = np.asarray(sol.ys["raw"])
    assert ys.shape == (n_steps, net.model.n_svar, 76)
    np.testing.assert_allclose(np.asarray(sol.ts["raw"])[:3], [dt, 2 * dt, 3 * dt])
    got = ys[d["step_index"][:n_keep]]
    ref = d["trajectory"][:n_keep]
    err = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
    assert err <= 1e-4, f"{name}: max relative error {err:.2e}"


def test_delays_match_tvb_discretisation(shared_dir):
    d, _ = load_reference(shared_dir, "MontbrioPazoRoxin")
    net = build(d)
    plan = net.delay_plan(float(d["dt"]))
    W, D = d["weights"], d["idelays"]
    got = np.zeros_like(D)
    got[plan.edge_target, plan.edge_source] = plan.edge_D
    np.testing.assert_array_equal(got[(W != 0) & (D > 0)], D[(W != 0) & (D > 0)])
    assert plan.horizon == D[W != 0].max() + 1
