"""Stimulation design by gradient (vbtjax.twin.stimulation): a toy with an analytic optimum, gradients against finite
differences, safety limits that hold on every design (with a negative control), the robust objective, and a small
VEP twin whose seizures the designed stimulation ends."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbtjax as vbt
from vbtjax.inference.params import Interval, Positive
from vbtjax.models import Linear
from vbtjax.noise import Additive
from vbtjax.observation.monitors import SubSample
from vbtjax.stimulus import Step, Stimulus
from vbtjax.twin.stimulation import (
    DesignProblem,
    SafetyLimits,
    SmoothPulseTrain,
    band_power_loss,
    design,
    seizure_loss,
)

GAMMA = -2.0  # 1/ms: a linear node relaxes to -input / GAMMA


def linear_net(n=2, gamma=GAMMA, noise=None):
    conn = vbt.Connectome(weights=np.zeros((n, n)), lengths=np.zeros((n, n)))
    return vbt.Network(model=Linear(gamma=gamma), connectome=conn, coupling=vbt.coupling.Linear(a=0.0), noise=noise)


def window_mean(region, target):
    """Squared distance of the region's mean over the last 5 ms (of 20) from `target`."""

    def loss(sol):
        return (jnp.mean(sol.ys["raw"][-50:, 0, region]) - target) ** 2

    return loss


SIM = dict(t1=20.0, dt=0.1, monitors={"raw": vbt.monitors.Raw()})


def test_linear_toy_recovers_the_analytic_amplitude():
    # x' = GAMMA x + A on region 0: the mean over the last 5 ms (transient e^-30) is -A / GAMMA, so the amplitude
    # that brings it to 0.7 is A* = 0.7 |GAMMA| = 1.4.
    net = linear_net()
    make = lambda p: Stimulus(Step(amplitude=p["amplitude"]), regions=[0])  # noqa: E731
    res = design(net, make, window_mean(0, 0.7), init={"amplitude": 0.3}, constraints={"amplitude": Positive()},
                 steps=150, learning_rate=0.05, **SIM)  # fmt: skip
    assert float(res.params["amplitude"]) == pytest.approx(0.7 * abs(GAMMA), rel=1e-3)
    assert res.losses[-1] < 1e-6 < res.losses[0]
    assert res.per_draw_after.shape == (1,) and res.per_draw_after[0] < res.per_draw_before[0]


def _noisy_twin():
    """A 2-region linear twin with noise and 3 posterior draws of the damping rate."""
    net = linear_net(gamma=np.array([-2.0, -1.5]), noise=Additive(nsig=1e-3))
    post = {"model.gamma": np.array([[-2.0, -1.5], [-2.5, -1.0], [-1.5, -2.0]])}
    return vbt.Twin(net, posterior=post, simulation=SIM)


def test_gradient_matches_finite_differences():
    # the objective over 3 draws with common random numbers, through a smooth pulse train (amplitude, width,
    # frequency, onset all differentiable) and an active charge limit: d objective / d u against central differences
    twin = _noisy_twin()

    def make(p):
        temporal = SmoothPulseTrain(amplitude=p["amplitude"], width=p["width"], frequency=p["frequency"],
                                    onset=p["onset"], edge=0.3)  # fmt: skip
        return Stimulus(temporal, weight=p["weights"])

    prob = DesignProblem(
        twin, make, window_mean(1, 0.4),
        init={"weights": np.array([0.5, -0.3]), "amplitude": 3.0, "width": 2.0, "frequency": 150.0, "onset": 2.0},
        constraints={"weights": Interval(-1.0, 1.0), "amplitude": Positive(), "width": Interval(0.5, 4.0),
                     "frequency": Interval(50.0, 250.0), "onset": Interval(0.0, 5.0)},
        limits=SafetyLimits(charge=4.0), key=jax.random.key(3),
    )  # fmt: skip
    assert float(SafetyLimits(charge=4.0).values(prob.params(prob.u0))["charge"]) == pytest.approx(4.0)  # active
    f = jax.jit(prob.objective)
    g = jax.grad(prob.objective)(prob.u0)
    h = 1e-3  # the objective carries ~1e-9 of round-off, so smaller steps lose digits
    for name in prob.names:
        u = np.asarray(prob.u0[name], float)
        for i in np.ndindex(u.shape):
            up, um = u.copy(), u.copy()
            up[i] += h
            um[i] -= h
            fd = (f({**prob.u0, name: jnp.asarray(up)}) - f({**prob.u0, name: jnp.asarray(um)})) / (2 * h)
            assert float(g[name][i]) == pytest.approx(float(fd), rel=1e-4, abs=1e-8), (name, i)


def test_common_random_numbers_and_cvar():
    twin = _noisy_twin()
    make = lambda p: Stimulus(Step(amplitude=p["amplitude"]))  # noqa: E731
    kw = dict(init={"amplitude": 1.0}, key=jax.random.key(0))
    mean = DesignProblem(twin, make, window_mean(0, 0.0), **kw)
    a, b = mean.per_draw({"amplitude": jnp.asarray(1.0)}), mean.per_draw({"amplitude": jnp.asarray(1.0)})
    np.testing.assert_array_equal(a, b)  # same draws, same noise: deterministic in the design
    other = DesignProblem(twin, make, window_mean(0, 0.0), init={"amplitude": 1.0}, key=jax.random.key(1))
    assert not np.array_equal(a, other.per_draw({"amplitude": jnp.asarray(1.0)}))  # the noise does enter
    losses = jnp.asarray([0.3, 2.0, 0.1, 1.0, 5.0])
    cvar = DesignProblem(twin, make, window_mean(0, 0.0), quantile=0.6, **kw)
    assert float(cvar.reduce(losses)) == pytest.approx((5.0 + 2.0) / 2)  # worst ceil(0.4 * 5) = 2 draws
    assert float(mean.reduce(losses)) == pytest.approx(float(np.mean(losses)))


def _pulse(p):
    return Stimulus(SmoothPulseTrain(amplitude=p["amplitude"], width=p["width"], frequency=100.0, edge=0.2),
                    weight=p["weights"])  # fmt: skip


CONSTRAINED = dict(
    init={"weights": np.array([0.5, 0.5]), "amplitude": 1.0, "width": 1.0},
    constraints={"weights": Interval(-1.0, 1.0), "amplitude": Positive(), "width": Interval(0.2, 5.0)},
    steps=40, learning_rate=0.2, **SIM,
)  # fmt: skip


def test_safety_limits_hold_where_the_free_optimum_violates_them():
    # bringing region 0's mean to 3 needs a mean drive of 6 = w0 * amplitude * width * 100 Hz / 1000: far beyond a
    # charge per phase of 2 and a total current of 3
    net, loss = linear_net(), window_mean(0, 3.0)
    limits = SafetyLimits(charge=2.0, current=3.0)
    free = design(net, _pulse, loss, **CONSTRAINED)
    assert not limits.satisfied(free.params)  # negative control: without the limits the optimum breaks them
    res = design(net, _pulse, loss, limits=limits, **CONSTRAINED)
    for k in range(res.losses.shape[0]):  # every design visited, and so the one returned
        assert limits.satisfied({n: v[k] for n, v in res.history.items()})
    assert limits.satisfied(res.params)
    assert float(res.limits["charge"]) <= 2.0 * (1 + 1e-9) and float(res.limits["current"]) <= 3.0 * (1 + 1e-9)
    assert float(res.limits["charge"]) == pytest.approx(2.0, rel=1e-2)  # the optimum lies on the charge boundary
    assert res.losses.min() < res.losses[0]
    # a design inside the limits is left as it is
    inside = {"weights": jnp.array([0.1, 0.2]), "amplitude": jnp.asarray(1.0), "width": jnp.asarray(1.0)}
    assert float(limits.apply(inside)["amplitude"]) == 1.0


def test_band_power_loss_raises_power_at_the_drive_frequency():
    # a 40 Hz sinusoidal drive of a linear node: the band power around 40 Hz is A^2 / 2 / |H(40 Hz)|^-2, so raising
    # it raises the amplitude; the gradient must point that way, and the loss must grow when lowering is asked
    net = linear_net(n=1)
    make = lambda p: Stimulus(vbt.stimulus.Sinusoid(amplitude=p["amplitude"], frequency=40.0))  # noqa: E731
    sim = dict(t1=200.0, dt=0.1, monitors={"raw": SubSample(period=1.0)})
    raise_ = DesignProblem(net, make, band_power_loss((30.0, 50.0), nperseg=100, discard=50.0),
                           init={"amplitude": 1.0}, **sim)  # fmt: skip
    lower = DesignProblem(net, make, band_power_loss((30.0, 50.0), direction="lower", nperseg=100, discard=50.0),
                          init={"amplitude": 1.0}, **sim)  # fmt: skip
    a = {"amplitude": jnp.asarray(1.0)}
    ga, gl = jax.grad(raise_.objective)(a)["amplitude"], jax.grad(lower.objective)(a)["amplitude"]
    # log P = 2 log A + const: d(-log P)/dA = -2 / A
    assert float(ga) == pytest.approx(-2.0, rel=1e-6) and float(gl) == pytest.approx(2.0, rel=1e-6)


def test_errors_name_the_argument():
    net = linear_net()
    make = lambda p: Stimulus(Step(amplitude=p["a"]))  # noqa: E731
    with pytest.raises(ValueError, match="t1= and dt="):
        design(net, make, window_mean(0, 0.0), init={"a": 1.0})
    with pytest.raises(ValueError, match="not in init"):
        design(net, make, window_mean(0, 0.0), init={"a": 1.0}, constraints={"b": Positive()}, **SIM)
    with pytest.raises(ValueError, match="init\\['a'\\]"):
        design(net, make, window_mean(0, 0.0), init={"a": -1.0}, constraints={"a": Positive()}, **SIM)
    with pytest.raises(ValueError, match="amplitude"):
        SafetyLimits(charge=1.0).values({"a": 1.0})
    with pytest.raises(ValueError, match="charge"):
        SafetyLimits(charge=-1.0)


# ------------------------------------------------------------------------------------------------------- VEP
def small_vep_twin(draws=16, seed=1):
    """A 5-region VEP twin: region 0 epileptogenic (x0 = -1.6, seizing every ~20 ms), the others healthy; its
    posterior: `draws` draws of x0 (truth + N(0, 0.08^2)) and of K (0.3 x lognormal(0, 0.1))."""
    from vbtjax.applications import vep

    rng = np.random.default_rng(seed)
    n = 5
    w = rng.uniform(0, 1, (n, n))
    conn = vbt.Connectome(weights=(w + w.T) / 2, lengths=np.zeros((n, n)))
    x0 = np.array([-1.6, -2.4, -2.5, -2.3, -2.45])
    net = vep.vep_network(conn, x0=x0, K=0.3)
    post = {"model.x0": x0 + 0.08 * rng.standard_normal((draws, n)),
            "coupling.a": 0.3 * np.exp(0.1 * rng.standard_normal(draws))}  # fmt: skip
    sim = {"t1": 100.0, "dt": 0.1, "solver": vbt.Heun(), "monitors": {"x1": SubSample(period=1.0)},
           "history": np.asarray(vep.rest_history(n))}  # fmt: skip
    return vbt.Twin(net, posterior=post, simulation=sim)


def _z_pulses(p):
    # pulses on the slow permittivity variable z (a drive on x1 is followed by the fast variable within each pulse)
    return Stimulus(SmoothPulseTrain(amplitude=p["amplitude"], width=p["width"], frequency=100.0, edge=0.2),
                    weight=p["weights"], variables=("z",))  # fmt: skip


VEP_DESIGN = dict(
    init={"weights": np.zeros(5), "amplitude": 0.05, "width": 2.0},
    constraints={"weights": Interval(-1.0, 1.0), "amplitude": Interval(0.0, 1.0), "width": Interval(0.5, 8.0)},
    limits=SafetyLimits(charge=2.0, current=1.0),
)


@pytest.mark.slow
def test_vep_design_ends_the_seizure_and_beats_random_designs():
    twin = small_vep_twin()
    ended = seizure_loss(regions=[0], window=60.0)  # < 0.05: x1 below SEIZURE_X1 over the last 60 ms
    steps = 40
    res = design(twin, _z_pulses, seizure_loss(regions=[0], window=60.0, sharpness=0.3), steps=steps,
                 learning_rate=0.3, **VEP_DESIGN)  # fmt: skip
    prob = DesignProblem(twin, _z_pulses, ended, **VEP_DESIGN)
    after = np.asarray(prob.per_draw(res.params))
    before = np.asarray(prob.per_draw(prob.params(prob.u0)))
    assert np.mean(before < 0.05) == 0.0  # negative control: the initial design ends no seizure
    assert np.mean(after < 0.05) >= 0.9
    assert VEP_DESIGN["limits"].satisfied(res.params)
    # random feasible designs at the same budget: one simulation per draw per design, as many designs as steps
    per_draw = jax.jit(prob.per_draw)
    random = [np.asarray(per_draw(p)) for p in prob.random_designs(steps, jax.random.key(0))]
    best = min(float(np.mean(r)) for r in random)
    assert float(np.mean(after)) < best
    assert math.isfinite(best)
