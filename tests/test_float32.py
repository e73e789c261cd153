"""float32, as users run it: TVB's reference runs replayed in float32, and gradients in float32 against float64.

**Rounding analysis of the replays.** Float32 rounds to a relative ``u = 2**-24 = 6.0e-8``. A plain float32 update
``x + dx`` rounds the state once per step, and the errors add up over the run's steps, amplified or damped by the
run's own sensitivity. That is modelled in float64, per run: the float64 replay is perturbed at every step by an
independent relative error of size ``u`` (multiplicative noise, ``x dW`` with ``sqrt(2 nsig dt) = u``), and its
divergence from the unperturbed float64 replay, per state variable (the larger of two seeds), is the error expected of
float32 arithmetic on this run: ``E_v``. It includes the run's sensitivity (chaotic Epileptor, LarterBreakspear and
the neutral phases of the SupHopf oscillators amplify it the most). The simulator sums the state update with
compensation (Kahan: ``vbtjax.simulation.solvers``), which removes the accumulated rounding of the state, so the
float32 error comes from the roundings of the increments and of the vector field, each a relative ``u`` of a smaller
quantity. Those are not independent from step to step (a rounding repeated over ``m`` steps adds ``m``-fold, not
``sqrt(m)``-fold, as the noise model assumes), so the tolerance is ``4 E_v`` (correlation over 16 steps, 1.6 ms,
allowed), added to the float64 replay's own error against TVB.

Measured (per variable, of its own scale, x86 CPU): float32 against float64 is 0.01-0.6 of ``E_v`` in 10 runs, 2.9
(Epileptor x1) and 1.5 (y1) in the 21 ms Epileptor window; 8e-8 (ReducedWongWangExcInh) to 4.5e-4 (LarterBreakspear
V) in absolute terms. The previous loop (no compensation, the step taken as ``t1 - t0`` at ``t0 = n dt``, which in
float32 is off by half an ulp of ``t0``) gave up to 0.24 (SupHopf) and fails here: ``test_uncompensated_loop_fails``.

**Gradients.** The float32 gradient's relative error against float64 is at most ``2 n u`` for an ``n``-step run
that does not amplify perturbations (each step of the forward and of the reverse pass rounds the carried values once,
adding at most ``u`` relative; the Generic2dOscillator run used here amplifies a 1-ulp perturbation of its history
about 2-fold over 1000 ms), i.e. 1.2e-4 for 100 ms at dt = 0.1 ms; measured 2e-7.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _tvb_replay import RUNS, build, cast, describe, errors, load, replay, run, samples

import vbtjax as vbt
from vbtjax.simulation.solvers import NetworkTerm

U = 2.0**-24
"""float32's unit roundoff."""

CORRELATION = 4.0
"""Allowance for step-to-step correlated rounding: the tolerance is this times the noise model's divergence."""


def _rounding_model(ref, net64, g64):
    """``E_v``: the divergence of the float64 replay perturbed by relative noise of size u per step (two seeds)."""
    noisy = eqx.tree_at(
        lambda n: n.noise, net64, vbt.noise.Multiplicative(nsig=U**2 / (2 * ref.dt)), is_leaf=lambda x: x is None
    )
    return np.max([errors(replay(ref, noisy, key=jax.random.key(seed)), g64) for seed in (0, 1)], axis=0)


@pytest.mark.slow  # 12 runs of 4 simulations each: about 50 s of CPU in all
@pytest.mark.parametrize("name", RUNS)
def test_float32_reproduces_tvb(shared_dir, name):
    ref = load(shared_dir, name)
    net64 = build(ref)
    net32 = build(ref, jnp.float32)
    assert net32.dtype == np.float32
    sol32 = run(ref, net32)
    assert sol32.ys["raw"].dtype == jnp.float32 and sol32.final_state.dtype == jnp.float32  # float32 all the way
    g64, g32 = replay(ref, net64), samples(ref, sol32)
    tol = CORRELATION * _rounding_model(ref, net64, g64)
    err64, err32 = errors(g64, ref.trajectory), errors(g32, ref.trajectory)
    names = ref.state_variables
    assert np.all(err32 <= err64 + tol), (
        f"{name}: float32 error per variable {describe(names, err32)}; float64 {describe(names, err64)}; "
        f"allowed beyond float64 {describe(names, tol)}"
    )


class _UncompensatedHeun(vbt.Heun):
    """The float32 loop before compensation: a plain ``x + dx``, and the step taken as ``t1 - t0``."""

    compensate_below = 0

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        return super().step(NetworkTerm(terms.model), t0, t1, y0, args, solver_state, made_jump)


@pytest.mark.parametrize("name", ["Generic2dOscillator", "SupHopf"])
def test_uncompensated_loop_fails(shared_dir, name):
    """Negative control: the same tolerance rejects the previous float32 loop on these limit cycles."""
    ref = load(shared_dir, name)
    net64 = build(ref)
    g64 = replay(ref, net64)
    tol = CORRELATION * _rounding_model(ref, net64, g64)
    err = errors(replay(ref, build(ref, jnp.float32), solver=_UncompensatedHeun()), g64)
    assert np.all(err > 10 * tol), (
        f"{name}: {describe(ref.state_variables, err)} against {describe(ref.state_variables, tol)}"
    )


def test_compensation_is_float32_only():
    """float64 states are summed plainly (no solver state); float32 and float16 carry the compensation."""
    y = jnp.zeros(3)
    assert vbt.Heun().init(None, 0.0, 0.1, y, None) is None
    for dtype in (jnp.float32, jnp.float16):
        assert vbt.Heun().init(None, 0.0, 0.1, y.astype(dtype), None).dtype == dtype


def test_compensated_sum_is_exact_where_plain_float32_drifts():
    """Kahan's sum against exact arithmetic: 10 000 increments of 0.1 * 0.3 onto 0.45 in float32 (the size of a
    SupHopf state and step). The compensated sum is within one rounding of the exact (float64) sum; the plain sum
    drifts by hundreds of roundings."""
    from vbtjax.simulation.solvers import compensated_add

    dy = jnp.float32(0.03)

    def body(carry, _):
        (y, c), yp = carry
        return (compensated_add(y, dy, c), yp + dy), None

    y0 = jnp.float32(0.45)
    ((y, _), plain), _ = jax.lax.scan(body, ((y0, jnp.zeros((), jnp.float32)), y0), None, length=10_000)
    exact = np.float64(y0) + 10_000 * np.float64(dy)
    ulp = np.spacing(np.float32(exact))
    assert abs(np.float64(y) - exact) <= ulp
    assert abs(np.float64(plain) - exact) > 100 * ulp


def test_float32_gradients_match_float64(shared_dir):
    """d loss / d (coupling a, model a) of 100 ms of the Generic2dOscillator run, loss = mean V^2, in float32 against
    float64: relative error <= 2 n u (module docstring)."""
    ref = load(shared_dir, "Generic2dOscillator")
    n_steps = 1000

    def gradient(net):
        def loss(p):
            n = eqx.tree_at(lambda n: (n.coupling.a, n.model.a), net, p)
            sol = vbt.simulate(n, t1=n_steps * ref.dt, dt=ref.dt, history=ref.data["initial_history"], check="off")
            return jnp.mean(sol.ys["raw"][:, 0] ** 2)

        return jax.jit(jax.value_and_grad(loss))((net.coupling.a, net.model.a))

    (v64, g64), (v32, g32) = gradient(build(ref)), gradient(build(ref, jnp.float32))
    assert v32.dtype == jnp.float32 and all(g.dtype == jnp.float32 for g in g32)
    rtol = 2 * n_steps * U
    assert abs(float(v32) / float(v64) - 1) <= rtol
    for a, b in zip(g32, g64, strict=True):
        assert abs(float(b)) > 1e-3  # not trivially zero
        assert abs(float(a) / float(b) - 1) <= rtol, (float(a), float(b))


def test_cast_network_runs_in_float32_under_x64(shared_dir):
    """The float32 network of these tests: every floating leaf cast, the delay layout kept (the same edges)."""
    ref = load(shared_dir, "MontbrioPazoRoxin")
    net64 = build(ref)
    net32 = cast(net64, jnp.float32)
    assert jax.config.jax_enable_x64 and net64.dtype == np.float64 and net32.dtype == np.float32
    assert net32.edges == net64.edges
