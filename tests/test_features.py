import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal
import scipy.stats

from vbtjax import features as F


def rng(seed=0):
    return np.random.default_rng(seed)


def directional_fd(f, x, v, h=1e-6):
    return (f(x + h * v) - f(x - h * v)) / (2 * h)


def check_grad(f, x, seed=1, rtol=1e-6, n_dirs=3):
    """Compare grad(f) . v with central finite differences along random directions (float64)."""
    g = np.asarray(jax.jit(jax.grad(f))(jnp.asarray(x)))
    assert np.all(np.isfinite(g))
    fj = jax.jit(f)
    r = rng(seed)
    for _ in range(n_dirs):
        v = r.standard_normal(np.shape(x))
        fd = directional_fd(lambda y: float(fj(jnp.asarray(y))), np.asarray(x), v)
        np.testing.assert_allclose(np.sum(g * v), fd, rtol=rtol, atol=1e-9)


# ------------------------------------------------------------------------------------------------------------- FC
def test_fc_matches_numpy_corrcoef():
    x = rng().standard_normal((200, 7)) @ rng(1).standard_normal((7, 7))
    np.testing.assert_allclose(F.fc(x), np.corrcoef(x.T), rtol=0, atol=1e-13)
    assert np.all(np.diag(F.fc(x)) == 1.0)


def test_fc_keeps_float32():
    x = rng().standard_normal((100, 4)).astype(np.float32)
    out = F.fc(x)
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, np.corrcoef(x.T.astype(np.float64)), atol=1e-5)


def test_fc_upper_order_and_batch():
    m = np.arange(2 * 16, dtype=float).reshape(2, 4, 4)
    iu = np.triu_indices(4, 1)
    np.testing.assert_array_equal(F.fc_upper(m), m[:, iu[0], iu[1]])
    iu0 = np.triu_indices(4, 0)
    np.testing.assert_array_equal(F.fc_upper(m[0], k=0), m[0][iu0])


def test_fc_correlation_and_distance():
    r = rng(2)
    a = np.corrcoef(r.standard_normal((6, 50)))
    b = np.corrcoef(r.standard_normal((6, 50)))
    iu = np.triu_indices(6, 1)
    np.testing.assert_allclose(F.fc_correlation(a, b), np.corrcoef(a[iu], b[iu])[0, 1], rtol=1e-12)
    np.testing.assert_allclose(F.fc_correlation(a, a), 1.0, rtol=1e-12)
    np.testing.assert_allclose(F.fc_distance(a, b), np.sqrt(np.mean((a[iu] - b[iu]) ** 2)), rtol=1e-12)
    assert float(F.fc_distance(a, a)) == 0.0
    assert np.all(np.asarray(jax.grad(F.fc_distance)(jnp.asarray(a), jnp.asarray(a))) == 0.0)
    # leading axes broadcast
    np.testing.assert_allclose(F.fc_correlation(np.stack([a, b]), b), [F.fc_correlation(a, b), 1.0], rtol=1e-12)


def test_grad_fc_correlation_vs_finite_differences():
    r = rng(3)
    target = F.fc(r.standard_normal((80, 5)))
    x = r.standard_normal((80, 5))
    check_grad(lambda y: F.fc_correlation(F.fc(y), target) + F.fc_distance(F.fc(y), target), x)


# ------------------------------------------------------------------------------------------------------------ FCD
def _fcd_numpy(x, window, step):
    iu = np.triu_indices(x.shape[1], 1)
    ups = [np.corrcoef(x[s : s + window].T)[iu] for s in range(0, x.shape[0] - window + 1, step)]
    return np.corrcoef(np.array(ups))


@pytest.mark.parametrize("T,window,step", [(300, 50, 10), (301, 60, 7), (100, 100, 1)])
def test_fcd_matches_numpy(T, window, step):
    x = rng(4).standard_normal((T, 5))
    out = F.fcd(x, window, step)
    assert out.shape == ((T - window) // step + 1,) * 2
    if out.shape[0] > 1:
        np.testing.assert_allclose(out, _fcd_numpy(x, window, step), atol=1e-12)
    np.testing.assert_allclose(np.diag(out), 1.0)


def test_fcd_block_structure_when_correlations_switch():
    r = rng(5)
    T, N = 2000, 6
    half = T // 2
    z = r.standard_normal((T, 2))
    x = 0.6 * r.standard_normal((T, N))
    # first half: regions {0,1,2} and {3,4,5} share a source; second half: {0,3}, {1,4}, {2,5} share one
    x[:half, :3] += z[:half, :1]
    x[:half, 3:] += z[:half, 1:]
    z2 = r.standard_normal((T, 3))
    x[half:] += np.concatenate([z2[half:], z2[half:]], axis=1)
    window, step = 100, 50
    m = np.asarray(F.fcd(x, window, step))
    starts = F.window_starts(T, window, step)
    first = starts + window <= half
    second = starts >= half
    off = ~np.eye(len(starts), dtype=bool)
    within1 = m[np.ix_(first, first)][off[np.ix_(first, first)]]
    within2 = m[np.ix_(second, second)][off[np.ix_(second, second)]]
    between = m[np.ix_(first, second)]
    assert within1.mean() > 0.8 and within2.mean() > 0.8
    assert between.mean() < 0.2
    assert between.max() < min(within1.min(), within2.min())


def test_fcd_values_offset():
    m = np.asarray(F.fcd(rng(6).standard_normal((200, 4)), 40, 20))
    W = m.shape[0]
    np.testing.assert_array_equal(F.fcd_values(m), m[np.triu_indices(W, 1)])
    np.testing.assert_array_equal(F.fcd_values(m, k=2), m[np.triu_indices(W, 2)])


# ------------------------------------------------------------------------------------------------------------- KS
@pytest.mark.parametrize(
    "a,b",
    [
        (rng(7).standard_normal(300), rng(8).standard_normal(200) + 0.3),
        (rng(9).standard_normal(50), rng(10).standard_normal(51) * 2),
        (rng(11).integers(0, 5, 40).astype(float), rng(12).integers(0, 6, 33).astype(float)),  # ties
        (np.array([0.5]), np.array([0.1, 0.7, 0.9])),
    ],
)
def test_ks_exact_matches_scipy(a, b):
    np.testing.assert_allclose(F.ks_distance(a, b), scipy.stats.ks_2samp(a, b).statistic, rtol=1e-12, atol=1e-15)


def test_ks_exact_has_zero_gradient():
    a, b = rng(13).standard_normal(100), rng(14).standard_normal(80)
    assert np.all(np.asarray(jax.grad(F.ks_distance)(jnp.asarray(a), jnp.asarray(b))) == 0.0)


def test_ks_smooth_tends_to_exact():
    a, b = rng(15).standard_normal(300), rng(16).standard_normal(200) + 0.3
    exact = float(F.ks_distance(a, b))
    np.testing.assert_allclose(F.ks_distance(a, b, smooth=1e-7), exact, atol=1e-6)
    soft = float(F.ks_distance(a, b, smooth=0.05))
    assert 0.5 * exact < soft < exact + 0.02
    # identical samples: distance ~ 0; disjoint samples: ~ 1
    assert float(F.ks_distance(a, a, smooth=0.05)) < 1e-12
    np.testing.assert_allclose(F.ks_distance(a, a + 100.0, smooth=0.05), 1.0, atol=1e-6)


def test_ks_smooth_chunked_equals_unchunked():
    # 1500 + 1000 values: 2500 x 2500 pairs, more than one chunk of about 4M pairs
    a, b = rng(17).standard_normal(1500), rng(18).standard_normal(1000) * 1.2
    out = F.ks_distance(a, b, smooth=0.02)
    pooled = np.sort(np.concatenate([a, b]))
    mids = 0.5 * (pooled[1:] + pooled[:-1])
    fa = scipy.special.expit((mids[:, None] - a[None, :]) / 0.02).mean(1)
    fb = scipy.special.expit((mids[:, None] - b[None, :]) / 0.02).mean(1)
    np.testing.assert_allclose(out, np.abs(fa - fb).max(), rtol=1e-12)


def test_grad_smooth_ks_vs_finite_differences():
    a, b = rng(19).standard_normal(60), rng(20).standard_normal(50) + 0.5
    ab = np.concatenate([a, b])  # gradient with respect to both samples at once
    check_grad(lambda y: F.ks_distance(y[:60], y[60:], smooth=0.1), ab, rtol=1e-5)


# -------------------------------------------------------------------------------------------------------- spectra
@pytest.mark.parametrize(
    "T,nperseg,noverlap,window,kw",
    [
        (1001, 256, None, "hann", {}),
        (1001, 255, 100, "hann", {}),
        (777, 128, 0, "hamming", {}),
        (777, 101, 100, ("tukey", 0.25), {}),
        (640, 64, 32, "boxcar", {"nfft": 100}),
        (640, 64, 16, "hann", {"nfft": 129, "detrend": False}),
    ],
)
def test_welch_matches_scipy(T, nperseg, noverlap, window, kw):
    x = rng(21).standard_normal((T, 3)) + 2.0
    f, p = F.welch_psd(x, 250.0, nperseg, noverlap, window, **kw)
    fr, pr = scipy.signal.welch(x, 250.0, window=window, nperseg=nperseg, noverlap=noverlap, axis=0, **kw)
    assert p.shape == pr.shape
    np.testing.assert_allclose(f, fr, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(p, pr, rtol=1e-6, atol=1e-14 * pr.max())  # boxcar: DC is rounding noise


def test_welch_axis_and_array_window():
    x = rng(22).standard_normal((2, 3, 513))
    win = scipy.signal.get_window("hann", 128)
    f, p = F.welch_psd(x, 1000.0, 128, 64, win, axis=-1)
    fr, pr = scipy.signal.welch(x, 1000.0, window=win, nperseg=128, noverlap=64, axis=-1)
    np.testing.assert_allclose(p, pr, rtol=1e-6)
    f, p = F.welch_psd(np.moveaxis(x, -1, 1), 1000.0, 128, axis=1)
    assert p.shape == (2, 65, 3)
    np.testing.assert_allclose(np.moveaxis(p, 1, -1), pr, rtol=1e-6)


def test_sampling_rate_ms_to_hz():
    assert F.sampling_rate(1.0) == 1000.0
    assert F.sampling_rate(0.5) == 2000.0
    assert F.sampling_rate(4) == 250.0


def _sinusoid(T, period_ms, f0, amplitude, phase=0.0):
    t = np.arange(T) * period_ms / 1000.0  # s
    return amplitude * np.cos(2 * np.pi * f0 * t + phase)


def test_band_power_of_sinusoid_is_half_amplitude_squared():
    period_ms, nperseg, A = 1.0, 500, 3.0
    fs = F.sampling_rate(period_ms)
    f0 = 10 * fs / nperseg  # 20 Hz, on a bin
    x = _sinusoid(4000, period_ms, f0, A)[:, None] * np.array([1.0, 0.5])
    f, p = F.welch_psd(x, fs, nperseg)
    bp = F.band_power(f, p, (15.0, 25.0))
    np.testing.assert_allclose(bp, [A**2 / 2, A**2 / 8], rtol=1e-10)
    # an off-bin sinusoid leaks a little outside its band
    x2 = _sinusoid(4000, period_ms, 21.3, A)
    f, p = F.welch_psd(x2, fs, nperseg)
    np.testing.assert_allclose(F.band_power(f, p, (13.0, 30.0)), A**2 / 2, rtol=2e-3)


def test_relative_band_power_of_two_sinusoids():
    fs, nperseg = 1000.0, 500
    x = _sinusoid(4000, 1.0, 20.0, 2.0) + _sinusoid(4000, 1.0, 60.0, 1.0, 0.3)
    f, p = F.welch_psd(x, fs, nperseg)
    np.testing.assert_allclose(F.relative_band_power(f, p, (10.0, 30.0)), 4 / 5, rtol=1e-10)
    np.testing.assert_allclose(F.relative_band_power(f, p, (50.0, 70.0), total_band=(10.0, 70.0)), 1 / 5, rtol=1e-10)
    np.testing.assert_allclose(F.band_power(f, p, (0.0, 500.0)), np.mean(x**2), rtol=1e-10)


def test_grad_band_power_vs_finite_differences():
    x = rng(23).standard_normal((300, 2))

    def f(y):
        fr, p = F.welch_psd(y, 250.0, 64)
        return jnp.sum(F.band_power(fr, p, (5.0, 20.0)))

    check_grad(f, x)


# ----------------------------------------------------------------------------------------------------------- SEEG
def test_seeg_log_power_definition():
    x = rng(24).standard_normal((1000, 3)) * np.array([1.0, 2.0, 0.1]) + 5.0
    window, step = 100, 25
    out = F.seeg_log_power(x, window, step)
    ref = np.array([np.log(np.var(x[s : s + window], axis=0) + 1e-10) for s in range(0, 1000 - window + 1, step)])
    assert out.shape == ref.shape == (37, 3)
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    # flat windows stay finite, with a finite gradient
    flat = np.zeros((50, 2))
    assert np.all(np.isfinite(F.seeg_log_power(flat, 10, 10)))
    g = jax.grad(lambda y: jnp.sum(F.seeg_log_power(y, 10, 10)))(jnp.asarray(flat))
    assert np.all(np.isfinite(g))


def test_grad_seeg_log_power_vs_finite_differences():
    x = rng(25).standard_normal((120, 2))
    check_grad(lambda y: jnp.sum(F.seeg_log_power(y, 30, 15) ** 2), x)


# --------------------------------------------------------------------------------------------------------- phases
@pytest.mark.parametrize("T", [256, 257])
def test_phase_matches_scipy_hilbert(T):
    x = rng(26).standard_normal((T, 4)) + 1.0
    ph = np.asarray(F.phase_from_signal(x, demean=False))
    ref = np.angle(scipy.signal.hilbert(x, axis=0))
    np.testing.assert_allclose(np.angle(np.exp(1j * (ph - ref))), 0.0, atol=1e-10)
    np.testing.assert_allclose(F.analytic_signal(x.T, axis=1), scipy.signal.hilbert(x.T, axis=1), atol=1e-10)
    ph = np.asarray(F.phase_from_signal(x))
    ref = np.angle(scipy.signal.hilbert(x - x.mean(0), axis=0))
    np.testing.assert_allclose(np.angle(np.exp(1j * (ph - ref))), 0.0, atol=1e-10)


def test_kuramoto_order_analytic_cases():
    T, N = 2000, 64
    # perfectly synchronised phases
    common = np.linspace(0, 40, T)[:, None] * np.ones((1, N))
    np.testing.assert_allclose(F.kuramoto_order(common), 1.0, rtol=1e-12)
    # independent uniform phases: E[R^2] = 1 / N
    th = rng(27).uniform(-np.pi, np.pi, (T, N))
    R = np.asarray(F.kuramoto_order(th))
    np.testing.assert_allclose(R, np.abs(np.exp(1j * th).mean(1)), rtol=1e-12)
    np.testing.assert_allclose(np.mean(R**2), 1 / N, rtol=0.1)
    assert 0.5 / np.sqrt(N) < np.mean(R) < 1.5 / np.sqrt(N)
    np.testing.assert_allclose(F.synchrony(R), R.mean(), rtol=1e-12)
    np.testing.assert_allclose(F.metastability(R), R.std(), rtol=1e-12)


def test_kuramoto_of_phase_locked_sinusoids():
    # cos(w t + phi_j), periodic on the record -> exact analytic signal; R(t) = |mean exp(i phi_j)|
    phis = np.array([0.0, 0.4, 1.0, -0.7, 2.0])
    x = np.stack([_sinusoid(1000, 1.0, 12.0, 1.5, p) + 3.0 for p in phis], axis=1)
    R = F.kuramoto_order(F.phase_from_signal(x))
    np.testing.assert_allclose(R, np.abs(np.exp(1j * phis).mean()), rtol=1e-9)
    assert float(F.metastability(R)) < 1e-9


def test_grad_kuramoto_vs_finite_differences():
    x = rng(28).standard_normal((128, 4)) + np.sin(np.linspace(0, 30, 128))[:, None]
    check_grad(lambda y: F.metastability(F.kuramoto_order(F.phase_from_signal(y))), x, rtol=1e-5)


# ----------------------------------------------------------------------------------------------- vmap and jit
def test_vmap_equals_loop():
    xs = rng(29).standard_normal((2, 200, 5))
    for f in (
        F.fc,
        lambda x: F.fcd(x, 50, 25),
        lambda x: F.welch_psd(x, 100.0, 64)[1],
        lambda x: F.kuramoto_order(F.phase_from_signal(x)),
        lambda x: F.ks_distance(x[:, 0], x[:, 1], smooth=0.1),
    ):
        np.testing.assert_allclose(jax.vmap(f)(xs), np.stack([f(x) for x in xs]), rtol=1e-12, atol=1e-14)


def test_jit_matches_eager_and_traces_once():
    x = rng(30).standard_normal((200, 5))  # shapes and static arguments as in test_vmap_equals_loop
    fcd_jit = jax.jit(F.fcd, static_argnums=(1, 2))
    np.testing.assert_allclose(fcd_jit(x, 50, 25), F.fcd(x, 50, 25), rtol=1e-12)

    traces = []

    @jax.jit
    def loss(y, fs, temperature):
        traces.append(1)
        f, p = F.welch_psd(y, fs, 64)
        bp = F.band_power(f, p, (5.0, 20.0))
        ks = F.ks_distance(F.fcd_values(F.fcd(y, 50, 25)), y[:, 0], smooth=temperature)
        return jnp.sum(bp) + ks + F.synchrony(F.kuramoto_order(F.phase_from_signal(y)))

    eager = loss.__wrapped__(x, 100.0, 0.05)
    np.testing.assert_allclose(loss(x, 100.0, 0.05), eager, rtol=1e-12)
    loss(x + 1.0, 120.0, 0.1)
    assert len(traces) == 2  # one eager call + one trace


# --------------------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: F.fc(np.zeros((10, 2, 3))), r"fc: expected a 2-D array .*ys\[:, 0\]"),
        (lambda: F.fc(np.zeros((1, 3))), "at least 2 time points"),
        (lambda: F.fc_upper(np.zeros((3, 4))), "square matrix"),
        (lambda: F.fc_correlation(np.eye(3), np.eye(4)), "same size"),
        (lambda: F.fcd(np.zeros((50, 4)), 60, 5), "window=60 samples is longer than the series"),
        (lambda: F.fcd(np.zeros((50, 4)), 10, 0), "step must be a positive integer"),
        (lambda: F.fcd(np.zeros((50, 4)), 10.5, 1), "window must be a positive integer"),
        (lambda: F.fcd(np.zeros((50,)), 10, 1), "expected a 2-D array"),
        (lambda: F.fcd_values(np.zeros((3, 3, 3))), "2-D"),
        (lambda: F.ks_distance(np.zeros(0), np.zeros(3)), "at least one value"),
        (lambda: F.ks_distance(np.zeros(2), np.zeros(3), smooth=0.0), "finite positive"),
        (lambda: F.sampling_rate(0.0), "period_ms must be a finite positive number"),
        (lambda: F.sampling_rate(-1.0), "period_ms must be a finite positive number"),
        (lambda: F.welch_psd(np.zeros(100), 0.0, 32), "fs"),
        (lambda: F.welch_psd(np.zeros(100), 100.0, 128), "nperseg=128 is longer than the series"),
        (lambda: F.welch_psd(np.zeros(100), 100.0, 32, 32), "noverlap"),
        (lambda: F.welch_psd(np.zeros(100), 100.0, 32, window=np.ones(5)), "window has shape"),
        (lambda: F.welch_psd(np.zeros(100), 100.0, 32, nfft=16), "nfft=16 must be >= nperseg"),
        (lambda: F.welch_psd(np.zeros((100, 2)), 100.0, 32, axis=2), "axis=2 is out of range"),
        (lambda: F.welch_psd(np.zeros(100), 100.0, 32, detrend="linear"), "detrend"),
        (lambda: F.band_power(np.arange(5.0), np.ones(5), (3.0, 1.0)), "lo < hi"),
        (lambda: F.band_power(np.arange(5.0), np.ones(5), (1.2, 1.8)), "fewer than 2 frequency bins"),
        (lambda: F.band_power(np.arange(5.0), np.ones((4, 2)), (1.0, 3.0)), "no axis 0 of length 5"),
        (lambda: F.seeg_log_power(np.zeros(100), 10, 5), "expected a 2-D array"),
        (lambda: F.seeg_log_power(np.zeros((100, 2)), 200, 5), "longer than the series"),
        (lambda: F.kuramoto_order(np.zeros(10)), "expected a 2-D array"),
        (lambda: F.metastability(np.zeros((10, 2))), "expected a 1-D array"),
    ],
)
def test_bad_static_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
