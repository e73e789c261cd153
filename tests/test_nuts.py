"""NUTS (BlackJAX kernel, Stan warmup, exact resume), the NumPyro path and ``Posterior``: analytic targets with
Monte Carlo error bars from the effective sample size, checkpoint/resume, reproducibility, error messages, and
BlackJAX against NumPyro (and a quadrature reference) on a small simulated network."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from scipy import stats

import vbtjax as vbt
from vbtjax.inference import (
    Affine,
    Interval,
    Latent,
    Parameter,
    Positive,
    Posterior,
    Real,
    Selection,
    ess_bulk,
    numpyro_nuts,
    nuts,
    warmup_schedule,
)

# the module of vbtjax.inference.nuts (the function) and of the low-level NUTS API
nuts_module = importlib.import_module("vbtjax.inference.nuts_sampler")

N = 3
W = np.array([[0.0, 1.0, 0.5], [0.8, 0.0, 0.3], [0.2, 0.9, 0.0]])
H0 = jnp.array([1.0, -0.8, 0.6]).reshape(1, 1, N)
QUIET = dict(progress=False)


def small_net(gamma=-0.2, a=0.1):
    conn = vbt.Connectome(weights=W, lengths=np.zeros((N, N)))
    return vbt.Network(
        model=vbt.models.Linear(gamma=gamma), connectome=conn, coupling=vbt.coupling.Linear(a=a), speed=3.0
    )


def simulate(net):
    """(10, N) temporal averages over 1 ms of a 10 ms run from the history H0."""
    return vbt.simulate(net, 10.0, 0.2, history=H0, monitors=vbt.monitors.TemporalAverage(period=1.0)).ys[:, 0, :]


def mean_sd_mcse(x):
    """Mean, sd and their Monte Carlo standard errors of ``(chains, draws)`` draws, from the bulk ESS of the draws
    (mean) and of the squared deviations (variance, then the delta method for the sd)."""
    x = np.asarray(x, dtype=float)
    m, s = x.mean(), x.std(ddof=1)
    se_m = s / np.sqrt(ess_bulk(x))
    d2 = (x - m) ** 2
    se_var = d2.std(ddof=1) / np.sqrt(ess_bulk(d2))
    return m, s, se_m, se_var / (2.0 * s)


def assert_within(est, se, ref, k=4.0, what=""):
    z = (est - ref) / se
    assert abs(z) < k, f"{what}: estimate {est:.5g} vs reference {ref:.5g} is {z:.2f} Monte Carlo SE away"


# ---------------------------------------------------------------------------------------------------------------
# warmup schedule


def test_warmup_schedule_stan_windows():
    slow, end = warmup_schedule(1000)
    assert slow.shape == end.shape == (1000,)
    assert not slow[:75].any() and not slow[950:].any() and slow[75:950].all()
    ends = np.flatnonzero(end)
    np.testing.assert_array_equal(ends, [99, 149, 249, 449, 949])  # windows 25, 50, 100, 200, 500 (stretched)
    slow, end = warmup_schedule(100)  # < 150: 15 % / 75 % / 10 %
    assert np.flatnonzero(slow).tolist() == list(range(15, 90)) and np.flatnonzero(end).tolist() == [89]
    for n in (0, 5, 19):
        slow, end = warmup_schedule(n)
        assert slow.shape == (n,) and not slow.any() and not end.any()
    for n in range(20, 3000, 61):
        slow, end = warmup_schedule(n)
        idx = np.flatnonzero(slow)
        assert idx.size and np.all(np.diff(idx) == 1), n  # one contiguous slow stretch
        ends = np.flatnonzero(end)
        # every window ends inside the slow stretch, the last one at its end
        assert ends[-1] == idx[-1] and end[slow].sum() == end.sum(), n
        sizes = np.diff(np.r_[idx[0] - 1, ends])
        assert sizes.sum() == slow.sum() and np.all(sizes[1:-1] == 2 * sizes[:-2]), n  # doubling windows
        assert sizes[-1] >= sizes[-2] if sizes.size > 1 else True


# ---------------------------------------------------------------------------------------------------------------
# analytic targets


COV = np.array([[1.0, 0.9 * 1.0 * 2.0], [0.9 * 1.0 * 2.0, 4.0]])  # sds 1 and 2, correlation 0.9
MU = np.array([1.0, -2.0])
PREC = jnp.asarray(np.linalg.inv(COV))


def gauss_logdensity(u):
    d = u - MU
    return -0.5 * d @ PREC @ d


def test_correlated_gaussian_moments():
    res = nuts(
        gauss_logdensity,
        key=jax.random.key(0),
        num_chains=4,
        num_warmup=400,
        num_samples=600,
        init=jnp.zeros(2),
        init_jitter=1.0,
        **QUIET,
    )
    x = np.asarray(res.samples["u"])  # (4, 600, 2)
    assert x.shape == (4, 600, 2) and int(np.asarray(res.stats["diverging"]).sum()) == 0
    for i in range(2):
        m, _, se_m, _ = mean_sd_mcse(x[..., i])
        assert_within(m, se_m, MU[i], what=f"mean[{i}]")
    for i, j in [(0, 0), (1, 1), (0, 1)]:
        p = (x[..., i] - MU[i]) * (x[..., j] - MU[j])
        se = p.std(ddof=1) / np.sqrt(ess_bulk(p))
        assert_within(p.mean(), se, COV[i, j], what=f"cov[{i},{j}]")
    assert np.all(res.summary()["u"]["rhat"] < 1.02)
    # negative control: the same checks reject a mean 0.25 sd off and a variance 25 % off (the Monte Carlo error
    # bars from the ESS are narrow enough to see errors of that size)
    sd = np.sqrt(np.diag(COV))
    for i in range(2):
        m, _, se_m, _ = mean_sd_mcse(x[..., i])
        with pytest.raises(AssertionError, match="Monte Carlo SE away"):
            assert_within(m, se_m, MU[i] + 0.25 * sd[i], what=f"mean[{i}] (shifted)")
        p = (x[..., i] - MU[i]) ** 2
        with pytest.raises(AssertionError, match="Monte Carlo SE away"):
            assert_within(p.mean(), p.std(ddof=1) / np.sqrt(ess_bulk(p)), 1.25 * COV[i, i], what=f"var[{i}] (x1.25)")
    # the adapted diagonal inverse mass matrix estimates the marginal variances
    np.testing.assert_allclose(np.asarray(res.inverse_mass_matrix).mean(0), np.diag(COV), rtol=0.35)


def test_preconditioned_ill_conditioned_gaussian():
    """A 3-D Gaussian whose scales span 1e-4 to 1 and two of whose coordinates correlate at 0.999: with
    ``preconditioner=(mode, Cholesky factor of the covariance)`` (what vep.infer_ez gives it from the Laplace
    approximation) NUTS recovers the mean and the covariance in float32, draws reported in the original coordinates;
    the same run without it (diagonal mass matrix adapted from ones) does not get close in as many steps."""
    sd = np.array([1e-4, 1e-2, 1.0])
    corr = np.array([[1.0, 0.999, 0.3], [0.999, 1.0, 0.3], [0.3, 0.3, 1.0]])
    cov = corr * sd[:, None] * sd[None]
    mu = np.array([0.5, -1.0, 2.0])
    prec = jnp.asarray(np.linalg.inv(cov), jnp.float32)
    mu32 = jnp.asarray(mu, jnp.float32)

    def logdensity(u):
        d = u - mu32
        return -0.5 * d @ prec @ d

    L = np.linalg.cholesky(cov)
    init = jnp.asarray(mu + 0.5 * np.random.default_rng(0).standard_normal((4, 3)) @ L.T, jnp.float32)
    common = dict(key=jax.random.key(1), num_chains=4, num_warmup=200, num_samples=400, init=init, **QUIET)
    res = nuts(logdensity, preconditioner=(mu, L), **common)
    x = np.asarray(res.samples["u"], dtype=float)
    assert x.shape == (4, 400, 3) and int(np.asarray(res.stats["diverging"]).sum()) == 0
    np.testing.assert_allclose(np.asarray(res.positions, dtype=float), x)
    for i in range(3):
        m, _, se_m, _ = mean_sd_mcse(x[..., i])
        assert_within(m, se_m, mu[i], what=f"mean[{i}]")
    emp = np.cov(x.reshape(-1, 3).T)
    np.testing.assert_allclose(np.sqrt(np.diag(emp)), sd, rtol=0.15)
    assert abs(emp[0, 1] / np.sqrt(emp[0, 0] * emp[1, 1]) - 0.999) < 0.002
    assert np.all(res.summary()["u"]["rhat"] < 1.05)
    plain = nuts(logdensity, **common)
    xp = np.asarray(plain.samples["u"], dtype=float)
    assert np.max(plain.summary()["u"]["rhat"]) > 1.05 or abs(np.std(xp[..., 0]) / sd[0] - 1) > 0.15
    with pytest.raises(ValueError, match="preconditioner"):
        nuts(logdensity, preconditioner=(mu, L[:2]), **common)


def test_conjugate_posteriors_real_and_positive():
    """Two independent conjugate models in one posterior (one run):

    - ``coupling.a`` (Real): Normal prior, Normal likelihood with known sd -> a Normal posterior;
    - ``model.gamma`` (Positive, softplus): Gamma(alpha, beta) prior, Poisson counts -> Gamma(alpha + sum y,
      beta + n), placed near 0 where the softplus Jacobian ``sigmoid(u) ~ x`` matters: without the log-Jacobian
      the sampled mean would lie many Monte Carlo SE away (checked by quadrature), so this tests the change of
      variables.
    """
    rng = np.random.default_rng(1)
    m0, s0, s = 0.3, 2.0, 0.7
    y = jnp.asarray(rng.normal(1.2, s, size=8))
    alpha, beta = 1.5, 1.0
    k = jnp.asarray([0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    post = Posterior(
        small_net(gamma=0.5, a=0.5),
        Selection([Parameter(lambda n: n.coupling.a, Real()), Parameter(lambda n: n.model.gamma, Positive())]),
        {"coupling.a": dist.Normal(m0, s0), "model.gamma": dist.Gamma(alpha, beta)},
        lambda net, lat: (
            jnp.sum(dist.Normal(net.coupling.a, s).log_prob(y)) + jnp.sum(dist.Poisson(net.model.gamma).log_prob(k))
        ),
    )
    res = nuts(post, key=jax.random.key(1), num_chains=4, num_warmup=300, num_samples=500, **QUIET)
    assert int(np.asarray(res.stats["diverging"]).sum()) == 0

    prec = 1 / s0**2 + y.size / s**2
    mean, sd = (m0 / s0**2 + float(y.sum()) / s**2) / prec, prec**-0.5
    m, sdev, se_m, se_s = mean_sd_mcse(res.samples["coupling.a"])
    assert_within(m, se_m, mean, what="normal: posterior mean")
    assert_within(sdev, se_s, sd, what="normal: posterior sd")

    exact = stats.gamma(alpha + float(k.sum()), scale=1 / (beta + k.size))
    x = np.asarray(res.samples["model.gamma"])
    assert x.min() > 0
    m, sdev, se_m, se_s = mean_sd_mcse(x)
    assert_within(m, se_m, exact.mean(), what="gamma: posterior mean")
    assert_within(sdev, se_s, exact.std(), what="gamma: posterior sd")
    for q in (0.1, 0.5, 0.9):  # the posterior CDF at its exact quantiles
        ind = (x <= exact.ppf(q)).astype(float)
        assert_within(ind.mean(), np.sqrt(q * (1 - q) / ess_bulk(ind)), q, what=f"gamma: P(x <= q{q})")
    # power: the same target without the Jacobian, by quadrature over u
    u = np.linspace(-12.0, 4.0, 20001)
    prior_lik = stats.gamma(alpha, scale=1 / beta).logpdf(np.log1p(np.exp(u)))
    prior_lik = prior_lik + stats.poisson(np.log1p(np.exp(u))[:, None]).logpmf(np.asarray(k)).sum(1)
    w = np.exp(prior_lik - prior_lik.max())
    wrong_mean = float(np.sum(w * np.log1p(np.exp(u))) / w.sum())
    assert abs(m - wrong_mean) / se_m > 8.0


# ---------------------------------------------------------------------------------------------------------------
# reproducibility, checkpoints and resume


class _Interrupt:
    """Replaces nuts' atomic checkpoint writer: raises KeyboardInterrupt at the given call numbers, before or after
    writing (a kill between two checkpoints, or right after one)."""

    def __init__(self, stop_at, after_write):
        self.calls, self.stop_at, self.after_write = 0, set(stop_at), after_write
        self.real = nuts_module.write_npz

    def __call__(self, path, arrays):
        self.calls += 1
        if self.calls in self.stop_at and not self.after_write:
            raise KeyboardInterrupt
        self.real(path, arrays)
        if self.calls in self.stop_at:
            raise KeyboardInterrupt


def test_resume_gives_exact_draws_and_same_key_same_draws(tmp_path, monkeypatch):
    kw = dict(num_chains=2, num_warmup=60, num_samples=40, checkpoint_every=20, init=jnp.zeros(2), **QUIET)
    key = jax.random.key(11)
    ref = nuts(gauss_logdensity, key=key, **kw)
    # blocks: warmup 0-20, 20-40, 40-60, sampling 60-80, 80-100
    fake = _Interrupt(stop_at={2}, after_write=False)  # killed in warmup while computing block 20-40
    monkeypatch.setattr(nuts_module, "write_npz", fake)
    with pytest.raises(KeyboardInterrupt):
        nuts(gauss_logdensity, key=key, checkpoint=tmp_path, **kw)
    with np.load(tmp_path / nuts_module.CHECKPOINT_NAME) as z:
        assert int(z["step"]) == 20
    fake.calls, fake.after_write, fake.stop_at = 0, True, {3}  # resumed, killed right after saving block 60-80
    with pytest.raises(KeyboardInterrupt):
        nuts(gauss_logdensity, key=key, checkpoint=tmp_path, **kw)
    with np.load(tmp_path / nuts_module.CHECKPOINT_NAME) as z:
        assert int(z["step"]) == 80
    monkeypatch.setattr(nuts_module, "write_npz", fake.real)
    out = nuts(gauss_logdensity, key=key, checkpoint=tmp_path, **kw)
    for field in ("positions", "step_size", "inverse_mass_matrix"):
        np.testing.assert_array_equal(np.asarray(getattr(out, field)), np.asarray(getattr(ref, field)), err_msg=field)
    for k in ref.stats:
        np.testing.assert_array_equal(np.asarray(out.stats[k]), np.asarray(ref.stats[k]), err_msg=k)
    for k in ref.warmup_stats:
        np.testing.assert_array_equal(np.asarray(out.warmup_stats[k]), np.asarray(ref.warmup_stats[k]), err_msg=k)
    # a finished checkpoint returns the same draws again (nothing left to run)
    again = nuts(gauss_logdensity, key=key, checkpoint=tmp_path, **kw)
    np.testing.assert_array_equal(np.asarray(again.positions), np.asarray(ref.positions))
    assert [r.at_step for r in again.resumed] == [20, 80, 100] and all(r.changed == () for r in again.resumed)
    # other settings -> ResumeError naming what differs, old -> new, in one line
    ResumeError = importlib.import_module("vbtjax.inference.fitting").ResumeError
    with pytest.raises(ResumeError, match=r"key \[0,11\] -> \[0,12\]"):
        nuts(gauss_logdensity, key=jax.random.key(12), checkpoint=tmp_path, **kw)
    with pytest.raises(ResumeError, match="max_tree_depth 10 -> 5, num_warmup 60 -> 50"):
        nuts(gauss_logdensity, key=key, checkpoint=tmp_path, **{**kw, "max_tree_depth": 5, "num_warmup": 50})
    # more draws continue the chains (allowed and recorded); fewer keep the first ones
    more = nuts(gauss_logdensity, key=key, checkpoint=tmp_path, **{**kw, "num_samples": 50, "checkpoint_every": 7})
    longer = nuts(gauss_logdensity, key=key, **{**kw, "num_samples": 50})
    np.testing.assert_array_equal(np.asarray(more.positions), np.asarray(longer.positions))
    assert more.resumed[-1].changed == (("num_samples", 40, 50),)
    fewer = nuts(gauss_logdensity, key=key, checkpoint=tmp_path, **{**kw, "num_samples": 30})
    np.testing.assert_array_equal(np.asarray(fewer.positions), np.asarray(ref.positions)[:, :30])
    # the same key gave the same draws in separate calls (ref, out, again); each chain has its own key and
    # jittered start
    assert not np.array_equal(np.asarray(ref.positions[0]), np.asarray(ref.positions[1]))


# ---------------------------------------------------------------------------------------------------------------
# errors


def test_nuts_errors():
    init = jnp.zeros(2)
    with pytest.raises(ValueError, match="num_chains"):
        nuts(gauss_logdensity, key=jax.random.key(0), num_chains=0, init=init, **QUIET)
    with pytest.raises(ValueError, match="num_chains"):
        nuts(gauss_logdensity, key=jax.random.key(0), num_samples=0, init=init, **QUIET)
    for ta in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="target_accept"):
            nuts(gauss_logdensity, key=jax.random.key(0), target_accept=ta, init=init, **QUIET)
    with pytest.raises(ValueError, match="checkpoint_every"):
        nuts(gauss_logdensity, key=jax.random.key(0), checkpoint_every=0, init=init, **QUIET)
    with pytest.raises(ValueError, match="init"):
        nuts(gauss_logdensity, key=jax.random.key(0), **QUIET)  # plain function without init
    with pytest.raises(ValueError, match="init has shape"):
        nuts(gauss_logdensity, key=jax.random.key(0), num_chains=2, init=jnp.zeros((3, 2)), **QUIET)
    with pytest.raises(ValueError, match="NaN or inf"):
        nuts(gauss_logdensity, key=jax.random.key(0), init=jnp.array([jnp.nan, 0.0]), **QUIET)
    with pytest.raises(ValueError, match="-inf or NaN"):
        nuts(lambda u: jnp.where(u[0] > 5.0, 0.0, -jnp.inf), key=jax.random.key(0), init=init, **QUIET)
    with pytest.raises(TypeError, match="Posterior or a log-density"):
        nuts(3.0, key=jax.random.key(0), **QUIET)
    # a Posterior whose likelihood is -inf at the network's values
    post = Posterior(
        small_net(a=0.5),
        Selection([Parameter(lambda n: n.coupling.a, Positive())]),
        {"coupling.a": dist.Gamma(2.0, 1.0)},
        lambda net, lat: jnp.where(net.coupling.a > 10.0, 0.0, -jnp.inf),
    )
    with pytest.raises(ValueError, match="-inf or NaN"):
        nuts(post, key=jax.random.key(0), init_jitter=0.0, **QUIET)


# ---------------------------------------------------------------------------------------------------------------
# Posterior


def _three_param_posterior(data, hierarchical=False):
    net = small_net(gamma=jnp.full(N, -0.2), a=0.1)
    gamma_constraint = Real() if hierarchical else Interval(-0.6, 0.0)
    sel = Selection(
        [Parameter(lambda n: n.coupling.a, Positive()), Parameter(lambda n: n.model.gamma, gamma_constraint)]
    )
    latents = {"sigma": Latent(dist.LogNormal(np.log(0.05), 0.5), Positive())}
    priors = {"coupling.a": dist.HalfNormal(0.2), "model.gamma": dist.Normal(-0.2, 0.1)}
    if hierarchical:
        latents = {
            "mu": Latent(dist.Normal(-0.2, 0.1), Affine(-0.2, 0.1)),
            "tau": Latent(dist.HalfNormal(0.05), Positive()),
            **latents,
        }
        priors["model.gamma"] = lambda lat: dist.Normal(lat["mu"], lat["tau"])

    def loglik(net, lat):
        return jnp.sum(dist.Normal(simulate(net), lat["sigma"]).log_prob(data))

    return Posterior(net, sel, priors, loglik, latents)


def _sig(u):
    return 1.0 / (1.0 + np.exp(-u))


def test_posterior_log_density_by_hand():
    data = np.asarray(simulate(small_net(gamma=jnp.full(N, -0.25), a=0.12))) + 0.03
    post = _three_param_posterior(jnp.asarray(data))
    assert post.names == ("coupling.a", "model.gamma", "sigma") and post.dim == 5
    u = jnp.array([-1.5, 0.3, -0.2, 0.1, -2.0])
    x = post.constrained(u)
    un = np.asarray(u)
    a = np.log1p(np.exp(un[0]))
    g = -0.6 + 0.6 * _sig(un[1:4])
    sig = np.log1p(np.exp(un[4]))
    np.testing.assert_allclose(float(x["coupling.a"]), a, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(x["model.gamma"]), g, rtol=1e-12)
    lp_prior = stats.halfnorm(scale=0.2).logpdf(a) + stats.norm(-0.2, 0.1).logpdf(g).sum()
    lp_prior += stats.lognorm(s=0.5, scale=0.05).logpdf(sig)
    jac = np.log(_sig(un[0])) + np.sum(np.log(0.6 * _sig(un[1:4]) * (1 - _sig(un[1:4])))) + np.log(_sig(un[4]))
    pred = np.asarray(simulate(small_net(gamma=jnp.asarray(g), a=a)))
    lik = stats.norm(pred, sig).logpdf(data).sum()
    np.testing.assert_allclose(float(post.log_prior(u)), lp_prior + jac, rtol=1e-10)
    np.testing.assert_allclose(float(post.log_density(u)), lp_prior + jac + lik, rtol=1e-10)
    np.testing.assert_allclose(float(jax.jit(lambda v: post.log_density(v))(u)), lp_prior + jac + lik, rtol=1e-10)
    # round trip constrained <-> unconstrained, and the network built from u
    np.testing.assert_allclose(np.asarray(post.unconstrained(x)), un, rtol=1e-10, atol=1e-12)
    net = post.network(u)
    np.testing.assert_allclose(float(net.coupling.a), a, rtol=1e-12)


def test_hierarchical_prior():
    data = jnp.asarray(simulate(small_net(gamma=jnp.full(N, -0.25), a=0.12)))
    post = _three_param_posterior(data, hierarchical=True)
    assert post.names == ("coupling.a", "model.gamma", "mu", "tau", "sigma") and post.dim == 7
    u = jnp.array([-1.5, 0.3, -0.2, 0.1, 0.4, -3.0, -2.0])
    x = {k: np.asarray(v) for k, v in post.constrained(u).items()}
    un = np.asarray(u)
    g = x["model.gamma"]
    lp = stats.halfnorm(scale=0.2).logpdf(x["coupling.a"]) + np.log(_sig(un[0]))
    lp += stats.norm(x["mu"], x["tau"]).logpdf(g).sum()  # gamma: Real, no Jacobian
    lp += stats.norm(-0.2, 0.1).logpdf(x["mu"]) + np.log(0.1)
    lp += stats.halfnorm(scale=0.05).logpdf(x["tau"]) + np.log(_sig(un[5]))
    lp += stats.lognorm(s=0.5, scale=0.05).logpdf(x["sigma"]) + np.log(_sig(un[6]))
    np.testing.assert_allclose(float(post.log_prior(u)), lp, rtol=1e-10)
    np.testing.assert_allclose(
        float(post.log_density(u)) - float(post.log_prior(u)),
        stats.norm(np.asarray(simulate(post.network(u))), x["sigma"]).logpdf(data).sum(),
        rtol=1e-10,
    )
    # prior draws follow the hierarchy: gamma_i | mu, tau ~ Normal(mu, tau), the hyper-parameters their priors
    draws = post.sample_prior(jax.random.key(3), 4000)
    xs = jax.vmap(post.constrained)(draws)
    z = (np.asarray(xs["model.gamma"]) - np.asarray(xs["mu"])[:, None]) / np.asarray(xs["tau"])[:, None]
    assert np.all(np.isfinite(z))
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1.0) < 0.05
    assert stats.kstest(np.asarray(xs["tau"]), stats.halfnorm(scale=0.05).cdf).pvalue > 0.001
    np.testing.assert_allclose(np.asarray(xs["mu"]).mean(), -0.2, atol=0.01)
    assert abs(np.asarray(xs["mu"]).std() - 0.1) < 0.01


def test_posterior_errors():
    net = small_net()
    sel = Selection([Parameter(lambda n: n.coupling.a, Positive())])
    ll = lambda net, lat: 0.0  # noqa: E731
    with pytest.raises(ValueError, match="no prior"):
        Posterior(net, sel, {}, ll)
    with pytest.raises(ValueError, match="unknown names"):
        Posterior(net, sel, {"coupling.a": dist.HalfNormal(1.0), "coupling.b": dist.Normal(0, 1)}, ll)
    with pytest.raises(TypeError, match="must be a Latent"):
        Posterior(net, sel, {"coupling.a": dist.HalfNormal(1.0)}, ll, latents={"sigma": dist.HalfNormal(1.0)})
    with pytest.raises(ValueError, match="same name"):
        Posterior(
            net, sel, {"coupling.a": dist.HalfNormal(1.0)}, ll, latents={"coupling.a": Latent(dist.HalfNormal(1.0))}
        )
    with pytest.raises(TypeError, match="NumPyro distribution"):
        Posterior(net, sel, {"coupling.a": 0.3}, ll)
    with pytest.raises(TypeError, match="log_likelihood"):
        Posterior(net, sel, {"coupling.a": dist.HalfNormal(1.0)}, 3.0)
    with pytest.raises(TypeError, match="Selection"):
        Posterior(net, [Parameter(lambda n: n.coupling.a)], {"coupling.a": dist.HalfNormal(1.0)}, ll)
    post = Posterior(net, sel, {"coupling.a": dist.HalfNormal(1.0)}, ll)
    with pytest.raises(ValueError, match="shape"):
        post.log_density(jnp.zeros(3))
    # a starting value outside the Positive support
    with pytest.raises(ValueError, match="> 0"):
        Posterior(small_net(a=-0.1), sel, {"coupling.a": dist.HalfNormal(1.0)}, ll)


# ---------------------------------------------------------------------------------------------------------------
# BlackJAX against NumPyro on a simulated network, with a quadrature reference


def test_blackjax_matches_numpyro_and_quadrature():
    """3-region Linear network: coupling a (Positive, HalfNormal prior), model gamma (scalar, Normal prior) and the
    observation noise sigma (a Latent). Posterior means and sds of the two samplers agree within 4 Monte Carlo SE
    (ESS-based) of each other and of a 3-D quadrature of the same posterior."""
    truth = small_net(gamma=-0.22, a=0.12)
    y = simulate(truth)
    data = y + 0.03 * jax.random.normal(jax.random.key(42), y.shape)
    post = Posterior(
        small_net(gamma=-0.2, a=0.1),
        Selection([Parameter(lambda n: n.coupling.a, Positive()), Parameter(lambda n: n.model.gamma, Real())]),
        {"coupling.a": dist.HalfNormal(0.2), "model.gamma": dist.Normal(-0.2, 0.1)},
        lambda net, lat: jnp.sum(dist.Normal(simulate(net), lat["sigma"]).log_prob(data)),
        latents={"sigma": Latent(dist.HalfNormal(0.1), Positive(), init=0.05)},
    )
    kw = dict(num_chains=2, num_warmup=400, num_samples=600, **QUIET)
    bj = nuts(post, key=jax.random.key(0), **kw)
    npy = numpyro_nuts(post, key=jax.random.key(1), **kw)
    assert int(np.asarray(bj.stats["diverging"]).sum()) <= 2 and int(np.asarray(npy.stats["diverging"]).sum()) <= 2

    # quadrature over u (the Posterior's own density, Jacobian included) on a box of +-8 sd around the draws
    pos = np.asarray(bj.positions).reshape(-1, post.dim)
    lo, hi = pos.mean(0) - 8 * pos.std(0), pos.mean(0) + 8 * pos.std(0)
    n = 45
    axes = [np.linspace(lo[i], hi[i], n) for i in range(post.dim)]
    grid = jnp.asarray(np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, post.dim))
    lp = np.asarray(jax.lax.map(jax.vmap(post.log_density), grid.reshape(-1, n * n, post.dim)).reshape(-1))
    w = np.exp(lp - lp.max())
    w /= w.sum()
    xq = jax.vmap(post.constrained)(grid)
    idx = np.stack(np.unravel_index(np.arange(grid.shape[0]), (n,) * post.dim), -1)
    edge = np.any((idx == 0) | (idx == n - 1), axis=1)
    assert w[edge].sum() < 1e-5

    zs = {}
    for name in ("coupling.a", "model.gamma", "sigma"):
        m1, s1, se_m1, se_s1 = mean_sd_mcse(bj.samples[name])
        m2, s2, se_m2, se_s2 = mean_sd_mcse(npy.samples[name])
        xv = np.asarray(xq[name]).reshape(-1)
        mq = float(np.sum(w * xv))
        sq = float(np.sqrt(np.sum(w * (xv - mq) ** 2)))
        zs[name] = (
            (m1 - m2) / np.hypot(se_m1, se_m2),
            (s1 - s2) / np.hypot(se_s1, se_s2),
            (m1 - mq) / se_m1,
            (m2 - mq) / se_m2,
            (s1 - sq) / se_s1,
            (s2 - sq) / se_s2,
        )
    print({k: np.round(v, 2) for k, v in zs.items()})
    for name, z in zs.items():
        assert np.all(np.abs(z) < 4.0), (name, z)
