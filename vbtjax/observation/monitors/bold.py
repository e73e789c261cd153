r"""BOLD monitors: the Balloon–Windkessel hemodynamic model, and TVB's HRF-kernel ``Bold`` monitor.

Two ways to turn simulated neural activity into a BOLD (fMRI) signal:

* :class:`BalloonWindkessel` integrates the nonlinear hemodynamic model of Friston et al. (2000) alongside the
  network and reads the BOLD signal from the observation equation at the end of each repetition time (TR). Its
  parameters are differentiable, so they can be fitted with the network's.
* :class:`Bold` is TVB's ``Bold`` monitor: interim 4 ms averages of the neural signal convolved with a sampled
  hemodynamic response function (HRF) kernel (:class:`FirstOrderVolterra` by default, or :class:`Gamma`,
  :class:`DoubleExponential`, :class:`MixtureOfGammas`), for parity with TVB.

Units: simulation time (``period``, ``dt``, ``dt_hemo``, ``hrf_length``) in ms, as everywhere in vbtjax; the
hemodynamic equations and the HRF kernels use seconds (their published parameters are in s and 1/s), and the
conversion is done here.

Both are chunk-wise stream transforms (see :mod:`vbtjax.monitors._base`): the state they carry between chunks is
bounded (Balloon–Windkessel: 4 hemodynamic variables plus one open averaging window per recorded variable and region;
``Bold``: the last ``hrf_length`` ms of 4 ms interim averages), and only their samples are kept.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np
from jaxtyping import Array, Float

from ..._params import check_parameters, param
from ._base import AbstractMonitor, as_tuple

__all__ = [
    "AbstractHRFKernel",
    "BalloonWindkessel",
    "Bold",
    "DoubleExponential",
    "FirstOrderVolterra",
    "Gamma",
    "MixtureOfGammas",
]


def _whole_multiple(owner: str, what: str, value: float, unit: float, unit_name: str) -> int:
    """``value / unit`` as a positive integer, or a ``ValueError`` that says what to choose instead."""
    n = round(value / unit)
    if n < 1 or abs(n * unit - value) > 1e-6 * max(value, unit):
        raise ValueError(
            f"{owner}: {what}={value:g} ms is not a whole multiple of {unit_name}={unit:g} ms; "
            f"choose e.g. {max(n, 1) * unit:g} ms."
        )
    return n


def _window_sums(xs, carry, n_start, q: int):
    """Sums of the states of a chunk over windows of ``q`` steps aligned on multiples of ``q`` (absolute steps).

    Returns ``(sums, n_complete, new_carry)``: ``sums[i]`` is the sum over window ``n_start // q + i`` (local window 0
    includes ``carry``, the part of it seen in earlier chunks), ``ceil(L / q) + 1`` windows of which the first
    ``n_complete`` end inside the chunk; ``new_carry`` is the partial sum of the window still open at its end.
    """
    L = xs.shape[0]
    n_win = -(-L // q) + 1
    seg = (n_start + jnp.arange(L)) // q - n_start // q
    sums = jax.ops.segment_sum(xs, seg, num_segments=n_win)
    sums = sums.at[0].add(carry)
    n_complete = (n_start + L) // q - n_start // q
    new_carry = jnp.where((n_start + L) % q != 0, sums[seg[-1]], jnp.zeros_like(carry))
    return sums, n_complete, new_carry


# ============================================================================================ Balloon–Windkessel
class BalloonWindkessel(AbstractMonitor):
    r"""BOLD signal from the Balloon–Windkessel hemodynamic model, sampled every ``period`` ms (the TR).

    For each recorded variable and region, the neural input $z$ (the recorded state variable, in the model's units;
    by default the model's first state variable, e.g. the firing rate ``r`` of ``MontbrioPazoRoxin`` or ``V`` of
    ``Generic2dOscillator``: choose another with ``variables_of_interest``) drives (time $t$ in **seconds**)

    $$\dot s = \varepsilon z - \kappa s - \gamma (f - 1), \qquad \dot f = s,$$
    $$\tau \dot v = f - v^{1/\alpha}, \qquad
      \tau \dot q = \frac{f}{\rho}\left(1 - (1 - \rho)^{1/f}\right) - v^{1/\alpha} \frac{q}{v},$$

    (vasodilatory signal $s$, inflow $f$, blood volume $v$, deoxyhemoglobin content $q$; Friston et al. 2000), from
    rest $s = 0$, $f = v = q = 1$ at t0. The BOLD sample at the end of each TR is

    $$y = V_0 \left(k_1 (1 - q) + k_2 (1 - q / v) + k_3 (1 - v)\right).$$

    **Integration.** The neural input is averaged over windows of ``dt_hemo`` ms (aligned on t0, carried across
    chunks like :class:`~vbtjax.monitors.TemporalAverage`), and each window advances the hemodynamics by one
    classical Runge–Kutta (RK4) step of ``dt_hemo`` with the window's mean input held constant. The variables are
    integrated as $(s, \ln f, \ln v, \ln q)$ (Stephan et al. 2008), so $f, v, q$ stay positive for any input.
    Accuracy: the hemodynamic time constants are about 1 s, so with the default ``dt_hemo = 1`` ms each step has
    $h / \tau \approx 10^{-3}$ and RK4's global error, $O((h/\tau)^4)$, is negligible: a pulse response agrees with
    scipy's ``solve_ivp`` (DOP853, rtol 1e-12) on the same window-mean input to 5e-11 of its peak, and float32 runs
    agree with float64 to ~4e-6 (the log variables keep relative precision near rest, where $f, v, q \approx 1$).
    Heun would give ~1e-6 at the same step. RK4's four evaluations per ``dt_hemo`` cost little next to the
    ``dt_hemo / dt`` network steps they follow. Averaging the input over ``dt_hemo`` windows preserves its integral
    over each window (what drives $s$); finer structure, far above the hemodynamic bandwidth of ~0.1 Hz, is dropped.

    The BOLD sample ``k`` (0-based) is read at step ``(k + 1) q`` after t0, ``q = period / dt``, time stamp
    ``(k + 1) period`` ms. With the default parameters the response to a brief pulse peaks ~3 s after it and
    undershoots (minimum ~9 s). Hemodynamics start at rest, so with a neural input whose baseline is not zero the
    first ~10–20 s are a transient towards the steady state of that baseline (discard them, or start from a
    warmed-up network). The input is used as is: no baseline is subtracted.

    **Fields** (``period`` and ``dt_hemo`` in ms; the rest are differentiable parameters, a scalar or one value per
    region ``(N,)``, in seconds-based units):
    - `period`: the TR, ms (720.0). A whole multiple of ``dt_hemo``.
    - `variables_of_interest`: the recorded variable(s) used as neural input ((0,): the first state variable); each
      recorded variable drives its own hemodynamics, so ``ys`` is ``(T, n_voi, N)``.
    - `dt_hemo`: hemodynamic step, ms (1.0). A whole multiple of the simulation ``dt``.
    - `kappa`: rate of signal decay, 1/s (0.65). `gamma`: rate of flow-dependent elimination, 1/s (0.41).
    - `tau`: hemodynamic transit time, s (0.98). `alpha`: Grubb's exponent (0.32).
    - `rho`: resting oxygen extraction fraction $E_0$ (0.34).
    - `V0`: resting venous blood volume fraction (0.02).
    - `k1`, `k2`, `k3`: observation coefficients (Friston et al. 2000/2003: $7\rho = 2.38$, $2$, $2\rho - 0.2 =
      0.48$; these defaults do not follow a changed ``rho``: use :meth:`friston2000` to derive them).
    - `efficacy`: neural efficacy $\varepsilon$ multiplying $z$ in $\dot s$ (1.0).

    :meth:`stephan2007` builds the monitor with the revised observation coefficients of Stephan et al. (2007).

    References: Friston, Mechelli, Turner & Price (2000) NeuroImage 12:466–477; Friston, Harrison & Penny (2003)
    NeuroImage 19:1273–1302; Stephan, Weiskopf, Drysdale, Robinson & Friston (2007) NeuroImage 38:387–401; Stephan,
    Kasper, Harrison et al. (2008) NeuroImage 42:649–662.
    """

    period: float | None = eqx.field(default=720.0, static=True)
    variables_of_interest: tuple | None = eqx.field(default=(0,), static=True, converter=as_tuple)
    dt_hemo: float = eqx.field(default=1.0, static=True)
    kappa: Float[Array, "*N"] = param(0.65)
    gamma: Float[Array, "*N"] = param(0.41)
    tau: Float[Array, "*N"] = param(0.98)
    alpha: Float[Array, "*N"] = param(0.32)
    rho: Float[Array, "*N"] = param(0.34)
    V0: Float[Array, "*N"] = param(0.02)
    k1: Float[Array, "*N"] = param(7.0 * 0.34)
    k2: Float[Array, "*N"] = param(2.0)
    k3: Float[Array, "*N"] = param(2.0 * 0.34 - 0.2)
    efficacy: Float[Array, "*N"] = param(1.0)

    _PARAMS = ("kappa", "gamma", "tau", "alpha", "rho", "V0", "k1", "k2", "k3", "efficacy")

    def __check_init__(self):
        if self.period is None:
            raise ValueError("BalloonWindkessel: period (the TR, in ms) is required, e.g. period=720.0.")
        if not (isinstance(self.dt_hemo, int | float) and math.isfinite(self.dt_hemo) and self.dt_hemo > 0):
            raise ValueError(f"BalloonWindkessel: dt_hemo must be a positive number of ms, got {self.dt_hemo!r}.")
        check_parameters(self, self._PARAMS)

    # ------------------------------------------------------------------------------------------ constructors
    @classmethod
    def friston2000(cls, rho: float = 0.34, **kwargs) -> BalloonWindkessel:
        """The Friston et al. (2000, 2003) observation coefficients for a given ``rho``:
        ``k1 = 7 rho``, ``k2 = 2``, ``k3 = 2 rho - 0.2`` (``V0 = 0.02`` unless given). Other fields by keyword."""
        return cls(rho=rho, k1=7.0 * rho, k2=2.0, k3=2.0 * rho - 0.2, **kwargs)

    @classmethod
    def stephan2007(
        cls,
        field_strength: float = 1.5,
        *,
        TE: float = 0.04,
        epsilon: float = 1.0,
        r0: float | None = None,
        V0: float = 0.04,
        rho: float = 0.34,
        **kwargs,
    ) -> BalloonWindkessel:
        r"""The revised observation coefficients of Stephan et al. (2007):

        $k_1 = 4.3\, \nu_0 E_0 T_E$, $k_2 = \varepsilon r_0 E_0 T_E$, $k_3 = 1 - \varepsilon$, with $E_0 = $ ``rho``.

        **Arguments:**
        - `field_strength`: in tesla (1.5). The frequency offset at the outer surface of magnetised vessels is
          $\nu_0 = 40.3$ 1/s at 1.5 T and scales linearly with the field: $\nu_0 = 40.3 \cdot B_0 / 1.5$.
        - `TE`: echo time, s (0.04).
        - `epsilon`: ratio of intra- to extravascular signal (1.0).
        - `r0`: slope of the intravascular relaxation rate against oxygen saturation, 1/s (25 at 1.5 T; it depends
          on the field and the tissue, so give it for other field strengths).
        - `V0`: resting venous blood volume fraction (0.04). `rho`: resting oxygen extraction $E_0$ (0.34).
        - other fields (``period``, ``dt_hemo``, ``kappa``, ...) by keyword.

        At 1.5 T with the defaults: ``k1 = 2.357``, ``k2 = 0.34``, ``k3 = 0``.
        """
        if not (isinstance(field_strength, int | float) and field_strength > 0):
            raise ValueError(f"BalloonWindkessel.stephan2007: field_strength must be in tesla, got {field_strength!r}.")
        if r0 is None:
            if abs(field_strength - 1.5) > 1e-9:
                raise ValueError(
                    "BalloonWindkessel.stephan2007: r0 (1/s) is only tabulated at 1.5 T (25 1/s); give r0= for "
                    f"field_strength={field_strength} T."
                )
            r0 = 25.0
        nu0 = 40.3 * field_strength / 1.5
        k1 = 4.3 * nu0 * rho * TE
        k2 = epsilon * r0 * rho * TE
        k3 = 1.0 - epsilon
        return cls(rho=rho, V0=V0, k1=k1, k2=k2, k3=k3, **kwargs)

    # ------------------------------------------------------------------------------------------ time layout
    def hemo_steps(self, dt: float) -> int:
        """Simulation steps per hemodynamic step, ``dt_hemo / dt`` (``ValueError`` unless a whole number)."""
        return _whole_multiple("BalloonWindkessel", "dt_hemo", self.dt_hemo, dt, "dt")

    def istep(self, dt: float) -> int:
        q = super().istep(dt)
        _whole_multiple("BalloonWindkessel", "period", self.period, self.dt_hemo, "dt_hemo")
        self.hemo_steps(dt)
        return q

    # ------------------------------------------------------------------------------------------ equations
    def derivatives(self, y: Array, z: Array) -> Array:
        """Time derivatives (per second) of ``(s, ln f, ln v, ln q)`` for neural input ``z``."""
        s, lf, lv, lq = y
        f, v, q = jnp.exp(lf), jnp.exp(lv), jnp.exp(lq)
        v_out = jnp.exp(lv / self.alpha)  # outflow v^(1/alpha)
        # E(f) / rho = (1 - (1 - rho)^(1/f)) / rho, written as expm1(l / f) / expm1(l) with l = ln(1 - rho): the
        # same to rounding, and exactly 1 at f = 1, so that rest is an exact fixed point
        log_keep = jnp.log1p(-self.rho)
        extraction_ratio = jnp.expm1(log_keep / f) / jnp.expm1(log_keep)
        ds = self.efficacy * z - self.kappa * s - self.gamma * (f - 1.0)
        dlf = s / f
        dlv = (f - v_out) / (self.tau * v)
        dlq = (f * extraction_ratio - v_out * q / v) / (self.tau * q)
        return jnp.stack([ds, dlf, dlv, dlq])

    def rk4_step(self, y: Array, z: Array, h: float) -> Array:
        """One RK4 step of ``h`` seconds with the input ``z`` held constant."""
        k1 = self.derivatives(y, z)
        k2 = self.derivatives(y + 0.5 * h * k1, z)
        k3 = self.derivatives(y + 0.5 * h * k2, z)
        k4 = self.derivatives(y + h * k3, z)
        return y + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)

    def observe(self, y: Array) -> Array:
        """The BOLD signal of hemodynamic states ``(s, ln f, ln v, ln q)``."""
        v, q = jnp.exp(y[2]), jnp.exp(y[3])
        return self.V0 * (self.k1 * (1.0 - q) + self.k2 * (1.0 - q / v) + self.k3 * (1.0 - v))

    # ------------------------------------------------------------------------------------------ stream transform
    def init(self, x, dt):
        rest = jnp.zeros((4,) + x.shape, x.dtype)  # s = 0, ln f = ln v = ln q = 0
        return rest, jnp.zeros_like(x)  # hemodynamic state, sum over the open dt_hemo window

    def chunk(self, mstate, xs, n_start, dt):
        q = self.istep(dt)
        qh = self.hemo_steps(dt)
        L = xs.shape[0]
        y, open_sum = mstate
        sums, n_complete, open_sum = _window_sums(xs, open_sum, n_start, qh)
        h = self.dt_hemo / 1000.0  # s
        dtype = xs.dtype

        def advance(y, inp):
            i, total = inp
            y_new = self.rk4_step(y, total / qh, h).astype(dtype)
            y = jnp.where(i < n_complete, y_new, y)
            return y, y

        n_win = sums.shape[0]
        y, ys = jax.lax.scan(advance, y, (jnp.arange(n_win), sums))
        # BOLD sample j ends at step e_j = (n_start // q + 1 + j) q, the end of window e_j / qh of the run
        e = (n_start // q + 1 + jnp.arange(self.n_slots(q, L))) * q
        idx = jnp.clip(e // qh - n_start // qh - 1, 0, n_win - 1)
        bold = self.observe(jnp.moveaxis(ys[idx], 1, 0)).astype(dtype)  # (slots, n_voi, N)
        return (y, open_sum), bold


# ============================================================================================ HRF kernels (TVB)
def _power_exp(t, scale, p):
    """``(t / scale) ** p * exp(-t / scale)`` for ``t >= 0``, with finite gradients at ``t = 0``."""
    x = t / scale
    pos = x > 0
    safe = jnp.where(pos, x, 1.0)
    val = jnp.exp(p * jnp.log(safe) - safe)
    at_zero = jnp.where(p == 0, 1.0, 0.0)
    return jnp.where(pos, val, at_zero)


class AbstractHRFKernel(eqx.Module):
    """A hemodynamic response function for :class:`Bold` (TVB's ``HRFKernelEquation``); time in seconds.

    ``__call__(t)`` is the formula; ``evaluate(t)`` the kernel sampled on the grid ``t`` as TVB uses it (some
    kernels are normalised over that grid); ``output(c)`` maps the convolution ``c`` to the BOLD signal.
    """

    def __call__(self, t: Float[Array, " T"]) -> Float[Array, " T"]:
        raise NotImplementedError

    def evaluate(self, t: Float[Array, " T"]) -> Float[Array, " T"]:
        return self(t)

    def output(self, conv: Array) -> Array:
        return conv


class FirstOrderVolterra(AbstractHRFKernel):
    r"""TVB's default HRF: the first-order Volterra kernel of the Balloon model (Friston et al. 2000), a damped
    oscillator

    $$G(t) = \frac{1}{3} e^{-t / (2 \tau_s)} \frac{\sin(\omega t)}{\omega}, \qquad
      \omega = \sqrt{1 / \tau_f - 1 / (4 \tau_s^2)} \qquad (t \text{ in s}),$$

    and TVB's output scaling: BOLD $= k_1 V_0 \left(\sum G \cdot u - 1\right)$.

    **Parameters** (TVB's names and defaults): `tau_s` (0.8 s), `tau_f` (0.4 s), `k_1` (5.6), `V_0` (0.02).
    """

    tau_s: Float[Array, ""] = param(0.8)
    tau_f: Float[Array, ""] = param(0.4)
    k_1: Float[Array, ""] = param(5.6)
    V_0: Float[Array, ""] = param(0.02)

    def __call__(self, t):
        omega = jnp.sqrt(1.0 / self.tau_f - 1.0 / (4.0 * self.tau_s**2))
        return jnp.exp(-0.5 * t / self.tau_s) * jnp.sin(omega * t) / (3.0 * omega)

    def output(self, conv):
        return (conv - 1.0) * (self.k_1 * self.V_0)


class Gamma(AbstractHRFKernel):
    r"""Gamma HRF (Boynton et al. 1996): $h(t) = \frac{(t/\tau)^{n-1} e^{-t/\tau}}{\tau (n-1)!}$ ($t$ in s),
    normalised to a maximum of ``a`` over the sampled grid (as TVB does, so $\tau (n-1)!$ cancels).

    **Parameters** (TVB's defaults): `tau` (1.08 s), `n` (3.0), `a` (0.1).
    """

    tau: Float[Array, ""] = param(1.08)
    n: Float[Array, ""] = param(3.0)
    a: Float[Array, ""] = param(0.1)

    def __call__(self, t):
        return _power_exp(t, self.tau, self.n - 1.0) / (self.tau * jnp.exp(jsp.gammaln(self.n)))

    def evaluate(self, t):
        h = self(t)
        return self.a * h / jnp.max(h)


class DoubleExponential(AbstractHRFKernel):
    r"""Difference of two damped sines (Polonsky et al. 2000), normalised to a maximum of ``a`` over the grid:

    $$h(t) = A_1 e^{-t/\tau_1} \sin(2 \pi f_1 t) - A_2 e^{-t/\tau_2} \sin(2 \pi f_2 t) \qquad (t \text{ in s}).$$

    **Parameters** (TVB's defaults): `tau_1` (7.22 s), `f_1` (0.03 Hz), `amp_1` (0.1), `tau_2` (7.4 s),
    `f_2` (0.12 Hz), `amp_2` (0.1), `a` (0.1).
    """

    tau_1: Float[Array, ""] = param(7.22)
    f_1: Float[Array, ""] = param(0.03)
    amp_1: Float[Array, ""] = param(0.1)
    tau_2: Float[Array, ""] = param(7.4)
    f_2: Float[Array, ""] = param(0.12)
    amp_2: Float[Array, ""] = param(0.1)
    a: Float[Array, ""] = param(0.1)

    def __call__(self, t):
        first = self.amp_1 * jnp.exp(-t / self.tau_1) * jnp.sin(2.0 * jnp.pi * self.f_1 * t)
        second = self.amp_2 * jnp.exp(-t / self.tau_2) * jnp.sin(2.0 * jnp.pi * self.f_2 * t)
        return first - second

    def evaluate(self, t):
        h = self(t)
        return self.a * h / jnp.max(h)


class MixtureOfGammas(AbstractHRFKernel):
    r"""Difference of two gamma shapes, close to SPM's canonical HRF (Glover 1999), as TVB writes it:

    $$h(t) = \frac{(\lambda t)^{a_1 - 1} e^{-\lambda t}}{\Gamma(a_1)} - c \frac{(\lambda t)^{a_2 - 1} e^{-\lambda t}}
      {\Gamma(a_2)} \qquad (t \text{ in s}; \text{ not normalised}).$$

    **Parameters** (TVB's defaults): `a_1` (6.0), `a_2` (13.0), `l` (1.0, 1/s), `c` (0.4).
    """

    a_1: Float[Array, ""] = param(6.0)
    a_2: Float[Array, ""] = param(13.0)
    l: Float[Array, ""] = param(1.0)  # noqa: E741 (TVB's name)
    c: Float[Array, ""] = param(0.4)

    def __call__(self, t):
        scale = 1.0 / self.l
        first = _power_exp(t, scale, self.a_1 - 1.0) / jnp.exp(jsp.gammaln(self.a_1))
        second = _power_exp(t, scale, self.a_2 - 1.0) / jnp.exp(jsp.gammaln(self.a_2))
        return first - self.c * second


# ============================================================================================ TVB's Bold monitor
class Bold(AbstractMonitor):
    r"""TVB's ``Bold`` monitor: a sampled HRF kernel convolved with 4 ms averages of the neural signal.

    Every ``interim_period`` (4 ms, TVB's fixed interim rate of 0.25 /ms) the recorded variable is averaged over
    the interim window (steps aligned on t0). The last $S = \lceil$ ``hrf_length`` / ``interim_period`` $\rceil$
    interim averages $u$ are kept (a ring, bounded memory), and at the end of each ``period`` the BOLD sample is

    $$c = \sum_{a=0}^{S-1} w_a\, u_{k-a}, \qquad w_0 = G(t_{S-1}), \quad w_a = G(t_{a-1})\ (a \geq 1),$$

    with $u_k$ the newest interim average, $G$ the kernel sampled at $t_i = i \cdot$ ``hrf_length`` $/ S$ (s),
    $i = 0 \ldots S-1$ (``hrf_kernel.evaluate``), and BOLD $=$ ``hrf_kernel.output(c)``: $k_1 V_0 (c - 1)$ for
    :class:`FirstOrderVolterra`, $c$ for the others. This is TVB's computation to the letter, including its pairing
    of the newest interim average with the kernel's last value $G(t_{S-1})$ (the sample before it gets $G(0)$): TVB
    rolls its reversed kernel by the index of the newest average, one slot short. The sum is not multiplied by the
    interim period (TVB's scaling).

    Differences from TVB (see ``docs/concepts.md``):

    * **Sampling phase.** TVB's interim windows and BOLD samples fall on multiples of its absolute step count,
      which includes the history (given ``initial_conditions`` of ``H`` rows, the first step is step ``H``; with its
      default history, step 1). vbtjax aligns them on t0: sample ``k`` is the one at ``(k + 1) period`` ms after t0,
      and interim window ``j`` averages the states at ``(4 j, 4 (j + 1)]`` ms. Fed the same input in the same phase,
      the outputs are identical (``tests/test_bold.py`` compares them with TVB's to ~1e-15).
    * **Before t0** TVB's interim averages are zeros (its buffers start empty; for the first ``hrf_length`` ms the
      BOLD signal is a transient). That is the default here too; ``fill_history=True`` instead takes the recorded
      variables at t0 as their value before t0 (a network at rest before the run), which removes most of the
      transient.
    * ``interim_period`` must be a whole multiple of ``dt`` (TVB rounds ``4 / dt``), and ``period`` a whole
      multiple of ``dt``; ``period`` need not be a multiple of the interim period (then the newest complete interim
      average is used, as in TVB).
    * The kernel parameters are differentiable (``eqx.tree_at`` on ``hrf_kernel``).

    **Fields:**
    - `period`: sampling period (TR), ms (2000.0).
    - `hrf_kernel`: :class:`FirstOrderVolterra` (default), :class:`Gamma`, :class:`DoubleExponential`,
      :class:`MixtureOfGammas`, or any :class:`AbstractHRFKernel`.
    - `hrf_length`: duration of the kernel, ms (20000.0).
    - `interim_period`: ms (4.0, TVB's).
    - `variables_of_interest`: the recorded variable(s) ((0,): the model's first state variable; TVB's default is
      the model's own ``variables_of_interest``, usually that same first variable).
    - `fill_history`: see above (False, TVB).

    Memory: the monitor state holds ``S x n_voi x N`` interim averages (5000 x n_voi x N at the defaults); reverse-mode
    gradients store one copy per chunk.
    """

    period: float | None = eqx.field(default=2000.0, static=True)
    variables_of_interest: tuple | None = eqx.field(default=(0,), static=True, converter=as_tuple)
    hrf_kernel: AbstractHRFKernel = eqx.field(default_factory=FirstOrderVolterra)
    hrf_length: float = eqx.field(default=20000.0, static=True)
    interim_period: float = eqx.field(default=4.0, static=True)
    fill_history: bool = eqx.field(default=False, static=True)

    def __check_init__(self):
        if self.period is None:
            raise ValueError("Bold: period (the TR, in ms) is required, e.g. period=2000.0.")
        if not isinstance(self.hrf_kernel, AbstractHRFKernel):
            raise TypeError(
                "Bold: hrf_kernel must be a vbtjax.monitors HRF kernel (FirstOrderVolterra, Gamma, DoubleExponential, "
                f"MixtureOfGammas), got {type(self.hrf_kernel).__name__}."
            )
        for name in ("hrf_length", "interim_period"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"Bold: {name} must be a positive number of ms, got {v!r}.")
        if self.hrf_length < self.interim_period:
            raise ValueError(
                f"Bold: hrf_length={self.hrf_length} ms is shorter than the interim period {self.interim_period} ms."
            )

    # ------------------------------------------------------------------------------------------ layout
    @property
    def n_kernel(self) -> int:
        """Interim averages in the kernel, ``ceil(hrf_length / interim_period)`` (TVB's ``_stock_steps``)."""
        return math.ceil(round(self.hrf_length / self.interim_period, 9))

    def kernel_times(self) -> np.ndarray:
        """The times (s) at which the kernel is sampled, ``i * hrf_length / S``, ``i = 0 .. S - 1``."""
        S = self.n_kernel
        return np.arange(S) * (self.hrf_length / 1000.0 / S)

    def kernel(self) -> Float[Array, " S"]:
        """The sampled kernel ``G(t_i)`` (``hrf_kernel.evaluate`` on :meth:`kernel_times`)."""
        return self.hrf_kernel.evaluate(jnp.asarray(self.kernel_times()))

    def interim_steps(self, dt: float) -> int:
        """Simulation steps per interim average, ``interim_period / dt``."""
        return _whole_multiple("Bold", "interim_period", self.interim_period, dt, "dt")

    def istep(self, dt: float) -> int:
        q = super().istep(dt)
        self.interim_steps(dt)
        return q

    # ------------------------------------------------------------------------------------------ stream transform
    def init(self, x, dt):
        S = self.n_kernel
        ring = jnp.broadcast_to(x, (S,) + x.shape) if self.fill_history else jnp.zeros((S,) + x.shape, x.dtype)
        # ring slot (k - 1) mod S holds interim average k (1-based, k-th window after t0), as TVB's stock does
        return ring.astype(x.dtype), jnp.zeros_like(x)

    def chunk(self, mstate, xs, n_start, dt):
        q = self.istep(dt)
        qi = self.interim_steps(dt)
        S = self.n_kernel
        L = xs.shape[0]
        dtype = xs.dtype
        ring, open_sum = mstate
        sums, n_complete, open_sum = _window_sums(xs, open_sum, n_start, qi)
        u = sums / qi  # u[i]: interim average k0 + 1 + i (complete for i < n_complete)
        n_win = u.shape[0]
        k0 = n_start // qi  # newest interim average completed before this chunk

        w = jnp.roll(self.kernel(), 1).astype(dtype)  # w[a]: weight of the interim average a windows older

        def weights(age):
            return jnp.where((age >= 0) & (age < S), w[jnp.clip(age, 0, S - 1)], 0.0)

        e = (n_start // q + 1 + jnp.arange(self.n_slots(q, L))) * q  # end step of each BOLD sample
        k_new = e // qi  # newest interim average of each BOLD sample
        k_ring = k0 - jnp.mod(k0 - 1 - jnp.arange(S), S)  # interim average held by each ring slot
        k_chunk = k0 + 1 + jnp.arange(n_win)
        conv = jnp.tensordot(weights(k_new[:, None] - k_ring[None, :]), ring, axes=1) + jnp.tensordot(
            weights(k_new[:, None] - k_chunk[None, :]), u, axes=1
        )
        bold = self.hrf_kernel.output(conv).astype(dtype)

        i = jnp.arange(n_win)
        keep = (i < n_complete) & (i >= n_complete - S)  # complete, and not overwritten later in this chunk
        slot = jnp.where(keep, jnp.mod(k0 + i, S), S)
        ring = ring.at[slot].set(u.astype(dtype), mode="drop")
        return (ring, open_sum), bold
