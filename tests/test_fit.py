import jax

jax.config.update("jax_enable_x64", True)

import os
import subprocess
import sys

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import vbtjax as vbt
from vbtjax import inference as inf
from vbtjax.inference import fit as _fit_function  # noqa: F401  (loads vbtjax.inference.fitting)
from vbtjax.monitors import SubSample

fit_module = sys.modules["vbtjax.inference.fitting"]

N = 5


def _connectome(seed=0):
    rng = np.random.default_rng(seed)
    w = rng.uniform(0, 1, (N, N))
    np.fill_diagonal(w, 0)
    lengths = rng.uniform(5, 20, (N, N))
    lengths = (lengths + lengths.T) / 2
    np.fill_diagonal(lengths, 0)
    return vbt.Connectome(weights=w, lengths=lengths)


def _net(a_coupling=0.1, a_model=-0.5, noise=None):
    model = vbt.models.Generic2dOscillator(a=a_model)
    return vbt.Network(model, _connectome(), vbt.coupling.Linear(a=a_coupling), speed=4.0, noise=noise)


X0 = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (2, N)))


def _run(net, key=None, t1=60.0):
    return vbt.simulate(net, t1, 0.5, history=X0, monitors=SubSample(2.0), key=key).ys[:, 0]


# ---------------------------------------------------------------------------------------------- constraints
CONSTRAINTS = [
    inf.Real(),
    inf.Positive(),
    inf.Interval(-2.0, 3.0),
    inf.Interval(jnp.array([0.0, 1.0, 2.0]), jnp.array([1.0, 5.0, 2.5])),
]


@pytest.mark.parametrize("c", CONSTRAINTS, ids=["real", "positive", "interval", "interval_per_region"])
def test_constraint_round_trip_and_log_det(c):
    u = jnp.array([-3.0, 0.2, 4.0])
    x = c.forward(u)
    np.testing.assert_allclose(c.inverse(x), u, rtol=1e-10, atol=1e-10)
    if isinstance(c, inf.Positive):
        assert bool(jnp.all(x > 0))
        np.testing.assert_allclose(
            c.inverse(jnp.array([1e-8, 1.0, 50.0])), [np.log(np.expm1(1e-8)), np.log(np.expm1(1.0)), 50.0], rtol=1e-10
        )
    if isinstance(c, inf.Interval):
        assert bool(jnp.all((x > c.lo) & (x < c.hi)))
    jac = jax.jacfwd(c.forward)(u)
    np.testing.assert_allclose(jac, jnp.diag(jnp.diagonal(jac)), atol=1e-14)  # elementwise
    np.testing.assert_allclose(
        c.log_det_jacobian(u), jnp.sum(jnp.log(jnp.abs(jnp.diagonal(jac)))), rtol=1e-10, atol=1e-12
    )
    h = 1e-6
    fd = (c.forward(u + h) - c.forward(u - h)) / (2 * h)
    np.testing.assert_allclose(c.log_det_jacobian(u), jnp.sum(jnp.log(jnp.abs(fd))), rtol=1e-6, atol=1e-8)
    # scalar u, jit, vmap and grad
    assert c.log_det_jacobian(jnp.asarray(0.3)).shape == ()
    np.testing.assert_allclose(eqx.filter_jit(lambda c, u: c.forward(u))(c, u), x)
    assert jnp.all(jnp.isfinite(jax.grad(lambda v: c.log_det_jacobian(v))(u)))


def test_interval_bad_bounds():
    with pytest.raises(ValueError, match="lo < hi"):
        inf.Interval(1.0, 1.0)


# ---------------------------------------------------------------------------------------------- selection
def test_selection_scalar_and_per_region():
    net = _net()
    net = eqx.tree_at(lambda n: n.model.I, net, jnp.linspace(0.1, 0.5, N))
    sel = inf.Selection(
        [
            inf.Parameter(lambda n: n.coupling.a, inf.Positive()),
            inf.Parameter(lambda n: n.model.I, inf.Interval(0.0, 1.0)),
            inf.Parameter(lambda n: n.speed, inf.Positive(), name="v"),
        ]
    )
    assert sel.names(net) == ("coupling.a", "model.I", "v")
    u = sel.init_unconstrained(net)
    assert [x.shape for x in u] == [(), (N,), ()]
    back = sel.apply(net, u)
    for k, v in sel.values(back).items():
        np.testing.assert_allclose(v, sel.values(net)[k], rtol=1e-12)
    u2 = (u[0] + 1.0, u[1] - 1.0, u[2])
    net2 = sel.apply(net, u2)
    np.testing.assert_allclose(net2.coupling.a, jax.nn.softplus(u[0] + 1.0))
    np.testing.assert_allclose(net2.model.I, jax.nn.sigmoid(u[1] - 1.0))
    assert net2.model.a is net.model.a  # untouched leaves stay
    # jit / vmap / grad through apply
    f = jax.jit(lambda u: sel.apply(net, u).model.I.sum())
    np.testing.assert_allclose(f(u), net.model.I.sum())
    batch = (jnp.zeros(3), jnp.zeros((3, N)), jnp.zeros(3))
    out = jax.vmap(lambda u: sel.apply(net, u).coupling.a)(batch)
    np.testing.assert_allclose(out, np.log(2.0) * np.ones(3))
    g = jax.grad(lambda u: sel.apply(net, u).model.I.sum() + sel.log_det_jacobian(u))(u)
    assert g[1].shape == (N,)
    ldj = sel.log_det_jacobian(u)
    expect = sum(p.constraint.log_det_jacobian(x) for p, x in zip(sel.params, u, strict=True))
    np.testing.assert_allclose(ldj, expect)


def test_selection_errors():
    net = _net()
    with pytest.raises(ValueError, match="floating array leaf"):
        inf.Selection([inf.Parameter(lambda n: n.model)]).init_unconstrained(net)
    with pytest.raises(ValueError, match="not a leaf"):
        inf.Selection([inf.Parameter(lambda n: n.model.a * 2)]).init_unconstrained(net)
    with pytest.raises(ValueError, match="where\\(net\\) failed"):
        inf.Selection([inf.Parameter(lambda n: n.model.nonexistent)]).names(net)
    with pytest.raises(ValueError, match="outside the open interval"):
        inf.Selection([inf.Parameter(lambda n: n.coupling.a, inf.Interval(0.5, 1.0))]).init_unconstrained(net)
    with pytest.raises(ValueError, match="> 0"):
        inf.Selection([inf.Parameter(lambda n: n.model.a, inf.Positive())]).init_unconstrained(net)
    with pytest.raises(ValueError, match="same leaf"):
        inf.Selection([inf.Parameter(lambda n: n.model.a), inf.Parameter(lambda n: n.model.a, name="b")]).names(net)
    with pytest.raises(ValueError, match="unique"):
        inf.Selection([inf.Parameter(lambda n: n.model.a, name="x"), inf.Parameter(lambda n: n.model.b, name="x")])
    with pytest.raises(ValueError, match="at least one"):
        inf.Selection([])
    with pytest.raises(TypeError, match="constraint"):
        inf.Parameter(lambda n: n.model.a, constraint="positive")
    sel = inf.Selection([inf.Parameter(lambda n: n.model.a)])
    with pytest.raises(ValueError, match="expected 1 unconstrained"):
        sel.apply(net, (jnp.zeros(()), jnp.zeros(())))
    with pytest.raises(ValueError, match="shape"):
        sel.apply(net, (jnp.zeros(3),))


# ---------------------------------------------------------------------------------------------- losses
def test_losses():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((120, 4)))
    y = x + 0.5 * jnp.asarray(rng.standard_normal((120, 4)))
    fx, fy = vbt.features.fc(x), vbt.features.fc(y)
    assert abs(float(inf.fc_correlation_loss(fx, fx))) < 1e-12
    np.testing.assert_allclose(inf.fc_correlation_loss(fx, fy), 1 - vbt.features.fc_correlation(fx, fy))
    np.testing.assert_allclose(inf.fc_distance_loss(fx, fy), vbt.features.fc_distance(fx, fy))
    assert float(inf.timeseries_loss(x, x)) == 0.0
    np.testing.assert_allclose(inf.timeseries_loss(x, y), jnp.mean((x - y) ** 2))
    emp = vbt.features.fcd_values(vbt.features.fcd(y, 30, 15))
    ks = inf.fcd_ks_loss(x, emp, 30, 15, temperature=0.02)
    assert 0 <= float(ks) <= 1
    _, p = vbt.features.welch_psd(y, 100.0, 64)
    assert float(inf.log_psd_loss(y, p, 100.0, 64)) < 1e-20
    assert float(inf.log_psd_loss(x, p, 100.0, 64)) > 0
    mask = np.zeros(33, bool)
    mask[2:10] = True
    assert float(inf.log_psd_loss(x, p, 100.0, 64, freq_mask=mask)) > 0
    combo = inf.weighted_sum(
        [(2.0, lambda s: inf.timeseries_loss(s, y)), (0.5, lambda s: inf.fcd_ks_loss(s, emp, 30, 15))]
    )
    np.testing.assert_allclose(combo(x), 2 * inf.timeseries_loss(x, y) + 0.5 * ks)
    g = jax.grad(combo)(x)
    assert g.shape == x.shape and bool(jnp.all(jnp.isfinite(g)))
    with pytest.raises(ValueError, match="shapes differ"):
        inf.timeseries_loss(x, y[:10])
    with pytest.raises(ValueError, match="emp_psd"):
        inf.log_psd_loss(x, p[:5], 100.0, 64)
    with pytest.raises(TypeError, match="pair"):
        inf.weighted_sum([(1.0, 2.0)])


# ---------------------------------------------------------------------------------------------- fit
def test_fit_recovers_coupling_and_model_parameter():
    true = _net(0.1, -0.5)
    data = _run(true)
    start = _net(0.15, -0.8)
    sel = inf.Selection(
        [
            inf.Parameter(lambda n: n.coupling.a, inf.Positive()),
            inf.Parameter(lambda n: n.model.a, inf.Interval(-3.0, 3.0)),
        ]
    )
    res = inf.fit(
        lambda net, key: inf.timeseries_loss(_run(net), data), start, sel, optax.adam(0.05), steps=120, progress=False
    )
    assert res.steps_done == 120 and not res.stopped_early
    np.testing.assert_allclose(res.params["coupling.a"], 0.1, rtol=2e-2)
    np.testing.assert_allclose(res.params["model.a"], -0.5, rtol=2e-2)
    assert res.losses.shape == (120,) and float(res.losses[-1]) < 1e-3 * float(res.losses[0])
    assert res.history["coupling.a"].shape == (120,)
    np.testing.assert_allclose(res.history["coupling.a"][0], 0.15)
    np.testing.assert_allclose(res.net.coupling.a, res.params["coupling.a"])


def test_fit_forward_mode_equals_reverse_mode():
    """mode="forward" (jvp per scalar) and mode="reverse" (value_and_grad) give the same fit; "auto" picks forward
    for <= FORWARD_MAX scalars. Noisy network, two realisations per step, a per-region parameter."""
    true = _net(0.1, -0.5)
    data = _run(true)
    noise = vbt.noise.Additive(nsig=1e-4)
    start = _net(0.15, -0.8, noise=noise)
    sel = inf.Selection(
        [
            inf.Parameter(lambda n: n.coupling.a, inf.Positive()),
            inf.Parameter(lambda n: n.model.a, inf.Interval(-3.0, 3.0)),
        ]
    )
    start = eqx.tree_at(lambda n: n.model.a, start, jnp.full(N, -0.8))
    loss = lambda net, key: inf.timeseries_loss(_run(net, key), data)  # noqa: E731
    kw = dict(optimizer=optax.adam(0.05), steps=6, n_realisations=2, progress=False, key=jax.random.key(1))
    fwd = inf.fit(loss, start, sel, mode="forward", **kw)
    rev = inf.fit(loss, start, sel, mode="reverse", **kw)
    np.testing.assert_allclose(fwd.losses, rev.losses, rtol=1e-10)
    for name in rev.params:
        np.testing.assert_allclose(fwd.params[name], rev.params[name], rtol=1e-9, atol=1e-12)
    g = jnp.asarray(1.3)
    f = lambda x, c: jnp.sum(jnp.sin(x["a"]) * c) + x["b"] ** 2  # noqa: E731
    x = {"a": jnp.arange(3.0), "b": g}
    v1, g1 = fit_module.value_and_grad_forward(f)(x, 2.0)
    v2, g2 = jax.value_and_grad(f)(x, 2.0)
    np.testing.assert_allclose(v1, v2, rtol=1e-14)
    jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, rtol=1e-14), g1, g2)
    assert fit_module.FORWARD_MAX >= 1
    with pytest.raises(ValueError, match="mode must be"):
        inf.fit(loss, start, sel, steps=1, mode="sideways", progress=False)


def test_fit_early_stopping_and_realisations():
    net = _net()
    sel = inf.Selection([inf.Parameter(lambda n: n.coupling.a, inf.Positive())])
    # loss with a floor: stops improving once a is near 0
    calls = []

    def loss(net, key):
        return jnp.maximum(net.coupling.a, 0.09) + 0.0 * jax.random.normal(key)

    res = inf.fit(
        loss,
        net,
        sel,
        optax.sgd(0.5),
        steps=200,
        patience=5,
        min_delta=1e-6,
        progress=True,
        key=jax.random.key(3),
        n_realisations=3,
        callback=lambda i, l, p: calls.append(i),
    )
    assert res.stopped_early and res.steps_done < 200
    assert calls == list(range(1, res.steps_done + 1))
    # noise-averaged loss: mean over realisations differs per step key
    res2 = inf.fit(
        lambda n, k: jax.random.normal(k) + 0 * n.coupling.a, net, sel, steps=3, n_realisations=4, progress=False
    )
    keys = [jax.random.split(jax.random.fold_in(jax.random.key(0), i), 4) for i in range(3)]
    np.testing.assert_allclose(res2.losses, [jnp.mean(jax.vmap(jax.random.normal)(k)) for k in keys], rtol=1e-12)


def test_fit_bad_inputs(tmp_path):
    net = _net()
    sel = inf.Selection([inf.Parameter(lambda n: n.coupling.a, inf.Positive())])
    loss = lambda n, k: n.coupling.a**2  # noqa: E731
    with pytest.raises(TypeError, match="Selection"):
        inf.fit(loss, net, [sel])
    with pytest.raises(ValueError, match="steps"):
        inf.fit(loss, net, sel, steps=-1)
    with pytest.raises(ValueError, match="n_realisations"):
        inf.fit(loss, net, sel, n_realisations=0)
    with pytest.raises(ValueError, match="patience"):
        inf.fit(loss, net, sel, patience=0)
    with pytest.raises(ValueError, match="resume"):
        inf.fit(loss, net, sel, resume=True)
    with pytest.raises(TypeError, match="Optax"):
        inf.fit(loss, net, sel, optimizer="adam")
    inf.fit(loss, net, sel, steps=2, checkpoint_dir=tmp_path, progress=False)
    other = inf.Selection([inf.Parameter(lambda n: n.model.a)])
    with pytest.raises(fit_module.ResumeError, match="parameters .*coupling.a.* -> .*model.a"):
        inf.fit(loss, net, other, steps=4, checkpoint_dir=tmp_path, resume=True, progress=False)
    with pytest.raises(ValueError, match="optimizer"):
        inf.fit(loss, net, sel, optax.sgd(0.1), steps=4, checkpoint_dir=tmp_path, resume=True, progress=False)
    with pytest.warns(UserWarning, match="loss is nan"):
        res = inf.fit(lambda n, k: jnp.log(-n.coupling.a), net, sel, steps=3, progress=False)
    assert res.stopped_early and res.steps_done == 0


SCRIPT = """
import jax
jax.config.update("jax_enable_x64", True)
import os, signal, sys
import jax.numpy as jnp, numpy as np, optax
import vbtjax as vbt
from vbtjax import inference as inf

mode, ckpt, out = sys.argv[1], sys.argv[2], sys.argv[3]
n = 4
w = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (n, n)))
net = vbt.Network(vbt.models.Generic2dOscillator(a=-0.8), vbt.Connectome(weights=w, lengths=10 * w),
                  vbt.coupling.Linear(a=0.15))
t = jnp.linspace(0.0, 10.0, 50)[:, None]

def signal_of(net, key):  # a cheap stand-in for a noisy simulation, (time, region)
    x = jnp.sin(net.model.a * t + jnp.arange(n)) @ (net.coupling.a * w).T
    return x + 0.05 * jax.random.normal(key, x.shape)

data = jnp.sin(-0.5 * t + jnp.arange(n)) @ (0.1 * w).T
sel = inf.Selection([inf.Parameter(lambda n: n.coupling.a, inf.Positive()),
                     inf.Parameter(lambda n: n.model.a, inf.Interval(-3.0, 3.0))])
loss = lambda net, k: inf.timeseries_loss(signal_of(net, k), data)

def cb(i, l, p):
    if mode == "kill" and i == 7:
        os.kill(os.getpid(), signal.SIGKILL)

res = inf.fit(loss, net, sel, optax.adam(0.05), steps=12, key=jax.random.key(42), n_realisations=3,
              checkpoint_dir=None if mode == "full" else ckpt, checkpoint_every=3, resume=(mode == "resume"),
              progress=False, callback=cb)
np.savez(out, losses=np.asarray(res.losses), a=np.asarray(res.params["coupling.a"]),
         m=np.asarray(res.params["model.a"]), h=np.asarray(res.history["model.a"]), steps=res.steps_done)
"""


def test_fit_sigkill_resume_matches_uninterrupted(tmp_path):
    script = tmp_path / "run_fit.py"
    script.write_text(SCRIPT)
    ckpt = tmp_path / "ckpt"
    env = dict(os.environ, JAX_PLATFORMS="cpu")

    def start(mode, out):
        args = [sys.executable, str(script), mode, str(ckpt), str(out)]
        return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait(proc):
        _, err = proc.communicate(timeout=120)
        return proc.returncode, err

    full, killed = start("full", tmp_path / "full.npz"), start("kill", tmp_path / "killed.npz")
    rc, err = wait(full)
    assert rc == 0, err
    rc, err = wait(killed)
    assert rc == -9, err  # SIGKILL after step 7; last checkpoint at step 6
    with np.load(ckpt / "checkpoint.npz") as z:
        assert int(z["step"]) == 6 and z["losses"].shape == (6,)
    assert not (tmp_path / "killed.npz").exists()
    assert not [p for p in ckpt.iterdir() if p.name.startswith(".tmp")]
    rc, err = wait(start("resume", tmp_path / "resumed.npz"))
    assert rc == 0, err
    a, b = np.load(tmp_path / "full.npz"), np.load(tmp_path / "resumed.npz")
    assert int(a["steps"]) == int(b["steps"]) == 12
    for k in ("losses", "a", "m", "h"):
        np.testing.assert_array_equal(a[k], b[k])


def _quadratic_fit(tmp_path, steps, **kw):
    """A cheap noisy fit of the coupling (a quadratic loss plus key-dependent noise), checkpointed in tmp_path."""
    net = _net()
    sel = inf.Selection([inf.Parameter(lambda n: n.coupling.a, inf.Positive())])

    def loss(n, k):
        return (n.coupling.a - 0.3) ** 2 + 1e-3 * jax.random.normal(k)

    args = dict(optimizer=kw.pop("optimizer", optax.adam(0.05)), key=kw.pop("key", jax.random.key(3)))
    return inf.fit(
        loss,
        net,
        sel,
        args["optimizer"],
        steps,
        key=args["key"],
        checkpoint_dir=tmp_path,
        checkpoint_every=2,
        progress=False,
        **kw,
    )


def test_fit_resume_refuses_other_settings_and_allows_more_steps(tmp_path):
    full = _quadratic_fit(tmp_path / "full", 8)
    first = _quadratic_fit(tmp_path / "c", 4)
    assert first.resumed == ()
    refusals = [
        (dict(key=jax.random.key(4)), r"key \[0,3\] -> \[0,4\]"),
        (dict(optimizer=optax.adam(0.1)), "optimizer .*-0.05.* -> .*-0.1"),
        (dict(n_realisations=2), "n_realisations 1 -> 2"),
        (dict(patience=3), "patience"),
    ]
    for kw, match in refusals:
        with pytest.raises(fit_module.ResumeError, match=match) as info:
            _quadratic_fit(tmp_path / "c", 8, resume=True, **kw)
        assert "\n" not in str(info.value) and "resume=False" in str(info.value)
    with pytest.raises(fit_module.ResumeError, match="fewer than the 4"):
        _quadratic_fit(tmp_path / "c", 3, resume=True)
    # another loss (other data) is caught by the loss at the starting point
    net, sel = _net(), inf.Selection([inf.Parameter(lambda n: n.coupling.a, inf.Positive())])
    with pytest.raises(fit_module.ResumeError, match="loss at the starting point"):
        inf.fit(
            lambda n, k: (n.coupling.a - 0.4) ** 2 + 1e-3 * jax.random.normal(k),
            net,
            sel,
            optax.adam(0.05),
            8,
            key=jax.random.key(3),
            checkpoint_dir=tmp_path / "c",
            resume=True,
            progress=False,
        )
    # more steps: allowed, recorded, and the same as an uninterrupted run
    more = _quadratic_fit(tmp_path / "c", 8, resume=True)
    assert more.resumed == (fit_module.Resumed(4, (("steps", 4, 8),)),)
    assert more.resumed[0].to_dict() == {"at_step": 4, "steps": [4, 8]}
    np.testing.assert_array_equal(np.asarray(more.losses), np.asarray(full.losses))
    again = _quadratic_fit(tmp_path / "c", 8, resume=True)  # nothing left to do; both resumes recorded
    assert [r.at_step for r in again.resumed] == [4, 8] and again.resumed[1].changed == ()


def test_fit_damaged_checkpoint_is_a_clear_error(tmp_path):
    _quadratic_fit(tmp_path, 2)
    path = tmp_path / fit_module.CHECKPOINT_NAME
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="checkpoint.*not a readable"):
        _quadratic_fit(tmp_path, 4, resume=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind
