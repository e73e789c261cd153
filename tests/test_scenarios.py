"""vbtjax.scenarios: each what-if against weights/lengths/speed/parameters computed by hand with NumPy, and against
networks built by hand (simulated trajectories equal); under jax.vmap over traced leaves; composition; to_dict /
scenario_from_dict; parse_scenario; label resolution and argument errors."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbtjax as vbt
from vbtjax.scenarios import (
    AddStimulus,
    Age,
    Compose,
    Lesion,
    Resect,
    SetParameter,
    SlowConduction,
    parse_scenario,
    scenario_from_dict,
)
from vbtjax.stimulus import PulseTrain, Step, Stimulus

jax.config.update("jax_enable_x64", True)

N = 5
LABELS = ("lAMYG", "rAMYG", "lHC", "rHC", "PCC")
T1, DT = 6.0, 0.1


def arrays(seed=0):
    rng = np.random.default_rng(seed)
    W = rng.uniform(0.2, 1.0, (N, N)) * (rng.uniform(size=(N, N)) < 0.8)
    L = rng.uniform(1.0, 12.0, (N, N))
    L = (L + L.T) / 2
    np.fill_diagonal(L, 0.0)
    return W, L


def make_net(W=None, L=None, speed=3.0, labels=LABELS, a=0.2, **kw):
    if W is None:
        W, L = arrays()
    return vbt.Network(
        model=vbt.models.Generic2dOscillator(),
        connectome=vbt.Connectome(weights=W, lengths=L, labels=labels),
        coupling=vbt.coupling.Linear(a=a),
        speed=speed,
        **kw,
    )


def state(n=N):
    """A distinct constant history per region, (n_svar, n)."""
    return np.stack([np.linspace(-1.0, 1.5, N), np.linspace(0.5, -0.5, N)])[:, :n]


def run(net, history=None):
    return vbt.simulate(net, T1, DT, history=state() if history is None else history).ys["raw"]


def close(a, b, tol=1e-12):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


# ---------------------------------------------------------------------------------------------------------- Resect
def test_resect_weights_mask_and_connectome_helper():
    W, L = arrays()
    net = make_net(W, L)
    want = W.copy()
    want[[1, 3], :] = 0.0
    want[:, [1, 3]] = 0.0
    for s in (Resect([1, 3]), Resect(["rAMYG", "rHC"]), Resect(["rHC", 1])):
        out = s(net)
        close(out.connectome.weights, want, 0)
        close(out.connectome.lengths, L, 0)
        np.testing.assert_array_equal(s.removed(net), [False, True, False, True, False])
        np.testing.assert_array_equal(s.kept(net), [True, False, True, False, True])
        assert out.connectome.weights.shape == (N, N) and out.connectome.labels == LABELS
    close(net.connectome.resected(["rAMYG", 3]).weights, want, 0)
    assert Resect(2).regions == (2,)
    np.testing.assert_array_equal(Lesion(regions=[2]).removed(net), np.zeros(N, bool))


def test_resected_region_receives_and_sends_nothing():
    """The other regions of the resected network follow the network built by hand without the region."""
    W, L = arrays()
    r = 2
    keep = [i for i in range(N) if i != r]
    ys = run(Resect([r])(make_net(W, L)))
    small = make_net(W[np.ix_(keep, keep)], L[np.ix_(keep, keep)], labels=None)
    ref = run(small, history=state()[:, keep])
    close(ys[:, :, keep], ref)
    assert np.count_nonzero(W[keep, r]) >= 3 and np.count_nonzero(W[r, keep]) >= 3  # it did send and receive


# ---------------------------------------------------------------------------------------------------------- Lesion
def test_lesion_weights_by_hand():
    W, L = arrays()
    net = make_net(W, L)
    # undirected tracts: both entries; tract (source 0, target 3) is W[3, 0]
    want = W.copy()
    for i, j in [(3, 0), (0, 3), (4, 1), (1, 4)]:
        want[i, j] *= 0.5
    out = Lesion(tracts=[(0, 3), ("rAMYG", "PCC")], factor=0.5)(net)
    close(out.connectome.weights, want, 0)
    close(out.connectome.lengths, L, 0)
    # directed: only from source 0 to target 3
    want = W.copy()
    want[3, 0] = 0.0
    close(Lesion(tracts=[(0, 3)], directed=True)(net).connectome.weights, want, 0)
    # regions: rows and columns; union with tracts, each weight multiplied once
    want = W.copy()
    mask = np.zeros((N, N), bool)
    mask[2, :] = mask[:, 2] = True
    mask[0, 4] = mask[4, 0] = True
    mask[2, 0] = mask[0, 2] = True  # also in the region's row/column: still multiplied once
    want[mask] *= 0.2
    out = Lesion(tracts=[(0, 4), (2, 0)], regions=["lHC"], factor=0.2)(net)
    close(out.connectome.weights, want, 0)
    close(net.connectome.lesioned([(0, 4), (2, 0)], regions=2, factor=0.2).weights, want, 0)
    np.testing.assert_array_equal(Lesion(tracts=[(0, 4), (2, 0)], regions=[2]).mask(net), mask)
    # factor 1 changes nothing; factor 0 on all of a region equals the resection's weights
    close(Lesion(regions=[1], factor=1.0)(net).connectome.weights, W, 0)
    close(Lesion(regions=[1])(net).connectome.weights, Resect(1)(net).connectome.weights, 0)


# -------------------------------------------------------------------------------------------------- SlowConduction
def test_slow_conduction_by_hand():
    W, L = arrays()
    net = make_net(W, L)
    out = SlowConduction(2.0)(net)
    assert float(out.speed) == 1.5 and out.horizon(DT) > net.horizon(DT)
    close(out.connectome.lengths, L, 0)
    L2 = L.copy()
    for i, j in [(1, 0), (0, 1), (4, 3), (3, 4)]:
        L2[i, j] *= 2.5
    out = SlowConduction(2.5, tracts=[("lAMYG", "rAMYG"), (3, 4)])(net)
    close(out.connectome.lengths, L2, 0)
    assert float(out.speed) == 3.0
    # regions: every tract of the region
    L3 = L.copy()
    L3[4, :] *= 3.0
    L3[:, 4] *= 3.0
    L3[4, 4] = L[4, 4] * 3.0
    close(SlowConduction(3.0, regions=["PCC"])(net).connectome.lengths, L3, 0)
    assert SlowConduction(2.0).is_global and not SlowConduction(2.0, tracts=[(0, 1)]).is_global
    # simulated: equal to the network built by hand with speed / 2 and those lengths x 2.5
    both = SlowConduction(2.0) >> SlowConduction(2.5, tracts=[(0, 1), (3, 4)])
    close(run(both(net)), run(make_net(W, L2, speed=1.5)))


def test_delay_layout_and_speed_range_follow_the_speed():
    W, L = arrays()
    net = make_net(W, L, speed=3.0, speed_range=(2.0, 4.0))
    out = SlowConduction(2.0)(net)
    assert out.speed_range == (1.0, 2.0)
    for got, want in [(out.edges.delays_ms, L / 1.5), (out.edges.shortest_ms, L / 2.0), (out.edges.longest_ms, L)]:
        np.testing.assert_allclose(got, want, rtol=1e-8)
    sf = 0.995**10
    np.testing.assert_allclose(Age(10)(net).speed_range, (2.0 * sf, 4.0 * sf), rtol=1e-14)
    plain = make_net(W, L)
    assert SetParameter("speed", 1.5)(plain).edges == make_net(W, L, speed=1.5).edges
    close(SlowConduction(2.0, tracts=[(0, 1)])(plain).edges.delays_ms[[0, 1], [1, 0]], 2 * L[[0, 1], [1, 0]] / 3.0)


# ------------------------------------------------------------------------------------------------ vmap over leaves
def test_under_vmap_over_coupling_equals_loop():
    W, L = arrays()
    net = make_net(W, L)
    scen = Resect(["lHC"]) >> Lesion(tracts=[(0, 1)], factor=0.3) >> Age(20) >> SetParameter("model.a", -1.5, [0])
    a = jnp.array([0.05, 0.4])

    def one(a_):
        return scen(eqx.tree_at(lambda n: n.coupling.a, net, a_))

    batched = jax.vmap(lambda a_: vbt.simulate(one(a_), T1, DT, history=state()).ys["raw"])(a)
    cf = 0.997**20
    for b in range(2):
        ref_net = one(a[b])
        close(ref_net.coupling.a, a[b] * cf, 1e-14)
        close(batched[b], run(ref_net))
    close(jax.vmap(lambda a_: one(a_).coupling.a)(a), a * cf, 1e-14)
    # under jit as well
    close(eqx.filter_jit(scen)(net).connectome.weights, scen(net).connectome.weights, 0)


def test_under_vmap_over_speed_delay_layout_follows():
    """Traced speeds: the scenarios update the recorded delays, so the slower delays fit the buffer."""
    W, L = arrays()
    net = make_net(W, L, speed=3.0, speed_range=(2.5, 3.5))
    L2 = L.copy()
    L2[0, 1] *= 4.0
    L2[1, 0] *= 4.0
    age = Age(20)
    scen = SlowConduction(2.0) >> SlowConduction(4.0, tracts=[(0, 1)]) >> age
    speeds = jnp.array([2.5, 3.5])
    ys = jax.vmap(
        lambda v: vbt.simulate(scen(eqx.tree_at(lambda n: n.speed, net, v)), T1, DT, history=state()).ys["raw"]
    )(speeds)
    sf, cf = float(age.speed_factor), float(age.coupling_factor)
    for b, v in enumerate([2.5, 3.5]):
        close(ys[b], run(make_net(W, L2, speed=v / 2.0 * sf, a=0.2 * cf)))


def test_scenario_parameters_traced_vmap_and_grad():
    W, _ = arrays()
    net = make_net()
    fs = jnp.array([0.0, 0.25, 1.0])
    got = jax.vmap(lambda f: Lesion(tracts=[(0, 1)], factor=f)(net).connectome.weights)(fs)
    close(got[:, 1, 0], W[1, 0] * fs, 1e-15)
    close(got[:, 2, 3], np.full(3, W[2, 3]), 0)
    g = jax.grad(lambda f: Lesion(regions=[2], factor=f)(net).connectome.weights.sum())(0.5)
    np.testing.assert_allclose(float(g), W[2, :].sum() + W[:, 2].sum() - W[2, 2], rtol=1e-12)
    vals = jnp.array([-2.5, -1.5])
    close(jax.vmap(lambda v: SetParameter("model.a", v, regions=[3])(net).model.a[3])(vals), vals, 0)
    close(jax.vmap(lambda k: SlowConduction(k)(net).speed)(jnp.array([1.0, 2.0])), [3.0, 1.5], 1e-15)

    class Mine(Resect):
        pass

    with pytest.raises(ValueError, match="unknown scenario type 'Mine'"):
        scenario_from_dict({"type": "Mine", "regions": [1]})


# ------------------------------------------------------------------------------------------------------- AddStimulus
def test_add_stimulus_appends_and_simulates_as_built_by_hand():
    W, L = arrays()
    net = make_net(W, L)
    s1 = Stimulus(PulseTrain(onset=1.0, period=3.0, width=1.0, amplitude=2.0), regions=[1])
    s2 = Stimulus(Step(onset=2.0, amplitude=0.5), weight=np.linspace(0.0, 1.0, N), variables=["V"])
    one = AddStimulus(s1)(net)
    assert net.stimulus is None and len(one.stimulus) == 1 and eqx.tree_equal(one.stimulus[0], s1)
    two = AddStimulus(s2)(one)
    assert len(two.stimulus) == 2 and eqx.tree_equal(two.stimulus[1], s2)
    close(run(two), run(make_net(W, L, stimulus=(s1, s2))))
    with pytest.raises(ValueError, match="AddStimulus.*out of range"):
        AddStimulus(Stimulus(PulseTrain(), regions=[9]))(net)
    with pytest.raises(ValueError, match="unknown state variable"):
        AddStimulus(Stimulus(PulseTrain(), variables=["x9"]))(net)
    with pytest.raises(TypeError, match="AddStimulus: stimulus must be"):
        AddStimulus(PulseTrain())


# --------------------------------------------------------------------------------------------------------------- Age
def test_age_by_hand():
    net = make_net()
    out = Age(10)(net)
    np.testing.assert_allclose(float(out.coupling.a), 0.2 * (1 - 0.003) ** 10, rtol=1e-14)
    np.testing.assert_allclose(float(out.speed), 3.0 * (1 - 0.005) ** 10, rtol=1e-14)
    out = Age(30, coupling_rate=0.01, speed_rate=-0.01, trajectory="linear")(net)
    np.testing.assert_allclose(float(out.coupling.a), 0.2 * 1.3, rtol=1e-14)
    np.testing.assert_allclose(float(out.speed), 3.0 * 0.7, rtol=1e-14)
    close(Age(0)(net).coupling.a, 0.2, 0)
    # per-region coupling strengths are aged each
    net_r = eqx.tree_at(lambda n: n.coupling.a, net, jnp.linspace(0.1, 0.5, N))
    close(Age(5)(net_r).coupling.a, np.linspace(0.1, 0.5, N) * 0.997**5, 1e-14)
    # gradient with respect to the years
    g = jax.grad(lambda y: Age(y)(net).speed)(10.0)
    np.testing.assert_allclose(float(g), 3.0 * 0.995**10 * np.log(0.995), rtol=1e-12)


# ---------------------------------------------------------------------------------------------------- SetParameter
def test_set_parameter_by_hand():
    net = make_net()
    close(SetParameter("model.a", -2.2)(net).model.a, -2.2, 0)
    per = np.linspace(-2.5, -1.5, N)
    close(SetParameter("model.a", per)(net).model.a, per, 0)
    want = np.full(N, -2.0)
    want[[1, 4]] = [-1.0, -3.0]
    close(SetParameter("model.a", [-1.0, -3.0], regions=["rAMYG", 4])(net).model.a, want, 0)
    want[[1, 4]] = -1.0
    close(SetParameter("model.a", -1.0, regions=[1, 4])(net).model.a, want, 0)
    # a per-region leaf given a scalar is filled
    net_r = SetParameter("model.a", per)(net)
    close(SetParameter("model.a", 0.5)(net_r).model.a, np.full(N, 0.5), 0)
    close(SetParameter("coupling.a", 0.05)(net).coupling.a, 0.05, 0)
    assert float(SetParameter("speed", 1.5)(net).speed) == 1.5
    stim = AddStimulus(Stimulus(PulseTrain(), regions=[0]))(net)
    close(SetParameter("stimulus.0.weight", 3.0)(stim).stimulus[0].weight, 3.0, 0)
    # the speed outside the network's speed_range widens it
    assert SetParameter("speed", 1.0)(make_net(speed=3.0, speed_range=(2.0, 4.0))).speed_range == (1.0, 4.0)


def test_set_parameter_errors():
    net = make_net()
    with pytest.raises(ValueError, match=r"has no field 'x0'; its parameters are: tau, I, a"):
        SetParameter("model.x0", 1.0)(net)
    with pytest.raises(ValueError, match="has 3 entries but the network has 5 regions"):
        SetParameter("model.a", [1.0, 2.0, 3.0])(net)
    with pytest.raises(ValueError, match="2 entries for 3 regions"):
        SetParameter("model.a", [1.0, 2.0], regions=[0, 1, 2])
    with pytest.raises(ValueError, match="'speed' is one conduction speed"):
        SetParameter("speed", 1.0, regions=[0])
    with pytest.raises(ValueError, match="speed must be positive"):
        SetParameter("speed", -1.0)
    with pytest.raises(ValueError, match="not a parameter; change the connectome with Resect"):
        SetParameter("connectome.weights", 1.0)
    with pytest.raises(ValueError, match="dotted leaf path"):
        SetParameter("model..a", 1.0)
    with pytest.raises(ValueError, match="leads to a Generic2dOscillator, not a parameter array"):
        SetParameter("model", 1.0)(net)
    with pytest.raises(ValueError, match="path 'delay_mode' is not a parameter"):
        SetParameter("delay_mode", 1.0)
    with pytest.raises(ValueError, match="tuple of 1; '3' is not an index"):
        SetParameter("stimulus.3.weight", 1.0)(AddStimulus(Stimulus(PulseTrain()))(net))
    with pytest.raises(ValueError, match="contains NaN or inf"):
        SetParameter("model.a", np.nan)
    with pytest.raises(ValueError, match="shape"):
        SetParameter("model.a", np.ones((2, 2)))


# -------------------------------------------------------------------------------------------------------- Compose
def test_compose_order_and_flattening():
    net = make_net()
    cf = 0.997**10
    close((SetParameter("coupling.a", 0.02) >> Age(10))(net).coupling.a, 0.02 * cf, 1e-15)
    close((Age(10) >> SetParameter("coupling.a", 0.02))(net).coupling.a, 0.02, 0)
    c = Resect(0) >> Lesion(tracts=[(1, 2)], factor=0.5) >> Compose(Lesion(tracts=[(1, 2)], factor=0.5), Age(1))
    assert isinstance(c, Compose) and [type(s).__name__ for s in c.scenarios] == [
        "Resect",
        "Lesion",
        "Lesion",
        "Age",
    ]
    W, _ = arrays()
    close(c(net).connectome.weights[1, 2], W[1, 2] * 0.25, 1e-15)
    np.testing.assert_array_equal(c.removed(net), [True, False, False, False, False])
    np.testing.assert_array_equal(Compose(Resect(0), Resect("PCC")).removed(net), [True, False, False, False, True])
    with pytest.raises(TypeError, match="scenarios compose with >>"):
        Resect(0) + Age(1)
    with pytest.raises(ValueError, match="at least one scenario"):
        Compose()
    with pytest.raises(TypeError, match=r"scenarios\[1\] is a int"):
        Compose(Resect(0), 3)


# ------------------------------------------------------------------------------------------------- serialisation
ALL = [
    Resect([1, "PCC"]),
    Lesion(tracts=[(0, 3), ("rAMYG", "PCC")], factor=0.5),
    Lesion(regions=[2], factor=0.1, tracts=[(0, 1)], directed=True),
    SlowConduction(2.0),
    SlowConduction(1.5, tracts=[(0, 1)], regions=["lHC"], directed=True),
    AddStimulus(Stimulus(PulseTrain(onset=1.0, period=3.0, width=1.0, amplitude=2.0), regions=[1, 2])),
    AddStimulus(Stimulus(Step(onset=2.0), weight=np.linspace(0.0, 1.0, N), variables=["V"])),
    Age(12.5, coupling_rate=0.01, speed_rate=-0.02, trajectory="linear"),
    Age(-3),
    SetParameter("model.a", [-1.0, -3.0], regions=["rAMYG", 4]),
    SetParameter("model.a", np.linspace(-2.5, -1.5, N)),
    SetParameter("speed", 2.0),
    Resect(0) >> Age(10) >> SlowConduction(3.0),
]


@pytest.mark.parametrize("scen", ALL, ids=lambda s: type(s).__name__)
def test_to_dict_round_trip(scen):
    d = scen.to_dict()
    text = json.dumps(d, allow_nan=False)  # strict JSON: inf written as a string
    back = scenario_from_dict(json.loads(text))
    assert type(back) is type(scen) and back.to_dict() == d and d["type"] == type(scen).__name__
    net = make_net()
    a, b = scen(net), back(net)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        close(x, y, 0)
    assert jax.tree.structure(a) == jax.tree.structure(b)


def test_from_dict_errors():
    with pytest.raises(ValueError, match="unknown scenario type 'Drug'; known: AddStimulus, Age, Compose"):
        scenario_from_dict({"type": "Drug"})
    with pytest.raises(ValueError, match="'type' key"):
        scenario_from_dict({"regions": [1]})
    with pytest.raises(ValueError, match="bad fields for Resect"):
        scenario_from_dict({"type": "Resect", "regions": [1], "extra": 2})
    with pytest.raises(ValueError, match="unknown temporal pattern 'Os'; known: .*PulseTrain"):
        scenario_from_dict({"type": "AddStimulus", "stimulus": {"temporal": {"type": "Os"}}})
    with pytest.raises(ValueError, match="unknown temporal pattern 'AbstractTemporal'"):
        scenario_from_dict({"type": "AddStimulus", "stimulus": {"temporal": {"type": "AbstractTemporal"}}})


# --------------------------------------------------------------------------------------------------- parse_scenario
@pytest.mark.parametrize(
    "spec, want",
    [
        ("resect:3,17", Resect([3, 17])),
        ("resect: lAMYG , 4", Resect(["lAMYG", 4])),
        ("lesion:3-17,4-18*0.5", Lesion(tracts=[(3, 17), (4, 18)], factor=0.5)),
        ("lesion:3-17", Lesion(tracts=[(3, 17)], factor=0.0)),
        ("lesion:3>17,lHC>PCC*0.5", Lesion(tracts=[(3, 17), ("lHC", "PCC")], factor=0.5, directed=True)),
        ("lesion:regions=3,17*0.2", Lesion(regions=[3, 17], factor=0.2)),
        ("lesion:regions=lHC", Lesion(regions=["lHC"])),
        ("slow:2.0", SlowConduction(2.0)),
        ("slow:3-17,4-18*2.0", SlowConduction(2.0, tracts=[(3, 17), (4, 18)])),
        ("slow:regions=PCC*1.5", SlowConduction(1.5, regions=["PCC"])),
        ("age:10", Age(10)),
        ("age:10, speed_rate=-0.01,trajectory=linear", Age(10, speed_rate=-0.01, trajectory="linear")),
        ("age:5,coupling_rate=1e-3", Age(5, coupling_rate=1e-3)),
        ("set:model.x0=-2.2@3,17", SetParameter("model.x0", -2.2, regions=[3, 17])),
        ("set:coupling.a=1e+3", SetParameter("coupling.a", 1e3)),
        ("set:model.a=-1,-2@lHC,4", SetParameter("model.a", [-1.0, -2.0], regions=["lHC", 4])),
        ("set:speed=2.5", SetParameter("speed", 2.5)),
        ("resect:3+slow:2.0", Compose(Resect(3), SlowConduction(2.0))),
        ("set:coupling.a=0.02; age:10 ;resect:1", Compose(SetParameter("coupling.a", 0.02), Age(10), Resect(1))),
        ("RESECT:1", Resect(1)),
    ],
)
def test_parse_scenario(spec, want):
    got = parse_scenario(spec)
    assert type(got) is type(want) and got.to_dict() == want.to_dict()


@pytest.mark.parametrize(
    "spec, match",
    [
        ("", "non-empty"),
        ("drug:3", "unknown scenario kind 'drug'"),
        ("3,17", "unknown scenario kind"),
        ("resect:", "nothing after 'resect:'"),
        ("resect:1,,2", "an empty region"),
        ("resect:-1", "must be 0 or more"),
        ("lesion:3-17*x", "the factor 'x' is not a number"),
        ("lesion:3-17*1.5", r"factor must lie in \[0, 1\]"),
        ("lesion:3,17", "tract '3' must be A-B"),
        ("lesion:3-17,4>5", "mix of A-B and A>B"),
        ("lesion:3-4-5", "tract '3-4-5' must be"),
        ("slow:0.5", "factor must be >= 1"),
        ("slow:3-17", "expected slow:F \\(a number\\) or slow:TRACTS\\*F, got '3-17'"),
        ("slow:regions=1", "expected slow:F"),
        ("slow:1-2*", "the factor '' is not a number"),
        ("age:ten", "the years 'ten' is not a number"),
        ("age:10,rate=1", "unknown age option"),
        ("age:10,trajectory=cubic", "trajectory must be"),
        ("set:model.x0", "expected set:PATH=VALUE"),
        ("set:model.x0=a", "not a number"),
        ("set:model.x0=1@", "no regions given"),
        ("resect:1;", "empty scenario"),
        ("resect:1+", "region '1\\+' holds a reserved character"),
    ],
)
def test_parse_scenario_errors(spec, match):
    with pytest.raises(ValueError, match=match) as info:
        parse_scenario(spec)
    assert "resect:R1,R2" in str(info.value)  # the grammar is shown


# --------------------------------------------------------------------------------------------- labels and arguments
def test_labels_and_indices_resolved_against_the_network():
    net = make_net()
    with pytest.raises(ValueError, match=r"Resect: regions names an unknown region 'lAMGY'; close matches: 'lAMYG'"):
        Resect(["lAMGY"])(net)
    with pytest.raises(ValueError, match="close matches: 'PCC'"):
        Resect("pcc")(net)
    with pytest.raises(ValueError, match=r"unknown region 'thalamus'; labels: 'lAMYG', 'rAMYG'"):
        Lesion(regions=["thalamus"])(net)
    with pytest.raises(ValueError, match=r"Resect: regions holds the region index 7, out of range .* 0\.\.4"):
        Resect(7)(net)
    with pytest.raises(ValueError, match=r"Lesion: tracts\[1\] holds the region index 5, out of range"):
        Lesion(tracts=[(0, 1), (2, 5)])(net)
    with pytest.raises(ValueError, match=r"SetParameter: regions holds the region index 9"):
        SetParameter("model.a", 1.0, regions=[9])(net)
    with pytest.raises(ValueError, match="the connectome has no labels; give region indices 0..4"):
        Resect("lHC")(make_net(labels=None))
    assert net.connectome.region_indices(["PCC", 0, np.int64(2)]) == (4, 0, 2)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: Resect([]), "Resect: regions is empty"),
        (lambda: Resect([-1]), "negative index -1"),
        (lambda: Resect([1.5]), r"Resect: regions must hold region indices \(int\) or labels"),
        (lambda: Resect(None), "give regions"),
        (lambda: Resect([True]), "must hold region indices"),
        (lambda: Lesion(), "give tracts="),
        (lambda: Lesion(tracts=[(0, 1)], factor=1.5), r"Lesion: factor must lie in \[0, 1\], got 1.5"),
        (lambda: Lesion(tracts=[(0, 1)], factor=-0.1), r"factor must lie in \[0, 1\]"),
        (lambda: Lesion(tracts=[(0, 1, 2)]), r"tracts\[0\] must be a pair"),
        (lambda: Lesion(tracts=["ab"]), r"tracts\[0\] must be a pair"),
        (lambda: Lesion(tracts=[]), "tracts is empty"),
        (lambda: Lesion(regions=[0], factor="x"), "Lesion: factor must be a number"),
        (lambda: Lesion(regions=[0], factor=[0.1, 0.2]), "Lesion: factor must be a scalar"),
        (lambda: SlowConduction(0.5), "SlowConduction: factor must be >= 1, got 0.5; .* for half the speed give 2.0"),
        (lambda: SlowConduction(np.inf), "SlowConduction: factor must be finite"),
        (lambda: SlowConduction(2.0, tracts=[(0,)]), "must be a pair"),
        (lambda: Age(10, trajectory="cubic"), "trajectory must be 'exponential' or 'linear'"),
        (lambda: Age(10, speed_rate=-1.0), "Age: speed_rate must be > -1"),
        (lambda: Age(200, coupling_rate=-0.01, trajectory="linear"), "factor 1 \\+ rate \\* years = -1 <= 0"),
        (lambda: Age(np.nan), "Age: years must be finite"),
        (lambda: SetParameter(3, 1.0), "path must be a dotted leaf path"),
        (lambda: SetParameter("model.a", "x"), "value must be a number"),
    ],
)
def test_argument_errors(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_vbt_namespace():
    assert vbt.scenarios.Resect is Resect and vbt.scenarios.parse_scenario is parse_scenario
    assert "resect:" in vbt.scenarios.GRAMMAR
