import jax

jax.config.update("jax_enable_x64", True)

import json  # noqa: E402
import math  # noqa: E402

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from _model_checks import assert_per_region_equals_scalar  # noqa: E402
from conftest import shared_path  # noqa: E402

from vbtjax.models import Epileptor, Generic2dOscillator, JansenRit, Kuramoto, SupHopf  # noqa: E402

# reference file -> (model class, parameters the run sets away from TVB's default: README.md / CONVENTIONS.md §7)
RUNS = {
    "Generic2dOscillator": (Generic2dOscillator, {"a": 4.0}),
    "Generic2dOscillator_Difference": (Generic2dOscillator, {"a": 4.0}),
    "SupHopf": (SupHopf, {"a": 0.2}),
    "Kuramoto": (Kuramoto, {}),
    "JansenRit": (JansenRit, {}),
    "JansenRit_SigmoidalJansenRit": (JansenRit, {}),
    "Epileptor": (Epileptor, {"Ks": -0.2}),
}
# TVB's defaults of the overridden parameters (from TVB's sources, oscillator.py / epileptor.py)
TVB_DEFAULTS_OF_OVERRIDES = {"Generic2dOscillator": {"a": -2.0}, "SupHopf": {"a": -0.5}, "Epileptor": {"Ks": 0.0}}


def _load(run):
    return np.load(shared_path("reference", f"{run}.npz"))


def _ref_params(d):
    return {k[len("param_") :]: float(np.asarray(d[k]).reshape(-1)[0]) for k in d.files if k.startswith("param_")}


# ------------------------------------------------------------------------------------------- (1) metadata


@pytest.mark.parametrize("run", sorted(RUNS))
def test_names_defaults_and_metadata_match_tvb_reference(run):
    cls, overrides = RUNS[run]
    d = _load(run)
    ref = _ref_params(d)
    # the model declares exactly TVB's numeric parameters, in TVB's order
    assert cls.parameter_names() == tuple(ref)
    # TVB's defaults, except the documented per-run overrides
    defaults = cls().parameters()
    for name, value in ref.items():
        if name in overrides:
            assert value == overrides[name]
            expected = TVB_DEFAULTS_OF_OVERRIDES[cls.__name__][name]
        else:
            expected = value
        assert float(defaults[name]) == expected, name
    # and every param_* key is accepted as a keyword
    model = cls(**ref)
    for name, value in ref.items():
        assert float(getattr(model, name)) == value
    assert cls.state_variables == tuple(str(s) for s in d["state_variables"])
    assert cls.cvar == tuple(int(k) for k in d["cvar"])
    meta = json.loads(str(d["meta_json"]))
    assert dict(cls.state_variable_boundaries) == meta["state_variable_boundaries"] == {}


@pytest.mark.parametrize("run", ["Generic2dOscillator", "Kuramoto", "Epileptor"])
def test_state_variable_range_matches_tvb(run):
    # these runs drew their initial history from the model's own state_variable_range
    cls, _ = RUNS[run]
    meta = json.loads(str(_load(run)["meta_json"]))
    ranges = {k: tuple(v) for k, v in meta["init_ranges"].items()}
    assert set(ranges) == set(cls.state_variable_range)
    for name, (lo, hi) in ranges.items():
        assert cls.state_variable_range[name] == pytest.approx((lo, hi)), name


def test_tvb_state_variable_ranges_of_overridden_runs():
    assert SupHopf.state_variable_range == {"x": (-5.0, 5.0), "y": (-5.0, 5.0)}
    assert JansenRit.state_variable_range == {
        "y0": (-1.0, 1.0),
        "y1": (-500.0, 500.0),
        "y2": (-50.0, 50.0),
        "y3": (-6.0, 6.0),
        "y4": (-20.0, 20.0),
        "y5": (-500.0, 500.0),
    }


def test_epileptor_modification_is_static_and_not_a_parameter():
    assert "modification" not in Epileptor.parameter_names()
    assert "modification" not in Epileptor(modification=True).parameters()
    assert Epileptor().modification is False
    assert Epileptor(modification=np.array([True])).modification is True  # TVB's NArray form
    assert Epileptor(modification=[True, False]).modification == (True, False)
    # the switch is not a leaf: gradients and jit see only the numeric parameters
    leaves = jax.tree_util.tree_leaves(Epileptor(modification=True))
    assert len(leaves) == len(Epileptor.parameter_names())
    with pytest.raises(ValueError):
        Epileptor(modification=[True, False]).check_n_regions(3)


# ------------------------------------------------------------------------------------------- (2) equations by hand
# Independent scalar re-statements of TVB's equations (one region at a time, math module only).


def g2d_by_hand(
    V, W, cV, tau=1.0, I=0.0, a=-2.0, b=-10.0, c=0.0, d=0.02, e=3.0, f=1.0, g=0.0, alpha=1.0, beta=1.0, gamma=1.0
):
    fast = -f * V**3 + e * V**2 + g * V + alpha * W + gamma * (I + cV)
    slow = c * V**2 + b * V - beta * W + a
    return [d * tau * fast, d / tau * slow]


def suphopf_by_hand(x, y, cx, cy, a=-0.5, omega=1.0):
    # polar form: r' = (a - r^2) r, phi' = omega, plus the coupling
    r2 = x * x + y * y
    return [(a - r2) * x - omega * y + cx, (a - r2) * y + omega * x + cy]


def jansen_rit_by_hand(
    y,
    c0,
    A=3.25,
    B=22.0,
    a=0.1,
    b=0.05,
    v0=5.52,
    nu_max=0.0025,
    r=0.56,
    J=135.0,
    a_1=1.0,
    a_2=0.8,
    a_3=0.25,
    a_4=0.25,
    mu=0.22,
):
    def S(v):
        return 2.0 * nu_max / (1.0 + math.exp(r * (v0 - v)))

    # second-order form: y'' = G k * input - 2 k y' - k^2 y
    def psp(gain, k, inp, pos, vel):
        return gain * k * inp - 2.0 * k * vel - k**2 * pos

    return [
        y[3],
        y[4],
        y[5],
        psp(A, a, S(y[1] - y[2]), y[0], y[3]),
        psp(A, a, mu + a_2 * J * S(a_1 * J * y[0]) + c0, y[1], y[4]),
        psp(B, b, a_4 * J * S(a_3 * J * y[0]), y[2], y[5]),
    ]


def epileptor_by_hand(
    s,
    c1,
    c2,
    a=1.0,
    b=3.0,
    c=1.0,
    d=5.0,
    r=0.00035,
    x0=-1.6,
    Iext=3.1,
    slope=0.0,
    Iext2=0.45,
    tau=10.0,
    aa=6.0,
    bb=2.0,
    Kvf=0.0,
    Kf=0.0,
    Ks=0.0,
    tt=1.0,
    modification=False,
):
    x1, y1, z, x2, y2, g = s
    if x1 < 0:
        fx1 = a * x1**3 - b * x1**2  # subtracted below
    else:
        fx1 = -(slope - x2 + 0.6 * (z - 4.0) ** 2) * x1
    if modification:
        h = x0 + 3.0 / (1.0 + math.exp(-(x1 + 0.5) / 0.1))
    else:
        h = 4.0 * (x1 - x0) - (0.1 * z**7 if z < 0 else 0.0)
    f2 = aa * (x2 + 0.25) if x2 >= -0.25 else 0.0
    out = [
        y1 - fx1 - z + Iext + Kvf * c1,
        c - d * x1**2 - y1,
        r * (h - z + Ks * c1),
        -y2 + x2 - x2**3 + Iext2 + bb * g - 0.3 * (z - 3.5) + Kf * c2,
        (-y2 + f2) / tau,
        -0.01 * (g - 0.1 * x1),
    ]
    return [tt * v for v in out]


@eqx.filter_jit
def _dfun(model, state, coupling):
    return model.dfun(state, coupling)


def _columns(model, states, coupling):
    return np.asarray(_dfun(model, jnp.asarray(states, float), jnp.asarray(coupling, float)))


def test_generic2d_matches_hand_formula():
    states = np.array([[-1.3, 0.0, 0.7, 2.5], [2.0, -4.0, 0.3, -1.1]])
    cpl = np.array([[0.3, -0.2, 0.0, 1.7]])
    kw = dict(tau=1.3, I=0.4, a=4.0, b=-9.0, c=0.5, d=0.03, e=2.5, f=1.2, g=0.3, alpha=0.9, beta=1.1, gamma=-0.7)
    got = _columns(Generic2dOscillator(**kw), states, cpl)
    for i in range(4):
        np.testing.assert_allclose(got[:, i], g2d_by_hand(*states[:, i], cpl[0, i], **kw), rtol=1e-13, atol=1e-15)
    got = _columns(Generic2dOscillator(), states, cpl)
    for i in range(4):
        np.testing.assert_allclose(got[:, i], g2d_by_hand(*states[:, i], cpl[0, i]), rtol=1e-13, atol=1e-15)


def test_suphopf_matches_hand_formula():
    states = np.array([[0.1, -0.4, 1.2, 0.0], [0.3, 0.25, -0.8, 0.0]])
    cpl = np.array([[0.01, -0.02, 0.0, 0.5], [0.0, 0.03, -0.1, -0.5]])
    got = _columns(SupHopf(a=0.2, omega=0.6), states, cpl)
    for i in range(4):
        np.testing.assert_allclose(got[:, i], suphopf_by_hand(*states[:, i], *cpl[:, i], a=0.2, omega=0.6), rtol=1e-13)
    # uncoupled, on the limit cycle of radius sqrt(a): the radius is stationary, the phase turns at omega
    x, y = math.sqrt(0.2) * math.cos(0.7), math.sqrt(0.2) * math.sin(0.7)
    dx, dy = _columns(SupHopf(a=0.2, omega=0.6), [[x], [y]], [[0.0], [0.0]])[:, 0]
    assert abs(x * dx + y * dy) < 1e-15
    assert (x * dy - y * dx) / 0.2 == pytest.approx(0.6, rel=1e-13)


def test_kuramoto_matches_hand_formula():
    theta = np.array([[0.0, 1.0, 100.0]])
    cpl = np.array([[0.2, -0.1, 0.0]])
    got = _columns(Kuramoto(omega=jnp.array([1.0, 2.0, 0.5])), theta, cpl)
    np.testing.assert_allclose(got, [[1.2, 1.9, 0.5]], rtol=1e-15)


def test_jansen_rit_matches_hand_formula_and_uses_first_coupling_row_only():
    states = np.array(
        [
            [0.1, 0.0, 0.05, -0.02],
            [20.0, 12.0, 25.0, 5.0],
            [15.0, 8.0, 10.0, 30.0],
            [0.3, -0.5, 0.0, 1.0],
            [-0.4, 0.2, 0.8, -1.0],
            [0.6, 0.0, -0.3, 2.0],
        ]
    )
    c0 = np.array([0.01, 0.0, -0.02, 0.003])
    kw = dict(
        A=3.5, B=20.0, a=0.11, b=0.045, v0=6.0, nu_max=0.003, r=0.5, J=130.0, a_1=1.1, a_2=0.7, a_3=0.3, a_4=0.2, mu=0.2
    )
    for model, by_hand in ((JansenRit(**kw), kw), (JansenRit(), {})):
        # Linear coupling: two rows (from y1 and y2); SigmoidalJansenRit: one row
        two_rows = _columns(model, states, np.stack([c0, np.array([5.0, -3.0, 7.0, 1.0])]))
        one_row = _columns(model, states, c0[None])
        np.testing.assert_array_equal(two_rows, one_row)
        for i in range(4):
            np.testing.assert_allclose(
                one_row[:, i], jansen_rit_by_hand(states[:, i], c0[i], **by_hand), rtol=1e-12, atol=1e-16
            )


@pytest.mark.parametrize("modification", [False, True])
def test_epileptor_matches_hand_formula_on_every_branch(modification):
    # columns cover x1 < 0 / >= 0, z < 0 / >= 0, x2 < -0.25 / >= -0.25
    states = np.array(
        [
            [-1.5, 0.4, -0.3, 0.0],
            [-10.0, 1.0, -5.0, 0.5],
            [3.0, 4.2, -0.5, 0.0],
            [-1.0, -0.1, -0.25, 0.3],
            [0.5, 1.5, 0.0, 0.2],
            [0.2, -0.3, 0.0, 0.9],
        ]
    )
    cpl = np.array([[0.1, -0.2, 0.05, 0.0], [0.02, 0.3, -0.1, 0.0]])
    kw = dict(
        a=1.1,
        b=2.9,
        c=0.9,
        d=5.2,
        r=0.0004,
        x0=-2.1,
        Iext=3.0,
        slope=0.2,
        Iext2=0.5,
        tau=9.0,
        aa=5.5,
        bb=2.1,
        Kvf=0.3,
        Kf=0.4,
        Ks=-0.2,
        tt=1.2,
    )
    got = _columns(Epileptor(modification=modification, **kw), states, cpl)
    for i in range(4):
        want = epileptor_by_hand(states[:, i], *cpl[:, i], modification=modification, **kw)
        np.testing.assert_allclose(got[:, i], want, rtol=1e-12, atol=1e-18)
    # TVB's parameter s is declared but not used
    np.testing.assert_array_equal(got, _columns(Epileptor(modification=modification, s=7.0, **kw), states, cpl))


def test_epileptor_per_region_modification():
    states = np.tile(np.array([[-1.2], [-8.0], [3.2], [-0.8], [0.1], [0.0]]), (1, 3))
    cpl = np.zeros((2, 3))
    got = _columns(Epileptor(modification=(True, False, True)), states, cpl)
    np.testing.assert_array_equal(got[:, 0], _columns(Epileptor(modification=True), states, cpl)[:, 0])
    np.testing.assert_array_equal(got[:, 1], _columns(Epileptor(modification=False), states, cpl)[:, 1])
    assert abs(got[2, 0] - got[2, 1]) > 1e-4  # the two forms of h differ at this state


# ------------------------------------------------------------------------------------------- (3) per-region parameters


def _random_inputs(cls, n, seed):
    """A state drawn uniformly in TVB's state_variable_range and a small coupling (NumPy, no JAX dispatch)."""
    rng = np.random.default_rng(seed)
    lo, hi = np.array([cls.state_variable_range[v] for v in cls.state_variables]).T
    state = lo[:, None] + (hi - lo)[:, None] * rng.uniform(size=(len(lo), n))
    return jnp.asarray(state), jnp.asarray(0.1 * rng.standard_normal((len(cls.cvar), n)))


CASES = [
    (Generic2dOscillator, {"a": [-2.0, 0.0, 4.0], "tau": [1.0, 1.5, 2.0]}),
    (SupHopf, {"a": [-0.5, 0.0, 0.2], "omega": [0.5, 1.0, 2.0]}),
    (Kuramoto, {"omega": [0.5, 1.0, 2.0]}),
    (JansenRit, {"mu": [0.1, 0.22, 0.3], "B": [20.0, 22.0, 25.0]}),
    (Epileptor, {"x0": [-2.2, -1.6, -1.2], "Ks": [-0.5, -0.2, 0.0]}),
]


@pytest.mark.parametrize("cls, values", CASES, ids=[c[0].__name__ for c in CASES])
def test_per_region_parameters_equal_scalar_runs(cls, values):
    state, cpl = _random_inputs(cls, 3, seed=1)
    assert_per_region_equals_scalar(cls, values, state, cpl)


# ------------------------------------------------------------------------------------------- (4) derivatives

GRAD_CASES = [
    (Generic2dOscillator(a=4.0), ("a", "gamma", "tau")),
    (SupHopf(a=0.2), ("a", "omega")),
    (Kuramoto(), ("omega",)),
    (JansenRit(), ("v0", "nu_max", "a")),
    (Epileptor(Ks=-0.2), ("x0", "Ks", "r")),
    (Epileptor(Ks=-0.2, modification=True), ("x0",)),
]


@pytest.mark.parametrize("model, names", GRAD_CASES, ids=[f"{type(m).__name__}-{'-'.join(p)}" for m, p in GRAD_CASES])
def test_jacobian_wrt_parameters_matches_finite_differences(model, names):
    n = 4
    state, cpl = _random_inputs(type(model), n, seed=3)
    p0 = {k: jnp.asarray(np.full(n, float(getattr(model, k)))) for k in names}
    steps = {k: 1e-6 * max(1.0, abs(float(getattr(model, k)))) for k in names}

    def with_params(p):
        return eqx.tree_at(lambda m: [getattr(m, k) for k in names], model, [p[k] for k in names])

    @jax.jit
    def derivatives(p):
        def f(q):
            return with_params(q).dfun(state, cpl)

        jac = jax.jacfwd(f)(p)  # {name: (n_svar, N, N)}: d f[s, i] / d p[name][j]
        grad = jax.grad(lambda q: jnp.sum(f(q) ** 2))(p)
        return f(p), jac, grad

    f0, jac, grad = jax.tree_util.tree_map(np.asarray, derivatives(p0))
    # central differences: truncation O(h^2), rounding ~ eps |f| / h
    atol = 1e-8 * (np.max(np.abs(f0)) + 1.0)
    for k in names:
        h = steps[k]
        fd = np.zeros(jac[k].shape)
        for j in range(n):
            e = np.zeros(n)
            e[j] = h
            plus = p0 | {k: jnp.asarray(np.asarray(p0[k]) + e)}
            minus = p0 | {k: jnp.asarray(np.asarray(p0[k]) - e)}
            fd[:, :, j] = (_columns(with_params(plus), state, cpl) - _columns(with_params(minus), state, cpl)) / (2 * h)
        np.testing.assert_allclose(jac[k], fd, rtol=1e-6, atol=atol, err_msg=k)
        assert np.max(np.abs(jac[k])) > 0.0, k
        # a scalar loss through jax.grad agrees with the Jacobian
        np.testing.assert_allclose(grad[k], np.einsum("sn,snj->j", 2 * f0, jac[k]), rtol=1e-12, atol=1e-300)
