"""Gradients through ``vbt.simulate`` against central finite differences, in float64.

A table of (simulation, parameter) rows: every model with two of its own parameters (one scalar, one per region;
Kuramoto and Linear have a single parameter, per region), every coupling with its parameters, the connectome
(weights; tract lengths and conduction speed with interpolated delays, and the exactly-zero speed gradient of TVB's
rounded delays), every monitor, the data features and the inference losses, additive and multiplicative noise with a
fixed key, a stimulus, and forward mode (``jax.jvp``).

Each simulation ("scenario") is compiled once, as ``jax.jit(jax.value_and_grad(...))`` over all the parameters its
rows test, and reused by its rows (compilation dominates the run time: see ``_fast_compile_options``); the monitors'
run is stochastic and also serves the multiplicative-noise rows. A row compares the directional derivative
``g . v`` (``v = 1`` for a scalar, a random direction for an array) with ``(L(p + h v) - L(p - h v)) / 2h`` and
asserts that

- the central difference with ``2h`` agrees to 1e-5 (the loss is smooth there: no state-variable bound, branch of a
  piecewise model or delay-rounding boundary is crossed, and rounding errors are small),
- the derivative is not trivially zero (relative sensitivity ``|dL/dp| * scale(p) / |L|`` above a floor),
- the relative error ``|g . v - fd| / |fd|`` is at most 1e-4.
"""

import jax

jax.config.update("jax_enable_x64", True)

import dataclasses
import functools
from collections.abc import Callable
from types import SimpleNamespace

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest

import vbtjax as vbt
from vbtjax import features as vf
from vbtjax import inference as vi

M, C, MON = vbt.models, vbt.coupling, vbt.monitors
N = 5  # regions
RTOL = 1e-4  # required relative error of the gradient
FD_SELF_TOL = 1e-5  # central differences with h and 2h must agree to this (relative)
SENSITIVITY_FLOOR = 1e-5  # |dL/dp| * scale(p) / |L| must exceed this: the gradient is not trivially zero


@functools.cache
def _fast_compile_options() -> dict:
    """XLA options that cut this file's run time, dominated by compilation (the runs themselves take milliseconds):
    with less backend optimisation and without the CPU fusion emitters, compiling a gradient through ``simulate``
    takes about half the time (measured with jaxlib 0.10; results equal to rounding, runs up to 2x slower). Options
    the installed XLA does not know are dropped."""
    options = {}
    for name, value in {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}.items():
        try:
            jax.jit(lambda x: x + 1.0, compiler_options={name: value})(1.0)
            options[name] = value
        except Exception:  # unknown option in this XLA version
            pass
    return options


# ------------------------------------------------------------------------------------------------------ building
def _connectome(seed=0, lo=2.0, hi=10.0, self_loops=False):
    """Random weights (about 70 % of the edges, in [0.2, 1]) and tract lengths in [lo, hi] mm: delays of
    ``lo / 2`` to ``hi / 2`` ms at 2 mm/ms, i.e. tens of steps at dt = 0.1 ms."""
    rng = np.random.default_rng(seed)
    W = rng.uniform(0.2, 1.0, (N, N)) * (rng.uniform(size=(N, N)) < 0.7)
    L = rng.uniform(lo, hi, (N, N))
    np.fill_diagonal(L, 0.0)
    if not self_loops:
        np.fill_diagonal(W, 0.0)
    return vbt.Connectome(weights=W, lengths=L)


def _state(model, center=None, spread=0.1, seed=1):
    """An initial state ``(n_svar, N)``: ``center`` (default: the middle of each ``state_variable_range``) plus a
    uniform spread of ``spread`` times each range across regions (so that the regions differ)."""
    rng = np.random.default_rng(seed)
    lo = np.array([model.state_variable_range[v][0] for v in model.state_variables])
    hi = np.array([model.state_variable_range[v][1] for v in model.state_variables])
    mid = 0.5 * (lo + hi) if center is None else np.asarray(center, float)
    return mid[:, None] + spread * (hi - lo)[:, None] * rng.uniform(-0.5, 0.5, (len(lo), N))


def _per_region(cls, per_region=(), **kwargs):
    """``cls(**kwargs)`` with the parameters named in ``per_region`` given as ``(N,)`` arrays of their value."""
    base = cls(**kwargs)
    return cls(**{**kwargs, **{k: np.full(N, float(getattr(base, k))) for k in per_region}})


def _getter(label: str) -> Callable:
    """``"model.a[N]"`` -> ``lambda net: net.model.a`` (``[...]`` is a label: per region, per state variable);
    ``stimulus.x`` reads the first stimulus' field, ``stimulus.temporal.x`` its temporal pattern's."""
    path = label.split("[")[0].split(".")

    def get(net):
        obj = net
        for part in path:
            obj = obj.stimulus[0] if part == "stimulus" else getattr(obj, part)
        return obj

    return get


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A simulation: ``build()`` -> ``dict(net=..., **simulate_kwargs)``; the tested parameters (labels for
    :func:`_getter`); ``losses(ys)`` -> a vector of scalar losses of the monitor output, one per ``loss_names``
    (default: one, a weighted mean of squares)."""

    build: Callable[[], dict]
    params: tuple[str, ...]
    losses: Callable | None = None
    loss_names: tuple[str, ...] = ("loss",)


def _weighted_squares(ys):
    R = np.random.default_rng(123).normal(size=ys.shape)
    return jnp.mean(R * ys**2)


def _model_scenario(
    model,
    coupling,
    params,
    dt=0.1,
    t1=50.0,
    *,
    center=None,
    spread=0.1,
    solver=None,
    conn=None,
    **net_kw,
):
    conn = conn or {}

    def build():
        net = vbt.Network(model=model, connectome=_connectome(**conn), coupling=coupling, speed=2.0, **net_kw)
        return dict(
            net=net,
            t1=t1,
            dt=dt,
            history=_state(model, center, spread),
            solver=solver,
            monitors=MON.TemporalAverage(period=1.0),
        )

    return Scenario(build, tuple(params))


INTERP = dict(delay_mode="interpolate", speed_range=(1.5, 2.5))

# --------------------------------------------------------------------------------------------------- the models
# dt, duration and initial state per model keep each run smooth over its length: state-variable bounds are not
# reached (MontbrioPazoRoxin and CoombesByrne r > 0, the Wong-Wang gating variables in (0, 1), Zerlaut E, I > 0), the
# Epileptors stay on one side of their piecewise branches (x1 < 0, x2 < -0.25), runs are short next to the chaotic
# models' divergence times. Each model is paired with a coupling so that every coupling is tested once. Solvers:
# Heun (the default), Euler (ZerlautAdaptationFirstOrder), RK4 (Kuramoto).
SCENARIOS: dict[str, Scenario] = {
    "Generic2dOscillator": _model_scenario(  # + Linear coupling, + the connectome (interpolated delays)
        _per_region(M.Generic2dOscillator, ("a",)),
        C.Linear(a=0.1, b=0.05),
        [
            "model.I",
            "model.a[N]",
            "coupling.a",
            "coupling.b",
            "connectome.weights[NxN]",
            "connectome.lengths[NxN]",
            "speed",
        ],
        **INTERP,
    ),
    "MontbrioPazoRoxin": _model_scenario(  # + Sigmoidal coupling, + speed
        _per_region(M.MontbrioPazoRoxin, ("eta",)),
        C.Sigmoidal(midpoint=1.0, sigma=1.0),
        [
            "model.J",
            "model.eta[N]",
            "coupling.cmin",
            "coupling.cmax",
            "coupling.midpoint",
            "coupling.a",
            "coupling.sigma",
            "speed",
        ],
        dt=0.01,
        t1=10.0,
        conn=dict(lo=1.0, hi=4.0),
        **INTERP,
    ),
    "JansenRit": _model_scenario(  # + SigmoidalJansenRit coupling, + speed
        _per_region(M.JansenRit, ("mu",)),
        C.SigmoidalJansenRit(a=1.0),
        ["model.A", "model.mu[N]", "coupling.cmax", "coupling.midpoint", "coupling.r", "coupling.a", "speed"],
        spread=0.01,
        **INTERP,
    ),
    "ReducedWongWang": _model_scenario(  # + Scaling coupling, self-connections, rounded delays (speed gradient 0)
        _per_region(M.ReducedWongWang, ("I_o",)),
        C.Scaling(a=0.2),
        ["model.w", "model.I_o[N]", "coupling.a", "connectome.weights[NxN]", "speed"],
        conn=dict(self_loops=True),
    ),
    "ReducedWongWangExcInh": _model_scenario(
        _per_region(M.ReducedWongWangExcInh, ("I_o",)), C.Linear(a=0.2), ["model.G", "model.I_o[N]"]
    ),
    "Epileptor": _model_scenario(  # + Difference coupling on two variables
        _per_region(M.Epileptor, ("x0",)), C.Difference(a=0.05), ["model.Iext", "model.x0[N]"], dt=0.05, t1=20.0
    ),
    "SupHopf": _model_scenario(  # + Difference coupling (row-wise delay layout), + weights and speed
        _per_region(M.SupHopf, ("a",), a=0.2, omega=0.3),
        C.Difference(a=0.1),
        ["model.omega", "model.a[N]", "coupling.a", "connectome.weights[NxN]", "connectome.lengths[NxN]", "speed"],
        **INTERP,
    ),
    "Kuramoto": _model_scenario(  # + Kuramoto coupling with a per-region strength, RK4
        _per_region(M.Kuramoto, ("omega",), omega=0.3),
        C.Kuramoto(a=np.full(N, 0.2)),
        ["model.omega[N]", "coupling.a[N]"],
        solver=vbt.RK4(),
    ),
    "WilsonCowan": _model_scenario(  # + HyperbolicTangent coupling with a per-region amplitude
        _per_region(M.WilsonCowan, ("P",), P=0.5),
        C.HyperbolicTangent(a=np.full(N, 0.2), b=1.0, midpoint=0.3, sigma=0.5),
        ["model.c_ee", "model.P[N]", "coupling.a[N]", "coupling.b", "coupling.midpoint", "coupling.sigma"],
    ),
    "LarterBreakspear": _model_scenario(
        _per_region(M.LarterBreakspear, ("Iext",)),
        C.Linear(a=0.1),
        ["model.gK", "model.Iext[N]"],
        t1=30.0,
    ),
    "Epileptor2D": _model_scenario(
        _per_region(M.Epileptor2D, ("x0",)),
        C.Difference(a=0.05),
        ["model.Iext", "model.x0[N]"],
        dt=0.05,
        t1=20.0,
        center=(-1.5, 3.5),
    ),
    "EpileptorRestingState": _model_scenario(
        _per_region(M.EpileptorRestingState, ("x0",)),
        C.Linear(a=0.05),
        ["model.K_rs", "model.x0[N]"],
        dt=0.05,
        t1=20.0,
        center=(-1.6, -12.5, 3.8, -1.0, 0.5, 0.0, 1.0, 0.0),  # y2 = 0.5: population 2 stays below x2 = -0.25
    ),
    "ZerlautAdaptationFirstOrder": _model_scenario(
        _per_region(M.ZerlautAdaptationFirstOrder, ("E_L_e",)),
        C.Linear(a=0.01),
        ["model.b_e", "model.E_L_e[N]"],
        solver=vbt.Euler(),
    ),
    "CoombesByrne": _model_scenario(
        _per_region(M.CoombesByrne, ("eta",)),
        C.Linear(a=0.05),
        ["model.Delta", "model.eta[N]"],
        dt=0.01,
        t1=10.0,
        conn=dict(lo=1.0, hi=4.0),
    ),
    "ZetterbergJansen": _model_scenario(
        _per_region(M.ZetterbergJansen, ("P",)), C.Linear(a=0.01), ["model.He", "model.P[N]"], spread=0.01
    ),
    # the ten models added for TVB parity (issue 28): short runs at the step sizes of their TVB goldens
    "ReducedSetFitzHughNagumo": _model_scenario(
        _per_region(M.ReducedSetFitzHughNagumo, ("a",)),
        C.Linear(a=0.01),
        ["model.K11", "model.a[N]", "model.mu"],
        dt=0.05,
        t1=10.0,
        spread=0.05,
    ),
    "ReducedSetHindmarshRose": _model_scenario(
        _per_region(M.ReducedSetHindmarshRose, ("s",)),
        C.Linear(a=0.01),
        ["model.K11", "model.s[N]"],
        dt=0.05,
        t1=10.0,
        spread=0.05,
    ),
    "EpileptorCodim3": _model_scenario(
        _per_region(M.EpileptorCodim3, ("c",)), C.Difference(a=0.05), ["model.b", "model.c[N]"], t1=20.0
    ),
    "EpileptorCodim3SlowMod": _model_scenario(
        _per_region(M.EpileptorCodim3SlowMod, ("c",)), C.Difference(a=0.05), ["model.Ks", "model.c[N]"], t1=20.0
    ),
    "CoombesByrne2D": _model_scenario(
        _per_region(M.CoombesByrne2D, ("eta",)),
        C.Linear(a=0.05),
        ["model.Delta", "model.eta[N]"],
        dt=0.01,
        t1=10.0,
        conn=dict(lo=1.0, hi=4.0),
    ),
    "GastSchmidtKnosche_SD": _model_scenario(
        _per_region(M.GastSchmidtKnosche_SD, ("eta",)),
        C.Linear(a=0.05),
        ["model.J", "model.eta[N]"],
        dt=0.01,
        t1=5.0,
        spread=0.02,
        conn=dict(lo=1.0, hi=4.0),
    ),
    "GastSchmidtKnosche_SF": _model_scenario(
        _per_region(M.GastSchmidtKnosche_SF, ("eta",)),
        C.Linear(a=0.05),
        ["model.J", "model.eta[N]"],
        dt=0.01,
        t1=5.0,
        spread=0.02,
        conn=dict(lo=1.0, hi=4.0),
    ),
    "DumontGutkin": _model_scenario(
        _per_region(M.DumontGutkin, ("eta_e",)),
        C.Linear(a=0.05),
        ["model.J_ee", "model.eta_e[N]"],
        dt=0.01,
        t1=5.0,
        spread=0.02,
        conn=dict(lo=1.0, hi=4.0),
    ),
    "Hopfield": _model_scenario(
        _per_region(M.Hopfield, ("taux",), dynamic=1), C.Linear(a=0.1), ["model.tauT", "model.taux[N]"], t1=20.0
    ),
    "ZerlautAdaptationSecondOrder": _model_scenario(
        _per_region(M.ZerlautAdaptationSecondOrder, ("E_L_e",)),
        C.Linear(a=0.01),
        ["model.b_e", "model.E_L_e[N]"],
        solver=vbt.Euler(),
        t1=20.0,
    ),
    "DecoBalancedExcInh": _model_scenario(
        _per_region(M.DecoBalancedExcInh, ("M_i",)), C.Linear(a=0.2), ["model.w_p", "model.M_i[N]"]
    ),
}


def _linear_with_stimulus():
    model = _per_region(M.Linear, ("gamma",))
    stim = vbt.stimulus.Stimulus(vbt.stimulus.Sinusoid(amplitude=1.0, frequency=40.0), weight=np.linspace(0.5, 1.5, N))
    net = vbt.Network(model=model, connectome=_connectome(), coupling=C.Scaling(a=0.5), speed=2.0, stimulus=stim)
    return dict(net=net, t1=20.0, dt=0.1, history=_state(model), monitors=MON.TemporalAverage(period=1.0))


SCENARIOS["Linear"] = Scenario(
    _linear_with_stimulus,
    ("model.gamma[N]", "stimulus.temporal.amplitude", "stimulus.temporal.frequency", "stimulus.weight[N]"),
)


# ---------------------------------------------------------------------------------------------------- monitors
def _gain(n_sensors, seed):
    return np.random.default_rng(seed).normal(size=(n_sensors, N))


MONITORS = {
    "Raw": MON.Raw(),
    "SubSample": MON.SubSample(period=2.0),
    "TemporalAverage": MON.TemporalAverage(period=1.0),
    "BalloonWindkessel": MON.BalloonWindkessel(period=20.0, dt_hemo=1.0),
    "Bold": MON.Bold(period=20.0, hrf_length=100.0),
    "EEG": MON.EEG(_gain(3, 1), period=1.0),
    "MEG": MON.MEG(_gain(4, 2), period=1.0),
    "SEEG": MON.SEEG(_gain(2, 3), period=1.0),
}


# The monitors record a stochastic run (multiplicative noise, a fixed key), which also serves the noise rows.
def _monitors_build():
    model = M.Generic2dOscillator()
    net = vbt.Network(
        model=model,
        connectome=_connectome(),
        coupling=C.Linear(a=0.1),
        speed=2.0,
        noise=vbt.noise.Multiplicative(nsig=1e-3, a=1.0, b=0.5),
    )
    return dict(net=net, t1=200.0, dt=0.1, history=_state(model), monitors=MONITORS, key=jax.random.key(8))


def _monitor_losses(ys):
    # the Balloon-Windkessel BOLD is ~1e-5 over these 200 ms (the hemodynamics start at rest and respond over
    # seconds): scale it up (the comparison is relative; this only keeps the loss away from underflow-sized values)
    scale = {"BalloonWindkessel": 1e-5}
    return jnp.stack([_weighted_squares(ys[k] / scale.get(k, 1.0)) for k in MONITORS])


SCENARIOS["monitors"] = Scenario(
    _monitors_build, ("coupling.a", "model.I", "noise.nsig", "noise.a", "noise.b"), _monitor_losses, tuple(MONITORS)
)


# ---------------------------------------------------------------------------------------------------- features
FS = vf.sampling_rate(0.5)  # TemporalAverage(period=0.5): 2000 Hz
_rng = np.random.default_rng(42)
EMP_X = np.cumsum(_rng.normal(size=(400, N)), axis=0) * 0.05 + _rng.normal(size=(400, N)) * 0.1
EMP = SimpleNamespace(
    x=EMP_X,
    fc=np.corrcoef(EMP_X.T),
    psd=None,  # filled lazily (welch_psd, small jit)
    fcd=None,
)
FCD_WINDOW, FCD_STEP, NPERSEG = 80, 20, 128


def _empirical():
    if EMP.psd is None:
        EMP.psd = np.asarray(vf.welch_psd(EMP.x, FS, NPERSEG)[1])
        EMP.fcd = np.asarray(vf.fcd_values(vf.fcd(EMP.x, FCD_WINDOW, FCD_STEP)))
    return EMP


FEATURES = {
    "fc_correlation_loss": lambda x, e: vi.fc_correlation_loss(vf.fc(x), e.fc),
    "fc_distance_loss": lambda x, e: vi.fc_distance_loss(vf.fc(x), e.fc),
    "fcd_ks_loss(smooth)": lambda x, e: vi.fcd_ks_loss(x, e.fcd, FCD_WINDOW, FCD_STEP, temperature=0.05),
    "fcd": lambda x, e: _weighted_squares(vf.fcd(x, FCD_WINDOW, FCD_STEP)),
    "log_psd_loss": lambda x, e: vi.log_psd_loss(x, e.psd, FS, NPERSEG),
    "timeseries_loss": lambda x, e: vi.timeseries_loss(x, e.x),
    "band_power": lambda x, e: jnp.mean(jnp.log(vf.band_power(*vf.welch_psd(x, FS, NPERSEG), (20.0, 90.0)))),
    "relative_band_power": lambda x, e: jnp.mean(vf.relative_band_power(*vf.welch_psd(x, FS, NPERSEG), (20.0, 90.0))),
    "kuramoto_metastability": lambda x, e: vf.metastability(vf.kuramoto_order(vf.phase_from_signal(x))),
    "kuramoto_synchrony": lambda x, e: vf.synchrony(vf.kuramoto_order(vf.phase_from_signal(x))),
    "seeg_log_power": lambda x, e: _weighted_squares(vf.seeg_log_power(x, 40, 20)),
}


def _features_build():
    _empirical()  # concrete, before tracing
    model = M.SupHopf(a=0.2, omega=np.linspace(0.25, 0.35, N))
    net = vbt.Network(model=model, connectome=_connectome(), coupling=C.Difference(a=0.1), speed=2.0)
    return dict(
        net=net,
        t1=200.0,
        dt=0.1,
        history=_state(model),
        monitors=MON.TemporalAverage(period=0.5, variables_of_interest=("x",)),
    )


def _feature_losses(ys):
    x, e = ys[:, 0], _empirical()
    return jnp.stack([f(x, e) for f in FEATURES.values()])


SCENARIOS["features"] = Scenario(_features_build, ("coupling.a",), _feature_losses, tuple(FEATURES))


# ------------------------------------------------------------------------------------------------------- noise
def _additive_noise_build():
    model = _per_region(M.SupHopf, ("a",), a=0.2, omega=0.3)
    net = vbt.Network(
        model=model,
        connectome=_connectome(),
        coupling=C.Difference(a=0.1),
        speed=2.0,
        noise=vbt.noise.Additive(nsig=np.array([1e-3, 2e-3])),
    )
    return dict(
        net=net, t1=30.0, dt=0.1, history=_state(model), monitors=MON.TemporalAverage(period=1.0), key=jax.random.key(7)
    )


SCENARIOS["additive noise"] = Scenario(_additive_noise_build, ("model.a[N]", "noise.nsig[svar]"))


# ----------------------------------------------------------------------------------------------- compile, check
@functools.cache
def compiled(name: str) -> SimpleNamespace:
    """The scenario's network, parameters, loss vector and compiled ``value_and_grad`` of ``w . losses``."""
    sc = SCENARIOS[name]
    spec = sc.build()
    net = spec.pop("net")
    getters = tuple(_getter(p) for p in sc.params)
    where = lambda n: tuple(g(n) for g in getters)
    theta0 = {p: jnp.asarray(v, jnp.float64) for p, v in zip(sc.params, where(net), strict=True)}
    losses_of_ys = sc.losses or _weighted_squares

    def losses(theta):
        n = eqx.tree_at(where, net, tuple(theta[p] for p in sc.params))
        return jnp.atleast_1d(losses_of_ys(vbt.simulate(n, **spec).ys))

    def objective(theta, w):
        ls = losses(theta)
        return jnp.dot(w, ls), ls

    vg = jax.jit(jax.value_and_grad(objective, has_aux=True), compiler_options=_fast_compile_options())
    return SimpleNamespace(net=net, theta0=theta0, losses=losses, vg=vg)


def _direction(x0, label, net, seed=0):
    """1 for a scalar; else a random direction with max |v| = 1 (over the existing edges for weights/lengths)."""
    if x0.ndim == 0:
        return jnp.ones((), x0.dtype)
    v = np.random.default_rng(seed).normal(size=x0.shape)
    if label.startswith("connectome."):
        v = v * (np.asarray(net.connectome.weights) != 0)  # edges are the non-zero weights
    return jnp.asarray(v / np.abs(v).max(), x0.dtype)


def gradient_vs_fd(name, param, index=0, rel_h=1e-5):
    """``(g . v, fd(h), fd(2h), L, scale)`` for loss ``index`` of scenario ``name`` and parameter ``param``."""
    c = compiled(name)
    x0 = c.theta0[param]
    v = _direction(x0, param, c.net)
    w = jnp.zeros(_n_losses(name)).at[index].set(1.0)
    ls, g = _gradient(name, index)
    gv = float(jnp.sum(g[param] * v))
    scale = float(jnp.max(jnp.abs(x0)))
    scale = scale if scale > 0 else 1.0
    h = rel_h * scale

    def L(s):
        theta = dict(c.theta0)
        theta[param] = x0 + s * v
        return float(c.vg(theta, w)[0][1][index])

    fd1 = (L(h) - L(-h)) / (2 * h)
    fd2 = (L(2 * h) - L(-2 * h)) / (4 * h)
    return gv, fd1, fd2, float(ls[index]), scale


@functools.cache
def _gradient(name, index):
    c = compiled(name)
    (_, ls), g = c.vg(c.theta0, jnp.zeros(_n_losses(name)).at[index].set(1.0))
    return ls, g


def _n_losses(name):
    return len(SCENARIOS[name].loss_names)


def check(name, param, index=0, rel_h=1e-5, floor=SENSITIVITY_FLOOR):
    gv, fd1, fd2, value, scale = gradient_vs_fd(name, param, index, rel_h)
    rel = abs(gv - fd1) / max(abs(fd1), 1e-300)
    print(f"{name} {param} [{index}]: g.v={gv:.12e} fd={fd1:.12e} fd2h={fd2:.12e} L={value:.4e} rel={rel:.2e}")
    assert np.isfinite(gv) and np.isfinite(fd1)
    assert abs(fd1 - fd2) <= FD_SELF_TOL * abs(fd1), f"finite differences not converged: {fd1} vs {fd2} (2h)"
    assert abs(fd1) * scale > floor * max(abs(value), 1e-300), f"derivative trivially small: {fd1} (L = {value})"
    assert abs(gv - fd1) <= RTOL * abs(fd1), f"gradient {gv} vs finite difference {fd1}: relative error {rel:.2e}"
    return rel


# -------------------------------------------------------------------------------------------------------- tables
MODELS = (
    "Generic2dOscillator",
    "MontbrioPazoRoxin",
    "JansenRit",
    "ReducedWongWang",
    "ReducedWongWangExcInh",
    "Epileptor",
    "SupHopf",
    "Kuramoto",
    "WilsonCowan",
    "LarterBreakspear",
    "Epileptor2D",
    "EpileptorRestingState",
    "ZerlautAdaptationFirstOrder",
    "CoombesByrne",
    "ZetterbergJansen",
    "DecoBalancedExcInh",
    "Linear",
    "ReducedSetFitzHughNagumo",
    "ReducedSetHindmarshRose",
    "EpileptorCodim3",
    "EpileptorCodim3SlowMod",
    "CoombesByrne2D",
    "GastSchmidtKnosche_SD",
    "GastSchmidtKnosche_SF",
    "DumontGutkin",
    "Hopfield",
    "ZerlautAdaptationSecondOrder",
)


def _rows(prefix, scenarios=None):
    scenarios = scenarios or SCENARIOS
    return [(s, p) for s in scenarios for p in SCENARIOS[s].params if p.startswith(prefix)]


MODEL_ROWS = _rows("model.", MODELS)
COUPLING_ROWS = _rows("coupling.", MODELS)
CONNECTOME_ROWS = [
    r for r in _rows("connectome.", MODELS) + _rows("speed", MODELS) if r != ("ReducedWongWang", "speed")
]
NOISE_ROWS = [  # (noise, scenario, parameter, loss)
    ("Multiplicative", "monitors", p, "TemporalAverage") for p in ("model.I", "noise.nsig", "noise.a", "noise.b")
] + [("Additive", "additive noise", p, "loss") for p in ("model.a[N]", "noise.nsig[svar]")]
STIMULUS_ROWS = _rows("stimulus.", ("Linear",))
_id = lambda row: "-".join(str(x) for x in row)


def test_every_model_and_coupling_is_covered():
    nets = [compiled(s).net for s in MODELS]  # builds the networks; compiles nothing
    assert [type(n.model).__name__ for n in nets] == list(MODELS)
    exported = {
        name
        for name, obj in vars(vbt.models).items()
        if isinstance(obj, type) and issubclass(obj, vbt.models.AbstractNeuralMass) and not name.startswith("Abstract")
    }
    assert exported == set(MODELS), "a model of vbtjax.models has no row in the gradient table"
    couplings = {name for name in vbt.coupling.__all__ if not name.startswith("Abstract")}
    assert {type(n.coupling).__name__ for n in nets} == couplings, "a coupling has no row in the gradient table"


@pytest.mark.parametrize("name,param", MODEL_ROWS, ids=[_id(r) for r in MODEL_ROWS])
def test_model_parameter(name, param):
    check(name, param)


@pytest.mark.parametrize("name,param", COUPLING_ROWS, ids=[_id(r) for r in COUPLING_ROWS])
def test_coupling_parameter(name, param):
    check(name, param)


@pytest.mark.parametrize("name,param", CONNECTOME_ROWS, ids=[_id(r) for r in CONNECTOME_ROWS])
def test_connectome(name, param):
    assert compiled(name).net.delay_mode == "interpolate" or param.startswith("connectome.weights")
    check(name, param)


def test_speed_gradient_is_zero_with_rounded_delays():
    """TVB's delays ``rint(lengths / speed / dt)`` are piecewise constant in the speed: its gradient is exactly 0
    (and a small change of the speed does not change the run at all). ``delay_mode="interpolate"`` is needed for a
    useful speed gradient (the rows above)."""
    c = compiled("ReducedWongWang")
    assert c.net.delay_mode == "round"
    w = jnp.ones(1)
    (_, ls), g = c.vg(c.theta0, w)
    assert float(g["speed"]) == 0.0
    s0 = c.theta0["speed"]
    for h in (1e-6, -1e-6):
        (_, other), _ = c.vg({**c.theta0, "speed": s0 + h}, w)
        assert float(other[0]) == float(ls[0])
    assert abs(float(g["model.w"])) > 0 and abs(float(jnp.sum(jnp.abs(g["model.I_o[N]"])))) > 0


@pytest.mark.parametrize("index,monitor", list(enumerate(MONITORS)), ids=list(MONITORS))
def test_monitor(index, monitor):
    check("monitors", "coupling.a", index)


@pytest.mark.parametrize("index,feature", list(enumerate(FEATURES)), ids=list(FEATURES))
def test_feature_and_loss(index, feature):
    check("features", "coupling.a", index)


@pytest.mark.parametrize("kind,name,param,loss", NOISE_ROWS, ids=[_id((r[0], r[2], r[3])) for r in NOISE_ROWS])
def test_noise_with_fixed_key(kind, name, param, loss):
    """Stochastic runs are differentiable with the noise fixed by the key: the same key in L(p + h v) and L(p - h v)."""
    assert type(compiled(name).net.noise).__name__ == kind
    check(name, param, SCENARIOS[name].loss_names.index(loss))


@pytest.mark.parametrize("name,param", STIMULUS_ROWS, ids=[_id(r) for r in STIMULUS_ROWS])
def test_stimulus(name, param):
    check(name, param)


@functools.cache
def _jvp(name):
    c = compiled(name)
    return jax.jit(
        lambda theta, tangent: jax.jvp(c.losses, (theta,), (tangent,)), compiler_options=_fast_compile_options()
    )


FORWARD_ROWS = [
    ("Generic2dOscillator", "model.I"),
    ("Generic2dOscillator", "model.a[N]"),
    ("Generic2dOscillator", "speed"),
    ("Generic2dOscillator", "connectome.weights[NxN]"),
]


@pytest.mark.parametrize("name,param", FORWARD_ROWS, ids=[_id(r) for r in FORWARD_ROWS])
def test_forward_mode_equals_reverse_mode(name, param):
    c = compiled(name)
    x0 = c.theta0[param]
    v = _direction(x0, param, c.net)
    tangent = {p: jnp.zeros_like(x) for p, x in c.theta0.items()}
    tangent[param] = v
    value, dvalue = _jvp(name)(c.theta0, tangent)
    gv, fd1, _, _, _ = gradient_vs_fd(name, param)
    forward = float(dvalue[0])
    print(f"jvp {name} {param}: jvp={forward:.12e} vjp={gv:.12e} fd={fd1:.12e}")
    assert abs(forward - gv) <= 1e-10 * abs(gv)  # same derivative, different accumulation order
    assert abs(forward - fd1) <= RTOL * abs(fd1)
