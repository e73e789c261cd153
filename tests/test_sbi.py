"""Simulation-based inference: budgets (same draws and simulations as a direct loop, resumable), NPE against an
analytic posterior (linear Gaussian model) with calibrated coverage, save/load, and NPE against NUTS on a shared
small network problem."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

import vbtjax as vbt
from vbtjax import sbi
from vbtjax.inference import Interval, Parameter, Posterior, Selection

# ------------------------------------------------------------------------------------------------ a small network
W = np.array([[0, 1.0, 0.5], [0.8, 0, 0.3], [0.2, 0.9, 0]])
L = np.array([[0, 10.0, 20], [10, 0, 15], [20, 15, 0]])
MONS = {"sub": vbt.monitors.SubSample(period=2.5)}
SIG = 0.02  # observation noise of the features


def _net():
    stim = vbt.stimulus.Stimulus(temporal=vbt.stimulus.Step(onset=0.0, amplitude=1.0), weight=np.array([1.0, 0.5, 0.2]))
    return vbt.Network(
        model=vbt.models.Linear(gamma=-1.5),
        connectome=vbt.Connectome(weights=W, lengths=L),
        coupling=vbt.coupling.Linear(a=0.3),
        speed=5.0,
        stimulus=stim,
    )


SEL = Selection(
    [Parameter(lambda n: n.coupling.a, Interval(0.0, 0.6)), Parameter(lambda n: n.model.gamma, Interval(-2.5, -1.0))]
)
PRIORS = {"coupling.a": dist.Uniform(0.0, 0.6), "model.gamma": dist.Uniform(-2.5, -1.0)}


def _features(net):
    return vbt.simulate(net, 10.0, 0.1, jnp.zeros((1, 3)), vbt.Heun(), MONS).ys["sub"][:, 0].reshape(-1)


def _run(net, key):
    return _features(net) + SIG * jax.random.normal(key, (12,))


def test_budget_equals_direct_simulation_and_resumes(tmp_path):
    prior = Posterior(_net(), SEL, PRIORS, None)
    key = jax.random.key(0)
    a = sbi.simulate_budget(prior, 40, tmp_path / "a", run=_run, dt=0.1, key=key, chunk_size=16, progress=False)
    assert a.x.shape == (40, 12) and a.u.shape == a.theta.shape == (40, 2) and a.finite.all()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "budget.json",
        "chunk_00000.npz",
        "chunk_00001.npz",
        "chunk_00002.npz",
    ]
    # row b of chunk c: the prior draw's network simulated with key fold_in(fold_in(fold_in(key, 1), c), b)
    for row in (0, 17, 39):
        c, b = divmod(row, 16)
        theta = prior.constrained(jnp.asarray(a.u[row]))
        np.testing.assert_allclose(a.theta[row], [theta["coupling.a"], theta["model.gamma"]], rtol=1e-14)
        net = SEL.apply(_net(), [prior.unravel(jnp.asarray(a.u[row]))[n] for n in prior.names])
        k = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, 1), c), b)
        np.testing.assert_allclose(a.x[row], _run(net, k), rtol=1e-12, atol=1e-14)
    assert np.all((a.theta[:, 0] > 0) & (a.theta[:, 0] < 0.6) & (a.theta[:, 1] > -2.5) & (a.theta[:, 1] < -1.0))
    # an interrupted build (chunk 1 missing, a partial file left) resumes to the same budget
    (tmp_path / "a" / "chunk_00001.npz").unlink()
    (tmp_path / "a" / "chunk_00002.npz").rename(tmp_path / "a" / "chunk_00002.npz.tmp.npz")
    assert len(sbi.Budget.load(tmp_path / "a")) == 16
    b = sbi.simulate_budget(prior, 40, tmp_path / "a", run=_run, dt=0.1, key=key, chunk_size=16, progress=False)
    assert b.info["simulated_now"] == 24
    for name in ("u", "theta", "x"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        np.testing.assert_array_equal(getattr(a, name), getattr(sbi.Budget.load(tmp_path / "a"), name))
    with pytest.raises(ValueError, match="holds another budget"):
        sbi.simulate_budget(
            prior, 40, tmp_path / "a", run=_run, dt=0.1, key=jax.random.key(1), chunk_size=16, progress=False
        )
    with pytest.raises(TypeError, match="log_likelihood=None"):
        sbi.simulate_budget(SEL, 4, run=_run, key=key)
    with pytest.raises(ValueError, match="exactly one"):
        sbi.simulate_budget(prior, 4, key=key)
    with pytest.raises(ValueError, match="t1= and dt="):
        sbi.simulate_budget(prior, 4, features=lambda s: s.ys, key=key)
    # features= path: same numbers as run= without the observation noise
    c = sbi.simulate_budget(
        prior,
        4,
        features=lambda s: s.ys["sub"][:, 0],
        t1=10.0,
        dt=0.1,
        history=jnp.zeros((1, 3)),
        solver=vbt.Heun(),
        monitors=MONS,
        key=key,
        progress=False,
    )
    net0 = SEL.apply(_net(), [prior.unravel(jnp.asarray(c.u[0]))[n] for n in prior.names])
    np.testing.assert_allclose(c.x[0], _features(net0), rtol=1e-12)


def _gaussian_problem(n, seed=0):
    """theta ~ N(0, I_2), x = A theta + 0.5 eps (3 features): the posterior is Gaussian with covariance
    S = (I + A^T A / s^2)^-1 and mean S A^T x / s^2."""
    net = vbt.Network(
        model=vbt.models.Generic2dOscillator(),
        connectome=vbt.Connectome(weights=np.zeros((2, 2)), lengths=np.zeros((2, 2))),
    )
    sel = Selection([Parameter(lambda n: n.model.a), Parameter(lambda n: n.model.b)])
    prior = Posterior(net, sel, {"model.a": dist.Normal(0.0, 1.0), "model.b": dist.Normal(0.0, 1.0)}, None)
    A = np.array([[1.0, 0.5], [0.2, -1.0], [0.7, 0.7]])
    rng = np.random.default_rng(seed)
    th = rng.normal(size=(n, 2))
    x = th @ A.T + 0.5 * rng.normal(size=(n, 3))
    S = np.linalg.inv(np.eye(2) + A.T @ A / 0.25)
    return prior, sbi.Budget(th, th, x, prior.names, prior.shapes), A, S


# ------------------------------------------------------------------------------- negative controls of calibration
class _Gaussian(eqx.Module):
    """An estimator with NPE's interface (``sample``, ``log_prob``, ``u_mean``) whose ``q(u | x)`` is Gaussian:
    the exact posterior of :func:`_gaussian_problem` with its standard deviations times `scale` and its mean moved by
    `shift` marginal posterior sds. ``scale=1, shift=0`` is the true posterior (calibrated by construction)."""

    A: jax.Array
    S: jax.Array
    scale: jax.Array
    shift: jax.Array

    @property
    def u_mean(self):
        return jnp.zeros(2)

    def mean(self, x):
        return jnp.asarray(x) @ self.A @ self.S / 0.25 + self.shift * jnp.sqrt(jnp.diag(self.S))

    def sample(self, key, x, n):
        chol = jnp.linalg.cholesky(self.S) * self.scale
        return self.mean(x) + jax.random.normal(key, (n, 2)) @ chol.T

    def log_prob(self, u, x):
        cov = self.S * self.scale**2
        r = u - self.mean(x)
        maha = jnp.sum(r * jnp.linalg.solve(cov, r[..., None])[..., 0], axis=-1)
        return -0.5 * maha - 0.5 * jnp.linalg.slogdet(cov)[1] - jnp.log(2 * jnp.pi)


def _estimator(A, S, scale=1.0, shift=(0.0, 0.0)):
    return _Gaussian(jnp.asarray(A), jnp.asarray(S), jnp.asarray(scale), jnp.asarray(shift))


def _expected_coverage(levels, scale, shift):
    """Coverage of central intervals of ``N(mu + shift sd, (scale sd)^2)`` for truths ``~ N(mu, sd^2)``:
    ``Phi(shift + scale q) - Phi(shift - scale q)``, q the interval's half-width in sds. ``(K,)``."""
    from scipy.stats import norm

    q = norm.ppf(0.5 + np.asarray(levels) / 2)
    return norm.cdf(shift + scale * q) - norm.cdf(shift - scale * q)


def _expected_joint_coverage(levels, scale, shift, S):
    """Share of truths whose HPD level is at most ``alpha`` for the Gaussian estimator: with the truth's squared
    Mahalanobis distance under ``q`` a scaled non-central chi-square (2 dof; non-centrality from the shift),
    ``P(M_truth <= -2 log(1 - alpha))`` (draws of ``q`` have ``M ~ chi2_2``, whose CDF is ``1 - exp(-M/2)``)."""
    from scipy.stats import ncx2

    sd = np.sqrt(np.diag(S))
    delta = np.linalg.solve(np.linalg.cholesky(S), np.asarray(shift) * sd) / scale  # whitened shift under q
    m = -2.0 * np.log1p(-np.asarray(levels))
    return ncx2.cdf(m * scale**2, 2, float(delta @ delta) * scale**2)


@pytest.mark.parametrize(
    "scale, shift, kind",
    [(1.0, (0.0, 0.0), "exact"), (0.5, (0.0, 0.0), "over-confident"), (1.0, (1.0, -1.0), "biased"),
     (2.0, (0.0, 0.0), "over-dispersed")],
    ids=["exact", "over-confident", "biased", "over-dispersed"],
)  # fmt: skip
def test_calibration_accepts_the_true_posterior_and_rejects_distorted_ones(scale, shift, kind):
    """Negative controls of :func:`sbi.calibrate` and its verdict, on the analytic posterior of the linear Gaussian
    model (no training): the true posterior passes every check; an over-confident one (sds halved), a biased one
    (means moved by one posterior sd) and an over-dispersed one (sds doubled) fail them. The statistics themselves
    are checked against their exact values (coverage ``Phi(shift + scale q) - Phi(shift - scale q)``, joint coverage
    from a non-central chi-square), so a ``calibrate`` that reported uniform ranks or nominal coverage whatever the
    estimator would fail here. 1000 held-out simulations: the 99% band of a coverage estimate is 0.041."""
    from scipy.stats import norm

    prior, budget, A, S = _gaussian_problem(1000, seed=1)
    est = _estimator(A, S, scale, shift)
    cal = sbi.calibrate(est, prior, budget, key=jax.random.key(5), num_draws=200)
    band = cal.coverage_band(0.99)
    assert 0.04 < band < 0.042
    for j in range(2):
        np.testing.assert_allclose(cal.coverage[:, j], _expected_coverage(cal.levels, scale, shift[j]), atol=band)
    np.testing.assert_allclose(cal.joint_coverage, _expected_joint_coverage(cal.levels, scale, shift, S), atol=band)
    # ranks: share of truths below 5% of the draws is Phi(shift + scale z_0.05)
    low = np.mean(cal.ranks < 0.05 * cal.num_draws, axis=0)
    np.testing.assert_allclose(low, norm.cdf(np.asarray(shift) + scale * norm.ppf(0.05)), atol=0.035)
    # z-scores (mean - truth) / sd: mean shift / scale, sd 1 / scale
    np.testing.assert_allclose(cal.z.mean(0), np.asarray(shift) / scale, atol=4 / scale / np.sqrt(1000))
    np.testing.assert_allclose(cal.z.std(0), 1 / scale, rtol=0.1)
    checks = cal.checks(0.01)
    if kind == "exact":
        assert checks == {"rank tests": True, "coverage": True}, cal.summary()
        assert cal.verdict().startswith("calibration checks pass"), cal.verdict()
    else:
        assert checks == {"rank tests": False, "coverage": False}, cal.summary()
        assert cal.verdict().startswith("NOT calibrated"), cal.verdict()
        assert cal.max_coverage_error() > 3 * band
        assert min(p for d in cal.rank_pvalues.values() for p in d.values()) < 1e-6


def test_calibration_over_few_simulations_is_inconclusive_or_rejects():
    """Below MIN_TESTS held-out simulations the true posterior is called inconclusive, not calibrated; a grossly
    over-confident estimator (sds / 4) is rejected even there."""
    prior, budget, A, S = _gaussian_problem(30, seed=2)
    good = sbi.calibrate(_estimator(A, S), prior, budget, key=jax.random.key(0), num_draws=100)
    assert good.verdict().startswith("calibration inconclusive"), good.verdict()
    bad = sbi.calibrate(_estimator(A, S, 0.25), prior, budget, key=jax.random.key(0), num_draws=100)
    assert bad.verdict().startswith("NOT calibrated"), bad.verdict()


class _Distorted(eqx.Module):
    """A trained NPE made over-confident (draws pulled towards the analytic posterior mean by `scale`) or biased
    (moved by `shift`, unconstrained units): ``q'(u | x)`` is the transformed flow's exact density."""

    npe: eqx.Module
    centre: _Gaussian
    scale: float = eqx.field(static=True)
    shift: jax.Array

    @property
    def u_mean(self):
        return self.npe.u_mean

    def sample(self, key, x, n):
        m = self.centre.mean(x)
        return m + self.scale * (self.npe.sample(key, x, n) - m) + self.shift

    def log_prob(self, u, x):
        m = self.centre.mean(x)
        return self.npe.log_prob(m + (u - self.shift - m) / self.scale, x) - 2 * jnp.log(self.scale)


def test_npe_matches_the_analytic_posterior_and_is_calibrated(tmp_path):
    prior, budget, A, S = _gaussian_problem(2500)
    train, test = budget.split(300)
    npe, hist = sbi.train_npe(
        train, key=jax.random.key(0), flow="maf", layers=2, width=16, max_epochs=150, patience=15, progress=False
    )
    assert hist["best_epoch"] > 0 and hist["val_loss"][hist["best_epoch"] - 1] == hist["best_val_loss"]
    sd = np.sqrt(np.diag(S))
    for i in range(3):
        mu = S @ A.T @ test.x[i] / 0.25
        q = npe.posterior(prior, jax.random.key(i), test.x[i], 4000)
        m = np.array([q["model.a"].mean(), q["model.b"].mean()])
        s = np.array([q["model.a"].std(), q["model.b"].std()])
        assert np.all(np.abs(m - mu) < 0.35 * sd), (m, mu)
        assert np.all(np.abs(s / sd - 1) < 0.2), (s, sd)
    cal = sbi.calibrate(npe, prior, test, key=jax.random.key(1), num_draws=100)
    # coverage within the 99% binomial band of 300 held-out simulations (about 0.074)
    assert cal.max_coverage_error() < cal.coverage_band(0.99), cal.summary()
    assert cal.is_calibrated(0.01), cal.summary()
    assert np.all(np.abs(cal.z.mean(0)) < 0.3) and np.all(np.abs(cal.z.std(0) - 1) < 0.25)
    assert np.all(np.median(cal.shrinkage, 0) > 0.7)  # the data are informative: shrinkage 1 - diag(S) ~ 0.8
    assert cal.checks(0.01) == {"rank tests": True, "coverage": True}, cal.summary()
    # negative controls: the same trained flow made over-confident (sds x 0.6) or biased (means + 1 sd) is rejected
    # by the same checks that accept it; expected largest marginal coverage errors 0.24 and 0.21, against a band of
    # 0.074
    centre = _estimator(A, S)
    for kind, scale, shift in (("over-confident", 0.6, (0.0, 0.0)), ("biased", 1.0, np.sqrt(np.diag(S)))):
        bad = sbi.calibrate(
            _Distorted(npe, centre, scale, jnp.asarray(shift, jnp.float32)), prior, test, key=jax.random.key(1),
            num_draws=100,
        )  # fmt: skip
        assert not any(bad.checks(0.01).values()), (kind, bad.summary())
        assert bad.verdict().startswith("NOT calibrated"), (kind, bad.verdict())
        assert bad.max_coverage_error() > 2 * cal.coverage_band(0.99), (kind, bad.summary())
    cal.plot(tmp_path / "cal.png")
    assert (tmp_path / "cal.png").read_bytes()[:4] == b"\x89PNG"
    # save / load: the same draws, the prior restored
    path = npe.save(tmp_path / "npe", prior, history=hist, description={"features": "A theta + noise"})
    back, prior2, info = sbi.load_npe(path)
    k = jax.random.key(7)
    np.testing.assert_array_equal(back.sample(k, test.x[0], 10), npe.sample(k, test.x[0], 10))
    assert prior2.names == prior.names and info["description"]["features"] == "A theta + noise"
    assert type(prior2.priors["model.a"]).__name__ == "Normal"
    np.testing.assert_array_equal(info["history"]["val_loss"], hist["val_loss"])
    meta = json.loads((path / "npe.json").read_text())
    meta["config"]["width"] = 17
    (path / "npe.json").write_text(json.dumps(meta))
    with pytest.raises(vbt.twin.TwinFileError, match="modified"):
        sbi.load_npe(path)
    with pytest.raises(ValueError, match="has 4 features; the estimator was trained on 3"):
        npe.posterior(prior, k, np.zeros(4), 10)
    with pytest.raises(ValueError, match="flow must be"):
        sbi.train_npe(train, key=k, flow="realnvp")


def test_ensemble_is_the_mixture_of_its_members_and_pca_round_trips(tmp_path):
    """An ensemble's log_prob is the log of the mean of its members' densities, its draws come n // M from each
    member, and save/load keeps all members and the PCA projection; a folder written before ensembles and PCA
    (no such keys in its configuration) still loads as one flow."""
    from vbtjax._serialise import content_hash

    prior, budget, _, _ = _gaussian_problem(400)
    train, test = budget.split(50)
    kw = dict(flow="maf", layers=1, width=8, max_epochs=2, patience=2, progress=False)
    npe, hist = sbi.train_npe(train, key=jax.random.key(0), ensemble=2, pca=2, **kw)
    assert npe.n_members == 2 and npe.x_proj.shape == (3, 2) and hist["member_epochs"].shape == (2,)
    # the projected training features are whitened principal components
    c = np.asarray(npe._standardise(train.x[: -hist["n_val"]]))
    np.testing.assert_allclose(np.cov(c.T, bias=True), np.eye(2), atol=1e-4)
    members = [
        eqx.tree_at(lambda e: (e.flow, e.embedding), npe, ((f,), None), is_leaf=lambda v: v is None) for f in npe.flow
    ]
    u = jnp.asarray(test.u[:5], jnp.float32)
    x = jnp.asarray(test.x[:5], jnp.float32)
    lp = np.stack([np.asarray(m.log_prob(u, x)) for m in members])
    np.testing.assert_allclose(npe.log_prob(u, x), np.log(np.exp(lp).mean(0)), rtol=1e-5, atol=1e-5)
    assert not np.allclose(lp[0], lp[1])  # the members differ
    k = jax.random.key(3)
    draws = npe.sample(k, test.x[0], 7)
    assert draws.shape == (7, 2) and np.isfinite(draws).all()
    q = npe.posterior(prior, k, test.x[0], 10)
    assert q["model.a"].shape == (10,)
    back, _, info = sbi.load_npe(npe.save(tmp_path / "ens", prior, history=hist))
    assert back.n_members == 2 and back.cfg["pca"] == 2
    np.testing.assert_array_equal(back.sample(k, test.x[0], 7), draws)
    np.testing.assert_array_equal(back.log_prob(u, x), npe.log_prob(u, x))
    np.testing.assert_array_equal(info["history"]["member_epochs"], hist["member_epochs"])
    # an older single-flow folder (configuration without "ensemble" and "pca")
    one, _ = sbi.train_npe(train, key=jax.random.key(1), **kw)
    path = one.save(tmp_path / "old", prior)
    meta = json.loads((path / "npe.json").read_text())
    del meta["config"]["ensemble"], meta["config"]["pca"], meta["content_hash"]
    with np.load(path / "arrays.npz") as z:
        meta["content_hash"] = content_hash(meta, {k: z[k] for k in z.files})
    (path / "npe.json").write_text(json.dumps(meta))
    old, _, _ = sbi.load_npe(path)
    assert old.n_members == 1 and old.x_proj is None
    np.testing.assert_array_equal(old.sample(k, test.x[0], 7), one.sample(k, test.x[0], 7))
    with pytest.raises(ValueError, match="ensemble must be a positive integer"):
        sbi.train_npe(train, key=k, ensemble=0)
    with pytest.raises(ValueError, match="pca=5 exceeds"):
        sbi.train_npe(train, key=k, pca=5)


@pytest.mark.slow
def test_npe_agrees_with_nuts_on_a_small_network():
    """One generative model, two routes: NUTS with the Gaussian likelihood of the features, and NPE (an ensemble of
    4 flows) trained on a budget of the same simulator. The features (the network's response every 2.5 ms) are
    sufficient here. Stated tolerance: NPE is calibrated on 200 held-out simulations (no rank test and not the joint
    HPD test rejects at family-wise 1%, every coverage within 0.15 of its level); for this observation the means
    agree within 0.5 NUTS posterior sd, and the NPE's sd lies between 0.8 and 2 times NUTS's. The two sides differ
    on purpose. Narrower (ratio < 1) is the dangerous direction, an over-confident NPE; NUTS's own sd is known to
    ~5 % (600 draws, ESS > 200: relative error 1 / sqrt(2 ESS)), so 0.8 leaves 4 such errors and rejects an NPE 20 %
    too narrow. Wider is bounded by 2 and cannot be derived tighter: calibration bounds the coverage averaged over
    observations, not for one observation, and NPE with a budget of 2000 is over-dispersed for this one (measured sd
    ratios 1.17 for the coupling, 1.63 and 1.80 for gamma in two runs, while calibrated on average: joint coverage
    0.49 / 0.92 at 50 / 90%, KS p 0.68); a per-observation 50 % coverage error of 0.15 alone would allow 1.4."""
    net = _net()
    prior = Posterior(net, SEL, PRIORS, None)
    budget = sbi.simulate_budget(
        prior, 2200, run=_run, dt=0.1, key=jax.random.key(0), chunk_size=1100, batch_size=256, progress=False
    )
    train, test = budget.split(200)
    npe, _ = sbi.train_npe(
        train, key=jax.random.key(1), layers=3, width=32, ensemble=4, max_epochs=200, patience=20, progress=False
    )
    cal = sbi.calibrate(npe, prior, test, key=jax.random.key(2), num_draws=100)
    # a single flow (ensemble=1) has calibrated marginals but the joint HPD test rejects it (KS p < 0.001, joint
    # coverage 0.41 at 50%, 0.89 at 90%): its correlation between coupling and gamma is not exact at this budget
    assert cal.is_calibrated(0.01) and cal.max_coverage_error() < 0.15, cal.summary()
    truth = eqx.tree_at(lambda n: (n.coupling.a, n.model.gamma), net, (jnp.asarray(0.35), jnp.asarray(-1.7)))
    obs = _run(truth, jax.random.key(99))

    def log_likelihood(n, _):
        return jnp.sum(dist.Normal(_features(n), SIG).log_prob(obs))

    res = vbt.inference.nuts(
        Posterior(net, SEL, PRIORS, log_likelihood),
        key=jax.random.key(3),
        num_chains=2,
        num_warmup=200,
        num_samples=300,
        progress=False,
    )
    q = npe.posterior(prior, jax.random.key(4), obs, 4000)
    cmp = sbi.compare_posteriors(q, res.samples)
    for name, c in cmp.items():
        assert abs(c["mean_a"] - c["mean_b"]) < 0.5 * c["sd_b"], (name, c)
        assert 0.8 < c["sd_ratio"] < 2, (name, c)


def _calibrated_max_coverage_error(T, L, d, levels, prob=0.99, n=500, seed=0, chunk=50):
    """The `prob` quantile of ``Calibration.max_coverage_error()`` for a calibrated estimator: `T` tests, `L` draws
    each, `d` parameters (truth and draws i.i.d., central intervals from the draws' quantiles as ``calibrate`` takes
    them) and the joint HPD coverage (uniform ranks), at `levels`; simulated `n` times."""
    rng = np.random.default_rng(seed)
    worst = []
    for _ in range(n // chunk):
        draws = rng.normal(size=(chunk, T, L, d)).astype(np.float32)
        truth = rng.normal(size=(chunk, T, d)).astype(np.float32)
        lo = np.quantile(draws, 0.5 - levels / 2, axis=2)
        hi = np.quantile(draws, 0.5 + levels / 2, axis=2)
        cov = ((truth[None] >= lo) & (truth[None] <= hi)).mean(axis=2)  # (K, chunk, d)
        marg = np.abs(cov - levels[:, None, None]).max(axis=(0, 2))
        hpd = rng.integers(0, L + 1, size=(chunk, T)) / L
        joint = np.abs((hpd[None] <= levels[:, None, None]).mean(axis=2) - levels[:, None]).max(axis=0)
        worst.append(np.maximum(marg, joint))
    return float(np.quantile(np.concatenate(worst), prob))


def test_calibrated_max_coverage_error_bound():
    """The simulated bound behaves as a bound: it grows as the tests get fewer (binomial noise ~ 1/sqrt(T)), and at
    200 tests a calibrated estimator stays under 0.1 in only ~86 % of runs (so 0.1 was not a 1 % test)."""
    levels = np.linspace(0.05, 0.95, 19)
    b200 = _calibrated_max_coverage_error(200, 100, 6, levels, n=200)
    b50 = _calibrated_max_coverage_error(50, 100, 6, levels, n=200)
    assert 0.11 < b200 < 0.16 and b50 > 1.6 * b200
    assert _calibrated_max_coverage_error(200, 100, 6, levels, prob=0.5, n=200) < 0.1


@pytest.mark.slow
def test_vep_ensemble_on_principal_components_is_calibrated():
    """The VEP problem on the 5 regions of TVB's 76 nearest region 12 (6 parameters, 25 windows x the 27 contacts
    of 3 electrodes = 675 features): an ensemble of 3 spline flows on the first 16 principal components of the
    features, trained on 2 000 simulations, is calibrated on 200 held-out simulations of the prior (rank tests and
    the joint HPD test at family-wise 1%), its largest coverage error below what a calibrated estimator exceeds in
    1 % of runs (simulated: ~0.13 at 200 tests; measured 0.11 after a float change of the solver). Measured when
    written: joint coverage 0.48 / 0.84 at 50 / 90% (KS p 0.27), max coverage error 0.08; on the same budget a
    single flow on the same components gives 0.41 / 0.78 (KS p < 0.001, marginals calibrated) and a single flow
    with a 32-wide embedding MLP (the former recommendation) 0.25 / 0.69, max coverage error 0.28: neither is
    calibrated."""
    from vbtjax.sensors import seeg_gain_point_source

    from vbtjax import vep
    from vbtjax.sbi.problems import vep_problem

    conn = vbt.datasets.tvb_connectome(76)
    sensors = vbt.sensors.tvb_sensors("seeg")
    keep = conn.nearest([12], 5)
    sub = conn.subset(keep)
    ez = int(np.flatnonzero(keep == 12)[0])
    idx = vep.implant(sensors, sub.centres, [ez], n_electrodes=3, seed=0)
    gain = seeg_gain_point_source(np.asarray(sensors.positions)[idx], sub.centres)
    problem = vep_problem(sub, gain, contacts=[str(sensors.labels[c]) for c in idx])
    budget = problem.simulate_budget(2200, key=jax.random.key(0), chunk_size=2200, progress=False)
    train, test = budget.split(200)
    kw = dict(layers=2, width=32, max_epochs=100, patience=10, progress=False)
    npe, _ = sbi.train_npe(train, key=jax.random.key(1), pca=16, ensemble=3, **kw)
    cal = sbi.calibrate(npe, problem.prior, test, key=jax.random.key(2), num_draws=100)
    assert cal.is_calibrated(0.01), cal.summary()
    # the largest of 7 x 19 coverage errors: its 99th percentile for a calibrated estimator (simulated, ~0.13 at 200
    # tests) is the bound; 0.1, the bound written first, is exceeded by a calibrated estimator 14 % of the time
    bound = _calibrated_max_coverage_error(len(test.u), 100, len(cal.names), cal.levels)
    assert cal.max_coverage_error() < bound, (bound, cal.summary())
