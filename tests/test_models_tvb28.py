import jax

jax.config.update("jax_enable_x64", True)

# The TVB 2.10 region models added for issue 28 (part 4): metadata against TVB's, and replays of golden TVB runs
# (golden/tvb28_<Model>.npz, made by golden/make_golden_models2.py with tvb-library 2.10.0 on a 20-region sub-network
# of connectivity_76) in float64, compared variable by variable as test_tvb_reference.py does.

import json  # noqa: E402
import pathlib  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from _model_checks import assert_per_region_equals_scalar  # noqa: E402
from _tvb_replay import describe, errors  # noqa: E402
from conftest import require  # noqa: E402

import vbtjax as vbt  # noqa: E402
from vbtjax.models import (  # noqa: E402
    CoombesByrne2D,
    DumontGutkin,
    EpileptorCodim3,
    EpileptorCodim3SlowMod,
    GastSchmidtKnosche_SD,
    GastSchmidtKnosche_SF,
    Hopfield,
    ReducedSetFitzHughNagumo,
    ReducedSetHindmarshRose,
    ZerlautAdaptationSecondOrder,
)

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"
MODELS = {
    cls.__name__: cls
    for cls in (
        ReducedSetFitzHughNagumo,
        ReducedSetHindmarshRose,
        EpileptorCodim3,
        EpileptorCodim3SlowMod,
        CoombesByrne2D,
        GastSchmidtKnosche_SD,
        GastSchmidtKnosche_SF,
        DumontGutkin,
        Hopfield,
        ZerlautAdaptationSecondOrder,
    )
}
MODELS["Hopfield_dynamic"] = Hopfield  # run name -> class
MODES = {"ReducedSetFitzHughNagumo": 3, "ReducedSetHindmarshRose": 3}
STATIC = {
    "EpileptorCodim3": ("N",),
    "EpileptorCodim3SlowMod": ("N",),
    "Hopfield": ("dynamic",),
    "Hopfield_dynamic": ("dynamic",),
}
"""TVB's integer parameters, static (not differentiable) fields in vbtjax."""
TOL = 1e-5
"""Largest error of a state variable relative to its own scale in the compare window (test_tvb_reference.py)."""


def _load(name):
    path = require(GOLDEN / f"tvb28_{name}.npz", "run tests/golden/make_golden_models2.py in a TVB venv")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _ref_params(d):
    out = {}
    for k in d:
        if k.startswith("param_"):
            v = np.asarray(d[k], dtype=float)
            out[k[len("param_") :]] = float(v[0]) if v.shape == (1,) else v
    return out


def _flatten(x):
    """TVB's ``(..., n_svar, N, n_modes)`` -> vbtjax's ``(..., n_svar * n_modes, N)`` (variable-major)."""
    x = np.asarray(x, dtype=float)
    *lead, n_svar, n, n_modes = x.shape
    return np.swapaxes(x, -1, -2).reshape(*lead, n_svar * n_modes, n)


def _flat_names(names, n_modes):
    return tuple(names) if n_modes == 1 else tuple(f"{v}_{m}" for v in names for m in range(n_modes))


def _bounds(meta):
    inf = float("inf")
    return {k: (-inf if lo is None else lo, inf if hi is None else hi) for k, (lo, hi) in meta.items()}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_names_defaults_and_metadata_match_tvb(name):
    cls, d = MODELS[name], _load(name)
    meta = json.loads(str(d["meta_json"]))
    assert meta["model"] == cls.__name__
    assert meta["tvb_library_version"] == "2.10.0"
    n_modes = meta["number_of_modes"]
    assert n_modes == MODES.get(name, 1)
    ref = _ref_params(d)
    static = STATIC.get(name, ())
    assert cls.parameter_names() == tuple(p for p in ref if p not in static)  # TVB's numeric parameters, in order
    model, defaults = cls(), cls().parameters()
    for p, value in ref.items():
        if p not in meta["overrides"]:
            got = getattr(model, p) if p in static else np.asarray(defaults[p])
            np.testing.assert_array_equal(got, value, err_msg=p)
    tvb_names = [str(s) for s in d["state_variables"]]
    assert cls.state_variables == _flat_names(tvb_names, n_modes)
    tvb_cvar = [int(k) for k in d["cvar"]]
    assert cls(**ref).cvar == tuple(k * n_modes + m for k in tvb_cvar for m in range(n_modes))
    flat = {}
    for v, (lo, hi) in _bounds(meta["state_variable_boundaries"]).items():
        flat.update({n: (lo, hi) for n in _flat_names([v], n_modes)})
    assert dict(cls.state_variable_boundaries) == flat
    for v, r in meta["state_variable_range"].items():
        for n in _flat_names([v], n_modes):
            assert cls.state_variable_range[n] == tuple(r), n


def _replay(name, d=None, model=None):
    """The golden run through vbt.simulate over its compare window: (got, reference), both ``(T, n_svar, N)``."""
    d = _load(name) if d is None else d
    until = json.loads((GOLDEN / "compare_until.json").read_text())[f"tvb28_{name}"]
    model = MODELS[name](**_ref_params(d)) if model is None else model
    cparams = {k[len("coupling_") :]: float(d[k][0]) for k in d if k.startswith("coupling_") and k != "coupling_name"}
    assert str(d["coupling_name"]) == "Linear"
    net = vbt.Network(
        model=model,
        connectome=vbt.Connectome(weights=d["weights"], lengths=d["tract_lengths"]),
        coupling=vbt.coupling.Linear(**cparams),
        speed=float(d["speed"]),
    )
    dt = float(d["dt"])
    assert net.horizon(dt) <= int(d["horizon"])
    n_keep = int(np.searchsorted(d["time_rel"], until + 1e-9, side="right"))
    assert n_keep >= 10, n_keep
    n_steps = int(d["step_index"][n_keep - 1]) + 1
    sol = vbt.simulate(net, t1=n_steps * dt, dt=dt, history=_flatten(d["initial_history"]), solver=vbt.Heun())
    got = np.asarray(sol.ys["raw"])[d["step_index"][:n_keep]]
    return got, _flatten(d["trajectory"][:n_keep])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_reproduces_tvb_golden_run(name):
    got, ref = _replay(name)
    assert np.all(np.isfinite(got))
    err = errors(got, ref)
    names = MODELS[name].state_variables
    assert np.all(err <= TOL), f"{name}: error per variable (of its own scale) {describe(names, err)}"
    print(f"{name}: max error per variable {err.max():.2e}")


def test_reduced_set_negative_control_mode_coupling():
    """The golden run fails when one mode-mixing constant is off by 1% (the replay can tell the models apart)."""
    d = _load("ReducedSetFitzHughNagumo")
    got, ref = _replay("ReducedSetFitzHughNagumo", d, ReducedSetFitzHughNagumo(**{**_ref_params(d), "K12": 0.1515}))
    assert np.max(errors(got, ref)) > 100 * TOL


@pytest.mark.parametrize("cls", [ReducedSetFitzHughNagumo, ReducedSetHindmarshRose])
def test_reduced_sets_per_region_parameters(cls):
    rng = np.random.default_rng(1)
    n = 4
    defaults = {k: float(v) for k, v in cls().parameters().items()}
    values = {k: v * rng.uniform(0.9, 1.1, n) for k, v in defaults.items()}
    lo, hi = np.array([cls.state_variable_range[v] for v in cls.state_variables]).T
    state = jnp.asarray(0.5 * (lo[:, None] + (hi - lo)[:, None] * rng.uniform(size=(len(lo), n))))
    cpl = jnp.asarray(rng.normal(size=(len(cls.cvar), n)))
    assert_per_region_equals_scalar(cls, values, state, cpl)


def test_reduced_sets_sum_the_xi_coupling_over_modes_only():
    """Every mode receives the sum over modes of the xi coupling; the alpha coupling rows are not used (TVB)."""
    model = ReducedSetHindmarshRose()
    state = jnp.asarray(np.random.default_rng(2).uniform(-1, 1, (18, 3)))
    cpl = np.zeros((6, 3))
    cpl[0], cpl[1], cpl[2] = 0.3, -0.1, 0.05
    dfun = jax.jit(lambda s, c: model.dfun(s, c))
    base = np.asarray(dfun(state, jnp.zeros((6, 3))))
    got = np.asarray(dfun(state, jnp.asarray(cpl))) - base
    for k in (0, 1, 2, 9, 10, 11):  # xi and alpha modes get +0.25
        np.testing.assert_allclose(got[k], 0.25, rtol=1e-12)
    np.testing.assert_allclose(np.delete(got, (0, 1, 2, 9, 10, 11), axis=0), 0.0, atol=1e-14)
    cpl[3:] = 7.0
    np.testing.assert_allclose(np.asarray(dfun(state, jnp.asarray(cpl))) - base, got, atol=1e-13)
