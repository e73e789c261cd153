"""Stimuli and multiplicative noise against exact results (zero-drift Kuramoto model: theta' = omega + input)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbtjax as vbt
from vbtjax import stimulus as vs

jax.config.update("jax_enable_x64", True)


def free_net(n, **kw):
    conn = vbt.Connectome(weights=np.zeros((n, n)), lengths=np.zeros((n, n)))
    return vbt.Network(
        model=vbt.models.Kuramoto(omega=0.0), connectome=conn, coupling=vbt.coupling.Kuramoto(a=0.0), **kw
    )


@pytest.mark.parametrize("solver", [vbt.Euler(), vbt.Heun(), vbt.RK4()])
def test_stimulus_is_integrated_as_tvb(solver):
    # theta' = stim(t_n) held over each step: theta(T) = sum_n dt * stim(n dt), exactly, for every scheme
    dt, T = 0.1, 50.0
    temporals = {
        "sin": vs.Sinusoid(amplitude=2.0, frequency=40.0, phase=0.3, onset=5.0),
        "pulse": vs.PulseTrain(onset=3.0, period=10.0, width=2.0, amplitude=1.5),
        "step": vs.Step(onset=12.0, amplitude=-0.7, duration=20.0),
        "gauss": vs.GaussianPulse(amplitude=1.2, midpoint=25.0, sigma=4.0),
    }
    t = np.arange(int(round(T / dt))) * dt
    for name, temporal in temporals.items():
        net = free_net(3, stimulus=vs.Stimulus(temporal, regions=[1], weight=2.0))
        sol = vbt.simulate(net, t1=T, dt=dt, history=np.zeros((1, 3)), solver=solver)
        expected = np.cumsum(dt * 2.0 * np.asarray(temporal(jnp.asarray(t))))
        np.testing.assert_allclose(sol.ys["raw"][:, 0, 1], expected, rtol=1e-12, atol=1e-12, err_msg=name)
        np.testing.assert_array_equal(sol.ys["raw"][:, 0, [0, 2]], 0.0)


def test_stimulus_patterns_by_hand():
    t = jnp.array([0.0, 2.9, 3.0, 4.9, 5.0, 13.0, 15.5])
    np.testing.assert_allclose(
        vs.PulseTrain(onset=3.0, period=10.0, width=2.0, amplitude=1.5)(t), [0, 0, 1.5, 1.5, 0, 1.5, 0]
    )
    np.testing.assert_allclose(
        vs.Sinusoid(amplitude=1.0, frequency=250.0)(jnp.array([0.0, 1.0])), [0.0, 1.0], atol=1e-12
    )  # 250 Hz: quarter period at 1 ms
    np.testing.assert_allclose(vs.Step(onset=1.0, duration=2.0)(jnp.array([0.5, 1.0, 2.9, 3.0])), [0, 1, 1, 0])


def test_gaussian_pulse_is_tvbs_gaussian_equation():
    """TVB's ``Gaussian`` equation, ``amp * exp(-((var - midpoint)**2 / (2.0 * sigma**2))) + offset`` (offset 0):
    at ``midpoint + k sigma`` it is ``amp * exp(-k^2 / 2)``, values written out below."""
    g = vs.GaussianPulse(amplitude=1.2, midpoint=50.0, sigma=4.0)
    t = jnp.array([50.0, 54.0, 46.0, 58.0, 38.0, 0.0])  # midpoint, +-1 sigma, +2 sigma, -3 sigma, far tail
    expected = 1.2 * np.array([1.0, 0.6065306597126334, 0.6065306597126334, 0.1353352832366127, 0.011108996538242306])
    np.testing.assert_allclose(g(t)[:5], expected, rtol=1e-14)
    assert 0.0 <= float(g(t)[5]) < 1e-30  # exp(-78)
    # integrated as TVB does (held over each step, at the step's start): theta(T) = sum_n dt w g(n dt), a Riemann sum
    # of a Gaussian, whose error against the integral w amp sigma sqrt(2 pi) is exp(-2 pi^2 sigma^2 / dt^2): nil here
    net = free_net(2, stimulus=vs.Stimulus(g, regions=[0], weight=2.0))
    sol = vbt.simulate(net, t1=100.0, dt=0.1, history=np.zeros((1, 2)), solver=vbt.Euler())
    theta = float(sol.ys["raw"][-1, 0, 0])
    np.testing.assert_allclose(theta, 2.0 * 1.2 * 4.0 * np.sqrt(2 * np.pi), rtol=1e-12)
    # the peak is at the midpoint: the steps starting at 0 .. 49.9 ms hold half of the sum without the midpoint's term
    # (a pattern shifted by one step would miss by dt w g(49.9) = 0.24)
    half = float(sol.ys["raw"][499, 0, 0])
    np.testing.assert_allclose(half, 0.5 * (theta - 0.1 * 2.0 * 1.2), rtol=1e-12)


def test_stimulus_variables_and_regions():
    model = vbt.models.MontbrioPazoRoxin()
    s = vs.Stimulus(vs.Step(), regions=[0, 2])
    p = np.asarray(s.pattern(model, 4))
    np.testing.assert_array_equal(p, [[0, 0, 0, 0], [1, 0, 1, 0]])  # MPR's stvar is V (TVB)
    p = np.asarray(vs.Stimulus(vs.Step(), variables=("r",), weight=np.arange(4.0)).pattern(model, 4))
    np.testing.assert_array_equal(p, [[0, 1, 2, 3], [0, 0, 0, 0]])


def test_stimulus_gradient_matches_finite_differences():
    net = vbt.Network(
        model=vbt.models.Generic2dOscillator(a=4.0),
        connectome=vbt.Connectome(weights=np.array([[0.0, 1.0], [1.0, 0.0]]), lengths=np.full((2, 2), 3.0)),
        coupling=vbt.coupling.Linear(a=0.1),
        stimulus=vs.Stimulus(vs.Sinusoid(amplitude=0.5, frequency=20.0), regions=[0]),
    )

    def loss(amp):
        n = eqx.tree_at(lambda n: n.stimulus[0].temporal.amplitude, net, amp)
        return jnp.sum(vbt.simulate(n, t1=20.0, dt=0.1, history=0.1 * np.ones((2, 2))).ys["raw"][-50:, 0] ** 2)

    g = jax.grad(loss)(0.5)
    fd = (loss(0.5 + 1e-5) - loss(0.5 - 1e-5)) / 2e-5
    np.testing.assert_allclose(g, fd, rtol=1e-6)
    assert abs(float(g)) > 1e-6


def test_multiplicative_noise_moments_are_euler_maruyama():
    # d theta = sqrt(2 nsig) theta dW (Ito, at the step start):
    # E = theta0 and E[theta^2] = theta0^2 (1 + 2 nsig dt)^n
    n, nsig, dt, steps = 3000, 0.02, 0.5, 20
    net = free_net(n, noise=vbt.noise.Multiplicative(nsig=nsig))
    for solver in (vbt.Euler(), vbt.Heun()):
        sol = vbt.simulate(
            net,
            t1=steps * dt,
            dt=dt,
            history=np.ones((1, n)),
            key=jax.random.key(5),
            solver=solver,
            monitors=vbt.monitors.SubSample(period=steps * dt),
        )
        x = np.asarray(sol.ys[-1, 0])
        second = (1 + 2 * nsig * dt) ** steps
        assert abs(x.mean() - 1.0) < 4 * np.sqrt((second - 1) / n)
        assert abs(np.mean(x**2) - second) < 4 * np.std(x**2) / np.sqrt(n)


def test_bad_stimulus_input():
    model_conn = dict(model=vbt.models.MontbrioPazoRoxin(), connectome=vbt.datasets.tvb_connectome(76))
    with pytest.raises(ValueError, match="regions"):
        vbt.Network(**model_conn, stimulus=vs.Stimulus(vs.Step(), regions=[80]))
    with pytest.raises(ValueError, match="unknown state variable"):
        vbt.Network(**model_conn, stimulus=vs.Stimulus(vs.Step(), variables=("x",)))
    with pytest.raises(ValueError, match="weight"):
        vbt.Network(**model_conn, stimulus=vs.Stimulus(vs.Step(), weight=np.ones(5)))
    with pytest.raises(TypeError, match="temporal"):
        vs.Stimulus(lambda t: t)
    with pytest.raises(ValueError, match="amplitude"):
        vs.Sinusoid(amplitude=float("nan"))
