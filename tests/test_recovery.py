"""Synthetic twins: parameters that generated the "recorded" data are recovered by ``vbt.inference.fit``.

Each test simulates data from a network with known parameters, starts the fit from a different network (the true
values are never passed to the fit, only used in the final assertions) and checks that every fitted value lies
within 5 % of the truth.

Design (why these fits are identifiable):

- Generic2dOscillator in its excitable regime (TVB's defaults, ``I`` in [0.5, 1.5]: a stable focus; sustained
  oscillations appear near ``I = 3``). Each trial starts from a perturbed state (a known initial condition, as after a
  stimulation pulse): every region makes a damped excursion back to its fixed point while the network passes the
  excursions along the delayed tracts. The per-region input ``I`` sets each region's fixed point and the shape of its
  excursion, the global coupling ``a`` how much of the (delayed, time-varying) activity of the others each region
  receives, so the time course separates the two (a fixed point alone would not: it only constrains
  ``I_i + a sum_j W_ij V_j``).
- The recorded signal is a 2 ms temporal average of ``V`` (``TemporalAverage``), compared by a mean squared error.
- With noise, the accuracy is limited statistically, not by the optimiser; noise levels and trial numbers are chosen
  so that this error stays several times below 5 %. Observation noise: the Cramér–Rao standard deviation of the
  worst-determined parameter (the coupling) is 0.85 %. Stochastic network: see its test.
- Conduction speed: ``delay_mode="interpolate"`` (fractional delays, differentiable in the speed) with long tracts
  (40-120 mm: delays of 13-40 ms at 3 mm/ms, comparable with the ~100 ms excursions), so that the arrival times of
  the excursions carry the speed; the loss is smooth with a single minimum in speed over [2, 7] mm/ms.
- Negative control: two parameters that enter only as a product are not identifiable, and the posterior must say so
  (wide marginals, correlation near -1, the product narrow); see the last test.
"""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import pytest  # noqa: E402

import vbtjax as vbt  # noqa: E402
from vbtjax import inference as inf  # noqa: E402

N = 8  # regions
DT = 0.5  # ms
RTOL = 0.05  # required recovery accuracy (relative)
MONITOR = vbt.monitors.TemporalAverage(period=2.0)


def _connectome(rng, lengths=(10.0, 40.0)):
    """Random weights in [0, 1) without self-connections; symmetric tract lengths (mm) uniform in ``lengths``."""
    w = rng.uniform(0.0, 1.0, (N, N))
    np.fill_diagonal(w, 0.0)
    tracts = rng.uniform(*lengths, (N, N))
    tracts = (tracts + tracts.T) / 2
    np.fill_diagonal(tracts, 0.0)
    return vbt.Connectome(weights=w, lengths=tracts)


def _twin(seed, n_trials=1):
    """Connectome, heterogeneous per-region inputs ``I`` (N,), global coupling, and ``(n_trials, 2, N)`` initial
    states (one perturbation per trial)."""
    rng = np.random.default_rng(seed)
    conn = _connectome(rng)
    i_true = rng.uniform(0.5, 1.5, N)
    x0 = rng.uniform(-1.0, 1.0, (n_trials, 2, N))
    return conn, i_true, 0.1, jnp.asarray(x0)


def _net(conn, i, a, noise=None, speed=4.0, **kw):
    model = vbt.models.Generic2dOscillator(I=jnp.asarray(i))  # per-region I; other parameters TVB's defaults
    return vbt.Network(model, conn, vbt.coupling.Linear(a=a), speed=speed, noise=noise, **kw)


def _record(net, x0, t1, key=None):
    """``(T, N)`` recorded signal of one trial: 2 ms averages of ``V``, from the initial state ``x0``."""
    return vbt.simulate(net, t1, DT, history=x0, monitors=MONITOR, key=key).ys[:, 0]


def _trials(net, x0s, t1):
    """``(n_trials, T, N)``: one deterministic run per initial state."""
    return jax.vmap(lambda x0: _record(net, x0, t1))(x0s)


SELECTION = inf.Selection(
    [
        inf.Parameter(lambda n: n.coupling.a, inf.Positive()),
        inf.Parameter(lambda n: n.model.I, inf.Interval(-1.0, 4.0)),  # (N,) leaf: one value per region
    ]
)


def _check_start_is_far(start, i_true, a_true):
    """The fit must have something to do: the start is far from the truth."""
    i0, a0 = np.asarray(start.model.I), float(start.coupling.a)
    assert abs(a0 / a_true - 1) >= 0.3
    assert np.median(np.abs(i0 / i_true - 1)) >= 0.2


def _assert_recovered(res, i_true, a_true):
    np.testing.assert_allclose(res.params["model.I"], i_true, rtol=RTOL)
    np.testing.assert_allclose(res.params["coupling.a"], a_true, rtol=RTOL)
    assert np.all(np.isfinite(np.asarray(res.losses)))


# ---------------------------------------------------------------------------------------------- deterministic twin
def _fit_trials(start, selection, x0, t1, data, steps):
    """Fit ``selection`` of ``start`` by Adam (0.05) on the squared error of its trials from ``x0`` against ``data``."""
    loss = lambda net, key: inf.timeseries_loss(_trials(net, x0, t1), data)  # noqa: E731
    return inf.fit(loss, start, selection, optax.adam(0.05), steps=steps, progress=False)


@pytest.mark.parametrize(
    "seed, i_factor, a_factor",
    [(0, 1.4, 0.5), (1, 0.6, 1.5)],
    ids=["start-above-coupling-below", "start-below-coupling-above"],
)
def test_twin_recovers_per_region_inputs_and_coupling(seed, i_factor, a_factor):
    t1 = 300.0
    conn, i_true, a_true, x0 = _twin(seed)
    data = _trials(_net(conn, i_true, a_true), x0, t1)
    assert float(jnp.std(data)) > 0.1  # the excursions are there

    # start: the same value in every region (the mean input, scaled) and a coupling off by 50 %
    start = _net(conn, np.full(N, i_factor * i_true.mean()), a_factor * a_true)
    _check_start_is_far(start, i_true, a_true)
    res = _fit_trials(start, SELECTION, x0, t1, data, steps=200)
    assert res.steps_done == 200 and not res.stopped_early
    _assert_recovered(res, i_true, a_true)
    losses = np.asarray(res.losses)
    assert losses[-1] < 1e-6 * losses[0]  # from ~1e-2 to ~1e-11
    np.testing.assert_allclose(res.params["model.I"], i_true, rtol=1e-3)  # noise-free: far better than 5 %
    np.testing.assert_allclose(res.net.model.I, res.params["model.I"])


# ---------------------------------------------------------------------------------------------- observation noise
def test_twin_with_observation_noise():
    """White measurement noise (8 % of the signal's standard deviation) on four recorded trials (four different
    perturbations): the least-squares fit is then the maximum-likelihood estimate; the loss stops at the noise floor."""
    t1, sigma = 300.0, 0.02
    conn, i_true, a_true, x0s = _twin(2, n_trials=4)
    clean = _trials(_net(conn, i_true, a_true), x0s, t1)
    data = clean + sigma * jax.random.normal(jax.random.key(2024), clean.shape)
    assert 0.05 < sigma / float(jnp.std(clean)) < 0.12

    start = _net(conn, np.full(N, 1.4 * i_true.mean()), 0.6 * a_true)
    _check_start_is_far(start, i_true, a_true)
    res = _fit_trials(start, SELECTION, x0s, t1, data, steps=200)
    _assert_recovered(res, i_true, a_true)
    losses = np.asarray(res.losses)
    # the residual is the noise: mean squared residual ~ sigma^2 (1 - n_params / n_samples), never much below it
    assert 0.9 * sigma**2 < losses[-1] < 1.05 * sigma**2
    assert losses[0] > 10 * sigma**2


# ---------------------------------------------------------------------------------------------- stochastic network
def _unbiased_mean_distance(sims, data):
    """Unbiased estimate of ``mean((E[sim] - data)^2)`` from K independent simulations ``sims`` (..., K, T, N) and
    the recorded average ``data`` (..., T, N): the mean over pairs ``k != l`` of ``(sim_k - data)(sim_l - data)``.

    The plain ``mean((mean_k sim_k - data)^2)`` adds ``Var(sim) / K``, whose dependence on the parameters (noise
    drives more excursions in more excitable regions) would bias the estimate of ``I``.
    """
    d = sims - data[..., None, :, :]
    k = d.shape[-3]
    total = jnp.sum(d, axis=-3)
    return (jnp.mean(total * total) - jnp.mean(jnp.sum(d * d, axis=-3))) / (k * (k - 1))


@pytest.mark.slow
def test_twin_stochastic_network_trial_averages():
    """A stochastic network (additive noise on ``V``: trial-to-trial spread ~25 % of the evoked signal). The data are
    trial averages (evoked responses) of 4 perturbations x 512 recorded trials. Each fit step simulates 4 fresh noise
    realisations per perturbation (new keys at every step, from ``fit``'s key) and compares their mean with the data
    through an unbiased distance; Adam with a cosine-decaying step averages the gradient noise out.

    The accuracy is set by the recorded averages (their residual noise is correlated in time): with 128 trials per
    perturbation the coupling came out 1-3 % off, with 512 within 1.5 % (worst per-region value 2.2 %) over six
    choices of seeds and keys."""
    t1, n_rec, n_sim = 200.0, 512, 4
    conn, i_true, a_true, x0s = _twin(0, n_trials=4)
    noise = vbt.noise.Additive(nsig=jnp.array([1e-4, 0.0]))  # sqrt(2 nsig dt) N(0, 1) per step, on V only

    def realisations(net, key, n):  # (4, n, T, N)
        keys = jax.random.split(key, (x0s.shape[0], n))
        one = jax.vmap(lambda x0, k: _record(net, x0, t1, key=k), in_axes=(None, 0))
        return jax.vmap(one)(x0s, keys)

    recorded = realisations(_net(conn, i_true, a_true, noise), jax.random.key(99), n_rec)
    spread, evoked = float(jnp.mean(jnp.std(recorded, axis=1))), float(jnp.std(jnp.mean(recorded, axis=1)))
    assert 0.15 < spread / evoked < 0.4  # the noise is not negligible
    data = jnp.mean(recorded, axis=1)

    start = _net(conn, np.full(N, 1.4 * i_true.mean()), 0.5 * a_true, noise)
    _check_start_is_far(start, i_true, a_true)
    steps = 220
    res = inf.fit(
        lambda net, key: _unbiased_mean_distance(realisations(net, key, n_sim), data),
        start,
        SELECTION,
        optax.adam(optax.cosine_decay_schedule(0.1, steps, alpha=0.02)),
        steps=steps,
        key=jax.random.key(7),
        progress=False,
    )
    _assert_recovered(res, i_true, a_true)
    losses = np.asarray(res.losses)
    assert np.mean(losses[-20:]) < 0.01 * losses[0]


# ---------------------------------------------------------------------------------------------- conduction speed
@pytest.mark.parametrize("v_start", [5.0, 2.0])
def test_conduction_speed_recovered_with_interpolated_delays(v_start):
    """Speed and coupling fitted together from a wrong start (true 3 mm/ms, coupling 0.1)."""
    rng = np.random.default_rng(1)
    conn = _connectome(rng, lengths=(40.0, 120.0))
    x0 = jnp.asarray(rng.uniform(-1.0, 1.0, (1, 2, N)))
    t1, v_true, a_true = 400.0, 3.0, 0.1
    speed_range = (1.5, 10.0)

    def net_at(v, a):
        return _net(conn, 1.0, a, speed=v, delay_mode="interpolate", speed_range=speed_range)

    true = net_at(v_true, a_true)
    assert 12.0 < float(jnp.min(true.delays() + 1e9 * jnp.eye(N))) and float(jnp.max(true.delays())) < 41.0
    data = _trials(true, x0, t1)
    start = net_at(v_start, 1.4 * a_true)
    selection = inf.Selection(
        [
            inf.Parameter(lambda n: n.speed, inf.Interval(*speed_range)),  # the buffer serves the whole interval
            inf.Parameter(lambda n: n.coupling.a, inf.Positive()),
        ]
    )
    res = _fit_trials(start, selection, x0, t1, data, steps=150)
    np.testing.assert_allclose(res.params["speed"], v_true, rtol=RTOL)
    np.testing.assert_allclose(res.params["coupling.a"], a_true, rtol=RTOL)
    np.testing.assert_allclose(res.net.speed, res.params["speed"])
    losses = np.asarray(res.losses)
    assert losses[-1] < 1e-4 * losses[0]
    np.testing.assert_allclose(res.history["speed"][0], v_start)


# ---------------------------------------------------------------------------------------------- non-identifiable
@pytest.mark.slow
def test_non_identifiable_pair_is_reported_by_the_posterior():
    """Negative control of recovery: a stimulus amplitude and its weight enter the network only as their product
    (the input is ``amplitude * weight``), so the data fix the product and nothing else (a recovery "within 5 %" of
    either factor would be luck). The posterior (NUTS) must say so. In log space, with LogNormal(0, 0.5)
    priors, the posterior is the prior times a likelihood of ``s = log a + log w`` alone (sd ``s_p``), so exactly:
    each marginal has sd ``sqrt(0.5 + s_p^2) / 2`` (about 0.35, against the prior's 0.5: hardly narrower) and the
    two logs correlate at ``(s_p^2 - 0.5) / (s_p^2 + 0.5)`` (about -0.99), while the product is recovered within a
    few percent. Measured when written: product sd 4 %, log sds 0.37-0.39, correlation -0.993, R-hat 1.01, ESS 130;
    ~20 s."""
    import numpyro.distributions as dist

    def net(amplitude, weight):
        stim = vbt.stimulus.Stimulus(temporal=vbt.stimulus.Step(onset=0.0, amplitude=amplitude), weight=weight)
        conn = vbt.Connectome(weights=np.array([[0.0, 1.0, 0.5], [0.8, 0.0, 0.3], [0.2, 0.9, 0.0]]),
                              lengths=np.zeros((3, 3)))  # fmt: skip
        return vbt.Network(vbt.models.Linear(gamma=-0.5), conn, vbt.coupling.Linear(a=0.3), stimulus=stim)

    h0 = jnp.array([1.0, -0.8, 0.6]).reshape(1, 1, 3)

    def observe(n):  # (10, 3): 1 ms averages of a 10 ms run
        return vbt.simulate(n, 10.0, 0.2, history=h0, monitors=vbt.monitors.TemporalAverage(period=1.0)).ys[:, 0]

    sigma, product = 1.0, 1.2
    y = observe(net(2.0, product / 2.0))
    data = y + sigma * jax.random.normal(jax.random.key(3), y.shape)
    names = ("stimulus.0.temporal.amplitude", "stimulus.0.weight")
    post = inf.Posterior(
        net(1.0, 1.0),
        inf.Selection(
            [
                inf.Parameter(lambda n: n.stimulus[0].temporal.amplitude, inf.Positive()),
                inf.Parameter(lambda n: n.stimulus[0].weight, inf.Positive()),
            ]
        ),
        dict.fromkeys(names, dist.LogNormal(0.0, 0.5)),
        lambda n, _: jnp.sum(dist.Normal(observe(n), sigma).log_prob(data)),
    )
    res = inf.nuts(post, key=jax.random.key(0), num_chains=2, num_warmup=300, num_samples=400, progress=False)
    summ = inf.summary(res.samples)
    assert max(float(summ[k]["rhat"]) for k in names) < 1.05 and min(float(summ[k]["ess_bulk"]) for k in names) > 50
    amp, w = (np.asarray(res.samples[k], float).reshape(-1) for k in names)
    # the product is identified and recovered
    prod = amp * w
    assert abs(prod.mean() - product) < 3 * prod.std() and prod.std() < 0.1 * product, (prod.mean(), prod.std())
    # each factor is not: marginals nearly as wide as the prior, logs correlated near -1 (exact values above)
    s_p = np.log(prod).std()
    for x in (amp, w):
        np.testing.assert_allclose(np.log(x).std(), np.sqrt(0.5 + s_p**2) / 2, rtol=0.2)
    corr = np.corrcoef(np.log(amp), np.log(w))[0, 1]
    assert corr < -0.98 and abs(corr - (s_p**2 - 0.5) / (s_p**2 + 0.5)) < 0.005, corr
