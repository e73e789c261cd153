"""Resting-state models and their parameters: heterogeneity maps of the bifurcation parameter (bases, recovery of a
known map, no spurious map from a homogeneous subject), the FCD term of the loss (gradients against finite
differences) and the ``vbtjax fit`` options that choose them."""

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from vbtjax.empirical import RestingStateData

import vbtjax as vbt
from vbtjax import cli
from vbtjax.inference import resting_state as rs
from vbtjax.inference.losses import quantile_ks_loss, sample_quantiles

jax.config.update("jax_enable_x64", True)

TR = 720.0


def _connectome(n=8, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.1, 1.0, (n, n)) * (rng.uniform(size=(n, n)) < 0.7)
    w = np.triu(w, 1) + np.triu(w, 1).T
    ln = rng.uniform(10.0, 80.0, (n, n))
    return vbt.Connectome(weights=w, lengths=(ln + ln.T) / 2)


# ------------------------------------------------------------------------------------------------------ bases
def test_heterogeneity_basis_columns_and_errors():
    conn = _connectome()
    w = np.asarray(conn.without_self_connections().normalised("max").weights)
    b = rs.heterogeneity_basis(conn, "strength")
    assert b.shape == (8, 2)
    np.testing.assert_allclose(b[:, 0], 1.0)
    strength = w.sum(axis=1)
    np.testing.assert_allclose(b[:, 1], (strength - strength.mean()) / strength.std(), rtol=1e-12)
    e = rs.heterogeneity_basis(conn, "eigenmodes:3")
    assert e.shape == (8, 4)
    lap = np.diag(w.sum(axis=1)) - w
    for k in range(1, 4):  # each map is an eigenvector of the Laplacian (zero mean, scaled), not the constant one
        v = e[:, k]
        np.testing.assert_allclose(lap @ v, (v @ lap @ v) / (v @ v) * v, atol=1e-9)
        assert abs(v.mean()) < 1e-12 and abs(v.std() - 1) < 1e-12
    user = rs.heterogeneity_basis(conn, np.arange(8.0))
    np.testing.assert_allclose(user[:, 1], (np.arange(8) - 3.5) / np.arange(8.0).std())
    assert rs.heterogeneity_basis(conn, None) is None and rs.heterogeneity_basis(conn, "none") is None
    for bad, match in [
        ("strenght", "is not a map; use 'strength', 'eigenmodes:K'"),
        ("eigenmodes:0", "1 <= K < 8"),
        ("eigenmodes:8", "1 <= K < 8"),
        (np.ones(7), r"shape \(8,\) or \(8, K\), got \(7,\)"),
        (np.r_[np.nan, np.ones(7)], "NaN or inf"),
        (np.ones(8), "constant across regions"),
        (np.c_[np.arange(8.0), 2 * np.arange(8.0)], "linearly dependent"),
    ]:
        with pytest.raises(ValueError, match=match):
            rs.heterogeneity_basis(conn, bad)


def test_fc_parameters_with_a_map():
    conn = _connectome()
    net = rs.fc_network(conn)
    basis = rs.heterogeneity_basis(conn, "strength")
    sel = rs.fc_parameters(net, 40.0, None, basis=basis)  # the map is fitted by default, with the coupling
    assert sel.names(net) == ("coupling.a", "model.a.coef")
    coef = sel.constrained(sel.init_unconstrained(net))[1]
    np.testing.assert_allclose(np.asarray(coef), [-2e-5, 0.0], atol=1e-15)  # the uniform start: mean only
    with pytest.raises(ValueError, match="a heterogeneity map sets 'a'"):
        rs.fc_parameters(net, 40.0, ("coupling",), basis=basis)
    with pytest.raises(ValueError, match=r"basis must be \(N=8, K\)"):
        rs.fc_parameters(net, 40.0, None, basis=np.ones((7, 2)))


def _ring():
    """8 regions on a ring with two chords: a sparse SC whose FC the map of a reshapes."""
    w = np.zeros((8, 8))
    for i in range(8):
        w[i, (i + 1) % 8] = w[(i + 1) % 8, i] = 1.0
    w[0, 4] = w[4, 0] = w[2, 6] = w[6, 2] = 0.5
    return vbt.Connectome(weights=w, lengths=np.full((8, 8), 30.0))


MAP = np.array([-1.0, -0.71, 1.0, 0.71, -0.43, -0.14, 0.43, 0.14])
"""A user map, one value per region, of zero mean over the chords' ends (0, 2, 4, 6) and over the others: a map
along the node strength would be confounded with the strength's own (nonlinear) effect on the FC."""


def _map_fit(slope):
    """Fit coupling and a map of a along MAP (from the preset's start: G 5e-4 /ms, uniform a -2e-5 /ms) to the FC
    of a network with G = 1e-4 /ms and a = -5e-4 + slope z (1/ms; z = MAP standardised), mean of 4 realisations of
    3000 volumes."""
    conn = _ring()
    truth = rs.heterogeneity_basis(conn, MAP) @ np.array([-5e-4, slope])
    net = eqx.tree_at(lambda n: (n.coupling.a, n.model.a), rs.fc_network(conn), (jnp.asarray(1e-4), jnp.asarray(truth)))
    run = jax.jit(lambda k: rs.simulated_fc(net, TR, 3000, 40.0, key=k))
    fc = jnp.mean(jnp.stack([run(k) for k in jax.random.split(jax.random.key(7), 4)]), axis=0)
    data = RestingStateData(conn, fc, TR, 3000, name="synthetic")
    res = rs.fit_fc(
        data, heterogeneity=MAP, steps=30, learning_rate=0.2, n_eval=2, key=jax.random.key(3), progress=False
    )
    return res, truth


@pytest.mark.slow
def test_map_of_a_recovered_from_synthetic_data():
    """The slope of a known map (3.1e-4 /ms per sd) is recovered (3.3e-4 measured; 1.7e-4 with Adam steps of 0.1 and
    2 realisations per step, 30 steps: the loss is flat, 1 - r = 0.04 at the truth). The mean of a and the coupling
    trade off against each other (the linearised FC depends on their ratio only) and are not checked."""
    res, truth = _map_fit(3.1e-4)
    coef = np.asarray(res.params["model.a.coef"])
    assert 0.6 * 3.1e-4 < coef[1] < 1.5 * 3.1e-4, coef
    assert np.corrcoef(np.asarray(res.net.model.a), truth)[0, 1] > 0.99
    assert float(jnp.mean(res.r)) > float(jnp.mean(res.r_start))


@pytest.mark.slow
def test_no_spurious_map_from_a_homogeneous_subject():
    """Negative control: the same fit on a homogeneous network (slope 0) leaves the slope near 0 (-8e-5 measured,
    against 3.3e-4 with the map)."""
    res, _ = _map_fit(0.0)
    coef = np.asarray(res.params["model.a.coef"])
    assert abs(coef[1]) < 0.35 * 3.1e-4, coef


# ------------------------------------------------------------------------------------------------- FCD loss
def test_quantile_ks_loss_matches_ks_and_its_gradient_finite_differences():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.3, 0.2, 5000), rng.normal(0.4, 0.25, 7000)
    exact = float(vbt.features.ks_distance(a, b))
    approx = float(quantile_ks_loss(a, sample_quantiles(b, 512), n_quantiles=512, temperature=1e-4))
    assert abs(approx - exact) < 2 / 512 + 1e-3, (approx, exact)
    assert float(quantile_ks_loss(a, sample_quantiles(a), temperature=0.02)) < 1e-2  # the same sample
    assert float(quantile_ks_loss(a, sample_quantiles(a + 1.0), temperature=0.02)) > 0.95  # disjoint samples
    bq = sample_quantiles(b, 128)

    def f(theta):  # a shift and a scale of the simulated values
        return quantile_ks_loss(theta[1] * a + theta[0], bq, n_quantiles=128, temperature=0.05)

    theta = jnp.asarray([0.05, 1.1])
    g = np.asarray(jax.grad(f)(theta))
    eps = 1e-7
    fd = [(f(theta + eps * e) - f(theta - eps * e)) / (2 * eps) for e in np.eye(2)]
    np.testing.assert_allclose(g, np.asarray(fd), rtol=1e-5, atol=1e-9)
    assert np.all(np.abs(g) > 1e-3)  # informative, not zero as the exact statistic's
    with pytest.raises(ValueError, match="n_quantiles must be an integer >= 2"):
        sample_quantiles(a, n_quantiles=1)


def test_fcd_term_gradient_finite_differences():
    """The FCD term of fit_fc's loss, through the FCD of a series that depends on a parameter (float64)."""
    rng = np.random.default_rng(1)
    emp = RestingStateData.from_bold(_connectome(4), rng.normal(size=(4, 300)), TR)
    term = rs._fcd_term(emp, 0.7, 0.05, 20 * TR, 2 * TR)
    base, mix = jnp.asarray(rng.normal(size=(300, 4))), jnp.asarray(rng.normal(size=(300, 1)))

    def f(theta):
        return term(base + theta * mix)  # a shared component: more correlated windows as theta grows

    g = float(jax.grad(f)(0.4))
    eps = 1e-7  # the KS is a maximum and the quantiles come from a sort: kinks 1e-6 away (measured) are stepped over
    fd = float((f(0.4 + eps) - f(0.4 - eps)) / (2 * eps))
    assert abs(g - fd) < 1e-5 * max(1.0, abs(fd)) and abs(g) > 1e-3, (g, fd)
    assert float(f(0.0)) < float(f(1.0))  # the empirical series has no shared component
    assert rs._fcd_term(emp, 0.0, 0.05, 20 * TR, 2 * TR) is None
    with pytest.raises(ValueError, match="fcd_weight must be a finite weight >= 0"):
        rs._fcd_term(emp, -1.0, 0.05, 20 * TR, 2 * TR)
    with pytest.raises(ValueError, match="fcd_temperature must be positive"):
        rs._fcd_term(emp, 1.0, 0.0, 20 * TR, 2 * TR)
    short = RestingStateData.from_bold(_connectome(4), rng.normal(size=(4, 30)), TR)
    with pytest.raises(ValueError, match="needs a BOLD series of at least about two FCD windows"):
        rs._fcd_term(short, 1.0, 0.05, 20 * TR, 2 * TR)


# ------------------------------------------------------------------------------------------------------ the CLI
@pytest.mark.parametrize(
    "extra,match",
    [
        (["--heterogeneity", "strenght"], "--heterogeneity: 'strenght' is neither strength, eigenmodes:K nor an"),
        (["--heterogeneity", "eigenmodes:94"], "--heterogeneity: 'eigenmodes:94' is not a map; .* 1 <= K < 94"),
        (["--heterogeneity", "MAP5"], r"--heterogeneity: maps must hold one value per region, shape \(94,\)"),
        (["--heterogeneity", "strength", "--fit", "coupling"], "--fit: .*a heterogeneity map sets 'a'"),
        (["--fcd-weight", "-1"], "--fcd-weight: must be a weight >= 0"),
        (["--fcd-weight", "nan"], "--fcd-weight: must be a weight >= 0"),
        (["--fcd-temperature", "0"], "--fcd-temperature: must be positive"),
    ],
)
def test_cli_fit_bad_model_options(extra, match, tmp_path, capsys):
    np.savetxt(tmp_path / "map5.txt", np.arange(5.0))
    extra = [str(tmp_path / "map5.txt") if e == "MAP5" else e for e in extra]
    rc = cli.main(["fit", "--out", str(tmp_path / "o"), "--quiet", "--steps", "0", *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("vbtjax fit: error: ")
    assert re.search(match, err), err


def test_cli_fit_with_a_map_file_and_fcd_term(tmp_path, capsys):
    """A user map from a file, fitted with the FCD term for two steps: the per-region a is the basis times the
    coefficients, and the twin carries the map."""
    conn = _connectome()
    net = eqx.tree_at(lambda n: n.coupling.a, rs.fc_network(conn), jnp.asarray(1.5e-3))
    bold = np.asarray(rs.simulated_bold(net, TR, 200, 40.0, key=jax.random.key(4)))
    np.save(tmp_path / "sc.npy", np.asarray(conn.weights))
    np.save(tmp_path / "len.npy", np.asarray(conn.lengths))
    np.save(tmp_path / "bold.npy", bold.T)
    myelin = np.linspace(1.0, 2.0, 8) ** 2
    np.savetxt(tmp_path / "myelin.csv", myelin[:, None])
    out = tmp_path / "out"
    rc = cli.main(
        ["fit", "--sc", str(tmp_path / "sc.npy"), "--lengths", str(tmp_path / "len.npy"), "--bold",
         str(tmp_path / "bold.npy"), "--tr", "720", "--heterogeneity", str(tmp_path / "myelin.csv"), "--fcd-weight",
         "0.5", "--fcd-window", "20s", "--steps", "2", "--eval", "1", "--out", str(out), "--no-plot", "--quiet"]
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    with np.load(out / "fit.npz", allow_pickle=False) as z:
        coef, a_map, basis = z["param_model.a.coef"], z["a_map"], z["heterogeneity_basis"]
        assert coef.shape == (2,) and basis.shape == (8, 2)
        np.testing.assert_allclose(a_map, basis @ coef, rtol=1e-5)
        np.testing.assert_allclose(basis[:, 1], (myelin - myelin.mean()) / myelin.std(), rtol=1e-6)  # float32 run
        assert np.std(a_map) > 0
    summary = __import__("json").loads((out / "fit.json").read_text())
    assert summary["fcd_weight"] == 0.5 and summary["heterogeneity"].endswith("myelin.csv")
    twin = vbt.Twin.load(out / "twin")
    np.testing.assert_allclose(np.asarray(twin.network.model.a), a_map, rtol=1e-5)
