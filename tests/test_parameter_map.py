"""Parameter maps (``Parameter(where, constraint, basis=B)``): a per-region leaf ``B @ c`` parameterised by a few
coefficients ``c``, in selections, fitting, gradients, priors, simulation budgets, estimators and twins."""

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
import optax  # noqa: E402
import pytest  # noqa: E402

import vbtjax as vbt  # noqa: E402
from vbtjax import inference as inf  # noqa: E402
from vbtjax.monitors import SubSample  # noqa: E402

N = 5
MAP = np.linspace(-1.0, 1.0, N) ** 3 + 0.3 * np.linspace(0.0, 1.0, N)
B = np.stack([np.ones(N), (MAP - MAP.mean()) / MAP.std()], axis=1)  # (N, 2): intercept and a z-scored map
X0 = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (2, N)))


def _net(c=(-0.5, 0.1), coupling=0.1):
    rng = np.random.default_rng(0)
    w = rng.uniform(0, 1, (N, N))
    np.fill_diagonal(w, 0)
    lengths = rng.uniform(5, 20, (N, N))
    lengths = (lengths + lengths.T) / 2
    np.fill_diagonal(lengths, 0)
    model = vbt.models.Generic2dOscillator(a=jnp.asarray(B @ np.asarray(c)))
    return vbt.Network(model, vbt.Connectome(weights=w, lengths=lengths), vbt.coupling.Linear(a=coupling), speed=4.0)


def _run(net, t1=60.0):
    return vbt.simulate(net, t1, 0.5, history=X0, monitors=SubSample(2.0)).ys[:, 0]


def _map_param(lo=(-3.0, -1.0), hi=(3.0, 1.0)):
    return inf.Parameter(lambda n: n.model.a, inf.Interval(jnp.asarray(lo), jnp.asarray(hi)), basis=B)


def test_selection_maps_coefficients_to_the_leaf():
    net = _net((-0.5, 0.1))
    sel = inf.Selection([inf.Parameter(lambda n: n.coupling.a, inf.Positive()), _map_param()])
    assert sel.names(net) == ("coupling.a", "model.a")
    assert sel.shapes(net) == ((), (2,))
    np.testing.assert_allclose(sel.values(net)["model.a"], [-0.5, 0.1], atol=1e-12)  # least squares on the basis
    u = sel.init_unconstrained(net)
    assert [x.shape for x in u] == [(), (2,)]
    back = sel.apply(net, u)
    np.testing.assert_allclose(back.model.a, net.model.a, atol=1e-12)
    c = sel.params[1].constraint.forward(u[1] + 0.3)
    np.testing.assert_allclose(sel.apply(net, (u[0], u[1] + 0.3)).model.a, B @ np.asarray(c), rtol=1e-12)
    # a leaf outside the span is read back as its projection
    off = eqx.tree_at(lambda n: n.model.a, net, net.model.a + jnp.asarray([0.0, 0.01, -0.02, 0.01, 0.0]))
    expect = np.linalg.lstsq(B, np.asarray(off.model.a), rcond=None)[0]
    np.testing.assert_allclose(sel.values(off)["model.a"], expect, rtol=1e-10)
    # vmap over coefficient draws
    batch = (jnp.zeros(3), jnp.zeros((3, 2)))
    out = jax.vmap(lambda uu: sel.apply(net, uu).model.a)(batch)
    assert out.shape == (3, N)


def test_parameter_map_errors():
    net = _net()
    with pytest.raises(ValueError, match="basis must be \\(N, K\\)"):
        inf.Parameter(lambda n: n.model.a, basis=np.ones(N))
    with pytest.raises(ValueError, match="linearly dependent"):
        inf.Parameter(lambda n: n.model.a, basis=np.ones((N, 2)))
    with pytest.raises(ValueError, match="NaN"):
        inf.Parameter(lambda n: n.model.a, basis=np.full((N, 1), np.nan))
    with pytest.raises(ValueError, match="one basis row per region"):
        inf.Selection([inf.Parameter(lambda n: n.model.a, basis=B[:3])]).names(net)
    with pytest.raises(ValueError, match="per-region leaf"):
        inf.Selection([inf.Parameter(lambda n: n.coupling.a, basis=B)]).names(net)
    with pytest.raises(ValueError, match="outside the open interval"):
        inf.Selection([_map_param(lo=(0.0, -1.0), hi=(1.0, 1.0))]).init_unconstrained(net)
    with pytest.raises(ValueError, match="parameter maps"):
        vbt.sweep(net, inf.Selection([_map_param()]), (jnp.zeros((2, 2)),), 10.0, 0.5)


def test_gradient_of_map_coefficients_matches_finite_differences():
    net = _net((-0.5, 0.1))
    data = _run(_net((-0.4, 0.25)))
    sel = inf.Selection([_map_param()])
    u0 = sel.init_unconstrained(net)

    def loss(u1):
        return inf.timeseries_loss(_run(sel.apply(net, (u1,))), data)

    g = jax.grad(loss)(u0[0])
    h = 1e-5
    fd = np.array([(loss(u0[0] + h * e) - loss(u0[0] - h * e)) / (2 * h) for e in np.eye(2)])
    np.testing.assert_allclose(g, fd, rtol=1e-4)
    assert np.all(np.abs(fd) > 1e-6)


def test_fit_recovers_map_coefficients():
    data = _run(_net((-0.5, 0.2), coupling=0.1))
    start = _net((-0.8, 0.0), coupling=0.15)
    sel = inf.Selection([inf.Parameter(lambda n: n.coupling.a, inf.Positive()), _map_param()])
    res = inf.fit(
        lambda net, key: inf.timeseries_loss(_run(net), data), start, sel, optax.adam(0.05), steps=150, progress=False
    )
    np.testing.assert_allclose(res.params["coupling.a"], 0.1, rtol=2e-2)
    np.testing.assert_allclose(res.params["model.a"], [-0.5, 0.2], rtol=2e-2)
    assert res.history["model.a"].shape == (150, 2)
    np.testing.assert_allclose(res.net.model.a, B @ np.asarray(res.params["model.a"]), rtol=1e-10)
    twin = vbt.Twin.from_fit(res, sel)
    assert twin.history["model.a"].shape == (150, N)  # the twin stores leaf values


def test_prior_budget_estimator_and_twin_use_the_leaf_values(tmp_path):
    from vbtjax import sbi
    from vbtjax.inference.numpyro_path import numpyro_model

    net = _net()
    sel = inf.Selection([_map_param()])
    prior = inf.Posterior(net, sel, {"model.a": dist.Uniform(jnp.asarray([-3.0, -1.0]), jnp.asarray([3.0, 1.0]))}, None)
    assert prior.shapes == ((2,),) and prior.dim == 2
    # the simulator sees the leaf B @ c: its "features" are the leaf itself
    budget = sbi.simulate_budget(
        prior, 64, tmp_path / "budget", run=lambda m, k: m.model.a, key=jax.random.key(0), chunk_size=32, progress=False
    )
    assert budget.theta.shape == (64, 2) and budget.x.shape == (64, N)
    np.testing.assert_allclose(budget.x, budget.theta @ B.T, rtol=1e-5, atol=1e-6)
    assert np.all(budget.theta > [-3.0, -1.0]) and np.all(budget.theta < [3.0, 1.0])
    # NumPyro's model of the prior sets the same leaf (the log-likelihood sees B @ c)
    seen = {}

    def ll(m, lat):
        seen["a"] = m.model.a
        return jnp.zeros(())

    post = inf.Posterior(net, sel, dict(prior.priors), ll)
    from numpyro.handlers import seed, trace

    tr = trace(seed(numpyro_model(post), 0)).get_trace()
    np.testing.assert_allclose(seen["a"], B @ np.asarray(tr["model.a"]["value"]), rtol=1e-6)
    # an estimator saved with this prior comes back with its basis
    npe, _ = sbi.train_npe(budget, key=jax.random.key(1), layers=1, width=8, max_epochs=2, progress=False)
    npe.save(tmp_path / "npe", prior)
    _, back, _ = sbi.load_npe(tmp_path / "npe")
    np.testing.assert_allclose(back.selection.params[0].basis, B)
    assert back.shapes == ((2,),)
    # a twin of posterior coefficient draws holds the leaf's draws
    draws = {"model.a": np.asarray(budget.theta[:10]).reshape(2, 5, 2)}
    twin = vbt.Twin.from_samples(net, draws, sel)
    np.testing.assert_allclose(twin.posterior["model.a"], draws["model.a"] @ B.T)


def test_resting_state_problem_with_a_parameter_map():
    from vbtjax.sbi.problems import problem_from_spec, resting_state_problem

    conn = vbt.datasets.hcp_subject().connectome
    p = resting_state_problem(
        conn, n_samples=300, a_map="strength", a_range=(-2e-3, 0.0), spec={"connectome": "hcp:101309"}
    )
    assert p.prior.shapes == ((), (2,))
    assert "fc_node_map_corr" in p.feature_names and p.feature_names[-1] == "sd_map_corr"
    z = p.extra["map"]
    strength = np.asarray(p.prior.net.connectome.weights).sum(1)
    assert np.corrcoef(z, np.log(strength))[0, 1] > 0.999 and abs(z.mean()) < 1e-12
    lo, hi = p.prior.priors["model.a"].low, p.prior.priors["model.a"].high
    np.testing.assert_allclose(np.asarray(hi) - np.asarray(lo), [2e-3, 1e-3])  # slope: a quarter of the range
    again = problem_from_spec(p.name, p.spec)
    assert again.feature_names == p.feature_names
    np.testing.assert_allclose(again.prior.selection.params[1].basis, p.prior.selection.params[1].basis)
    # an FC observation gives the FC features, including the map's
    fc_only = resting_state_problem(conn, n_samples=300, features="fc", a_map="strength")
    x = fc_only.observe(np.asarray(vbt.datasets.hcp_subject().fc))
    assert x.shape == (len(fc_only.feature_names),) and np.all(np.isfinite(x))
    with pytest.raises(ValueError, match="one value per region"):
        resting_state_problem(conn, a_map=np.ones(3))
    with pytest.raises(ValueError, match="not constant"):
        resting_state_problem(conn, a_map=np.ones(conn.n_regions))
    with pytest.raises(ValueError, match="'strength'"):
        resting_state_problem(conn, a_map="myelin")
