"""``vbtjax.simulation.health.assess``: each degenerate output is detected (NaN, blow-up, fixed point, flat channel,
collapse, saturation, lockstep), and healthy noisy oscillations pass (the negative controls)."""

import types

import numpy as np
import pytest

from vbtjax.simulation.health import ADVICE, MIN_SAMPLES, Health, assess, fc_of

T, N = 2000, 8  # samples (1 ms apart), channels
TS = np.arange(1, T + 1, dtype=float)  # ms


def healthy(seed=0, n=N):
    """Noisy 10 Hz oscillations with a shared slow component: correlated, not in lockstep. (T, n)."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, n)
    shared = np.cumsum(rng.normal(size=T)) * 0.02
    x = np.sin(2 * np.pi * 0.01 * TS[:, None] + phase) + shared[:, None] + 0.3 * rng.normal(size=(T, n))
    return x


def test_healthy_oscillation_passes():
    h = assess(healthy(), TS)
    assert isinstance(h, Health) and h.ok and bool(h) and h.problems == () and h.suggestion == ""
    assert h.message() == "healthy"
    assert h.stats["flat_channels"] == 0 and h.stats["fc_finite_fraction"] == 1.0
    assert h.stats["t_start_ms"] == 500.0  # min(1000 ms, a quarter of the run)


def test_healthy_noise_around_a_fixed_point_passes():
    # noise-driven fluctuations around a large offset (e.g. a Wong-Wang upper state), correlated between channels
    # through a shared slow component, are neither a fixed point nor a collapse
    rng = np.random.default_rng(1)
    shared = np.convolve(rng.normal(size=T), np.ones(50), mode="same")
    x = 0.5 + 0.01 * rng.normal(size=(T, N)) + 0.01 * (shared / shared.std())[:, None]
    x[:100] += np.linspace(0.5, 0, 100)[:, None]  # the initial transient
    assert assess(x, TS).ok


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite(bad):
    x = healthy()
    x[1500:, 3] = bad
    h = assess(x, TS)
    assert not h.ok and h.codes == ("nonfinite",)
    assert "t = 1501 ms" in h.problems[0] and "1 of 8 channels" in h.problems[0]
    assert h.suggestion == ADVICE["nonfinite"] and "dt" in h.suggestion
    assert "To fix it:" in h.message() and "\n" not in h.message()


def test_blowup():
    x = healthy()
    x[-1, 0] = 1e12
    h = assess(x, TS)
    assert h.codes == ("blowup",) and "1e+12" in h.problems[0]


def test_fixed_point():
    # a decaying transient, then every channel constant (as a deterministic run settling to its fixed point)
    x = np.ones((T, N)) * np.arange(N)
    x[:300] += np.exp(-TS[:300, None] / 30.0) * np.linspace(1, 2, N)
    h = assess(x, TS)
    assert h.codes == ("fixed_point",) and "fixed point" in h.problems[0]
    assert "noise" in h.suggestion and "coupling" in h.suggestion
    # with tiny float32 jitter it is still a fixed point (relative to the signal's scale)
    jitter = x + 1e-8 * np.random.default_rng(0).normal(size=x.shape)
    assert assess(jitter.astype(np.float32), TS).codes == ("fixed_point",)


def test_flat_channel():
    x = healthy()
    x[:, 5] = 0.7
    h = assess(x, TS)
    assert h.codes == ("flat_channels",) and h.problems[0].startswith("1 of 8 channels are constant")
    assert h.stats["flat_channels"] == 1
    assert np.isnan(fc_of(x[TS > 500])[5]).all()


def test_collapse_dying_out():
    rng = np.random.default_rng(2)
    envelope = np.exp(-TS / 150.0)[:, None]
    x = envelope * np.sin(2 * np.pi * 0.01 * TS[:, None] + rng.uniform(0, 6, N)) + 1e-6 * rng.normal(size=(T, N))
    h = assess(x, TS, transient=100.0)
    assert h.codes == ("collapse",) and "dies out" in h.problems[0]


def test_collapse_to_a_quiet_state_during_the_transient():
    # a large common excursion during the transient, then independent small noise: what is left is noise
    rng = np.random.default_rng(3)
    x = 0.02 * rng.normal(size=(T, N))
    x[:200] += np.linspace(1.0, 0.0, 200)[:, None] * rng.uniform(0.5, 1.5, N)
    h = assess(x, TS)
    assert h.codes == ("collapse",) and "quiet state" in h.problems[0] and h.stats["fc_max"] < 0.2
    # the same noise with structure (correlated channels) is not a collapse
    y = x + 0.05 * np.cumsum(rng.normal(size=T))[:, None] / np.sqrt(T)
    assert assess(y, TS).ok


def test_saturation():
    x = np.clip(healthy() + 3.0, 0.0, 1.0)  # mostly pinned at the upper bound 1
    h = assess(x, TS, bounds=(0.0, 1.0))
    assert "saturation" in h.codes and "bound 1" in h.problems[h.codes.index("saturation")]
    assert assess(healthy(), TS, bounds=(-10.0, 10.0)).ok


def test_uniform_fc_lockstep():
    rng = np.random.default_rng(4)
    common = np.sin(2 * np.pi * 0.01 * TS) + 0.1 * rng.normal(size=T)
    x = common[:, None] + 1e-3 * rng.normal(size=(T, N))
    h = assess(x, TS)
    assert h.codes == ("uniform_fc",) and "lockstep" in h.problems[0]
    assert assess(x, TS, check_fc=False).ok  # sensors share their sources: no FC check


def test_too_short_to_judge_passes_with_a_note():
    x = np.zeros((MIN_SAMPLES + 2, N))  # constant, but only 2 samples after the transient
    h = assess(x)
    assert h.ok and h.notes and "too few" in h.notes[0] and "too few" in h.message()


def test_solution_like_input_and_3d_arrays():
    x = healthy()[:, None, :]  # (T, 1, N)
    sol = types.SimpleNamespace(ts={"tavg": TS}, ys={"tavg": np.concatenate([x, np.zeros_like(x)], axis=1)})
    assert assess(sol).ok  # the first variable by default
    assert assess(sol, variable=1).codes == ("fixed_point",)
    two = types.SimpleNamespace(ts={"a": TS, "b": TS}, ys={"a": x, "b": x})
    with pytest.raises(ValueError, match="which="):
        assess(two)
    assert assess(two, which="b").ok
    with pytest.raises(ValueError, match="shape"):
        assess(np.zeros(5))


def test_solution_health_method_on_real_simulations():
    """``Solution.health`` (re-exported as ``vbt.assess``/``vbt.Health``): a noise-free network below its Hopf
    bifurcation is flagged as a fixed point, and the same network with noise and coupling passes."""
    import jax

    import vbtjax as vbt

    conn = vbt.datasets.tvb_connectome(76).normalised("max")
    mon = {"tavg": vbt.monitors.TemporalAverage(period=1.0)}
    quiet = vbt.Network(
        model=vbt.models.SupHopf(a=-0.5, omega=0.06), connectome=conn, coupling=vbt.coupling.Linear(a=0.0)
    )
    h = vbt.simulate(quiet, t1=1500.0, dt=0.1, monitors=mon).health()
    assert isinstance(h, vbt.Health) and not h and h.codes == ("fixed_point",) and "noise" in h.suggestion
    noisy = vbt.Network(
        model=vbt.models.SupHopf(a=-0.5, omega=0.06),
        connectome=conn,
        coupling=vbt.coupling.Linear(a=0.2),
        noise=vbt.noise.Additive(nsig=[0.01, 0.01]),
    )
    start = jax.numpy.zeros((2, 76))  # at rest: random states in SupHopf's range (|x| <= 5) are stiff at dt = 0.1 ms
    sol = vbt.simulate(noisy, t1=1500.0, dt=0.1, monitors=mon, key=jax.random.key(0), history=start)
    assert sol.health().ok and vbt.assess(sol).ok
