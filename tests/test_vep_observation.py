"""The VEP's observation models (vbtjax.vep): the per-contact nuisance parameters integrated out analytically, checked
against numerical integration; the choice of observation model from the data; the time scale that maps a
recording onto the model's time; and the posterior predictive check with its negative control."""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import integrate  # noqa: E402

import vbtjax as vbt  # noqa: E402
from vbtjax import vep  # noqa: E402
from vbtjax.inference.ppc import predictive_check  # noqa: E402


@pytest.fixture(scope="module")
def conn():
    return vbt.datasets.tvb_connectome(76)


def _net(conn):
    x0 = np.full(76, -2.4)
    x0[[12, 40]] = -1.6
    return vep.vep_network(conn, x0=x0, K=0.3)


def _gain(conn, n_contacts=3, seed=0):
    rng = np.random.default_rng(seed)
    pos = np.asarray(conn.centres)[rng.choice(76, n_contacts, replace=False)] + rng.normal(0, 5, (n_contacts, 3))
    return vbt.sensors.seeg_gain_point_source(pos, conn.centres)


def test_time_scale_is_a_change_of_time(conn):
    """time_scale s over duration D is the network run over s D ms with steps of s dt (the same steps)."""
    net = _net(conn)
    a = vep.simulate_x1(net, 20.0, 0.1, 1.0, time_scale=1.5)
    b = vep.simulate_x1(net, 30.0, 0.15, 1.5)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-12)
    lev = vep.simulate_level(net, 20.0, 0.1, 1.0)
    x1 = vep.simulate_x1(net, 20.0, 0.1, 0.1)
    np.testing.assert_allclose(np.asarray(lev), np.asarray(x1).reshape(20, 10, 76).mean(axis=1), atol=1e-12)


def _terms(post, u):
    return post._terms(u)


def test_power_likelihood_integrates_out_each_offset(conn):
    """The "power" log-likelihood of a contact equals log of the integral over its offset b (flat prior) of
    prod_t N(y_t | model_t + b, sigma^2), computed by quadrature."""
    gain = _gain(conn)
    rng = np.random.default_rng(1)
    env = rng.normal(-3.0, 0.5, (10, 3))
    post = vep.vep_posterior(conn, gain, env, duration=20.0, time_scale=1.3, dtype=jnp.float64, noise="independent")
    u = post.initial_position() + 0.1 * jnp.asarray(rng.standard_normal(post.dim))
    ll, fitted = _terms(post, u)
    sigma = float(post.constrained(u)["sigma"])
    raw = np.asarray(vep.seeg_log_power(vep.simulate_power(post.network(u), 20.0, 0.1, 2.0, 1.3), gain))
    for k in range(3):
        r = env[:, k] - raw[:, k]

        ref = np.sum(-0.5 * np.log(2 * np.pi * sigma**2) - (r - r.mean()) ** 2 / (2 * sigma**2))

        def f(b, r=r, ref=ref):
            return np.exp(np.sum(-0.5 * np.log(2 * np.pi * sigma**2) - (r - b) ** 2 / (2 * sigma**2)) - ref)

        val, _ = integrate.quad(f, r.mean() - 20 * sigma, r.mean() + 20 * sigma, epsabs=1e-13)
        np.testing.assert_allclose(float(ll[k]), ref + np.log(val), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.asarray(fitted).mean(axis=0), env.mean(axis=0), atol=1e-12)
    assert float(post.log_likelihood_at(u)) == pytest.approx(float(jnp.sum(ll)), rel=1e-12)
    np.testing.assert_allclose(np.asarray(post.pointwise(u)), np.asarray(ll), rtol=1e-12)


def test_correlated_power_likelihood_is_the_gaussian_with_shared_noise(conn):
    """With ``noise="correlated"`` the "power" log-likelihood equals log of the integral over the contacts' offsets
    b (flat prior) of prod_t N(y_t | model_t + b, tau^2 (R * R) + sigma^2 I), R the contacts' correlation under
    equal region power: computed here as the limit of a dense (T C)-variate normal with a wide Gaussian prior on b."""
    from scipy.stats import multivariate_normal

    gain = np.array(_gain(conn, n_contacts=4, seed=3))
    gain[1] = gain[0] * 0.9 + gain[1] * 0.1  # two contacts that see nearly the same regions
    rng = np.random.default_rng(2)
    T, C = 8, 4
    env = rng.normal(-3.0, 0.5, (T, C))
    post = vep.vep_posterior(conn, gain, env, duration=16.0, time_scale=1.3, dtype=jnp.float64)
    assert "tau" in post.names and post.noise_basis is not None
    u = post.initial_position() + 0.1 * jnp.asarray(rng.standard_normal(post.dim))
    x = post.constrained(u)
    sigma, tau = float(x["sigma"]), float(x["tau"])
    raw = np.asarray(vep.seeg_log_power(vep.simulate_power(post.network(u), 16.0, 0.1, 2.0, 1.3), gain))
    cov = gain @ gain.T
    R = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    Sigma = tau**2 * R * R + sigma**2 * np.eye(C)
    s = 1e3  # prior sd of each offset; the flat-prior integral is the limit s -> inf
    full = np.kron(np.eye(T), Sigma) + s**2 * np.kron(np.ones((T, T)), np.eye(C))
    r = env - raw
    m = r.mean(axis=0)  # the prior's centre (the flat-prior limit does not depend on it; here it is reached faster)
    ref = multivariate_normal(np.tile(m, T), full).logpdf(r.reshape(-1)) + 0.5 * C * np.log(2 * np.pi * s**2)
    np.testing.assert_allclose(float(post.log_likelihood_at(u)), ref, rtol=1e-6)
    # tau = 0: the independent likelihood, whatever the basis
    ind = vep.vep_posterior(conn, gain, env, duration=16.0, time_scale=1.3, dtype=jnp.float64, noise="independent")
    x0 = {**x, "tau": 0.0}
    x_ind = {k: v for k, v in x.items() if k != "tau"}
    np.testing.assert_allclose(
        float(post.log_likelihood_at(post.unconstrained({**x0, "tau": 1e-12}))),
        float(ind.log_likelihood_at(ind.unconstrained(x_ind))),
        rtol=1e-10,
    )
    # the terms are the decorrelated components; they sum to the total, and the fitted envelope is unchanged
    np.testing.assert_allclose(float(jnp.sum(post.pointwise(u))), float(post.log_likelihood_at(u)), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(post.predict(u)).mean(axis=0), env.mean(axis=0), atol=1e-12)
    # the posterior's noise draws have that covariance (the predictive check draws them)
    draws = jax.vmap(lambda k: post.noise(u, k))(jax.random.split(jax.random.key(0), 20000))  # (S, T, C)
    emp = np.cov(np.asarray(draws).reshape(-1, C), rowvar=False)
    np.testing.assert_allclose(emp, Sigma, atol=0.03 * np.abs(Sigma).max())
    lam, _ = vep.shared_noise_basis(gain, jnp.float64)
    assert 1.0 < float(lam.sum() ** 2 / (lam**2).sum()) < C  # fewer independent contacts than contacts
    with pytest.raises(ValueError, match="noise must be one of"):
        vep.vep_posterior(conn, gain, env, duration=16.0, noise="white")


def test_level_likelihood_integrates_out_offset_and_polarity(conn):
    """The "level" log-likelihood of a contact equals the mean over its polarity p = +-1 of the integral over its
    offset b (flat prior) of prod_t N(y_t | b + p a m_t, sigma^2), m the model's level on the gain divided by its
    largest magnitude and a the shared scale (by quadrature); data that follow the model score higher than the same
    data reversed in time, and the contacts' amplitudes matter (one common scale for all)."""
    gain = np.asarray(_gain(conn, seed=2))
    T = 10
    net = _net(conn)
    m = np.asarray(vep.simulate_level(net, 20.0, 0.1, 2.0)) @ (gain / np.abs(gain).max()).T
    rng = np.random.default_rng(3)
    signal = (m * np.array([1.0, -1.0, 1.0]) + rng.normal(0, 1e-3 * (m - m.mean(0)).std(0).min(), m.shape)).T.repeat(
        4, axis=1
    )
    env = vep.level_envelope(signal, 100.0, T)
    assert np.isclose(env.std(axis=0).max(), 1.0)
    post = vep.vep_posterior(conn, gain, env, feature="level", duration=20.0, time_scale=1.0, dtype=jnp.float64)
    assert post.names == ("x0", "K", "sigma", "scale")
    a, sigma = 1.0 / (m - m.mean(0)).std(0).max(), 0.3
    u = post.unconstrained({"x0": np.asarray(net.model.x0), "K": 0.3, "sigma": sigma, "scale": a})
    ll, fitted = _terms(post, u)
    for k in range(3):
        mc = m[:, k] - m[:, k].mean()
        vals = []
        for p in (1.0, -1.0):
            r = env[:, k] - p * a * mc

            shift = float(ll[k])

            def f(b, r=r, shift=shift):
                return np.exp(np.sum(-0.5 * np.log(2 * np.pi * sigma**2) - (r - b) ** 2 / (2 * sigma**2)) - shift)

            v, _ = integrate.quad(f, r.mean() - 20 * sigma, r.mean() + 20 * sigma, epsabs=1e-14)
            vals.append(v)
        np.testing.assert_allclose(np.log(0.5 * sum(vals)), 0.0, atol=1e-7)
    np.testing.assert_allclose(np.asarray(fitted), env, atol=0.1)  # the polarity found, the model's shape
    post_rev = vep.vep_posterior(conn, gain, env[::-1], feature="level", duration=20.0, time_scale=1.0)
    assert float(post.log_likelihood_at(u)) > float(post_rev.log_likelihood_at(u)) + 20
    post_amp = vep.vep_posterior(
        conn, gain, env * np.array([0.1, 1.0, 1.0]), feature="level", duration=20.0, time_scale=1.0
    )
    assert float(post.log_likelihood_at(u)) > float(post_amp.log_likelihood_at(u)) + 5


def test_signal_kind_and_features(conn):
    """White noise (broadband) -> "power"; a smooth gain-projected x1 (slow level shifts) -> "level"; the features
    have one row per window."""
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((5, 2000))
    assert vep.signal_kind(noise) == "power"
    gain = _gain(conn, n_contacts=5)
    x1 = np.asarray(vep.simulate_x1(_net(conn), 50.0, 0.1, 0.1))  # (500, 76), smooth
    smooth = (x1 @ np.asarray(gain).T).T.repeat(4, axis=1)
    assert vep.signal_kind(smooth) == "level"
    env, kind = vep.seeg_features(smooth, 1000.0, 25)
    assert kind == "level" and env.shape == (25, 5)
    np.testing.assert_allclose(env.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(env.std(axis=0).max(), 1.0, atol=1e-12)  # one scale for all contacts
    np.testing.assert_allclose(env.std(axis=0) / env.std(axis=0).max(), smooth.std(1) / smooth.std(1).max(), rtol=0.2)
    env, kind = vep.seeg_features(noise, 1000.0, 25)
    assert kind == "power" and env.shape == (25, 5)
    with pytest.raises(ValueError, match="feature must be"):
        vep.seeg_features(noise, 1000.0, 25, feature="dc")
    with pytest.raises(ValueError, match="flat"):
        vep.signal_kind(np.zeros((3, 100)))
    with pytest.raises(ValueError, match="feature must be one of"):
        vep.vep_posterior(conn, gain, env, feature="x")


def test_predictive_check_calibrated_and_negative_control():
    """Data drawn from the predictive distribution: coverage near the nominal 0.9 and a fit; the same data against
    a predictive distribution that is shifted and too narrow (negative control): flagged as a misfit."""
    rng = np.random.default_rng(0)
    T, C, S = 25, 30, 400
    mean = np.sin(np.linspace(0, 3, T))[:, None] * rng.uniform(1, 3, C)[None]
    pred = mean[None] + 0.3 * rng.standard_normal((S, T, C))
    obs = mean + 0.3 * rng.standard_normal((T, C))
    ok = predictive_check(obs, pred)
    assert 0.85 < ok.coverage < 0.95 and ok.r2 > 0.8 and ok.fits, ok.message
    bad = predictive_check(obs, 0.2 * pred[:, ::-1] + 1.0)
    assert not bad.fits and "NOT" in bad.message
    with pytest.raises(ValueError, match="expected"):
        predictive_check(obs, pred[:, :5])
    with pytest.raises(ValueError, match="too few"):
        predictive_check(obs, pred[:3])


def test_recording_file_montage_and_posterior(conn, tmp_path):
    """A synthetic patient's SEEG written as EDF by MNE, read back, re-referenced to a bipolar montage: the posterior
    uses gain rows that are differences of the two contacts' rows, chooses the "power" observation model for
    broadband data, and its log density and gradient are finite; flat channels are left out by the CLI's loader."""
    mne = pytest.importorskip("mne")
    from vbtjax.recordings import bipolar, channel_gain, read_seeg

    sensors = vbt.sensors.tvb_sensors("seeg")
    p = vep.synthetic_patient(conn, sensors, [12], seed=5)
    data = np.asarray(p.recording.data, dtype=float)
    data = data / np.abs(data).max() * 5e-4  # volts: at most 500 uV
    data[3] = 0.0  # a flat channel
    info = mne.create_info(p.recording.ch_names, p.recording.sfreq, ch_types="seeg")
    mne.io.RawArray(data, info, verbose="error").export(tmp_path / "p.edf", verbose="error")
    rec = read_seeg(tmp_path / "p.edf")
    assert rec.ch_names == p.recording.ch_names
    from vbtjax.cli.vep import _load_recording

    rec = _load_recording(str(tmp_path / "p.edf"), "")
    assert p.recording.ch_names[3] not in rec.ch_names and len(rec.ch_names) == len(p.recording.ch_names) - 1
    bip = bipolar(rec)
    assert all("-" in c for c in bip.ch_names)
    with pytest.warns(UserWarning, match="quantised") if _silent(bip) else _nothing():
        post = vep.recording_posterior(conn, sensors, bip, dtype=jnp.float64)
    kept = [c for c in bip.ch_names if c not in _silent(bip)]
    assert post.feature == "power" and post.envelope.shape == (25, len(kept))
    a, b = kept[0].split("-")
    g = np.asarray(channel_gain([a, b], sensors, conn.centres))
    np.testing.assert_allclose(np.asarray(post.gain)[0], g[0] - g[1], rtol=1e-12)
    u = post.initial_position()
    lp, grad = jax.value_and_grad(lambda v: post.log_density(v))(u)
    assert np.isfinite(float(lp)) and bool(jnp.all(jnp.isfinite(grad)))


def _silent(rec):
    """Channels with a window of zero power (EDF's 16 bits over a range shared by all channels can quantise a
    bipolar pair of faint contacts to one value)."""
    quiet = vep.silent(vep.window_power(rec.data, 25))
    return [c for c, q in zip(rec.ch_names, quiet, strict=True) if q]


def _nothing():
    import contextlib

    return contextlib.nullcontext()


def test_verdict_says_when_not_to_plan_a_resection():
    """A result is trustworthy only when it converged and fits; otherwise its verdict says why, in one line."""
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((25, 4))
    good = predictive_check(obs, obs[None] + 0.3 * rng.standard_normal((100, 25, 4)))
    bad = predictive_check(obs, 0.1 * rng.standard_normal((100, 25, 4)) + 3.0)
    conv = {"converged": True, "max_rhat": 1.01, "divergences": 0, "draws": 800}
    unconv = {"converged": False, "max_rhat": 2.5, "divergences": 40, "draws": 800}
    z = np.zeros(3)
    ok = vep.VEPResult(None, z, z, z > -1, [], ("a", "b", "c"), diagnostics=conv, ppc=good)
    assert ok.trustworthy and "converged and the model reproduces" in ok.verdict
    for diag, ppc, words in ((conv, bad, "does not reproduce"), (unconv, good, "not converged")):
        r = vep.VEPResult(None, z, z, z > -1, [], ("a", "b", "c"), diagnostics=diag, ppc=ppc)
        assert not r.trustworthy and words in r.verdict and "do not plan a resection" in r.verdict


@pytest.mark.slow
def test_infer_ez_with_smc_reports_evidence_and_its_verdict(conn):
    """sampler="smc" on a 12-region patient: tempered SMC runs as chains, the log evidence and its spread over runs
    in the diagnostics (plain numbers), p_ez in [0, 1], a predictive check, and a verdict that matches the
    diagnostics."""
    sub = conn.subset(conn.nearest([12], 12))
    sensors = vbt.sensors.tvb_sensors("seeg")
    p = vep.synthetic_patient(sub, sensors, [0], seed=2, n_electrodes=4)
    post = vep.recording_posterior(sub, sensors, p.recording, time_scale=1.0, dtype=jnp.float64)
    r = vep.infer_ez(
        post, key=jax.random.key(0), sampler="smc", num_chains=2, num_particles=32, progress=False, warn=False
    )
    d = r.diagnostics
    assert d["sampler"] == "smc" and d["draws"] == 64 and len(d["log_evidence_runs"]) == 2
    assert np.isfinite(d["log_evidence"]) and all(isinstance(v, float) for v in d["log_evidence_runs"])
    assert np.all((r.p_ez >= 0) & (r.p_ez <= 1)) and r.ppc is not None
    assert r.converged == (d["max_rhat"] <= vep.MAX_RHAT)
    assert ("not converged" in r.verdict) == (not r.converged)
    with pytest.raises(ValueError, match="sampler must be"):
        vep.infer_ez(post, key=jax.random.key(0), sampler="mh")
    with pytest.raises(ValueError, match="num_chains"):
        vep.infer_ez(post, key=jax.random.key(0), num_chains=1)
