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
    x = post.constrained(u)
    obs = (post.envelope, post.gain, post.feature, post.duration, post.dt, post.fixed_time_scale)
    return vep._contact_terms(obs, post.network(u), {n: x[n] for n in post.latents})


def test_power_likelihood_integrates_out_each_offset(conn):
    """The "power" log-likelihood of a contact equals log of the integral over its offset b (flat prior) of
    prod_t N(y_t | model_t + b, sigma^2), computed by quadrature."""
    gain = _gain(conn)
    rng = np.random.default_rng(1)
    env = rng.normal(-3.0, 0.5, (10, 3))
    post = vep.vep_posterior(conn, gain, env, duration=20.0, time_scale=1.3, dtype=jnp.float64)
    u = post.initial_position() + 0.1 * jnp.asarray(rng.standard_normal(post.dim))
    ll, fitted = _terms(post, u)
    sigma = float(post.constrained(u)["sigma"])
    raw = np.asarray(vep.seeg_log_power(vep.simulate_power(post.network(u), 20.0, 0.1, 2.0, 1.3), gain))
    for k in range(3):
        r = env[:, k] - raw[:, k]

        def f(b, r=r):
            return np.exp(np.sum(-0.5 * np.log(2 * np.pi * sigma**2) - (r - b) ** 2 / (2 * sigma**2)) - ref)

        ref = np.sum(-0.5 * np.log(2 * np.pi * sigma**2) - (r - r.mean()) ** 2 / (2 * sigma**2))
        val, _ = integrate.quad(f, r.mean() - 20 * sigma, r.mean() + 20 * sigma, epsabs=1e-13)
        np.testing.assert_allclose(float(ll[k]), ref + np.log(val), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.asarray(fitted).mean(axis=0), env.mean(axis=0), atol=1e-12)
    assert float(post.log_likelihood_at(u)) == pytest.approx(float(jnp.sum(ll)), rel=1e-12)
    np.testing.assert_allclose(np.asarray(post.pointwise(u)), np.asarray(ll), rtol=1e-12)


def test_level_likelihood_integrates_out_offset_and_scale(conn):
    """The "level" log-likelihood of a contact equals the double integral over its offset b (flat) and scale a
    (Zellner's g-prior N(0, g sigma^2 / |m|^2), g = T) of prod_t N(y_t | b + a m_t, sigma^2), m the model's
    centred level (by quadrature); and a data set that follows the model's shape scores higher than a reversed one."""
    gain = _gain(conn, seed=2)
    T = 10
    net = _net(conn)
    m = np.asarray(vep.simulate_level(net, 20.0, 0.1, 2.0) @ gain.T)
    rng = np.random.default_rng(3)
    env = vep.level_envelope((m + rng.normal(0, 0.02 * m.std(0), m.shape)).T.repeat(4, axis=1), 100.0, T)
    post = vep.vep_posterior(conn, gain, env, feature="level", duration=20.0, time_scale=1.0, dtype=jnp.float64)
    u = post.unconstrained({"x0": np.asarray(net.model.x0), "K": 0.3, "sigma": 0.4})
    ll, _ = _terms(post, u)
    sigma = 0.4
    for k in range(3):
        mc = m[:, k] - m[:, k].mean()
        eps = 0.02 * np.abs(np.asarray(gain)[k]).max()
        norm2 = mc @ mc + eps**2
        sa = np.sqrt(T * sigma**2 / norm2)  # the g-prior's sd of the scale (with the eps of the code)
        d = env[:, k]

        def f_a(a, d=d, mc=mc, sa=sa):  # the offset integrated analytically (flat prior), then the scale numerically
            r = d - a * mc
            rc = r - r.mean()
            lp = -0.5 * (T - 1) * np.log(2 * np.pi * sigma**2) - 0.5 * np.log(T) - rc @ rc / (2 * sigma**2)
            return np.exp(lp - 0.5 * np.log(2 * np.pi * sa**2) - a**2 / (2 * sa**2) + shift)

        shift = -float(ll[k])
        a_hat = (d @ mc) / norm2
        val, _ = integrate.quad(f_a, a_hat - 40 * sa, a_hat + 40 * sa, epsabs=1e-12, limit=200)
        np.testing.assert_allclose(np.log(val), 0.0, atol=1e-6)
    post_rev = vep.vep_posterior(conn, gain, env[::-1], feature="level", duration=20.0, time_scale=1.0)
    u32 = post_rev.unconstrained({"x0": np.asarray(net.model.x0), "K": 0.3, "sigma": 0.4})
    assert float(post.log_likelihood_at(u)) > float(post_rev.log_likelihood_at(u32)) + 5


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
    np.testing.assert_allclose(env.std(axis=0), 1.0, atol=1e-12)
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
