"""MCMC diagnostics: agreement with ArviZ, analytic truth (AR(1) chains, conjugate normal posterior), the netCDF
round trip, and the error messages."""

import warnings

import numpy as np
import pytest
from scipy.signal import lfilter

from vbtjax.inference import diagnostics as D

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # ArviZ 0.2x announces its 1.0 refactor on import
    az = pytest.importorskip("arviz")


def ar1(rng, chains, draws, k, phi):
    """Stationary Gaussian AR(1) chains with unit innovations, shape (chains, draws, k)."""
    e = rng.standard_normal((chains, draws, k))
    e[:, 0] /= np.sqrt(1.0 - phi**2)
    return lfilter([1.0], [1.0, -phi], e, axis=1)


# ---------------------------------------------------------------------------------------------------------------
# against ArviZ


CASES = [  # (chains, draws, k), AR coefficient; odd draws exercise the dropped middle draw of split chains
    ((4, 200, 5), 0.0),
    ((4, 200, 5), 0.7),
    ((3, 57, 4), 0.95),
    ((2, 5, 3), 0.3),
    ((4, 300, 3), -0.4),
    ((1, 120, 3), 0.5),
]


@pytest.mark.parametrize("shape,phi", CASES)
def test_matches_arviz(shape, phi):
    rng = np.random.default_rng([*shape, round(100 * phi) + 100])
    x = ar1(rng, *shape, phi) + 0.3 * rng.standard_normal((shape[0], 1, shape[2]))  # chains a little apart
    x = x.reshape(shape[0], shape[1], 1, shape[2])  # a 2-d parameter shape
    ds = az.convert_to_dataset({"x": x})
    np.testing.assert_allclose(D.ess_bulk(x), az.ess(ds, method="bulk")["x"].values, rtol=1e-10)
    np.testing.assert_allclose(D.ess_tail(x), az.ess(ds, method="tail")["x"].values, rtol=1e-10)
    np.testing.assert_allclose(
        D.ess_bulk(x, relative=True), az.ess(ds, method="bulk", relative=True)["x"].values, rtol=1e-10
    )
    if shape[0] >= 2:
        np.testing.assert_allclose(D.split_rhat(x), az.rhat(ds, method="rank")["x"].values, rtol=1e-10)


def test_summary_matches_arviz_summary():
    rng = np.random.default_rng(3)
    samples = {"coupling.a": ar1(rng, 4, 400, 1, 0.6)[..., 0], "model.x0": ar1(rng, 4, 400, 3, 0.2)}
    s = D.summary(samples)
    ref = az.summary(az.convert_to_dataset(samples), kind="all", round_to="none")
    for name, row in [("coupling.a", "coupling.a"), ("model.x0", "model.x0[1]")]:
        i = () if name == "coupling.a" else (1,)
        for ours, theirs in [("mean", "mean"), ("sd", "sd"), ("ess_bulk", "ess_bulk"), ("ess_tail", "ess_tail")]:
            np.testing.assert_allclose(s[name][ours][i], ref.loc[row, theirs], rtol=1e-10)
        np.testing.assert_allclose(s[name]["rhat"][i], ref.loc[row, "r_hat"], rtol=1e-10)
    flat = samples["model.x0"].reshape(-1, 3)
    np.testing.assert_allclose(s["model.x0"]["q05"], np.quantile(flat, 0.05, axis=0))
    np.testing.assert_allclose(s["model.x0"]["q95"], np.quantile(flat, 0.95, axis=0))
    assert list(s["model.x0"]) == ["mean", "sd", "q05", "q95", "rhat", "ess_bulk", "ess_tail"]
    assert list(D.summary(samples, prob=0.95)["coupling.a"])[2:4] == ["q02_5", "q97_5"]


def test_format_summary_rows():
    rng = np.random.default_rng(4)
    table = D.format_summary(D.summary({"g": rng.standard_normal((2, 50)), "w": rng.standard_normal((2, 50, 2, 3))}))
    lines = table.splitlines()
    assert lines[0].split() == ["name", "mean", "sd", "q05", "q95", "rhat", "ess_bulk", "ess_tail"]
    assert [ln.split()[0] for ln in lines[1:]] == ["g"] + [f"w[{i},{j}]" for i in range(2) for j in range(3)]


# ---------------------------------------------------------------------------------------------------------------
# analytic truth


@pytest.mark.parametrize("phi", [0.5, -0.3, 0.8])
def test_ar1_ess_per_draw(phi):
    """ESS / draws -> (1 - phi) / (1 + phi) for AR(1) chains (from the integrated autocorrelation time)."""
    rng = np.random.default_rng(5)
    tau = (1 + phi) / (1 - phi)
    x = ar1(rng, 4, int(3000 * tau) + 10_000, 16, phi)  # longer chains for slower mixing: similar relative error
    ratio = D.ess_bulk(x, relative=True) * tau
    # per variable the estimator scatters by ~2-4% at these lengths, the mean of 16 by ~1%
    assert abs(ratio.mean() - 1) < 0.03, ratio
    assert np.all(np.abs(ratio - 1) < 0.12), ratio


def test_iid_ess_and_rhat():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 2000, 8))
    ess = D.ess_bulk(x)
    assert np.all(np.abs(ess / 8000 - 1) < 0.1), ess
    assert np.all(np.abs(D.ess_tail(x) / 8000 - 1) < 0.2)
    assert np.all(D.split_rhat(x) < 1.01)


def test_rhat_flags_shifted_chains():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 1000, 3))
    x[3] += 2.0  # one chain stuck two sd away
    assert np.all(D.split_rhat(x) > 1.1)
    y = rng.standard_normal((4, 1000, 3))
    y[:, 500:] += 1.0  # every chain drifts halfway through: only splitting the chains sees it
    assert np.all(D.split_rhat(y) > 1.1)
    z = rng.standard_normal((4, 1000, 3))
    z[3] *= 3.0  # same mean, wider: only the folded (tail) R-hat sees it
    assert np.all(D.split_rhat(z) > 1.1)


def conjugate_normal(rng, n_obs=20, sigma=2.0, m0=1.0, s0=3.0, truth=(0.5, -1.0, 2.0)):
    """Data y ~ N(mu, sigma^2) per component, prior mu ~ N(m0, s0^2): posterior N(mn, sn^2) in closed form."""
    truth = np.asarray(truth)
    y = truth + sigma * rng.standard_normal((n_obs, truth.size))
    prec = 1 / s0**2 + n_obs / sigma**2
    sn = np.sqrt(1 / prec)
    mn = (m0 / s0**2 + y.sum(0) / sigma**2) / prec
    return truth, mn, sn, s0


def test_z_scores_and_shrinkage_conjugate_normal():
    rng = np.random.default_rng(8)
    truth, mn, sn, s0 = conjugate_normal(rng)
    # exact draws: standardised so that their mean and sd are exactly mn and sn
    e = rng.standard_normal((4, 1000, 3))
    e = (e - e.mean((0, 1))) / e.std((0, 1), ddof=1)
    samples = {"mu": mn + sn * e, "other": e}
    z = D.z_scores(samples, {"mu": truth})
    np.testing.assert_allclose(z["mu"], (mn - truth) / sn, rtol=1e-12)
    shr = D.shrinkage(samples, {"mu": s0})
    np.testing.assert_allclose(shr["mu"], 1 - sn**2 / s0**2, rtol=1e-12)
    assert list(z) == ["mu"]
    # plain Monte Carlo draws agree to their sampling error
    mc = {"mu": mn + sn * rng.standard_normal((4, 5000, 3))}
    np.testing.assert_allclose(D.z_scores(mc, {"mu": truth})["mu"], (mn - truth) / sn, atol=0.05)
    np.testing.assert_allclose(D.shrinkage(mc, {"mu": np.full(3, s0)})["mu"], 1 - sn**2 / s0**2, atol=0.01)


def test_divergence_summary():
    d = np.zeros((3, 10), bool)
    d[0, 2] = d[2, [1, 5, 7]] = True
    out = D.divergence_summary(d)
    assert out["total"] == 4
    np.testing.assert_array_equal(out["per_chain"], [1, 0, 3])
    assert out["fraction"] == pytest.approx(4 / 30)
    assert D.divergence_summary(d.astype(int))["total"] == 4


def test_jax_arrays_accepted():
    import jax.numpy as jnp

    x = np.random.default_rng(9).standard_normal((2, 30, 2))
    np.testing.assert_array_equal(D.split_rhat(jnp.asarray(x)), D.split_rhat(x))


# ---------------------------------------------------------------------------------------------------------------
# ArviZ InferenceData and netCDF


def test_inference_data_netcdf_round_trip(tmp_path):
    rng = np.random.default_rng(10)
    c, n = 2, 25
    samples = {"coupling.a": rng.standard_normal((c, n)), "model.x0": rng.standard_normal((c, n, 4))}
    stats = {
        "is_divergent": rng.random((c, n)) < 0.1,  # BlackJAX's name
        "step_size": np.full((c, n), 0.05),
        "num_integration_steps": rng.integers(1, 64, (c, n)),
        "acceptance_rate": rng.random((c, n)),
        "potential_energy": rng.standard_normal((c, n)),
        "energy": rng.standard_normal((c, n)),
    }
    obs = {"fc": rng.standard_normal((4, 4))}
    attrs = {"seed": 10, "model": "JansenRit"}
    idata = D.to_inference_data(
        samples,
        sample_stats=stats,
        observed_data=obs,
        coords={"region": ["A", "B", "C", "D"]},
        dims={"model.x0": ["region"]},
        attrs=attrs,
    )
    assert attrs == {"seed": 10, "model": "JansenRit"}  # not edited
    path = D.save_netcdf(idata, tmp_path / "run.nc")
    assert path == tmp_path / "run.nc"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.nc"]  # no temporary left
    back = az.from_netcdf(path)
    assert set(back.posterior.data_vars) == {"coupling.a", "model.x0"}
    for k, v in samples.items():
        np.testing.assert_array_equal(back.posterior[k].values, v)
    assert back.posterior["model.x0"].dims == ("chain", "draw", "region")
    assert list(back.posterior["region"].values) == ["A", "B", "C", "D"]
    ss = back.sample_stats
    assert set(ss.data_vars) == {"diverging", "step_size", "n_steps", "acceptance_rate", "lp", "energy"}
    assert ss["diverging"].dtype == bool
    np.testing.assert_array_equal(ss["diverging"].values, stats["is_divergent"])
    np.testing.assert_array_equal(ss["n_steps"].values, stats["num_integration_steps"])
    np.testing.assert_array_equal(ss["lp"].values, -stats["potential_energy"])
    np.testing.assert_array_equal(back.observed_data["fc"].values, obs["fc"])
    assert back.attrs["seed"] == 10 and back.attrs["model"] == "JansenRit"
    # ArviZ's own diagnostics read the file and agree with ours
    np.testing.assert_allclose(az.rhat(back)["model.x0"].values, D.split_rhat(samples["model.x0"]), rtol=1e-10)
    # overwriting is atomic too
    D.save_netcdf(D.to_inference_data({"b": samples["coupling.a"]}), path)
    assert set(az.from_netcdf(path).posterior.data_vars) == {"b"}


def test_inference_data_errors():
    x = np.zeros((2, 10))
    with pytest.raises(ValueError, match=r"sample_stats\['diverging'\] has \(chains, draws\) = \(2, 9\)"):
        D.to_inference_data({"a": x}, sample_stats={"diverging": np.zeros((2, 9), bool)})
    with pytest.raises(ValueError, match="'diverging' twice"):
        D.to_inference_data({"a": x}, sample_stats={"diverging": x, "is_divergent": x})
    with pytest.raises(ValueError, match="empty"):
        D.to_inference_data({})


# ---------------------------------------------------------------------------------------------------------------
# errors


def test_errors():
    rng = np.random.default_rng(11)
    with pytest.raises(ValueError, match=r"\(chains, draws, \*shape\), got shape \(50,\)"):
        D.ess_bulk(rng.standard_normal(50))
    with pytest.raises(ValueError, match="at least 2"):
        D.split_rhat(rng.standard_normal((1, 50)))
    with pytest.raises(ValueError, match="at least 4 draws per chain, got 3"):
        D.ess_tail(rng.standard_normal((4, 3)))
    bad = rng.standard_normal((2, 20, 3))
    bad[1, 7, 2] = np.nan
    with pytest.raises(ValueError, match=r"model\.x0: samples contain 1 NaN .* index \(1, 7, 2\)"):
        D.summary({"coupling.a": rng.standard_normal((2, 20)), "model.x0": bad})
    ok = {"a": rng.standard_normal((2, 20)), "b": rng.standard_normal((2, 20, 3))}
    with pytest.raises(ValueError, match=r"truth has keys \['c'\] that are not in samples"):
        D.z_scores(ok, {"a": 0.0, "c": 1.0})
    with pytest.raises(ValueError, match=r"truth\['b'\] has shape \(2,\)"):
        D.z_scores(ok, {"b": [0.0, 1.0]})
    with pytest.raises(ValueError, match="positive"):
        D.shrinkage(ok, {"a": 0.0})
    with pytest.raises(ValueError, match=r"\(chains, draws\)"):
        D.divergence_summary(np.zeros(10, bool))
    with pytest.raises(ValueError, match="prob"):
        D.summary(ok, prob=1.5)
    # one chain: ESS works, the summary's R-hat is NaN
    one = rng.standard_normal((1, 40))
    assert np.isfinite(D.ess_bulk(one))
    assert np.isnan(D.summary({"a": one})["a"]["rhat"])
