"""Simulation-based calibration: the rank/uniformity machinery on synthetic ranks (exactly uniform, and the shapes
of miscalibrated posteriors), the vectorised NUTS against ``nuts()``, SBC end to end on a conjugate model, and
(slow) SBC of NUTS on a small simulated network with a negative control showing the test has power."""

import dataclasses
import importlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from scipy import stats

import vbtjax as vbt
from vbtjax.inference import Affine, Parameter, Positive, Posterior, Real, Selection, nuts

sbc_mod = importlib.import_module("vbtjax.inference.calibration")
from vbtjax.inference.calibration import SBCResult, default_bins, rank_band, rank_pvalues, sbc, sbc_ranks  # noqa: E402

N = 3
W = np.array([[0.0, 1.0, 0.5], [0.8, 0.0, 0.3], [0.2, 0.9, 0.0]])
H0 = jnp.array([1.0, -0.8, 0.6]).reshape(1, 1, N)


def small_net(gamma=-0.2, a=0.1):
    conn = vbt.Connectome(weights=W, lengths=np.zeros((N, N)))
    return vbt.Network(
        model=vbt.models.Linear(gamma=gamma), connectome=conn, coupling=vbt.coupling.Linear(a=a), speed=3.0
    )


# ---------------------------------------------------------------------------------------------------------------
# ranks and uniformity tests on synthetic ranks


def exact_sbc_ranks(rng, n_rep, L, width=1.0, shift=0.0):
    """Ranks of a conjugate normal model with exact, independent posterior draws: truth ~ N(0, 1), one datum
    y ~ N(truth, 1), posterior N(y / 2, 1 / 2). ``width``/``shift`` distort the posterior used for the draws
    (width 1, shift 0: exactly uniform ranks)."""
    truth = rng.normal(size=(n_rep, 1))
    y = truth + rng.normal(size=(n_rep, 1))
    sd = np.sqrt(0.5) * width
    draws = y[:, None, :] / 2 + shift * np.sqrt(0.5) + sd * rng.normal(size=(n_rep, L, 1))
    return sbc_ranks(truth, draws)


def test_sbc_ranks():
    truth = np.array([[0.0, 10.0], [0.5, -1.0]])
    draws = np.array([[[-1.0, 1.0], [1.0, 2.0], [-0.5, 3.0]], [[0.0, 0.0], [1.0, 0.0], [0.2, 0.0]]])
    np.testing.assert_array_equal(sbc_ranks(truth, draws), [[2, 3], [2, 0]])
    with pytest.raises(ValueError, match="truth"):
        sbc_ranks(truth, draws[:, :, :1])


def test_uniform_ranks_are_accepted():
    # a perfectly flat histogram: chi-square statistic 0
    L = 19
    flat = np.tile(np.arange(L + 1), 10)[:, None]
    assert rank_pvalues(flat, L, method="chi2")[0] == pytest.approx(1.0)
    # unequal bins (L + 1 = 20 values in 7 bins) get their exact expected counts: still 1
    assert rank_pvalues(flat, L, method="chi2", bins=7)[0] == pytest.approx(1.0)
    # random uniform ranks: the p-values are uniform (size of the tests)
    rng = np.random.default_rng(0)
    ranks = rng.integers(0, 50, size=(200, 400))
    for method in ("chi2", "ks"):
        p = rank_pvalues(ranks, 49, method=method)
        assert 0.02 < np.mean(p < 0.05) < 0.09, method
        assert stats.kstest(p, "uniform").pvalue > 0.001, method
    # and the exact SBC process of a conjugate model (independent exact posterior draws)
    ranks = np.concatenate([exact_sbc_ranks(rng, 200, 50) for _ in range(50)], axis=1)
    for method in ("chi2", "ks"):
        assert np.mean(rank_pvalues(ranks, 50, method=method) < 0.05) < 0.15, method


@pytest.mark.parametrize(
    "width,shift",
    [(2.0, 0.0), (0.5, 0.0), (1.0, 0.7)],
    ids=["too-wide", "too-narrow", "biased"],
)
def test_miscalibrated_ranks_are_rejected(width, shift):
    rng = np.random.default_rng(1)
    ranks = exact_sbc_ranks(rng, 100, 60, width=width, shift=shift)
    p = min(rank_pvalues(ranks, 60, method="chi2")[0], rank_pvalues(ranks, 60, method="ks")[0])
    assert p < 1e-3, p


def test_bins_band_and_errors():
    assert default_bins(100, 300) == 10 and default_bins(5, 300) == 2 and default_bins(10000, 300) == 50
    assert default_bins(1000, 3) == 4  # at most L + 1 rank values
    # 99% band: about 1% of the bins of uniform histograms fall outside
    rng = np.random.default_rng(2)
    lo, hi = rank_band(100, 99, 10)
    assert lo.shape == hi.shape == (10,) and np.all(lo < 10) and np.all(hi > 10)
    counts = np.stack([np.histogram(rng.integers(0, 100, 100), bins=10, range=(0, 100))[0] for _ in range(2000)])
    outside = np.mean((counts < lo) | (counts > hi))
    assert outside < 0.02
    with pytest.raises(ValueError, match="0..L"):
        rank_pvalues(np.array([[0], [5]]), 4)
    with pytest.raises(ValueError, match="method"):
        rank_pvalues(np.array([[0], [1]]), 4, method="ad")
    with pytest.raises(ValueError, match="bins"):
        rank_pvalues(np.array([[0], [1]]), 4, bins=6)


def test_result_methods_and_plot(tmp_path):
    rng = np.random.default_rng(3)
    ok = exact_sbc_ranks(rng, 100, 40)
    bad = exact_sbc_ranks(rng, 100, 40, width=0.4)
    R = 100
    res = SBCResult(
        names=("ok", "bad"),
        ranks=np.concatenate([ok, bad], axis=1),
        num_draws=40,
        truth=np.zeros((R, 2)),
        post_mean=np.zeros((R, 2)),
        post_sd=np.ones((R, 2)),
        divergences=np.zeros(R, int),
        max_rhat=np.ones(R),
        min_ess=np.full(R, 100.0),
        init_ok=np.ones(R, bool),
    )
    p = res.uniformity_pvalues()
    assert set(p) == {"ok", "bad"} and p["ok"] > 0.01 and p["bad"] < 1e-6
    assert res.uniformity_pvalues("ks")["bad"] < 1e-3
    assert res.histograms().shape == (10, 2) and res.histograms().sum() == 2 * R
    assert not res.is_calibrated()
    assert res.min_pvalue() < 1e-6
    assert "bad" in res.report()
    out = res.plot(tmp_path / "ranks.png")
    assert out.exists() and out.stat().st_size > 1000


# ---------------------------------------------------------------------------------------------------------------
# the vectorised NUTS is the algorithm of nuts()

PREC = jnp.asarray(np.linalg.inv(np.array([[1.0, 0.8], [0.8, 2.0]])))


def test_vectorised_nuts_equals_nuts():
    ld = lambda u: -0.5 * u @ PREC @ u  # noqa: E731
    u0 = jnp.array([[0.5, -0.3], [1.0, 1.0]])
    key = jax.random.key(1)
    kw = dict(num_warmup=100, num_samples=50)
    ref = nuts(ld, key=key, init=u0, num_chains=2, progress=False, checkpoint_every=50, **kw)
    prog = jax.jit(
        lambda u, k: sbc_mod._nuts_program(ld, u, k, target_accept=0.8, max_tree_depth=10, initial_step_size=0.1, **kw)
    )
    pos, div, lp0 = prog(u0, key)
    np.testing.assert_array_equal(np.asarray(pos), np.asarray(ref.positions))
    np.testing.assert_array_equal(np.asarray(div), np.asarray(ref.stats["diverging"]))
    np.testing.assert_allclose(np.asarray(lp0), np.asarray(jax.vmap(ld)(u0)))


# ---------------------------------------------------------------------------------------------------------------
# SBC end to end on a conjugate model (no simulator): calibrated, and a miscalibrated posterior rejected

NOISE = 0.5


def conjugate_prior():
    sel = Selection([Parameter(lambda n: n.coupling.a, Real()), Parameter(lambda n: n.model.gamma, Positive())])
    priors = {"coupling.a": dist.Normal(0.0, 1.0), "model.gamma": dist.Gamma(3.0, 3.0)}
    return Posterior(small_net(gamma=1.0, a=0.0), sel, priors, None)


def conjugate_data(key, net, values):  # y ~ N(a, NOISE) (6,), counts ~ Poisson(gamma) (5,)
    k1, k2 = jax.random.split(key)
    return {
        "y": net.coupling.a + NOISE * jax.random.normal(k1, (6,)),
        "k": jax.random.poisson(k2, net.model.gamma, (5,)).astype(float),
    }


def conjugate_posterior(noise):
    prior = conjugate_prior()

    def make(data):
        def loglik(net, lat):
            return jnp.sum(dist.Normal(net.coupling.a, noise).log_prob(data["y"])) + jnp.sum(
                dist.Poisson(net.model.gamma).log_prob(data["k"])
            )

        return Posterior(prior.net, prior.selection, prior.priors, loglik)

    return make


@pytest.mark.slow
def test_sbc_conjugate_model_calibrated_and_negative_control():
    prior = conjugate_prior()
    kw = dict(key=jax.random.key(0), n_replicates=100, num_chains=2, num_warmup=150, num_samples=100, progress=False)
    good = sbc(conjugate_posterior(NOISE), conjugate_data, prior, **kw)
    assert good.names == ("coupling.a", "model.gamma") and good.ranks.shape == (100, 2)
    assert 20 <= good.num_draws <= 200 and good.ranks.max() <= good.num_draws
    assert good.init_ok.all() and np.nanmedian(good.max_rhat) < 1.02
    assert good.is_calibrated(alpha=0.01), good.report()
    # the truth of replicate r is the prior draw of its documented key
    k_true, _, _ = sbc_mod._replicate_keys(jax.random.key(0), 7)
    x = prior.constrained(prior.sample_prior(k_true))
    np.testing.assert_allclose(good.truth[7], [float(x["coupling.a"]), float(x["model.gamma"])], rtol=1e-12)
    # noise sd understated 4x: posterior sd of a ~3.5x too small (2x gives p ~ 1e-3 with 100 replicates here; the
    # slow network test below shows the 2x case at 4 scalars)
    bad = sbc(conjugate_posterior(NOISE / 4), conjugate_data, prior, **kw)
    assert bad.uniformity_pvalues()["coupling.a"] < 1e-4
    assert bad.uniformity_pvalues()["model.gamma"] > 1e-3  # the Poisson part is still right


def test_sbc_errors():
    prior = conjugate_prior()
    mk, sim = conjugate_posterior(NOISE), conjugate_data
    with pytest.raises(TypeError, match="prior"):
        sbc(mk, sim, "prior", key=jax.random.key(0))
    with pytest.raises(ValueError, match="n_replicates"):
        sbc(mk, sim, prior, key=jax.random.key(0), n_replicates=1)
    with pytest.raises(ValueError, match="thin_to"):
        sbc(mk, sim, prior, key=jax.random.key(0), num_chains=2, num_samples=10, thin_to=21)
    with pytest.raises(ValueError, match="sampler"):
        sbc(mk, sim, prior, key=jax.random.key(0), sampler="stan")
    with pytest.raises(ValueError, match="target_accept"):
        sbc(mk, sim, prior, key=jax.random.key(0), target_accept=1.0)


class _Draws(NamedTuple):
    samples: dict
    stats: dict


def exact_grid_sampler(num_chains, num_samples):
    """A 'sampler' for one-parameter posteriors: independent draws by inverse-CDF from the posterior's own
    density on a fine grid of u (no MCMC error), in the layout of a NutsResult."""
    u = jnp.linspace(-10.0, 10.0, 8001)

    def sample(post, key):
        lp = np.asarray(jax.vmap(post.log_density)(u[:, None]))
        cdf = np.cumsum(np.exp(lp - lp.max()))
        cdf /= cdf[-1]
        v = jax.random.uniform(key, (num_chains, num_samples))
        uu = np.interp(np.asarray(v), cdf, np.asarray(u))
        x = jax.vmap(jax.vmap(post.constrained))(jnp.asarray(uu)[..., None])
        z = jnp.zeros((num_chains, num_samples))
        return _Draws(dict(x), {"diverging": z.astype(bool), "lp": z})

    return sample


def one_param_model(noise):
    sel = Selection([Parameter(lambda n: n.coupling.a, Positive())])
    prior = Posterior(small_net(a=1.0), sel, {"coupling.a": dist.Gamma(4.0, 4.0)}, None)

    def simulate_data(key, net):  # the two-argument form
        return net.coupling.a + NOISE * jax.random.normal(key, (4,))

    def make(data):
        return Posterior(
            prior.net, sel, prior.priors, lambda n, lat: jnp.sum(dist.Normal(n.coupling.a, noise).log_prob(data))
        )

    return prior, simulate_data, make


def test_sbc_custom_sampler_exact_draws():
    """The per-replicate path with a custom sampler drawing exactly from each posterior: uniform ranks; the same
    with the noise sd understated 2x: rejected."""
    prior, simulate_data, make = one_param_model(NOISE)
    kw = dict(key=jax.random.key(2), n_replicates=200, num_chains=1, num_warmup=0, num_samples=50, progress=False)
    kw["thin_to"] = 50  # independent draws: no thinning (the ESS estimates of 50 draws are noisy)
    good = sbc(make, simulate_data, prior, sampler=exact_grid_sampler(1, 50), **kw)
    assert good.sampler == "sample" and good.num_draws == 50 and np.isnan(good.max_rhat).all()
    assert good.is_calibrated(alpha=0.01), good.report()
    _, _, make_bad = one_param_model(NOISE / 2)
    bad = sbc(make_bad, simulate_data, prior, sampler=exact_grid_sampler(1, 50), **kw)
    assert bad.min_pvalue() < 1e-4, bad.report()


@pytest.mark.slow
def test_sbc_numpyro_path_matches_vectorised():
    """The NumPyro path sees the same truths and data as the vectorised BlackJAX one, and its posterior means agree
    within half a posterior sd."""
    prior = conjugate_prior()
    mk = conjugate_posterior(NOISE)
    kw = dict(key=jax.random.key(4), n_replicates=2, num_chains=2, num_warmup=100, num_samples=100, progress=False)
    vec = sbc(mk, conjugate_data, prior, **kw)
    npy = sbc(mk, conjugate_data, prior, sampler="numpyro", **kw)
    np.testing.assert_allclose(npy.truth, vec.truth, rtol=1e-12)
    assert np.all(np.abs(npy.post_mean - vec.post_mean) < 0.5 * vec.post_sd)
    assert npy.sampler == "numpyro" and npy.ranks.shape == (2, 2)


# ---------------------------------------------------------------------------------------------------------------
# SBC of NUTS on a simulated network (slow)

SIGMA = 0.01  # observation noise sd of the temporal averages


def network_setup():
    net = small_net(gamma=jnp.full(N, -0.2), a=0.15)
    sel = Selection(
        [Parameter(lambda n: n.coupling.a, Positive()), Parameter(lambda n: n.model.gamma, Affine(-0.2, 0.05))]
    )
    priors = {"coupling.a": dist.LogNormal(np.log(0.15), 0.3), "model.gamma": dist.Normal(-0.2, 0.05)}

    def simulate(n):
        mon = vbt.monitors.TemporalAverage(period=1.0)
        return vbt.simulate(n, 10.0, 0.2, history=H0, monitors=mon).ys[:, 0, :]

    def simulate_data(key, n, values):
        y = simulate(n)
        return y + SIGMA * jax.random.normal(key, y.shape)

    def make_posterior(assumed_sigma):
        def make(data):
            return Posterior(
                net, sel, priors, lambda n, lat: jnp.sum(dist.Normal(simulate(n), assumed_sigma).log_prob(data))
            )

        return make

    return Posterior(net, sel, priors, None), simulate_data, make_posterior


@pytest.mark.slow
def test_sbc_network_calibrated_and_negative_control(tmp_path):
    """3-region Linear network, 4 scalars (coupling a, Positive with a LogNormal prior; per-region gamma, Affine
    with a Normal prior), 10 temporal averages per region with Gaussian noise; 60 replicates of 2 chains.

    Threshold: the sampler passes when no chi-square or KS test rejects at family-wise level 0.01 (Bonferroni over
    4 scalars x 2 tests, i.e. every p > 0.00125): a correct sampler fails this with probability <= 1% whatever
    the seed or platform.

    Negative control (the power of this check at these 60 replicates and this L): the same replicates' draws
    contracted by 2 about their mean, i.e. a posterior twice too confident (z-scores of sd ~2), must be rejected
    by the same check at the same level (smallest p < 0.01 / 8). Measured: p = 1.9e-4 (it was below 1e-4 before a
    last-bit change of the stochastic Heun sum changed the chains), rejected with a margin of 6x. Ranking the kept draws
    again costs no sampling; a NUTS run on a deliberately wrong likelihood (noise sd halved: the same z-score sd of
    ~1.9) took 3x as long as the calibrated run here, since the chains of a vectorised batch step in lock-step with its
    hardest replicate, and it is covered on the conjugate model
    (test_sbc_conjugate_model_calibrated_and_negative_control)."""
    prior, simulate_data, make_posterior = network_setup()
    kw = dict(key=jax.random.key(0), num_chains=2, num_warmup=150, num_samples=150, progress=False)
    good = sbc(make_posterior(SIGMA), simulate_data, prior, n_replicates=60, **kw)
    print(good.report(), f"{good.seconds:.0f} s")
    good.plot(tmp_path / "sbc_network.png")
    assert good.names == ("coupling.a", "model.gamma[0]", "model.gamma[1]", "model.gamma[2]")
    assert good.init_ok.all() and np.median(good.max_rhat) < 1.05 and np.mean(good.divergences > 0) < 0.2
    assert good.num_draws >= 20
    np.testing.assert_array_equal(good.ranks, sbc_ranks(good.truth, good.draws))
    assert good.is_calibrated(alpha=0.01), good.report()
    # the data inform the parameters (shrinkage well away from 0), so that the test is not vacuous
    prior_sd = np.array([0.15 * np.sqrt((np.exp(0.09) - 1) * np.exp(0.09)), 0.05, 0.05, 0.05])
    assert np.all(np.median(good.post_sd, axis=0) < 0.5 * prior_sd)

    mean = good.draws.mean(axis=1, keepdims=True)
    overconfident = mean + 0.5 * (good.draws - mean)
    bad = dataclasses.replace(
        good, ranks=sbc_ranks(good.truth, overconfident), draws=overconfident, post_sd=0.5 * good.post_sd
    )
    print(bad.report(), "z-score sd", np.std(bad.z_scores(), axis=0))
    assert bad.min_pvalue() < 0.01 / 8, bad.report()
    assert not bad.is_calibrated(alpha=0.01)
    assert np.all(np.std(bad.z_scores(), axis=0) > 1.5)  # the control is what it claims: z-scores of sd ~2
