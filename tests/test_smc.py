"""Adaptive tempered SMC (``vbtjax.inference.smc``) against independent truth: a conjugate linear-Gaussian model
(analytic posterior and evidence), a bimodal target whose mode weights and evidence come from quadrature, a
likelihood that is NaN on part of the prior (evidence of the truncated model in closed form), with the Monte Carlo
tolerances taken from the spread of independent runs; negative controls (a wrong likelihood scale, NUTS chains
stuck in one mode); the result's layout, summary, ArviZ export and netCDF round trip; errors; and (slow) the NUTS
mutation kernel and runs sharded over two devices."""

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from _linear_model import SELECT, Linear  # noqa: E402
from scipy import integrate, stats

from vbtjax.inference import Posterior, SMCResult, compare, nuts, smc, split_rhat

ROOT = Path(__file__).resolve().parents[1]
QUIET = dict(progress=False)
T999 = {k: stats.t.ppf(0.9995, k) for k in range(1, 20)}  # two-sided 99.9 % quantiles of Student's t


S0 = 2.0  # prior sd
PRIORS = {"theta": dist.Normal(0.0, S0)}


def pointwise(net, latents):
    return dist.Normal(net.X @ net.theta, net.sigma).log_prob(net.y)


def linear_posterior(X, y, sigma):
    net = Linear(jnp.zeros(X.shape[1]), jnp.asarray(X), jnp.asarray(y), jnp.asarray(sigma))
    return Posterior(net, SELECT, PRIORS, None, pointwise_log_likelihood=pointwise)


def analytic(X, y, sigma, s0=S0):
    """Posterior mean and covariance, and the log evidence ``log N(y; 0, s0^2 X X' + sigma^2 I)``."""
    p = X.shape[1]
    cov = np.linalg.inv(np.eye(p) / s0**2 + X.T @ X / sigma**2)
    mean = cov @ X.T @ y / sigma**2
    log_z = stats.multivariate_normal(np.zeros(len(y)), s0**2 * X @ X.T + sigma**2 * np.eye(len(y))).logpdf(y)
    return mean, cov, float(log_z)


def t_test(per_run, truth, what):
    """``|mean over runs - truth| < t_{0.9995, R-1} * sd / sqrt(R)``: the tolerance is the runs' own spread."""
    per_run = np.asarray(per_run, dtype=float)
    r = per_run.shape[0]
    se = per_run.std(axis=0, ddof=1) / np.sqrt(r)
    z = (per_run.mean(axis=0) - truth) / se
    assert np.all(np.abs(z) < T999[r - 1]), f"{what}: {per_run.mean(axis=0)} vs {truth} is {z} run-to-run SE away"
    return se


# ---------------------------------------------------------------------------------------------------------------
# conjugate linear-Gaussian model


SIGMA = 0.5


@pytest.fixture(scope="module")
def linear_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    y = X @ np.array([1.0, -0.5, 0.3]) + SIGMA * rng.normal(size=20)
    return X, y


@pytest.fixture(scope="module")
def linear_run(linear_data):
    X, y = linear_data
    post = linear_posterior(X, y, SIGMA)
    res = smc(post, key=jax.random.key(0), num_particles=1000, num_runs=8, num_mcmc_steps=5, **QUIET)
    return post, res


def test_conjugate_posterior_mean_and_sd(linear_data, linear_run):
    X, y = linear_data
    mean, cov, _ = analytic(X, y, SIGMA)
    _, res = linear_run
    x = np.asarray(res.samples["theta"])  # (runs, particles, 3)
    se_mean = t_test(x.mean(axis=1), mean, "posterior mean")
    se_sd = t_test(x.std(axis=1, ddof=1), np.sqrt(np.diag(cov)), "posterior sd")
    # the test has teeth: the runs' Monte Carlo errors are small against the posterior's width
    assert np.all(se_mean < 0.05 * np.sqrt(np.diag(cov))) and np.all(se_sd < 0.05 * np.sqrt(np.diag(cov)))
    corr = np.corrcoef(x.reshape(-1, 3).T)
    true_corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    np.testing.assert_allclose(corr, true_corr, atol=0.03)


def test_conjugate_log_evidence(linear_data, linear_run):
    X, y = linear_data
    _, _, log_z = analytic(X, y, SIGMA)
    _, res = linear_run
    se = t_test(res.log_evidence, log_z, "log evidence")
    assert se < 0.1  # a run's log Z is accurate to about 0.1 with 1000 particles
    assert abs(res.log_evidence_combined - log_z) < T999[7] * se + 0.01
    ev = res.evidence()
    assert ev["log_evidence"] == res.log_evidence_combined and ev["runs"].shape == (8,)
    assert np.isclose(ev["se"], res.log_evidence_sd / np.sqrt(8))
    # the per-step increments add up to the evidence
    np.testing.assert_allclose(np.sum(res.log_evidence_increments, axis=1), res.log_evidence, rtol=1e-10)


def test_log_evidence_detects_a_wrong_likelihood_scale(linear_data, linear_run):
    """Negative control: with the noise sd 30 % too large the SMC evidence (of that wrong model) is rejected by the
    same tolerance against the true model's analytic log Z, and agrees with the wrong model's own analytic log Z."""
    X, y = linear_data
    _, _, log_z = analytic(X, y, SIGMA)
    _, _, log_z_wrong = analytic(X, y, 1.3 * SIGMA)
    wrong = linear_posterior(X, y, 1.3 * SIGMA)  # same structure: the compiled step is reused
    res = smc(wrong, key=jax.random.key(1), num_particles=1000, num_runs=8, num_mcmc_steps=5, **QUIET)
    le = np.asarray(res.log_evidence)
    se = le.std(ddof=1) / np.sqrt(le.size)
    assert abs(le.mean() - log_z) > 2 * T999[7] * se, (le.mean(), log_z, se)  # rejected, with a margin of 2
    t_test(le, log_z_wrong, "log evidence of the wrong model")
    # the posterior check of test_conjugate_posterior_mean_and_sd rejects this wrong model's posterior sds (30 %
    # wider, as its noise) against the true posterior's, and accepts them against its own analytic posterior
    _, cov, _ = analytic(X, y, SIGMA)
    _, cov_wrong, _ = analytic(X, y, 1.3 * SIGMA)
    sds = np.asarray(res.samples["theta"]).std(axis=1, ddof=1)
    with pytest.raises(AssertionError, match="posterior sd"):
        t_test(sds, np.sqrt(np.diag(cov)), "posterior sd")
    t_test(sds, np.sqrt(np.diag(cov_wrong)), "posterior sd of the wrong model")


def test_result_layout_weights_and_paths(linear_run):
    post, res = linear_run
    assert isinstance(res, SMCResult) and res.names == ("theta",) and res.completed and res.kernel == "hmc"
    r, n = 8, 1000
    assert (res.num_runs, res.num_particles, res.num_chains, res.num_draws) == (r, n, r, n)
    assert res.positions.shape == (r, n, 3) and res.samples["theta"].shape == (r, n, 3)
    # equally weighted after the final resampling
    w = np.asarray(res.weights)
    assert np.all(w == w[0, 0]) and abs(w[0, 0] * n - 1.0) < 1e-12
    temps = np.asarray(res.temperatures)
    steps = temps.shape[1] - 1
    assert np.all(temps[:, 0] == 0.0) and np.all(temps[:, -1] == 1.0) and np.all(np.diff(temps, axis=1) >= 0)
    assert np.all(temps[np.arange(r), np.asarray(res.num_steps)] == 1.0) and np.all(np.asarray(res.num_steps) >= 3)
    for path in (res.ess_path, res.acceptance_path, res.step_size_path, res.log_evidence_increments, res.grad_evals):
        assert path.shape == (r, steps) and np.all(np.isfinite(path))
    np.testing.assert_allclose(np.asarray(res.ess_path)[:, -1], 1.0, rtol=1e-12)  # the final step: no increment
    acc = np.asarray(res.acceptance_path)
    assert 0.6 < acc.mean() < 0.9, acc  # the step size is steered to 0.75
    assert np.all(np.asarray(res.grad_evals) == n * 5 * 10)  # particles x moves x leapfrog steps
    assert res.inverse_mass_matrix.shape == (r, 3)
    # stored log-likelihoods: of each particle, and per observation (summing to it)
    u = res.positions[0, 0]
    np.testing.assert_allclose(res.log_likelihood[0, 0], post.log_likelihood_at(u), rtol=1e-12)
    np.testing.assert_allclose(res.log_prior[0, 0], post.log_prior(u), rtol=1e-12)
    assert res.pointwise_log_likelihood.shape == (r, n, 20)
    np.testing.assert_allclose(np.sum(res.pointwise_log_likelihood, axis=-1), res.log_likelihood, rtol=1e-10)
    s = res.summary()
    assert list(s["theta"]) == ["mean", "sd", "q05", "q95", "rhat", "ess_bulk", "ess_tail", "mcse_runs"]
    assert np.all(s["theta"]["rhat"] < 1.01) and np.all(s["theta"]["ess_bulk"] > 1000)
    assert np.all(s["theta"]["mcse_runs"] < 0.05 * s["theta"]["sd"])


def test_inference_data_and_netcdf_round_trip(linear_run, tmp_path):
    import arviz as az

    _, res = linear_run
    idata = res.to_inference_data()
    assert {"posterior", "sample_stats", "log_likelihood", "smc"} <= set(idata.groups())
    assert idata.posterior["theta"].shape == (8, 1000, 3)
    assert idata.log_likelihood["obs"].shape == (8, 1000, 20)
    np.testing.assert_allclose(idata.smc["log_evidence"].values, res.log_evidence)
    path = res.save(tmp_path / "smc.nc")
    back = az.from_netcdf(path)
    np.testing.assert_array_equal(back.posterior["theta"].values, np.asarray(res.samples["theta"]))
    np.testing.assert_array_equal(back.smc["temperature"].values, np.asarray(res.temperatures))
    np.testing.assert_array_equal(back.log_likelihood["obs"].values, np.asarray(res.pointwise_log_likelihood))
    assert back.smc.attrs["kernel"] == "hmc" and back.smc.attrs["num_particles"] == 1000


# ---------------------------------------------------------------------------------------------------------------
# bimodal target: y = |theta| + noise, prior off-centre, so the modes at +-1.5 have unequal mass; the likelihood is
# NaN below -1.6, a cliff through the negative mode (as at a bifurcation), which must count as zero likelihood


M0, SIG_B, CLIFF = 0.3, 0.3, -1.6
Y_B = 1.5 + SIG_B * np.random.default_rng(1).normal(size=10)
B_KW = dict(num_particles=2000, num_runs=4, num_mcmc_steps=5, **QUIET)


class Scalar(eqx.Module):
    theta: jax.Array


def bimodal_loglik(net, lat):
    ll = jnp.sum(dist.Normal(jnp.abs(net.theta[0]), SIG_B).log_prob(Y_B))
    return jnp.where(net.theta[0] < CLIFF, jnp.nan, ll)


@pytest.fixture(scope="module")
def bimodal():
    return Posterior(Scalar(jnp.zeros(1)), SELECT, {"theta": dist.Normal(M0, 1.0)}, bimodal_loglik)


def bimodal_truth():
    """Weight of the positive mode and log evidence by quadrature."""

    def f(t):
        return stats.norm(M0, 1.0).pdf(t) * np.exp(np.sum(stats.norm(abs(t), SIG_B).logpdf(Y_B)))

    z_plus = integrate.quad(f, 0, 8, points=[1.5])[0]
    z_minus = integrate.quad(f, CLIFF, 0)[0]
    return z_plus / (z_plus + z_minus), float(np.log(z_plus + z_minus))


def test_bimodal_mode_weights_cliff_rhat_and_evidence(bimodal):
    p_plus, log_z = bimodal_truth()
    assert 0.7 < p_plus < 0.85  # an unequal split (the cliff removes about a third of the negative mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a plain run warns about nothing
        res = smc(bimodal, key=jax.random.key(2), **B_KW)
    x = np.asarray(res.samples["theta"])[..., 0]
    assert np.all(x >= CLIFF)  # NaN likelihood: zero weight, moves across the cliff rejected
    frac = (x > 0).mean(axis=1)
    se = t_test(frac, p_plus, "weight of the positive mode")
    assert np.all(np.abs(frac - p_plus) < 0.06) and se < 0.03
    assert np.all(np.abs(np.abs(x) - 1.5) < 0.6)  # every particle sits in one of the two modes
    assert split_rhat(x) <= 1.05
    t_test(res.log_evidence, log_z, "log evidence (bimodal)")


@pytest.mark.slow
def test_bimodal_nuts_negative_control(bimodal):
    """NUTS chains started in the two modes never cross: mode weights 1 and 0, R-hat far above 1.05."""
    nres = nuts(
        bimodal, key=jax.random.key(3), num_chains=2, num_warmup=150, num_samples=200, init=[[1.5], [-1.5]], **QUIET
    )
    xn = np.asarray(nres.samples["theta"])[..., 0]
    assert (xn[0] > 0).all() and (xn[1] < 0).all()
    assert split_rhat(xn) > 1.05


def test_nan_likelihood_on_part_of_the_prior():
    """A likelihood-free coordinate truncated by a NaN likelihood: the evidence is the untruncated one times the
    prior mass kept, Phi(1)."""
    y = np.array([0.5, 1.0, 0.8])

    def loglik(net, lat):
        ll = jnp.sum(dist.Normal(net.theta[0], 0.5).log_prob(y))
        return jnp.where(net.theta[1] > 1.0, jnp.nan, ll)

    post = Posterior(Scalar(jnp.zeros(2)), SELECT, {"theta": dist.Normal(0.0, 1.0)}, loglik)
    res = smc(post, key=jax.random.key(4), **B_KW)
    x = np.asarray(res.samples["theta"])
    assert np.all(x[..., 1] <= 1.0)
    _, _, log_z0 = analytic(np.ones((3, 1)), y, 0.5, s0=1.0)
    t_test(res.log_evidence, log_z0 + stats.norm.logcdf(1.0), "log evidence of the truncated model")


def test_max_steps_warns_init_particles_and_reproducible(bimodal):
    u0 = bimodal.sample_prior(jax.random.key(5), 2000)
    with pytest.warns(RuntimeWarning, match="max_steps=1"):
        res = smc(bimodal, key=jax.random.key(6), init=u0, max_steps=1, **B_KW)
    assert not res.completed and np.all(np.asarray(res.temperatures)[:, -1] < 1.0)
    assert res.temperatures.shape == (4, 3)  # 0, the one step, the final move at the same temperature
    np.testing.assert_allclose(np.asarray(res.weights), 1.0 / 2000, rtol=1e-12)
    with pytest.raises(ValueError, match="did not reach temperature 1"):
        compare({"a": (bimodal, res), "b": (bimodal, res)}, method="evidence")
    with pytest.warns(RuntimeWarning, match="max_steps=2"):
        a = smc(bimodal, key=jax.random.key(7), max_steps=2, **B_KW)
        b = smc(bimodal, key=jax.random.key(7), max_steps=2, **B_KW)
    np.testing.assert_array_equal(np.asarray(a.positions), np.asarray(b.positions))
    np.testing.assert_array_equal(np.asarray(a.log_evidence), np.asarray(b.log_evidence))


def test_errors(bimodal):
    with pytest.raises(TypeError, match="Posterior"):
        smc(lambda u: -jnp.sum(u**2), key=jax.random.key(0))
    with pytest.raises(ValueError, match="kernel"):
        smc(bimodal, key=jax.random.key(0), kernel="mala")
    with pytest.raises(ValueError, match="target_ess"):
        smc(bimodal, key=jax.random.key(0), target_ess=1.0)
    with pytest.raises(ValueError, match="num_particles >= 2"):
        smc(bimodal, key=jax.random.key(0), num_particles=1)
    with pytest.raises(ValueError, match="init has shape"):
        smc(bimodal, key=jax.random.key(0), num_particles=10, init=np.zeros((10, 3)))
    with pytest.raises(ValueError, match="NaN or inf"):
        smc(bimodal, key=jax.random.key(0), num_particles=10, init=np.full((10, 1), np.nan))
    with pytest.raises(ValueError, match="no pointwise"):
        smc(bimodal, key=jax.random.key(0), pointwise_log_likelihood=True)


# ---------------------------------------------------------------------------------------------------------------
# slow: NUTS moves; runs sharded over two (virtual CPU) devices


@pytest.mark.slow
def test_nuts_kernel_conjugate(linear_data):
    X, y = linear_data
    mean, cov, log_z = analytic(X, y, SIGMA)
    res = smc(
        linear_posterior(X, y, SIGMA),
        key=jax.random.key(8),
        kernel="nuts",
        num_particles=500,
        num_runs=4,
        num_mcmc_steps=3,
        **QUIET,
    )
    assert res.kernel == "nuts" and 0.65 < float(np.mean(res.acceptance_path)) < 0.95
    x = np.asarray(res.samples["theta"])
    t_test(x.mean(axis=1), mean, "posterior mean (NUTS moves)")
    t_test(res.log_evidence, log_z, "log evidence (NUTS moves)")


SHARDED_SCRIPT = textwrap.dedent(
    """
    import json, jax
    jax.config.update("jax_enable_x64", True)
    import equinox as eqx, jax.numpy as jnp, numpy as np, numpyro.distributions as dist
    from vbtjax.inference import Parameter, Posterior, Real, Selection, smc

    class Scalar(eqx.Module):
        theta: jax.Array

    post = Posterior(Scalar(jnp.zeros(2)), Selection([Parameter(lambda m: m.theta, Real())]),
                     {"theta": dist.Normal(0.0, 1.0)},
                     lambda n, lat: jnp.sum(dist.Normal(n.theta[0], 0.5).log_prob(jnp.array([0.5, 1.0]))))
    kw = dict(key=jax.random.key(3), num_particles=200, num_runs=4, num_mcmc_steps=3, progress=False)
    one = smc(post, devices=jax.devices()[:1], **kw)
    two = smc(post, **kw)
    diff = lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
    print(json.dumps({"devices": len(jax.devices()), "max_diff": diff(one.positions, two.positions),
                      "log_z_diff": diff(one.log_evidence, two.log_evidence)}))
    """
)


@pytest.mark.slow
def test_runs_sharded_over_two_devices_equal_one_device():
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2".strip()
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, "-c", SHARDED_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["devices"] == 2
    assert out["max_diff"] < 1e-9 and out["log_z_diff"] < 1e-9, out
