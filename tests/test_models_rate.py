import jax

jax.config.update("jax_enable_x64", True)

import json  # noqa: E402
import math  # noqa: E402

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import shared_path  # noqa: E402

from vbtjax.models import (  # noqa: E402
    LarterBreakspear,
    ReducedWongWang,
    ReducedWongWangExcInh,
    WilsonCowan,
)

MODELS = [ReducedWongWang, ReducedWongWangExcInh, WilsonCowan, LarterBreakspear]


@eqx.filter_jit
def dfun(model, state, coupling):
    return model.dfun(state, coupling)


def _ref(cls):
    return np.load(shared_path("reference", f"{cls.__name__}.npz"))


# ---------------------------------------------------------------------------------------------------------------------
# (1) names, defaults, state variables, coupling variables, ranges and bounds against TVB's reference files
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_parameters_and_metadata_match_tvb_reference(cls):
    d = _ref(cls)
    ref_names = [k[len("param_") :] for k in d.files if k.startswith("param_")]
    assert list(cls.parameter_names()) == ref_names  # same names, in TVB's declaration order
    model = cls()
    for name in ref_names:
        np.testing.assert_array_equal(np.asarray(getattr(model, name)).reshape(-1), d[f"param_{name}"], err_msg=name)
    assert list(cls.state_variables) == [str(s) for s in d["state_variables"]]
    assert list(cls.cvar) == [int(c) for c in d["cvar"]]
    meta = json.loads(str(d["meta_json"]))
    bounds = {k: tuple(v) for k, v in meta["state_variable_boundaries"].items()}
    assert {k: tuple(v) for k, v in cls.state_variable_boundaries.items()} == bounds
    # every param_* key is accepted as a keyword
    cls(**{name: float(d[f"param_{name}"][0]) for name in ref_names})


def test_tvb_default_ranges():
    assert ReducedWongWang.state_variable_range == {"S": (0.0, 1.0)}
    assert ReducedWongWangExcInh.state_variable_range == {"S_e": (0.0, 1.0), "S_i": (0.0, 1.0)}
    assert WilsonCowan.state_variable_range == {"E": (0.0, 1.0), "I": (0.0, 1.0)}
    assert LarterBreakspear.state_variable_range == {v: (-1.5, 1.5) for v in "VWZ"}
    assert WilsonCowan().shift_sigmoid is True
    assert "shift_sigmoid" not in WilsonCowan.parameter_names()


def test_wong_wang_bounds_clip_S():
    x = jnp.array([[-0.2, 0.5, 1.3]])
    np.testing.assert_array_equal(ReducedWongWang().bound(x), [[0.0, 0.5, 1.0]])
    y = jnp.array([[-0.1, 0.2, 2.0], [1.5, -3.0, 0.4]])
    np.testing.assert_array_equal(ReducedWongWangExcInh().bound(y), [[0.0, 0.2, 1.0], [1.0, 0.0, 0.4]])


# ---------------------------------------------------------------------------------------------------------------------
# (2) dfun against the equations written out independently, region by region in plain Python
# ---------------------------------------------------------------------------------------------------------------------
def rww_by_hand(S, c, p):
    x = p["w"] * p["J_N"] * S + p["I_o"] + p["J_N"] * c
    u = p["a"] * x - p["b"]
    rate = u / (1.0 - math.exp(-p["d"] * u))
    return [-S / p["tau_s"] + p["gamma"] * (1.0 - S) * rate]


def rww_ei_by_hand(S_e, S_i, c, p):
    def rate(u, d):
        return u / (1.0 - math.exp(-d * u))

    net = p["G"] * p["J_N"] * c
    I_e = p["W_e"] * p["I_o"] + p["w_p"] * p["J_N"] * S_e - p["J_i"] * S_i + net + p["I_ext"]
    I_i = p["W_i"] * p["I_o"] + p["J_N"] * S_e - S_i + p["lamda"] * net
    r_e = rate(p["a_e"] * I_e - p["b_e"], p["d_e"])
    r_i = rate(p["a_i"] * I_i - p["b_i"], p["d_i"])
    return [-S_e / p["tau_e"] + p["gamma_e"] * r_e * (1.0 - S_e), -S_i / p["tau_i"] + p["gamma_i"] * r_i]


def wc_by_hand(E, I, cE, p, shift=True):
    def logistic(x, a, b):
        return 1.0 / (1.0 + math.exp(-a * (x - b)))

    xe = p["alpha_e"] * (p["c_ee"] * E - p["c_ei"] * I + p["P"] - p["theta_e"] + cE)
    xi = p["alpha_i"] * (p["c_ie"] * E - p["c_ii"] * I + p["Q"] - p["theta_i"])
    se = logistic(xe, p["a_e"], p["b_e"]) - (logistic(0.0, p["a_e"], p["b_e"]) if shift else 0.0)
    si = logistic(xi, p["a_i"], p["b_i"]) - (logistic(0.0, p["a_i"], p["b_i"]) if shift else 0.0)
    dE = (-E + (p["k_e"] - p["r_e"] * E) * p["c_e"] * se) / p["tau_e"]
    dI = (-I + (p["k_i"] - p["r_i"] * I) * p["c_i"] * si) / p["tau_i"]
    return [dE, dI]


def lb_by_hand(V, W, Z, cV, p):
    # 0.5 * (1 + tanh(u)) written as the logistic 1 / (1 + exp(-2u))
    def half(u):
        return 1.0 / (1.0 + math.exp(-2.0 * u))

    mCa = half((V - p["TCa"]) / p["d_Ca"])
    mNa = half((V - p["TNa"]) / p["d_Na"])
    mK = half((V - p["TK"]) / p["d_K"])
    QV = p["QV_max"] * half((V - p["VT"]) / p["d_V"])
    QZ = p["QZ_max"] * half((Z - p["ZT"]) / p["d_Z"])
    exc = (1.0 - p["C"]) * QV + p["C"] * cV  # local and long-range excitation
    I_Ca = (p["gCa"] + p["rNMDA"] * p["aee"] * exc) * mCa * (V - p["VCa"])
    I_K = p["gK"] * W * (V - p["VK"])
    I_L = p["gL"] * (V - p["VL"])
    I_Na = (p["gNa"] * mNa + p["aee"] * exc) * (V - p["VNa"])
    dV = -I_Ca - I_K - I_L - I_Na - p["aie"] * Z * QZ + p["ane"] * p["Iext"]
    dW = p["phi"] * (mK - W) / p["tau_K"]
    dZ = p["b"] * (p["ani"] * p["Iext"] + p["aei"] * V * QV)
    return [p["t_scale"] * dV, p["t_scale"] * dW, p["t_scale"] * dZ]


def _scalars(model):
    return {k: float(v) for k, v in model.parameters().items()}


def _check_by_hand(model, state, coupling, by_hand, **kw):
    got = np.asarray(dfun(model, jnp.asarray(state), jnp.asarray(coupling)))
    p = _scalars(model)
    want = np.array([by_hand(*state[:, i], coupling[0, i], p, **kw) for i in range(state.shape[1])]).T
    assert got.shape == state.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_reduced_wong_wang_by_hand():
    state = np.array([[0.0, 0.1, 0.45, 0.9, 1.0]])
    coupling = np.array([[0.0, 0.02, -0.05, 0.3, 0.1]])
    _check_by_hand(ReducedWongWang(), state, coupling, rww_by_hand)
    _check_by_hand(ReducedWongWang(w=0.9, J_N=0.3, I_o=0.3, tau_s=80.0, gamma=0.5), state, coupling, rww_by_hand)


def test_reduced_wong_wang_exc_inh_by_hand():
    state = np.array([[0.0, 0.2, 0.5, 0.8, 1.0], [0.0, 0.6, 0.1, 0.3, 1.0]])
    coupling = np.array([[0.0, 0.05, 0.3, -0.1, 0.6]])
    _check_by_hand(ReducedWongWangExcInh(), state, coupling, rww_ei_by_hand)
    other = ReducedWongWangExcInh(lamda=0.4, G=1.3, I_ext=0.02, w_p=1.2, J_i=0.8)
    _check_by_hand(other, state, coupling, rww_ei_by_hand)


@pytest.mark.parametrize("shift", [True, False])
def test_wilson_cowan_by_hand(shift):
    state = np.array([[0.0, 0.1, 0.4, 0.7, 1.0], [0.0, 0.3, 0.2, 0.9, 0.5]])
    coupling = np.array([[0.0, 0.2, -0.3, 1.1, 0.05], [9.0, 9.0, 9.0, 9.0, 9.0]])  # row 1 (from I) is unused
    model = WilsonCowan(shift_sigmoid=shift, P=0.5, Q=0.2, theta_e=0.3, alpha_i=1.5, c_e=1.2, k_i=0.9, r_e=0.8)
    _check_by_hand(model, state, coupling, wc_by_hand, shift=shift)
    _check_by_hand(WilsonCowan(shift_sigmoid=shift), state, coupling, wc_by_hand, shift=shift)


def test_larter_breakspear_by_hand():
    state = np.array([[-0.5, -0.1, 0.0, 0.2, 0.6], [0.0, 0.3, -0.2, 0.5, 0.1], [-0.1, 0.05, 0.0, 0.2, -0.3]])
    coupling = np.array([[0.0, 0.01, 0.05, 0.2, 0.5]])
    _check_by_hand(LarterBreakspear(), state, coupling, lb_by_hand)
    other = LarterBreakspear(C=0.3, t_scale=0.5, VT=0.1, QV_max=0.8, ZT=0.05, tau_K=2.0)
    _check_by_hand(other, state, coupling, lb_by_hand)


def test_wong_wang_rate_at_its_removable_singularity():
    # a x - b = 0: TVB's quotient is 0/0; the limit of u / (1 - exp(-d u)) is 1/d
    m = ReducedWongWang(I_o=0.108 / 0.270, w=0.0)
    S = jnp.array([[0.3]])
    got = float(dfun(m, S, jnp.zeros((1, 1)))[0, 0])
    assert got == pytest.approx(-0.3 / 100.0 + 0.641 * 0.7 / 154.0, rel=1e-14)
    # continuous across the switch between series and quotient, with finite gradients
    us = np.array([-2e-3, -1.0001e-3 / 154, -0.9999e-3 / 154, 0.0, 0.9999e-3 / 154, 1.0001e-3 / 154, 2e-3])
    c = jnp.asarray(us / (0.270 * 0.2609))[None]
    S0 = jnp.zeros((1, us.size))
    vals = np.asarray(dfun(ReducedWongWang(I_o=0.4, w=0.0), S0, c)[0])
    want = [0.641 * (u / (1 - math.exp(-154 * u)) if u != 0 else 1 / 154) for u in us]
    np.testing.assert_allclose(vals, want, rtol=1e-12)
    g = jax.jit(jax.grad(lambda a: ReducedWongWang(I_o=0.4, w=0.0, a=a).dfun(S0, c).sum()))(0.270)
    h = 1e-7
    fd = dfun(ReducedWongWang(I_o=0.4, w=0.0, a=0.270 + h), S0, c) - dfun(
        ReducedWongWang(I_o=0.4, w=0.0, a=0.270 - h), S0, c
    )
    assert np.isfinite(g) and float(g) == pytest.approx(float(fd.sum()) / (2 * h), rel=1e-6)
    # far below threshold the exponential would overflow: value ~0, gradient finite
    big = ReducedWongWangExcInh(b_i=1e5)
    st = jnp.array([[0.5], [0.5]])
    assert np.all(np.isfinite(np.asarray(dfun(big, st, jnp.zeros((1, 1))))))
    grad_b_i = jax.jit(jax.grad(lambda b: ReducedWongWangExcInh(b_i=b).dfun(st, jnp.zeros((1, 1))).sum()))
    assert np.isfinite(grad_b_i(1e5))


# ---------------------------------------------------------------------------------------------------------------------
# (3) per-region parameters equal per-region scalar runs (also under jit and vmap)
# ---------------------------------------------------------------------------------------------------------------------
CASES = {
    ReducedWongWang: {"w": [0.4, 0.6, 0.9], "I_o": [0.3, 0.33, 0.36], "tau_s": [80.0, 100.0, 120.0]},
    ReducedWongWangExcInh: {"G": [0.5, 2.0, 3.0], "J_i": [0.8, 1.0, 1.2], "lamda": [0.0, 0.2, 0.5]},
    WilsonCowan: {"P": [0.0, 0.5, 1.0], "c_ee": [11.0, 12.0, 14.0], "tau_i": [8.0, 10.0, 20.0]},
    LarterBreakspear: {"d_V": [0.6, 0.65, 0.7], "C": [0.0, 0.1, 0.3], "t_scale": [0.5, 1.0, 2.0]},
}


def _state(cls, n, seed=0):
    """Uniform random states in TVB's default ranges (NumPy, so that no eager JAX op is compiled)."""
    rng = np.random.default_rng(seed)
    lo, hi = np.array([cls.state_variable_range[v] for v in cls.state_variables]).T
    return lo[:, None] + rng.uniform(size=(len(lo), n)) * (hi - lo)[:, None]


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_per_region_parameters(cls):
    hetero = {k: np.asarray(v) for k, v in CASES[cls].items()}
    n = 3
    state = _state(cls, n)
    coupling = 0.1 * np.random.default_rng(1).normal(size=(len(cls.cvar), n))
    model = cls(**hetero)
    model.check_n_regions(n)
    got = np.asarray(dfun(model, state, coupling))

    # region i alone, with scalar parameters hetero[k][i]: vmapped over regions, under jit
    @jax.jit
    @jax.vmap
    def one_region(params, s, c):
        return cls(**params).dfun(s[:, None], c[:, None])[:, 0]

    want = np.asarray(one_region(hetero, state.T, coupling.T)).T
    np.testing.assert_allclose(got, want, rtol=1e-13)
    with pytest.raises(ValueError):
        model.check_n_regions(5)


# ---------------------------------------------------------------------------------------------------------------------
# (4) derivatives with respect to parameters and state against central finite differences
# ---------------------------------------------------------------------------------------------------------------------
GRAD_CASES = [
    (ReducedWongWang, "a"),
    (ReducedWongWangExcInh, "G"),
    (WilsonCowan, "a_e"),
    (LarterBreakspear, "d_V"),
]

# states where both populations are active (with random states the inhibitory gating often silences S_e)
GRAD_STATES = {ReducedWongWangExcInh: np.array([[0.1, 0.3, 0.5, 0.7], [0.0, 0.02, 0.05, 0.1]])}


@pytest.mark.parametrize("cls,name", GRAD_CASES, ids=lambda x: getattr(x, "__name__", x))
def test_parameter_gradient_matches_finite_differences(cls, name):
    n = 4
    state = GRAD_STATES.get(cls, _state(cls, n, seed=3))
    coupling = np.linspace(0.0, 0.2, n)[None].repeat(len(cls.cvar), 0)
    p0 = float(getattr(cls(), name))
    h = 1e-6 * max(abs(p0), 1.0)

    def f(v):
        return cls(**{name: v}).dfun(state, coupling)

    @jax.jit
    def everything(v):
        f_minus, f_plus = jax.vmap(f)(jnp.stack([v - h, v + h]))
        value, jvp = jax.jvp(f, (v,), (jnp.ones_like(v),))  # forward mode: d dfun / d v
        grad = jax.grad(lambda u: jnp.sum(f(u) ** 2))(v)  # reverse mode through the same function
        return f_minus, f_plus, value, jvp, grad

    f_minus, f_plus, value, jac, grad = map(np.asarray, everything(jnp.asarray(p0)))
    fd = (f_plus - f_minus) / (2 * h)
    assert np.abs(jac).max() > 0
    np.testing.assert_allclose(jac, fd, rtol=1e-6, atol=1e-7 * np.abs(jac).max())
    np.testing.assert_allclose(grad, np.sum(2 * value * jac), rtol=1e-10)


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_state_jacobian_matches_finite_differences(cls):
    model = cls()
    state = _state(cls, 2, seed=4)
    coupling = np.full((len(cls.cvar), 2), 0.03)
    h = 1e-6
    shifts = np.zeros((2 * model.n_svar,) + state.shape)  # +h and -h on each state variable of region 1
    for k in range(model.n_svar):
        shifts[2 * k, k, 1], shifts[2 * k + 1, k, 1] = h, -h

    @eqx.filter_jit
    def jacobian_and_shifted(m, x, c):
        jac = jax.jacfwd(lambda s: m.dfun(s, c))(x)  # (n_svar, 2, n_svar, 2)
        return jac, jax.vmap(lambda e: m.dfun(x + e, c))(shifts)

    jac, vals = map(np.asarray, jacobian_and_shifted(model, state, coupling))
    for k in range(model.n_svar):
        fd = (vals[2 * k] - vals[2 * k + 1]) / (2 * h)
        np.testing.assert_allclose(jac[:, :, k, 1], fd, rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------------------------------------------------------------
# (5) the first 5 ms of TVB's own network runs (delays, coupling and Heun written out here in NumPy)
# ---------------------------------------------------------------------------------------------------------------------
def _tvb_coupling(d, x_delayed):
    """``x_delayed[k, i, j]``: coupling variable k of source j as seen by target i. Returns (n_cvar, N)."""
    name = str(d["coupling_name"])
    a = float(d["coupling_a"][0])
    if name == "Linear":
        return a * np.einsum("ij,kij->ki", d["weights"], x_delayed) + float(d["coupling_b"][0])
    if name == "HyperbolicTangent":
        b, mid, sigma = (float(d[f"coupling_{k}"][0]) for k in ("b", "midpoint", "sigma"))
        pre = a * (1.0 + np.tanh((b * x_delayed - mid) / sigma))
        return np.einsum("ij,kij->ki", d["weights"], pre)
    raise NotImplementedError(name)


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_first_five_ms_of_tvb_reference_run(cls):
    d = _ref(cls)
    model = cls(**{k[len("param_") :]: float(d[k][0]) for k in d.files if k.startswith("param_")})
    cvar = list(cls.cvar)
    dt, H = float(d["dt"]), int(d["horizon"])
    D = d["idelays"].astype(int)
    cols = np.arange(D.shape[0])[None, :]
    hist = [h[cvar] for h in d["initial_history"]]  # hist[k]: coupling variables at step k
    x = d["initial_history"][-1]
    steps = int(d["step_index"][4]) + 1  # trajectory[4] is the state 5 ms after t0
    out = []
    for n in range(steps):
        k = H - 1 + n
        delayed = np.stack([np.stack(hist)[k - D, v, cols] for v in range(len(cvar))])  # (n_cvar, N, N)
        c = _tvb_coupling(d, delayed)
        d1 = np.asarray(dfun(model, x, c))
        x_pred = np.asarray(model.bound(jnp.asarray(x + dt * d1)))
        d2 = np.asarray(dfun(model, x_pred, c))
        x = np.asarray(model.bound(jnp.asarray(x + dt * 0.5 * (d1 + d2))))
        hist.append(x[cvar])
        out.append(x)
    got = np.stack(out)[d["step_index"][:5]]
    ref = d["trajectory"][:5]
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6 * np.abs(ref).max())
