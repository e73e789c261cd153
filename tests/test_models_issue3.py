import jax

jax.config.update("jax_enable_x64", True)

# TVB 2.10's Epileptor2D, EpileptorRestingState, ZerlautAdaptationFirstOrder, CoombesByrne, ZetterbergJansen,
# DecoBalancedExcInh and Linear models: metadata, equivalence with golden TVB runs (golden/*.npz, made by
# golden/make_golden.py with tvb-library 2.10.0), hand-written equations, parameter gradients, per-region parameters.

import json  # noqa: E402
import math  # noqa: E402
import pathlib  # noqa: E402

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from _model_checks import assert_per_region_equals_scalar
from conftest import require

import vbtjax as vbt  # noqa: E402
from vbtjax.models import (  # noqa: E402
    CoombesByrne,
    DecoBalancedExcInh,
    Epileptor2D,
    EpileptorRestingState,
    Linear,
    ZerlautAdaptationFirstOrder,
    ZetterbergJansen,
)

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"
MODELS = {
    cls.__name__: cls
    for cls in (
        Epileptor2D,
        EpileptorRestingState,
        ZerlautAdaptationFirstOrder,
        CoombesByrne,
        ZetterbergJansen,
        DecoBalancedExcInh,
        Linear,
    )
}
# TVB's defaults of the parameters that the golden runs override (RUNS in golden/make_golden.py says why)
TVB_DEFAULTS_OF_OVERRIDES = {
    "Epileptor2D": {"x0": -1.6, "r": 0.00035, "Ks": 0.0},
    "EpileptorRestingState": {"x0": -1.6, "Ks": 0.0, "Kf": 0.0, "Kvf": 0.0},
    "ZerlautAdaptationFirstOrder": {
        "external_input_ex_ex": 0.0,
        "external_input_in_ex": 0.0,
        "a_i": 0.0,
        "b_i": 0.0,
        "tau_w_i": 1.0,
    },
    "CoombesByrne": {"eta": 20.0},
    "ZetterbergJansen": {},
    "DecoBalancedExcInh": {"M_i": 1.0},
    "Linear": {"gamma": -10.0},
}


def _load(name):
    return np.load(require(GOLDEN / f"{name}.npz", "run tests/golden/make_golden.py"))


def _ref_params(d):
    """``{name: float or array}``: TVB's parameters as the golden run held them (arrays keep their shape)."""
    out = {}
    for k in d.files:
        if k.startswith("param_"):
            v = np.asarray(d[k], dtype=float)
            out[k[len("param_") :]] = float(v[0]) if v.shape == (1,) else v
    return out


def _bounds(meta):
    inf = float("inf")
    return {k: (-inf if lo is None else lo, inf if hi is None else hi) for k, (lo, hi) in meta.items()}


# ------------------------------------------------------------------------------------------- (1) metadata


@pytest.mark.parametrize("name", sorted(MODELS))
def test_names_defaults_and_metadata_match_tvb(name):
    cls = MODELS[name]
    d = _load(name)
    meta = json.loads(str(d["meta_json"]))
    ref = _ref_params(d)
    assert meta["tvb_library_version"] == "2.10.0"
    # exactly TVB's numeric parameters, in TVB's declaration order
    assert cls.parameter_names() == tuple(ref)
    overrides = TVB_DEFAULTS_OF_OVERRIDES[name]
    assert sorted(overrides) == meta["overrides"]
    defaults = cls().parameters()
    for p, value in ref.items():
        got = np.asarray(defaults[p])
        if p in overrides:
            assert float(got) == overrides[p], p
            assert not np.all(np.asarray(value) == overrides[p]), p  # the run really overrides it
        else:
            np.testing.assert_array_equal(got, value, err_msg=p)
    # every param_* value is accepted as given
    model = cls(**ref)
    for p, value in ref.items():
        np.testing.assert_array_equal(np.asarray(getattr(model, p)), value)
    assert cls.state_variables == tuple(str(s) for s in d["state_variables"])
    assert cls.cvar == tuple(int(k) for k in d["cvar"])
    assert dict(cls.state_variable_boundaries) == _bounds(meta["state_variable_boundaries"])
    assert {k: tuple(v) for k, v in meta["state_variable_range"].items()} == cls.state_variable_range


def test_epileptor2d_modification_is_static_and_per_region():
    assert "modification" not in Epileptor2D.parameter_names()
    assert Epileptor2D(modification=np.array([True])).modification is True
    assert Epileptor2D(modification=[True, False]).modification == (True, False)
    assert len(jax.tree_util.tree_leaves(Epileptor2D(modification=True))) == len(Epileptor2D.parameter_names())
    with pytest.raises(ValueError, match="Epileptor2D"):
        Epileptor2D(modification=[True, False]).check_n_regions(3)
    state = [[-1.2, -1.2, -1.2], [3.0, 3.0, 3.0]]
    cpl = np.zeros((1, 3))
    mixed = _columns(Epileptor2D(modification=(True, False, True)), state, cpl)
    np.testing.assert_array_equal(mixed[:, 0], _columns(Epileptor2D(modification=True), state, cpl)[:, 0])
    np.testing.assert_array_equal(mixed[:, 1], _columns(Epileptor2D(), state, cpl)[:, 1])
    assert mixed[1, 0] != mixed[1, 1]


def test_zerlaut_coefficients_are_not_per_region_parameters():
    model = ZerlautAdaptationFirstOrder()
    assert model.P_e.shape == model.P_i.shape == (10,)
    model.check_n_regions(76)  # (10,) is not mistaken for 10 regions
    model.check_n_regions(10)
    ZerlautAdaptationFirstOrder(g=jnp.full(76, 0.2)).check_n_regions(76)
    with pytest.raises(ValueError, match="'g'"):
        ZerlautAdaptationFirstOrder(g=jnp.full(5, 0.2)).check_n_regions(76)
    with pytest.raises(ValueError, match="P_e"):
        ZerlautAdaptationFirstOrder(P_e=np.zeros(9))
    with pytest.raises(ValueError):
        ZerlautAdaptationFirstOrder(P_i=np.zeros((76, 10)))
    # a network of 76 regions accepts it
    d = _load("ZerlautAdaptationFirstOrder")
    conn = vbt.Connectome(weights=d["weights"], lengths=d["tract_lengths"])
    vbt.Network(model=model, connectome=conn, coupling=vbt.coupling.Linear(a=0.1), speed=3.0)


# ------------------------------------------------------------------------------------------- (2) TVB golden runs


@pytest.mark.parametrize("name", sorted(MODELS))
def test_reproduces_tvb_golden_run(name):
    d = _load(name)
    until = json.loads((GOLDEN / "compare_until.json").read_text())[name]
    model = MODELS[name](**_ref_params(d))
    cparams = {
        k[len("coupling_") :]: float(d[k][0]) for k in d.files if k.startswith("coupling_") and k != "coupling_name"
    }
    assert str(d["coupling_name"]) == "Linear"
    net = vbt.Network(
        model=model,
        connectome=vbt.Connectome(weights=d["weights"], lengths=d["tract_lengths"]),
        coupling=vbt.coupling.Linear(**cparams),
        speed=float(d["speed"]),
    )
    dt = float(d["dt"])
    assert net.horizon(dt) <= int(d["horizon"])
    n_keep = int(np.searchsorted(d["time_rel"], until, side="right"))
    n_steps = int(d["step_index"][n_keep - 1]) + 1
    history = np.asarray(d["initial_history"], dtype=float)  # float32-representable values, exact in float64
    sol = vbt.simulate(net, t1=n_steps * dt, dt=dt, history=history, solver=vbt.Heun())
    ys = np.asarray(sol.ys["raw"])
    assert ys.shape == (n_steps, model.n_svar, 76)
    got = ys[d["step_index"][:n_keep]]
    ref = d["trajectory"][:n_keep]
    assert np.all(np.isfinite(got))
    # the references' tolerance (README of ../shared/reference) ...
    err = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
    assert err <= 1e-4, f"{name}: max relative error {err:.2e} over {until} ms"
    # ... and the same per state variable, so that large variables do not hide small ones (measured: <= 1e-6)
    per_svar = np.max(np.abs(got - ref), axis=(0, 2))
    scale = np.max(np.abs(ref), axis=(0, 2))
    assert np.all(per_svar <= 1e-4 * scale), f"{name}: {per_svar / np.maximum(scale, 1e-300)}"


# ------------------------------------------------------------------------------------------- (3) equations by hand
# Independent scalar re-statements of TVB's equations (one region at a time, math module only).


def epileptor2d_by_hand(x1, z, C, a=1.0, b=3.0, c=1.0, d=5.0, r=0.00035, x0=-1.6, Iext=3.1, slope=0.0, Kvf=0.0,
                        Ks=0.0, tt=1.0, modification=False):  # fmt: skip
    if x1 < 0.0:
        cubic = -a * x1**3 - (d - b) * x1**2
    else:
        cubic = -d * x1**2 + slope * x1 + 0.6 * (z - 4.0) ** 2 * x1
    if modification:
        h = x0 + 3.0 / (1.0 + math.exp(-10.0 * (x1 + 0.5)))
    else:
        h = 4.0 * x1 - 4.0 * x0 - (0.1 * z**7 if z < 0.0 else 0.0)
    return [tt * (c - z + Iext + Kvf * C + cubic), tt * r * (h - z + Ks * C)]


def epileptor_rs_by_hand(s, C1, C2, C3, **p):
    q = dict(a=1.0, b=3.0, c=1.0, d=5.0, r=0.00035, x0=-1.6, Iext=3.1, slope=0.0, Iext2=0.45, tau=10.0, aa=6.0,
             bb=2.0, Kvf=0.0, Kf=0.0, Ks=0.0, tt=1.0, tau_rs=1.0, I_rs=0.0, a_rs=-2.0, b_rs=-10.0, d_rs=0.02,
             e_rs=3.0, f_rs=1.0, alpha_rs=1.0, beta_rs=1.0, gamma_rs=1.0, K_rs=1.0) | p  # fmt: skip
    x1, y1, z, x2, y2, g, xr, yr = s
    if x1 < 0.0:
        fx1 = q["a"] * x1**3 - q["b"] * x1**2
    else:
        fx1 = -(q["slope"] - x2 + 0.6 * (z - 4.0) ** 2) * x1
    zz = 4.0 * (x1 - q["x0"]) - z - (0.1 * z**7 if z < 0.0 else 0.0) + q["Ks"] * C1
    f2 = q["aa"] * (x2 + 0.25) if x2 >= -0.25 else 0.0
    epileptor = [
        y1 - fx1 - z + q["Iext"] + q["Kvf"] * C1,
        q["c"] - q["d"] * x1**2 - y1,
        q["r"] * zz,
        -y2 + x2 - x2**3 + q["Iext2"] + q["bb"] * g - 0.3 * (z - 3.5) + q["Kf"] * C2,
        (f2 - y2) / q["tau"],
        -0.01 * g + 0.001 * x1,
    ]
    fast = q["alpha_rs"] * yr - q["f_rs"] * xr**3 + q["e_rs"] * xr**2 + q["gamma_rs"] * (q["I_rs"] + q["K_rs"] * C3)
    slow = q["a_rs"] + q["b_rs"] * xr - q["beta_rs"] * yr
    return [q["tt"] * v for v in epileptor] + [q["d_rs"] * q["tau_rs"] * fast, q["d_rs"] / q["tau_rs"] * slow]


def coombes_byrne_by_hand(r, V, g, q, C, Delta=0.5, alpha=0.95, v_syn=-10.0, k=1.0, eta=20.0):
    return [
        Delta / math.pi + r * (2.0 * V - g),  # TVB: - g r (its docstring says - g r^2)
        V * V - (math.pi * r) ** 2 + eta + g * v_syn - g * V + C,
        alpha * q,
        alpha * k * math.pi * r - alpha * g - 2.0 * alpha * q,
    ]


def zetterberg_jansen_by_hand(s, C, He=3.25, Hi=22.0, ke=0.1, ki=0.05, e0=0.0025, rho_2=6.0, rho_1=0.56,
                              gamma_1=135.0, gamma_2=108.0, gamma_3=33.75, gamma_4=33.75, gamma_5=15.0, gamma_1T=1.0,
                              gamma_2T=1.0, gamma_3T=1.0, P=0.12, U=0.12, Q=0.12):  # fmt: skip
    def S(v):
        x = rho_1 * (rho_2 - v)
        return 0.0 if x > 709.0 else 2.0 * e0 / (1.0 + math.exp(x))

    def second_order(gain, k, rate, v, y, k_decay=None):  # v'' = G k rate - 2 k v' - k_decay^2 v
        k_decay = k if k_decay is None else k_decay
        return gain * k * rate - 2.0 * k * y - k_decay**2 * v

    v1, y1, v2, y2, v3, y3, v4, y4, v5, y5, _, _ = s
    u = S(C)
    return [
        y1,
        second_order(He, ke, gamma_1 * S(v2 - v3) + gamma_1T * (U + u), v1, y1),
        y2,
        second_order(He, ke, gamma_2 * S(v1) + gamma_2T * (P + u), v2, y2),
        y3,
        second_order(Hi, ki, gamma_4 * S(v4 - v5), v3, y3),
        y4,
        second_order(He, ke, gamma_3 * S(v2 - v3) + gamma_3T * (Q + u), v4, y4),
        y5,
        second_order(Hi, ki, gamma_5 * S(v4 - v5), v5, y5, k_decay=ke),  # TVB 2.10 decays v5 with ke
        y2 - y3,
        y4 - y5,
    ]


def deco_by_hand(S_e, S_i, C, M_i=1.0, a_e=310.0, b_e=125.0, d_e=0.160, gamma_e=0.641e-3, tau_e=100.0, w_p=1.4,
                 J_N=0.15, W_e=1.0, a_i=615.0, b_i=177.0, d_i=0.087, gamma_i=1e-3, tau_i=10.0, J_i=1.0, W_i=0.7,
                 I_o=0.382, I_ext=0.0, G=2.0, lamda=0.0):  # fmt: skip
    def H(y, d):
        return y / (1.0 - math.exp(-d * y))

    I_e = W_e * I_o + w_p * J_N * S_e + G * J_N * C - J_i * S_i + I_ext
    I_i = W_i * I_o + J_N * S_e - S_i + lamda * G * J_N * C
    H_e = H(M_i * a_e * I_e - M_i * b_e, d_e)
    H_i = H(M_i * a_i * I_i - M_i * b_i, d_i)
    return [gamma_e * (1.0 - S_e) * H_e - S_e / tau_e, gamma_i * H_i - S_i / tau_i]


ZERLAUT_DEFAULTS = {k: np.asarray(v) for k, v in ZerlautAdaptationFirstOrder().parameters().items()}


def zerlaut_by_hand(s, C, **p):
    q = {k: (v.tolist() if v.ndim else float(v)) for k, v in ZERLAUT_DEFAULTS.items()} | p
    E, I, W_e, W_i, ou = s

    def transfer(nu_e, nu_i, W, P, E_L):
        fe = (E + 1e-6) * (1.0 - q["g"]) * q["p_connect_e"] * q["N_tot"] + nu_e * q["K_ext_e"]
        fi = (I + 1e-6) * q["g"] * q["p_connect_i"] * q["N_tot"] + nu_i * q["K_ext_i"]
        ge, gi = q["Q_e"] * q["tau_e"] * fe, q["Q_i"] * q["tau_i"] * fi
        G = q["g_L"] + ge + gi
        Tm = q["C_m"] / G
        mu = (ge * q["E_e"] + gi * q["E_i"] + q["g_L"] * E_L - W) / G
        ke = fe * (q["Q_e"] * (q["E_e"] - mu) * q["tau_e"] / G) ** 2
        ki = fi * (q["Q_i"] * (q["E_i"] - mu) * q["tau_i"] / G) ** 2
        sigma = math.sqrt(ke / (2.0 * (q["tau_e"] + Tm)) + ki / (2.0 * (q["tau_i"] + Tm)))
        TV = (ke + ki) / (ke / (q["tau_e"] + Tm) + ki / (q["tau_i"] + Tm))
        x = [1.0, (mu + 60.0) / 10.0, (sigma - 4.0) / 6.0, TV * q["g_L"] / q["C_m"] - 0.5]
        monomials = [x[0], x[1], x[2], x[3], x[1] ** 2, x[2] ** 2, x[3] ** 2, x[1] * x[2], x[1] * x[3], x[2] * x[3]]
        threshold = 1000.0 * sum(c * m for c, m in zip(P, monomials, strict=True))
        return math.erfc((threshold - mu) / (math.sqrt(2.0) * sigma)) / (2.0 * TV), mu

    nu = max(C + q["weight_noise"] * ou, 0.0) if q["K_ext_e"] > 0 else C + q["weight_noise"] * ou
    Fe, mu_e = transfer(nu + q["external_input_ex_ex"], q["external_input_ex_in"], W_e, q["P_e"], q["E_L_e"])
    Fi, mu_i = transfer(nu + q["external_input_in_ex"], q["external_input_in_in"], W_i, q["P_i"], q["E_L_i"])
    return [
        (Fe - E) / q["T"],
        (Fi - I) / q["T"],
        q["b_e"] * E - (W_e - q["a_e"] * (mu_e - q["E_L_e"])) / q["tau_w_e"],
        q["b_i"] * I - (W_i - q["a_i"] * (mu_i - q["E_L_i"])) / q["tau_w_i"],
        -ou / q["tau_OU"],
    ]


@eqx.filter_jit
def _dfun(model, state, coupling):
    return model.dfun(state, coupling)


def _columns(model, states, coupling):
    return np.asarray(_dfun(model, jnp.asarray(states, float), jnp.asarray(coupling, float)))


@pytest.mark.parametrize("modification", [False, True])
def test_epileptor2d_matches_hand_formula_on_every_branch(modification):
    states = np.array([[-1.5, 0.4, -0.3, 0.0, -2.0], [3.0, 4.2, -0.5, 0.0, 2.5]])  # x1 < 0 / >= 0, z < 0 / >= 0
    cpl = np.array([[0.1, -0.2, 0.05, 0.0, 0.3]])
    kw = dict(a=1.1, b=2.9, c=0.9, d=5.2, r=0.0004, x0=-2.1, Iext=3.0, slope=0.2, Kvf=0.3, Ks=-0.2, tt=1.2)
    for model, by_hand in ((Epileptor2D(modification=modification, **kw), kw), (Epileptor2D(), {})):
        got = _columns(model, states, cpl)
        for i in range(states.shape[1]):
            want = epileptor2d_by_hand(*states[:, i], cpl[0, i], modification=model.modification, **by_hand)
            np.testing.assert_allclose(got[:, i], want, rtol=1e-12, atol=1e-15)
    # TVB's defaults: the x1 < 0 branch is 1 - x1^3 - 2 x1^2 - z + Iext (Proix et al.)
    x1, z = -0.7, 3.2
    got = _columns(Epileptor2D(), [[x1], [z]], [[0.0]])[0, 0]
    assert got == pytest.approx(1.0 - x1**3 - 2.0 * x1**2 - z + 3.1, rel=1e-14)


def test_epileptor_rs_matches_hand_formula():
    states = np.array(
        [
            [-1.5, 0.4, -0.3, 0.2],
            [-10.0, 1.0, -5.0, -12.0],
            [3.0, 4.2, -0.5, 3.8],
            [-1.0, -0.1, -0.25, 0.3],
            [0.5, 1.5, 0.0, 0.005],
            [0.2, -0.3, 0.0, 0.9],
            [1.5, -1.0, 3.0, 0.0],
            [-2.0, 4.0, 0.5, -6.0],
        ]
    )
    cpl = np.array([[0.1, -0.2, 0.05, 0.0], [0.02, 0.3, -0.1, 0.0], [-0.3, 0.1, 0.2, 0.0]])
    kw = dict(x0=-2.1, Iext=3.0, slope=0.2, tau=9.0, Kvf=0.3, Kf=0.4, Ks=-0.2, tt=1.2, tau_rs=1.3, I_rs=0.2,
              a_rs=-1.5, b_rs=-9.0, d_rs=0.03, e_rs=2.5, f_rs=1.1, alpha_rs=0.9, beta_rs=1.2, gamma_rs=0.8,
              K_rs=0.7)  # fmt: skip
    for model, by_hand in ((EpileptorRestingState(**kw), kw), (EpileptorRestingState(), {})):
        got = _columns(model, states, cpl)
        for i in range(4):
            want = epileptor_rs_by_hand(states[:, i], *cpl[:, i], **by_hand)
            np.testing.assert_allclose(got[:, i], want, rtol=1e-12, atol=1e-15)
    # TVB's parameters s and p are declared but not used by the equations
    base = _columns(EpileptorRestingState(**kw), states, cpl)
    np.testing.assert_array_equal(base, _columns(EpileptorRestingState(s=7.0, p=0.5, **kw), states, cpl))


def test_coombes_byrne_matches_hand_formula_and_uses_the_r_coupling_only():
    states = np.array([[0.0, 0.5, 1.7], [-1.0, 0.3, 2.0], [1.2, 1.5, 1.9], [-0.4, 0.1, 0.6]])
    c_r = np.array([0.2, -0.1, 0.05])
    kw = dict(Delta=0.7, alpha=0.9, v_syn=-8.0, k=1.2, eta=5.0)
    for model, by_hand in ((CoombesByrne(**kw), kw), (CoombesByrne(), {})):
        four = _columns(model, states, np.stack([c_r, 5.0 * np.ones(3), -3.0 * np.ones(3), 7.0 * np.ones(3)]))
        np.testing.assert_array_equal(four, _columns(model, states, c_r[None]))
        for i in range(3):
            np.testing.assert_allclose(four[:, i], coombes_byrne_by_hand(*states[:, i], c_r[i], **by_hand), rtol=1e-13)


def test_zetterberg_jansen_matches_hand_formula():
    rng = np.random.default_rng(0)
    lo, hi = np.array([ZetterbergJansen.state_variable_range[v] for v in ZetterbergJansen.state_variables]).T
    states = lo[:, None] + (hi - lo)[:, None] * rng.uniform(size=(12, 5))
    states[:, 4] = [-2000.0, 0, 2000.0, 0, 0, 0, 0, 0, 0, 0, 0, 0]  # saturated sigmoids (TVB's exp > 709 guard)
    cpl = np.array([[0.0, 6.0, -50.0, 30.0, -2000.0]])
    kw = dict(He=3.5, Hi=20.0, ke=0.11, ki=0.045, e0=0.003, rho_2=5.5, rho_1=0.6, gamma_1=130.0, gamma_2=100.0,
              gamma_3=30.0, gamma_4=35.0, gamma_5=14.0, gamma_1T=1.1, gamma_2T=0.9, gamma_3T=1.2, P=0.1, U=0.13,
              Q=0.11)  # fmt: skip
    for model, by_hand in ((ZetterbergJansen(**kw), kw), (ZetterbergJansen(), {})):
        got = _columns(model, states, cpl)
        for i in range(5):
            want = zetterberg_jansen_by_hand(states[:, i], cpl[0, i], **by_hand)
            np.testing.assert_allclose(got[:, i], want, rtol=1e-12, atol=1e-12)


def test_deco_balanced_matches_hand_formula_and_reduces_to_wong_wang_exc_inh():
    states = np.array([[0.1, 0.5, 0.9, 0.3], [0.05, 0.2, 0.7, 0.9]])
    cpl = np.array([[0.0, 0.3, 1.2, -0.2]])
    kw = dict(M_i=1.3, a_e=300.0, b_e=120.0, J_N=0.16, G=1.5, lamda=0.3, I_ext=0.05, w_p=1.3)
    got = _columns(DecoBalancedExcInh(**kw), states, cpl)
    for i in range(4):
        np.testing.assert_allclose(got[:, i], deco_by_hand(*states[:, i], cpl[0, i], **kw), rtol=1e-12)
    np.testing.assert_allclose(
        _columns(DecoBalancedExcInh(), states, cpl),
        _columns(vbt.models.ReducedWongWangExcInh(), states, cpl),
        rtol=1e-14,
    )


def test_zerlaut_matches_hand_formula():
    rng = np.random.default_rng(1)
    n = 4
    states = np.stack(
        [
            rng.uniform(1e-3, 0.25, n),
            rng.uniform(1e-3, 0.25, n),
            rng.uniform(0.0, 200.0, n),
            rng.uniform(0.0, 50.0, n),
            np.array([0.0, 1e-4, -1e-3, 2e-3]),
        ]
    )
    cpl = np.array([[0.0, 0.01, -0.05, 0.002]])  # a negative external rate is set to 0
    kw = dict(external_input_ex_ex=3e-4, external_input_ex_in=1e-4, external_input_in_ex=2e-4,
              external_input_in_in=5e-5, K_ext_i=50.0, a_i=2.0, b_i=20.0, tau_w_i=300.0, E_L_e=-64.0, Q_e=1.2,
              T=18.0, g=0.25, P_e=ZERLAUT_DEFAULTS["P_e"] * 1.05)  # fmt: skip
    for model, by_hand in ((ZerlautAdaptationFirstOrder(**kw), kw), (ZerlautAdaptationFirstOrder(), {})):
        got = _columns(model, states, cpl)
        for i in range(n):
            want = zerlaut_by_hand(states[:, i], cpl[0, i], **{k: np.asarray(v).tolist() for k, v in by_hand.items()})
            np.testing.assert_allclose(got[:, i], want, rtol=1e-11, atol=1e-15)
    # TVB's first-order model does not use S_i
    np.testing.assert_array_equal(
        _columns(ZerlautAdaptationFirstOrder(**kw), states, cpl),
        _columns(ZerlautAdaptationFirstOrder(S_i=0.3, **kw), states, cpl),
    )


def test_linear_model():
    got = _columns(Linear(gamma=jnp.array([-2.0, -0.5])), [[0.3, -1.0]], [[0.1, 0.2]])
    np.testing.assert_allclose(got, [[-0.5, 0.7]], rtol=1e-15)
    assert Linear.parameter_names() == ("gamma",)


# ------------------------------------------------------------------------------------------- finite where TVB is not


def test_values_and_gradients_stay_finite_at_singular_points():
    # DecoBalancedExcInh at y_e = 0 (TVB: 0/0): the limit 1/d_e
    S_e, S_i = 0.5, 0.2
    b_e = 310.0 * (1.4 * 0.15 * S_e - S_i + 0.382)
    state = jnp.array([[S_e], [S_i]])

    @jax.jit
    def deco(b):
        def f(b):
            return DecoBalancedExcInh(b_e=b).dfun(state, jnp.zeros((1, 1)))

        return f(b), jax.jacfwd(f)(b)

    val, jac = deco(jnp.asarray(b_e))
    assert float(val[0, 0]) == pytest.approx(-S_e / 100.0 + 0.641e-3 * (1 - S_e) / 0.16, rel=1e-9)
    assert np.all(np.isfinite(jac))

    # Zerlaut below its bounds (TVB: NaN from sqrt of a negative variance) or without inhibitory cells, and
    # ZetterbergJansen's saturated sigmoids
    @eqx.filter_jit
    def check(model, p, state, coupling):
        def f(x, s):
            return jnp.sum(eqx.tree_at(lambda m: getattr(m, p), model, x).dfun(s, coupling))

        return f(getattr(model, p), state), jax.grad(f, argnums=(0, 1))(getattr(model, p), state)

    cases = [
        (ZerlautAdaptationFirstOrder(), "g", [[-0.5], [-0.5], [10.0], [0.0], [0.0]], [[0.0]]),
        (ZerlautAdaptationFirstOrder(g=0.0), "g", [[0.1], [0.1], [10.0], [0.0], [0.0]], [[0.0]]),
        (ZetterbergJansen(), "rho_1", np.full((12, 1), -5000.0), [[1e4]]),
    ]
    for model, p, st, cp in cases:
        value, (d_param, d_state) = check(model, p, jnp.asarray(st, float), jnp.asarray(cp, float))
        assert np.isfinite(float(value)), type(model).__name__
        assert np.isfinite(float(d_param)) and np.all(np.isfinite(d_state)), type(model).__name__


# ------------------------------------------------------------------------------------------- (4) derivatives


def _random_inputs(cls, n, seed):
    """A state drawn uniformly in TVB's state_variable_range and a small coupling (NumPy, no JAX dispatch)."""
    rng = np.random.default_rng(seed)
    lo, hi = np.array([cls.state_variable_range[v] for v in cls.state_variables]).T
    state = lo[:, None] + (hi - lo)[:, None] * rng.uniform(size=(len(lo), n))
    return jnp.asarray(state), jnp.asarray(0.1 * np.abs(rng.standard_normal((len(cls.cvar), n))))


ZERLAUT_ON = dict(external_input_ex_ex=3e-4, external_input_in_ex=3e-4, a_i=2.0, b_i=20.0, tau_w_i=300.0)
GRAD_CASES = [
    (Epileptor2D(Ks=-0.2, Kvf=0.1, modification=(False, True, False, True)), ("x0", "r", "Ks", "slope")),
    (EpileptorRestingState(Ks=-0.2, Kf=0.1, Kvf=0.1), ("x0", "d_rs", "K_rs", "Iext2")),
    (ZerlautAdaptationFirstOrder(**ZERLAUT_ON), ("T", "E_L_i", "a_i", "P_e")),
    (CoombesByrne(eta=5.0), ("eta", "Delta", "alpha")),
    (ZetterbergJansen(), ("e0", "rho_1", "ke", "ki")),
    (DecoBalancedExcInh(), ("M_i", "J_N")),
    (Linear(gamma=-1.0), ("gamma",)),
]


@pytest.mark.parametrize("model, names", GRAD_CASES, ids=[f"{type(m).__name__}-{'-'.join(p)}" for m, p in GRAD_CASES])
def test_jacobian_wrt_parameters_matches_finite_differences(model, names):
    n = 4
    state, cpl = _random_inputs(type(model), n, seed=3)
    # per-region parameters as (n,) vectors; ZerlautAdaptationFirstOrder's P_e keeps its (10,) shape
    p0 = {k: jnp.asarray(np.broadcast_to(np.asarray(getattr(model, k)), (10,) if k == "P_e" else (n,)).copy())
          for k in names}  # fmt: skip

    def with_params(p):
        return eqx.tree_at(lambda m: [getattr(m, k) for k in names], model, [p[k] for k in names])

    @jax.jit
    def derivatives(p):
        def f(q):
            return with_params(q).dfun(state, cpl)

        return f(p), jax.jacrev(f)(p)  # reverse mode (grad's), {name: (n_svar, N, size)}

    f0, jac = jax.tree_util.tree_map(np.asarray, derivatives(p0))
    atol = 1e-8 * (np.max(np.abs(f0)) + 1.0)
    for k in names:
        base = np.asarray(p0[k])
        fd = np.zeros(jac[k].shape)
        for j in range(base.size):
            h = 1e-6 * max(1.0, abs(base[j]))
            e = np.zeros(base.size)
            e[j] = h
            plus = _columns(with_params(p0 | {k: jnp.asarray(base + e)}), state, cpl)
            minus = _columns(with_params(p0 | {k: jnp.asarray(base - e)}), state, cpl)
            fd[..., j] = (plus - minus) / (2 * h)
        np.testing.assert_allclose(jac[k], fd, rtol=1e-6, atol=atol, err_msg=k)
        assert np.max(np.abs(jac[k])) > 0.0, k


# ------------------------------------------------------------------------------------------- (5) per-region parameters

CASES = [
    (Epileptor2D, {"x0": [-2.4, -2.0, -1.6], "Ks": [-0.5, -0.2, 0.0], "Kvf": [0.0, 0.1, 0.2]}),
    (EpileptorRestingState, {"x0": [-2.2, -1.6, -1.2], "K_rs": [0.5, 1.0, 2.0], "Ks": [-0.2, 0.0, 0.1]}),
    (ZerlautAdaptationFirstOrder, {"T": [15.0, 20.0, 25.0], "b_e": [0.0, 30.0, 60.0], "K_ext_e": [0.0, 200.0, 400.0]}),
    (CoombesByrne, {"eta": [2.0, 5.0, 20.0], "Delta": [0.3, 0.5, 1.0]}),
    (ZetterbergJansen, {"He": [3.0, 3.25, 3.5], "ke": [0.08, 0.1, 0.12], "P": [0.1, 0.12, 0.15]}),
    (DecoBalancedExcInh, {"M_i": [0.9, 1.0, 1.2], "G": [1.0, 2.0, 3.0]}),
    (Linear, {"gamma": [-10.0, -1.0, -0.1]}),
]


@pytest.mark.parametrize("cls, values", CASES, ids=[c[0].__name__ for c in CASES])
def test_per_region_parameters_equal_scalar_runs(cls, values):
    state, cpl = _random_inputs(cls, 3, seed=1)
    cls(**{k: jnp.array(v) for k, v in values.items()}).check_n_regions(3)
    assert_per_region_equals_scalar(cls, values, state, cpl)
