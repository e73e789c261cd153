"""Model comparison (``vbtjax.inference.compare``) and pointwise log-likelihoods of ``Posterior``: two nested
linear-Gaussian models with analytic evidence (the SMC Bayes factor within the runs' own Monte Carlo tolerance of the
analytic one), PSIS-LOO and WAIC preferring the true model with its Pareto k reported (largest at an outlier), for
SMC and NUTS results, and errors for mismatched inputs."""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from _linear_model import SELECT, Linear  # noqa: E402
from scipy import stats

from vbtjax.inference import (
    Posterior,
    compare,
    format_compare,
    log_likelihood_draws,
    loo,
    nuts,
    smc,
    waic,
)

QUIET = dict(progress=False)
SIGMA, S0, N_OBS = 0.5, 1.0, 30
RUNS = 8
T999 = stats.t.ppf(0.9995, RUNS - 1)  # two-sided 99.9 % quantile of Student's t with runs - 1 degrees of freedom
SMC_KW = dict(num_particles=1000, num_runs=RUNS, num_mcmc_steps=5, **QUIET)


PRIORS = {"theta": dist.Normal(0.0, S0)}


def pointwise(net, latents):
    return dist.Normal(net.X @ net.theta, net.sigma).log_prob(net.y)


def posterior(X, y):
    X = np.asarray(X).reshape(len(y), -1)
    net = Linear(jnp.zeros(X.shape[1]), jnp.asarray(X), jnp.asarray(y), jnp.asarray(SIGMA))
    return Posterior(net, SELECT, PRIORS, None, pointwise_log_likelihood=pointwise)


def log_evidence(X, y):
    X = np.asarray(X).reshape(len(y), -1)
    cov = S0**2 * X @ X.T + SIGMA**2 * np.eye(len(y))
    return float(stats.multivariate_normal(np.zeros(len(y)), cov).logpdf(y))


RNG = np.random.default_rng(0)
XA = RNG.normal(size=(N_OBS, 2))
Y_M1 = 0.8 * XA[:, 0] + SIGMA * RNG.normal(size=N_OBS)  # data from the smaller model (second covariate unused)
Y_M2 = 0.8 * XA[:, 0] + 0.6 * XA[:, 1] + SIGMA * RNG.normal(size=N_OBS)  # data from the larger model


XM1 = np.stack([XA[:, 0], np.zeros(N_OBS)], axis=1)  # M1: M2 without the second covariate


@pytest.fixture(scope="module")
def runs():
    """SMC runs of both models on both data sets. M1 keeps a second coefficient with a zero covariate: it is not
    informed by the data, so that it integrates out of the evidence (exactly M1's) and the LOO (the same), and all
    four posteriors share one structure, so one compiled SMC step."""
    out = {}
    for data, y in (("m1", Y_M1), ("m2", Y_M2)):
        for name, X in (("M1", XM1), ("M2", XA)):
            post = posterior(X, y)
            out[data, name] = (post, smc(post, key=jax.random.key(len(out)), **SMC_KW))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Posterior: the optional pointwise log-likelihood


def test_pointwise_log_likelihood_of_posterior():
    post = posterior(XA, Y_M2)
    u = jnp.array([0.3, -0.2])
    pw = post.pointwise_log_likelihood_at(u)
    assert pw.shape == (N_OBS,)
    np.testing.assert_allclose(pw, stats.norm(XA @ np.asarray(u), SIGMA).logpdf(Y_M2), rtol=1e-12)
    np.testing.assert_allclose(post.log_likelihood_at(u), np.sum(pw), rtol=1e-12)  # defaults to the sum
    assert posterior(XA, Y_M1).log_likelihood == post.log_likelihood  # same function: same static structure
    # the positional form of every existing caller still works, without a pointwise log-likelihood
    ll = lambda net, lat: jnp.sum(pointwise(net, lat))  # noqa: E731
    plain = Posterior(post.net, SELECT, PRIORS, ll, {})
    assert plain.pointwise_log_likelihood is None
    np.testing.assert_allclose(plain.log_density(u), post.log_density(u), rtol=1e-12)
    with pytest.raises(ValueError, match="no pointwise log-likelihood"):
        plain.pointwise_log_likelihood_at(u)
    with pytest.raises(TypeError, match="pointwise_log_likelihood must be a function"):
        Posterior(post.net, SELECT, PRIORS, ll, None, pointwise_log_likelihood=3.0)
    # both given: both kept
    both = Posterior(post.net, SELECT, PRIORS, ll, None, pointwise_log_likelihood=pointwise)
    assert both.log_likelihood is ll and both.pointwise_log_likelihood is pointwise


def test_log_likelihood_draws_chunks_and_checks():
    post = posterior(XA, Y_M2)
    u = jax.random.normal(jax.random.key(0), (3, 7, 2))
    full = log_likelihood_draws(post, u)
    assert full.shape == (3, 7, N_OBS)
    ref = stats.norm(np.einsum("od,cnd->cno", XA, np.asarray(u)), SIGMA).logpdf(Y_M2)
    np.testing.assert_allclose(full, ref, rtol=1e-12)
    np.testing.assert_array_equal(log_likelihood_draws(post, u, chunk_size=4), full)  # padded last chunk
    with pytest.raises(ValueError, match="d = 3 unconstrained values"):
        log_likelihood_draws(post, jnp.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match="laid out"):
        log_likelihood_draws(post, jnp.zeros((5, 2)))
    # a pointwise function that is not the terms of the log-likelihood is refused
    bad = Posterior(post.net, SELECT, PRIORS, lambda n, lat: 2.0 * jnp.sum(pointwise(n, lat)), None, pointwise)
    with pytest.raises(ValueError, match="sum to"):
        log_likelihood_draws(bad, u)
    no_pw = Posterior(post.net, SELECT, PRIORS, lambda n, lat: jnp.sum(pointwise(n, lat)))
    with pytest.raises(ValueError, match="no pointwise"):
        log_likelihood_draws(no_pw, u)


# ---------------------------------------------------------------------------------------------------------------
# evidence


def test_evidence_bayes_factor_matches_analytic(runs):
    (p1, r1), (p2, r2) = runs["m1", "M1"], runs["m1", "M2"]
    true_log_bf = log_evidence(XA[:, :1], Y_M1) - log_evidence(XA, Y_M1)
    assert abs(log_evidence(XM1, Y_M1) - log_evidence(XA[:, :1], Y_M1)) < 1e-10  # the smaller, true model is favoured
    assert 0.5 < true_log_bf < 5.0
    table = compare({"M1": (p1, r1), "M2": (p2, r2)}, method="evidence")
    assert list(table.index) == ["M1", "M2"] and table.attrs["method"] == "evidence"
    assert list(table["rank"]) == [0, 1]
    est = -table.loc["M2", "log_bayes_factor"]
    tol = T999 * table.loc["M2", "log_bayes_factor_se"]
    assert abs(est - true_log_bf) < tol + 0.01, (est, true_log_bf, tol)
    assert 0.0 < tol < 0.3  # the runs pin the Bayes factor down
    np.testing.assert_allclose(table.loc["M2", "bayes_factor"], np.exp(est))
    p_true = 1.0 / (1.0 + np.exp(-true_log_bf))
    assert abs(table.loc["M1", "probability"] - p_true) < p_true * (1 - p_true) * (tol + 0.01) * 1.1
    np.testing.assert_allclose(table["probability"].sum(), 1.0)
    for name, (_, r) in (("M1", (p1, r1)), ("M2", (p2, r2))):
        np.testing.assert_allclose(table.loc[name, "log_evidence"], r.log_evidence_combined)
        np.testing.assert_allclose(table.loc[name, "sd"], r.log_evidence_sd)
        assert table.loc[name, "runs"] == RUNS
    text = format_compare(table)
    assert text.startswith("Model comparison (evidence)") and "best: 'M1'" in text and "Bayes factor" in text


def test_evidence_prefers_the_larger_model_on_its_data(runs):
    table = compare({"M1": runs["m2", "M1"], "M2": runs["m2", "M2"]}, method="evidence")
    true_log_bf = log_evidence(XA, Y_M2) - log_evidence(XA[:, :1], Y_M2)
    assert table.index[0] == "M2" and true_log_bf > 5
    assert (
        abs(-table.loc["M1", "log_bayes_factor"] - true_log_bf) < T999 * table.loc["M1", "log_bayes_factor_se"] + 0.01
    )


# ---------------------------------------------------------------------------------------------------------------
# LOO and WAIC


def test_loo_and_waic_prefer_the_true_model_smc_and_nuts(runs):
    (p1, r1), (p2, r2) = runs["m2", "M1"], runs["m2", "M2"]
    l2 = loo(p2, r2)
    assert l2.pareto_k.shape == (N_OBS,) and np.all(np.asarray(l2.pareto_k) < 0.7)
    assert l2.loo_i.shape == (N_OBS,) and 1.0 < l2.p_loo < 3.5  # about 2 parameters
    assert loo(p1, r1).elpd_loo < l2.elpd_loo - 5
    w2 = waic(p2, r2)
    assert abs(w2.elpd_waic - l2.elpd_loo) < 0.5 and w2.waic_i.shape == (N_OBS,)

    # NUTS draws of the true model, compared with the SMC particles of the other one
    nres = nuts(p2, key=jax.random.key(10), num_chains=2, num_warmup=200, num_samples=300, **QUIET)
    for method in ("loo", "waic"):
        table = compare({"M1 (smc)": (p1, r1), "M2 (nuts)": (p2, nres)}, method=method)
        assert table.index[0] == "M2 (nuts)" and table.attrs["method"] == method
        assert table.loc["M1 (smc)", f"elpd_{method}"] < table.loc["M2 (nuts)", f"elpd_{method}"] - 5
    assert table.loc["M1 (smc)", "elpd_diff"] > 2 * table.loc["M1 (smc)", "dse"]
    table = compare({"M1": (p1, r1), "M2": (p2, r2)}, method="loo")
    assert {"pareto_k_max", "n_bad_k"} <= set(table.columns) and table["n_bad_k"].sum() == 0
    assert "best: 'M2'" in format_compare(table)
    # the same elpd from SMC and NUTS draws of the same posterior
    assert abs(loo(p2, nres).elpd_loo - l2.elpd_loo) < 3 * l2.se / np.sqrt(N_OBS) + 0.3


def test_pareto_k_flags_an_outlier(runs):
    y = Y_M2.copy()
    y[7] += 6.0  # 12 noise sds
    post = posterior(XA, y)  # same structure as M2: the compiled SMC step is reused
    res = smc(post, key=jax.random.key(11), **SMC_KW)
    l = loo(post, res)
    k = np.asarray(l.pareto_k)
    assert int(np.argmax(k)) == 7 and k[7] > 0.5 and np.median(k) < 0.3


# ---------------------------------------------------------------------------------------------------------------
# errors


def test_compare_errors(runs):
    (p1, r1), (p2, r2) = runs["m2", "M1"], runs["m2", "M2"]
    nres_like = type("Draws", (), {"positions": r2.positions, "samples": r2.samples})()  # no log_evidence
    with pytest.raises(ValueError, match="at least two"):
        compare({"M1": (p1, r1)})
    with pytest.raises(ValueError, match="method must be one of"):
        compare({"M1": (p1, r1), "M2": (p2, r2)}, method="bic")
    with pytest.raises(TypeError, match="needs an SMCResult"):
        compare({"M1": (p1, r1), "M2": (p2, nres_like)}, method="evidence")
    with pytest.raises(TypeError, match=r"\(posterior, result\) pair"):
        compare({"M1": (p1, r1), "M2": r2})
    with pytest.raises(TypeError, match="must be a Posterior"):
        compare({"M1": (p1, r1), "M2": (r2, p2)})
    with pytest.raises(ValueError, match="not sampled from this posterior"):
        compare({"M1": (p1, r1), "M3": (posterior(np.c_[XA, XA[:, :1]], Y_M2), r2)})
    with pytest.raises(ValueError, match="different numbers of observations"):
        compare({"M1": (p1, r1), "M1 on less data": (posterior(XM1[:20], Y_M2[:20]), r1)}, method="loo")
    no_pw = Posterior(p1.net, SELECT, PRIORS, lambda n, lat: jnp.sum(pointwise(n, lat)))
    with pytest.raises(ValueError, match="no pointwise"):
        compare({"M1": (no_pw, r1), "M2": (p2, r2)}, method="waic")
    with pytest.raises(TypeError, match="unexpected arguments"):
        compare({"M1": (p1, r1), "M2": (p2, r2)}, method="evidence", ic="loo")
