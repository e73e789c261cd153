import jax

jax.config.update("jax_enable_x64", True)

from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.special
from conftest import require

import vbtjax as vbt
from vbtjax import monitors as vm

GOLDEN = Path(__file__).parent / "golden" / "Bold_G2D.npz"


# ----------------------------------------------------------------------------------------------------- helpers
@eqx.filter_jit
def _scan_chunks(mon, xs, dt, L):
    """Feed ``xs`` (T, n_voi, N), T a multiple of L, to ``mon`` chunk by chunk from step 0; stacked slot outputs."""
    n_chunks = xs.shape[0] // L

    def body(ms, c):
        chunk = jax.lax.dynamic_slice_in_dim(xs, c * L, L)
        return mon.chunk(ms, chunk, (c * L).astype(jnp.int32), dt)

    _, out = jax.lax.scan(body, mon.init(xs[0] * 0, dt), jnp.arange(n_chunks))
    return out


def feed(mon, xs, dt, L):
    """The samples ``mon`` produces from the stream ``xs`` (steps 1..T), in chunks of ``L`` steps (NumPy)."""
    xs = np.asarray(xs, float)
    T = xs.shape[0]
    pad = (-T) % L
    out = np.asarray(_scan_chunks(mon, jnp.asarray(np.concatenate([xs, np.zeros((pad,) + xs.shape[1:])])), dt, L))
    q = mon.istep(dt)
    keep = []
    for c in range(out.shape[0]):
        count = min((c + 1) * L, T) // q - (c * L) // q
        keep.extend(out[c, : max(count, 0)])
    return np.asarray(keep)


def balloon_rhs(p, z):
    """Friston et al. (2000) in the original variables (s, f, v, q), time in s: an independent implementation."""

    def rhs(t, y):
        s, f, v, q = y
        E = 1.0 - (1.0 - p["rho"]) ** (1.0 / f)
        return [
            z - p["kappa"] * s - p["gamma"] * (f - 1.0),
            s,
            (f - v ** (1.0 / p["alpha"])) / p["tau"],
            (f * E / p["rho"] - v ** (1.0 / p["alpha"]) * q / v) / p["tau"],
        ]

    return rhs


IMPULSE_DT, IMPULSE_T = 0.5, 30000.0
IMPULSE_BW = vm.BalloonWindkessel(period=720.0)

FRISTON = dict(kappa=0.65, gamma=0.41, tau=0.98, alpha=0.32, rho=0.34, V0=0.02, k1=7 * 0.34, k2=2.0, k3=2 * 0.34 - 0.2)


def pulse_net(n=3, dt_model_gamma=-1.0, a=0.05):
    """A small Linear-model network driven by a pulse train on region 0 (a BOLD-sized slow input)."""
    rng = np.random.default_rng(3)
    W = rng.uniform(0.2, 1.0, (n, n))
    np.fill_diagonal(W, 0.0)
    Lm = rng.uniform(11.0, 30.0, (n, n))
    Lm[0, 1] = 10.5  # shortest delay 7 steps at dt = 0.5: blocks (and chunks) of 7k steps, off the 2 and 8 step grids
    conn = vbt.Connectome(weights=W, lengths=Lm)
    stim = vbt.stimulus.Stimulus(
        vbt.stimulus.PulseTrain(onset=200.0, period=3000.0, width=400.0, amplitude=1.0), regions=[0]
    )
    return vbt.Network(
        model=vbt.models.Linear(gamma=dt_model_gamma),
        connectome=conn,
        coupling=vbt.coupling.Linear(a=a),
        speed=3.0,
        stimulus=stim,
    )


# ===================================================================================== Balloon–Windkessel
def test_defaults_and_constructors():
    bw = vm.BalloonWindkessel()
    assert bw.period == 720.0 and bw.dt_hemo == 1.0 and bw.variables_of_interest == (0,)
    for k, v in FRISTON.items():
        np.testing.assert_allclose(float(getattr(bw, k)), v, rtol=1e-15)
    s = vm.BalloonWindkessel.stephan2007()
    np.testing.assert_allclose(
        [float(s.k1), float(s.k2), float(s.k3), float(s.V0)],
        [4.3 * 40.3 * 0.34 * 0.04, 25 * 0.34 * 0.04, 0.0, 0.04],
        rtol=1e-14,
    )
    s3 = vm.BalloonWindkessel.stephan2007(3.0, r0=110.0, TE=0.03, epsilon=0.5)
    np.testing.assert_allclose(
        [float(s3.k1), float(s3.k2), float(s3.k3)], [4.3 * 80.6 * 0.34 * 0.03, 0.5 * 110 * 0.34 * 0.03, 0.5], rtol=1e-14
    )
    with pytest.raises(ValueError, match="r0"):
        vm.BalloonWindkessel.stephan2007(3.0)
    f = vm.BalloonWindkessel.friston2000(rho=0.4)
    np.testing.assert_allclose([float(f.k1), float(f.k3)], [2.8, 0.6], rtol=1e-14)


def test_bad_steps_raise():
    with pytest.raises(ValueError, match="dt_hemo"):
        vm.BalloonWindkessel(dt_hemo=0.25).istep(0.1)
    with pytest.raises(ValueError, match="period"):
        vm.BalloonWindkessel(period=720.5, dt_hemo=1.0).istep(0.5)
    with pytest.raises(ValueError, match="interim_period"):
        vm.Bold(period=2400.0).istep(0.3)
    with pytest.raises(ValueError):
        vm.BalloonWindkessel(kappa=np.ones((2, 2)))
    with pytest.raises(TypeError):
        vm.Bold(hrf_kernel="gamma")


def test_rest_stays_at_rest():
    """(a) A constant input z = 0: the hemodynamics stay exactly at rest, so BOLD is exactly 0."""
    n = int(IMPULSE_T / IMPULSE_DT)
    y = feed(IMPULSE_BW, np.zeros((n, 1, 1)), IMPULSE_DT, L=997)
    assert y.shape == (int(IMPULSE_T // 720.0), 1, 1)
    assert np.all(y == 0.0)


def test_impulse_response_matches_solve_ivp():
    """(b) A 100 ms pulse: BOLD peaks at 4-6 s, undershoots, and equals scipy's solution at the TR times."""
    dt, T = IMPULSE_DT, IMPULSE_T
    n = int(T / dt)
    z = np.zeros((n, 1, 1))
    z[: int(100.0 / dt)] = 1.0  # steps 1..200: the first 100 ms, which are whole dt_hemo windows
    y = feed(IMPULSE_BW, z, dt, L=997)[:, 0, 0]
    t = (np.arange(len(y)) + 1) * 0.72  # s
    assert len(y) == int(T // 720.0)

    p = FRISTON
    y0 = [0.0, 1.0, 1.0, 1.0]
    opts = dict(method="DOP853", rtol=1e-12, atol=1e-14)
    first = scipy.integrate.solve_ivp(balloon_rhs(p, 1.0), (0.0, 0.1), y0, **opts)
    rest = scipy.integrate.solve_ivp(balloon_rhs(p, 0.0), (0.1, t[-1]), first.y[:, -1], t_eval=t, **opts)
    s, f, v, q = rest.y
    ref = p["V0"] * (p["k1"] * (1 - q) + p["k2"] * (1 - q / v) + p["k3"] * (1 - v))
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-9 * np.abs(ref).max())
    # with Friston 2003's priors the response to a brief pulse peaks ~3 s after it (a TR-sampled peak within a TR
    # of the continuous one), then undershoots
    fine = scipy.integrate.solve_ivp(balloon_rhs(p, 0.0), (0.1, 20.0), first.y[:, -1], dense_output=True, **opts)
    tt = np.linspace(0.1, 20.0, 20001)
    s, f, v, q = fine.sol(tt)
    y_fine = p["V0"] * (p["k1"] * (1 - q) + p["k2"] * (1 - q / v) + p["k3"] * (1 - v))
    peak_fine = tt[np.argmax(y_fine)]
    assert 2.5 <= peak_fine <= 6.0, peak_fine
    peak = t[np.argmax(y)]
    assert abs(peak - peak_fine) <= 0.72, (peak, peak_fine)
    assert y.min() < -0.05 * y.max() and t[np.argmin(y)] > peak  # post-stimulus undershoot


def test_small_input_is_linear():
    """(c) For a small input the response scales linearly (the linearised system) and is odd in the input."""
    n = int(IMPULSE_T / IMPULSE_DT)
    rng = np.random.default_rng(0)
    z = np.repeat(rng.standard_normal((n // 200, 1, 1)), 200, axis=0)  # blocks of 100 ms

    def response(amplitude):
        return feed(IMPULSE_BW, amplitude * z, IMPULSE_DT, L=997)

    y1, y2, ym = response(1e-4), response(2e-4), response(-1e-4)
    scale = np.abs(y1).max()
    assert scale > 0
    np.testing.assert_allclose(y2, 2 * y1, atol=1e-3 * scale)
    np.testing.assert_allclose(ym, -y1, atol=1e-3 * scale)


def test_chunking_does_not_matter():
    """(d) Same BalloonWindkessel and Bold outputs for different chunk lengths through vbt.simulate."""
    net = pulse_net()
    mons = {
        "bw": vm.BalloonWindkessel(period=500.0, dt_hemo=1.0),
        "bold": vm.Bold(period=500.0, hrf_length=3000.0),
        "gamma": vm.Bold(period=1000.0, hrf_length=2000.0, hrf_kernel=vm.Gamma(), fill_history=True),
    }
    hist = np.zeros((1, 3))
    ref = vbt.simulate(net, t1=8000.0, dt=0.5, history=hist, monitors=mons)
    assert np.abs(np.asarray(ref.ys["bw"])).max() > 1e-4
    for chunk_steps in (333,):  # chunks of 889 and 329 steps (odd; the last one padded)
        sol = vbt.simulate(net, t1=8000.0, dt=0.5, history=hist, monitors=mons, chunk_steps=chunk_steps)
        for k in mons:
            np.testing.assert_allclose(sol.ys[k], ref.ys[k], rtol=1e-12, atol=1e-14)
            np.testing.assert_array_equal(sol.ts[k], ref.ts[k])


def test_gradient_matches_finite_differences():
    """(e) d(BOLD loss)/d(coupling strength) and d/d(tau of the balloon) against central differences."""
    net = pulse_net(a=0.05)
    hist = np.zeros((1, 3))
    target = np.linspace(-1e-3, 1e-3, 12)[:, None, None]

    def loss(a, tau):
        n = eqx.tree_at(lambda m: m.coupling.a, net, a)
        bw = vm.BalloonWindkessel(period=500.0, tau=tau)
        sol = vbt.simulate(n, t1=6000.0, dt=0.5, history=hist, monitors={"bw": bw})
        return jnp.sum((sol.ys["bw"] - target) ** 2)

    a0, tau0 = 0.05, 0.98
    vg = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    _, g = vg(jnp.asarray(a0), jnp.asarray(tau0))

    def f(a, tau):
        return float(vg(jnp.asarray(a), jnp.asarray(tau))[0])

    h = 1e-5
    fd_a = (f(a0 + h, tau0) - f(a0 - h, tau0)) / (2 * h)
    fd_tau = (f(a0, tau0 + h) - f(a0, tau0 - h)) / (2 * h)
    assert abs(fd_a) > 0 and abs(fd_tau) > 0
    np.testing.assert_allclose(float(g[0]), fd_a, rtol=1e-5)
    np.testing.assert_allclose(float(g[1]), fd_tau, rtol=1e-5)


def test_sixty_seconds_shape_and_times():
    """(f) 60 s at dt = 0.1 ms: floor(60000 / 720) samples at (k + 1) 720 ms; only the samples are returned."""
    conn = vbt.Connectome(weights=np.array([[0.0, 1.0], [1.0, 0.0]]), lengths=np.array([[0.0, 3.0], [3.0, 0.0]]))
    net = vbt.Network(model=vbt.models.Linear(), connectome=conn, coupling=vbt.coupling.Linear(a=0.1), speed=3.0)
    sol = vbt.simulate(
        net,
        t1=60000.0,
        dt=0.1,
        history=np.full((1, 2), 0.5),
        monitors={"bw": vm.BalloonWindkessel(), "bold": vm.Bold()},
    )
    n = 60000 // 720
    assert sol.ys["bw"].shape == (n, 1, 2)
    np.testing.assert_allclose(sol.ts["bw"], 720.0 * np.arange(1, n + 1))
    assert sol.ys["bold"].shape == (30, 1, 2)
    np.testing.assert_allclose(sol.ts["bold"], 2000.0 * np.arange(1, 31))
    assert np.all(np.isfinite(np.asarray(sol.ys["bw"])))


# ===================================================================================== Bold (TVB's HRF kernels)
def _tvb_kernels_numpy(t):
    """TVB's kernel formulas (tvb/datatypes/equations.py, defaults), written out independently."""
    tau_s, tau_f = 0.8, 0.4
    w = np.sqrt(1 / tau_f - 1 / (4 * tau_s**2))
    fov = 1 / 3 * np.exp(-0.5 * t / tau_s) * np.sin(w * t) / w
    g = (t / 1.08) ** 2 * np.exp(-t / 1.08) / (1.08 * 2.0)
    g = 0.1 * g / g.max()
    de = 0.1 * np.exp(-t / 7.22) * np.sin(2 * np.pi * 0.03 * t) - 0.1 * np.exp(-t / 7.4) * np.sin(2 * np.pi * 0.12 * t)
    de = 0.1 * de / de.max()
    mog = t**5 * np.exp(-t) / scipy.special.gamma(6.0) - 0.4 * t**12 * np.exp(-t) / scipy.special.gamma(13.0)
    return {"FirstOrderVolterra": fov, "Gamma": g, "DoubleExponential": de, "MixtureOfGammas": mog}


def test_kernels_equal_tvb_formulas():
    t = np.arange(2000) * 0.004
    ref = _tvb_kernels_numpy(t)
    ours = jax.jit(lambda t: {name: getattr(vm, name)().evaluate(t) for name in ref})(jnp.asarray(t))
    for name, r in ref.items():
        np.testing.assert_allclose(np.asarray(ours[name]), r, rtol=1e-13, atol=1e-15, err_msg=name)
    m = vm.Bold(hrf_length=2999.0)
    assert m.n_kernel == 750
    np.testing.assert_allclose(m.kernel_times(), np.arange(750) * (2.999 / 750))
    # differentiable kernel parameters, finite at t = 0
    g = jax.jit(jax.grad(lambda n: vm.Gamma(n=n).evaluate(jnp.asarray(t)).sum()))(3.0)
    assert np.isfinite(float(g))


@pytest.fixture(scope="module")
def golden():
    return dict(np.load(require(GOLDEN, "run tests/golden/make_bold_golden.py")))


KERNELS = {
    "fov2000": "FirstOrderVolterra",
    "fov500": "FirstOrderVolterra",
    "odd": "FirstOrderVolterra",
    "gamma": "Gamma",
    "dexp": "DoubleExponential",
    "mog": "MixtureOfGammas",
}


@eqx.filter_jit
def _one_chunk(mons, xs, dt):
    return [m.chunk(m.init(xs[0] * 0, dt), xs, jnp.int32(0), dt)[1] for m in mons]


def test_bold_matches_tvb(golden):
    """TVB's own trajectory fed to vbtjax's Bold gives TVB's BOLD samples (and TVB's sampled kernels).

    TVB's monitors count steps from the start of its history (``first_step`` is TVB's step number of the first raw
    sample) and start with zeroed buffers; prepending ``first_step - 1`` zero rows and sampling from step 1 puts
    vbtjax's (t0-aligned) samples exactly on TVB's. The trajectory goes in as one chunk (test_chunking_does_not_matter
    shows that chunking changes nothing).
    """
    dt = float(golden["dt"])
    mons = [
        vm.Bold(
            period=float(golden[f"{name}_period"]),
            hrf_length=float(golden[f"{name}_hrf_length"]),
            hrf_kernel=getattr(vm, kernel)(),
        )
        for name, kernel in KERNELS.items()
    ]
    raw = golden["raw"]
    xs = np.concatenate([np.zeros((int(golden["first_step"]) - 1, raw.shape[1])), raw])[:, None, :]
    outs = _one_chunk(mons, jnp.asarray(xs), dt)
    for name, mon, out in zip(KERNELS, mons, outs, strict=True):
        np.testing.assert_allclose(np.asarray(mon.kernel())[::-1], golden[f"{name}_hrf"], rtol=1e-13, atol=1e-16)
        q = mon.istep(dt)
        out = np.asarray(out)[: xs.shape[0] // q, 0]
        times = (np.arange(len(out)) + 1) * q * dt
        ref_t, ref = golden[f"{name}_time"], golden[f"{name}_bold"]
        sel = np.isin(np.round(times, 6), np.round(ref_t, 6))
        assert sel.sum() == len(ref_t) == len(times), name
        np.testing.assert_allclose(out[sel], ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max(), err_msg=name)
