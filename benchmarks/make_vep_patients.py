"""Make the held-out VEP benchmark patients simulated by The Virtual Brain (``benchmarks/data/vep/``).

Each patient is a run of The Virtual Brain (TVB) whose SEEG is TVB's own iEEG monitor output, with conventions that
deliberately differ from vbtjax's VEP (``vbtjax/applications/vep/``): conduction delays, TVB's dipole lead field on
the signal itself (not a power model), two time scales, the 6-D Epileptor with its fast discharges, and TVB's sensor
set. The
script runs TVB, which is not a dependency of vbtjax and is never imported by the package or the tests; the tests
(``tests/test_vep_benchmark_patients.py``) only read the files. Run it from the repository root with a separate
virtual environment outside the repository::

    python -m venv /tmp/tvbenv
    /tmp/tvbenv/bin/pip install tvb-library==2.10.0 tvb-data numpy scipy
    nice -n 10 /tmp/tvbenv/bin/python benchmarks/make_vep_patients.py               # every patient (~6 min)
    nice -n 10 /tmp/tvbenv/bin/python benchmarks/make_vep_patients.py tvb_fast_1    # some patients only

Output: ``benchmarks/data/vep/<patient>.npz`` (``numpy.savez_compressed``; loads with ``allow_pickle=False``:
strings are numpy unicode arrays, the metadata a JSON string under ``meta_json``).

Conventions (units: time ms, rates 1/ms, distances mm, frequencies Hz; also written, in words and numbers, into
every file's ``meta_json``):

* Connectome: TVB's ``connectivity_76.zip`` (tvb-data). The diagonal is zeroed (the stored one is not zero: it holds
  2s), then the weights are divided by their maximum (3), so that the largest weight is 1 (weights take the values
  0, 1/3, 2/3, 1). Tract lengths as stored (up to 153.5 mm), conduction speed ``SPEED = 3`` mm/ms: TVB delays every
  afferent ``x_j`` by ``rint(L_ij / (speed dt))`` steps (at most 51 ms, 1023 steps at dt = 0.05 ms and 512 at dt =
  0.1 ms; TVB's horizon is the largest delay + 1). Regions 37 and 75 (rCC, lCC) have no connections.
* Coupling: TVB ``Difference(a=1)``, computed once per step from TVB's history buffer (float32 in TVB 2.10) and held
  through Heun's predictor and corrector: ``C_i(t) = a sum_j W_ij (x1_j(t - tau_ij) - x1_i(t))`` (the target's own
  ``x1`` undelayed). It enters ``dz_i/dt = r (... + Ks C_i)``; TVB's sign: ``Ks = -0.3`` is a permittivity coupling
  K = 0.3 that lowers ``z`` (raises excitability) of a region whose afferents are above it. For the 6-D Epileptor
  TVB computes the same difference of ``x2`` too (its second coupling variable), which enters only through
  ``Kf = 0`` (TVB's default), so it has no effect; ``Kvf = 0``.
* Models (TVB's parameter names; every numeric parameter saved as ``param_<name>``, TVB's declaration order; the
  ``modification`` flag is False):

  - ``Epileptor2D`` (Proix et al. 2014), TVB's defaults (a 1, b 3, c 1, d 5, slope 0, Iext 3.1, tt 1, Kvf 0)
    except ``Ks = -0.3``, ``x0`` per region and, at the FAST time scale (``tvb_fast_*``), ``r = 0.04`` /ms; at the
    SLOW time scale (``tvb_slow_*``) TVB's default ``r = 0.00035`` /ms.
    ``dx1/dt = 1 - z + Iext - x1^3 - 2 x1^2`` (x1 < 0; ``... + (0.6 (z - 4)^2 - 5 x1) x1`` for x1 >= 0),
    ``dz/dt = r (4 (x1 - x0) - z + Ks C)`` (``- 0.1 z^7`` added to ``4 (x1 - x0)`` when z < 0).
  - ``Epileptor`` (6-D, Jirsa et al. 2014; ``tvb_epileptor_*``), TVB's defaults (r 0.00035, Iext 3.1, Iext2 0.45,
    tau 10, aa 6, bb 2, a 1, b 3, c 1, d 5, slope 0, Kvf 0, Kf 0, tt 1; ``s = 4`` is declared but unused by TVB's
    equations) except ``Ks = -0.3`` (TVB's default ``Ks = 0`` would uncouple the regions) and ``x0`` per region.

* Initial state: a constant history (every row the same) at the resting state of an uncoupled region with
  ``x0 = -2.5`` (the lower-branch fixed point ``z = 4 (x1 + 2.5)``, ``4.1 - z - x1^3 - 2 x1^2 = 0``: x1 =
  -1.6943614343542, z = 3.2225542625830; for the 6-D model also ``y1 = 1 - 5 x1^2``, ``g = 0.1 x1``, ``y2 = 0`` and
  ``x2`` = -0.8831292947701 from ``x2 - x2^3 + 0.45 + 2 g - 0.3 (z - 3.5) = 0``). TVB's default (no
  ``initial_conditions``) instead fills every one of the ``horizon`` history rows with independent uniform draws
  within the model's ``state_variable_range`` (x1 in [-2, 1], z in [2, 5], ...; from the integrator noise's
  RandomState, or numpy's global generator for deterministic integrators), which puts regions on the seizure branch
  at t = 0; and a history shorter than the horizon is padded by TVB with such draws. We therefore pass ``H`` full
  rows, ``H >= horizon`` with ``H - 1`` a whole multiple of every monitor's period in steps: TVB then starts its step
  counter at ``H`` (``current_step = H - 1``), and every monitor window covers exactly the model time
  ``(m P, (m + 1) P]`` after the start (otherwise TVB's first window is partial and biased). ``t = 0`` is the start.
* Integration: Heun, ``dt = 0.05`` ms (fast 2D, 6-D) or ``0.1`` ms (slow 2D). Deterministic patients:
  ``HeunDeterministic``. Stochastic ones: ``HeunStochastic`` with TVB ``Additive`` noise, ``sqrt(2 nsig) sqrt(dt)
  N(0, 1)`` per step, state variable and region, the same increment in the predictor and the corrector, from
  ``numpy.random.RandomState(noise_seed)``, ``noise_seed = 1000 + seed``; ``nsig`` per state variable (TVB's order):
  fast 2D ``(1e-4, 1e-5)``, slow 2D ``(1e-4, 1e-8)`` (z noise kept small: a near-critical region's ``z`` is ~0.05
  from the fold), 6-D ``(0, 0, 0, 1e-3, 1e-3, 0)`` (the table in TVB's Epileptor docstring, Jirsa et al. 2014).
  Deterministic files have ``nsig`` zeros and ``noise_seed = -1``.
* Durations: fast 2D 300 ms, slow 2D 20 000 ms, 6-D 10 000 ms (the EZ regions seize by 0.4-4.6 s, the recruited ones by
  4.8 s; 10 s keep the 1 kHz files small).
* SEEG: TVB's ``iEEG`` monitor (a ``Projection`` monitor) with tvb-data's ``seeg_588.txt`` sensors and region
  mapping ``regionMapping_16k_76.txt``, ``period = 0.25`` ms (fast 2D, sfreq 4000 Hz), ``4`` ms (slow 2D, 250 Hz) or
  ``1`` ms (6-D, 1000 Hz: its ictal fast discharges have a period of ~5 ms, ~200 Hz, in TVB's ms, which 250 Hz
  would alias). ``sfreq = 1000 / period``.

  - Monitored expression: Epileptor2D ``x1`` (TVB's default ``variables_of_interest = ('x1',)``); Epileptor
    ``x2 - x1``, the LFP proxy of TVB's VEP pipelines and the first of TVB's default ``variables_of_interest =
    ('x2 - x1', 'z')`` (a Projection monitor without its own ``variables_of_interest`` projects every one of the
    model's, here also ``z``; we give it ``variables_of_interest = [0]``).
  - What TVB computes: at every step it adds ``gain @ expr(state)``; every ``p = period / dt`` steps it returns the
    sum / p, i.e. the MEAN of ``gain @ expr`` over the window's p states (not a subsample), time-stamped at the
    window centre ``(m + 1/2) period`` (TVB's stamp minus ``(H - 1) dt``). Sample ``m`` of ``seeg`` is thus
    ``gain_tvb @ mean(expr over the states at m P + dt, ..., (m + 1) P)``.
  - Observation noise: TVB's Projection monitors default to ``obsnoise = noise.Additive()`` and add
    ``obsnoise.generate(shape) = sqrt(dt) N(0, 1)`` (``nsig`` is NOT applied) to every sample of every sensor, from
    the monitor's own ``RandomState(42)``: a standard deviation of 0.22 (dt = 0.05) or 0.32 (dt = 0.1), while
    ``|gain| <= 0.011`` mm^-2 makes the whole signal range below ~0.03. It would bury the signal, so we set
    ``obsnoise = None``: the saved SEEG is exactly the window mean of ``gain_tvb @ expr`` (float64 in TVB, stored
    float32), monopolar, unfiltered, not demeaned (its large constant part is the resting ``x1`` seen by the lead
    field).
  - Lead field: tvb-data ships no SEEG projection matrix (``iEEG.from_file``'s default
    ``projection_seeg_588_surface_16k.npy`` is in none of tvb-data 1.5.8, 2.0, 3.0.0), so a region-level iEEG
    monitor built from sensors and a region mapping uses TVB's analytic lead field (``iEEG.analytic``; Sarvas 1987
    eq. 12, a point dipole in an infinite homogeneous medium): ``G_ki = Q_i . (r_k - r_i) / (4 pi sigma
    |r_k - r_i|^3)`` with ``sigma = 1``, ``r_i`` the region centres and ``Q_i`` the region orientations of
    connectivity_76 as stored (not unit vectors: norms 0.18-0.92), ``r_k`` the contact positions (mm), hence
    mm^-2. All 76 regions are cortical (``connectivity.cortical``), so no subcortical branch is involved, and the
    region mapping is required but unused. (With a surface projection matrix TVB would instead SUM, with
    ``numpy.add.at``, the columns of the vertices that the region mapping assigns to each cortical region, and use
    the analytic dipole for subcortical regions.) TVB zeroes NaN entries (none here). ``gain_tvb`` is TVB's own
    ``monitor.gain`` restricted to the kept contacts, float64.

* Patients: each has its EZ (``ez``, 0-based region indices) and, for some, propagation-zone candidates
  (``pz_candidates``). With ``rng = numpy.random.default_rng(seed)``: ``x0 = rng.uniform(-2.6, -2.2, 76)``, then
  ``x0[ez] = rng.uniform(-1.8, -1.4, len(ez))``, then ``x0[pz] = rng.uniform(-2.12, -2.07, len(pz))`` (below the
  critical -2.06 of an uncoupled region: candidates seize only if the network recruits them). ``seed`` is the first
  of ``base, base + 1, ...`` (``PATIENTS``) whose run makes every EZ region seize; the rejected seeds are in
  ``meta_json["rejected_seeds"]`` (none was needed for these EZ choices). Diffusive coupling holds a strongly
  connected region down (its ``x1`` rising above its afferents' makes ``C_i < 0``, raising ``z``). Measured with
  this script's settings (one EZ region, the others drawn healthy with seed 999, deterministic), the lowest ``x0`` at
  which a region seizes within the run is, at the fast time scale, -2.03 (rHC, node strength ``S = sum_j W_ij``
  0.7), -1.98 (rAMYG, 3.0), -1.84 (rTCI, 9.0), -1.74 (rPHC, 13.3), -1.68 (rTCC, 16.0), -1.50 (rPFCORB, 23.3, the
  strongest hub), about ``-2.05 + 0.023 S``; at the slow time scale -1.78 (rPHC) and -1.55 (rPFCORB). So an EZ hub
  seizes only for draws near the top of the EZ range, and no healthy region (x0 <= -2.2) was recruited in any
  patient; weakly connected regions next to a seizing EZ (hippocampus S = 0.7, amygdala 3.0) with ``x0`` in the
  candidate range often are.
* Seizure criterion (source level): a region seizes when its ``x1`` averaged over one SEEG window (TVB
  ``TemporalAverage`` at the SEEG period) rises above -1.0 (here non-seizing regions stay below about -1.2 and
  seizing ones reach above 0; for the 6-D model ``x1``, not the monitored ``x2 - x1``). ``onset_ms``: the first
  such time, by linear interpolation between window centres ``(m + 1/2) period`` starting from the initial ``x1``
  at t = 0 (NaN if never). ``seizing``: the regions with an onset; ``recruited``: those not in ``ez``.
* Implantation (contacts kept per patient): electrodes are TVB's grouping of contact labels (the first run of
  letters/primes: "A'3" is electrode "A'"; 64 electrodes of 9 contacts, OR/OR' of 15). Every electrode with a contact
  within 10 mm of an EZ centre (for an EZ region with none, the electrode with its nearest contact; at most 12 by
  distance), then electrodes drawn at random (``numpy.random.default_rng(seed + 5000)``) up to a number itself
  drawn in 8..12, skipping any that would make more than 120 contacts. Contacts in ``seeg_588.txt`` order.
* Source traces: ``source`` is TVB ``TemporalAverage(period=source_period)`` of the monitored expression, (duration
  / source_period, 76) float32: the mean of ``seeg`` over the same windows equals ``gain_tvb @ source`` (a check of
  the lead field and of the absence of observation noise, used by the tests).

Keys per file: ``seeg`` (contacts, samples) float32, ``sfreq``, ``ch_names``, ``positions`` (contacts, 3) mm,
``ez``, ``pz_candidates``, ``x0`` (76,), ``seizing``, ``recruited``, ``onset_ms`` (76,), ``model``, ``time_scale``,
``monitored_expression``, ``param_<name>``, ``coupling`` (text), ``coupling_a``, ``speed``, ``dt``, ``duration_ms``,
``integrator``, ``nsig``, ``noise_seed``, ``seed``, ``gain_tvb`` (contacts, 76), ``labels``, ``centres``,
``orientations`` (76, 3), ``weights`` and ``tract_lengths`` (as used), ``source``, ``source_period``, ``meta_json``.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import pathlib
import re
import sys
import time as _time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "golden"))  # TVB helpers shared with the golden-array scripts
from make_golden import _tvb_version, numeric_parameters  # noqa: E402

OUT = HERE / "data" / "vep"
N_REGIONS = 76
SPEED = 3.0  # mm/ms
COUPLING_A = 1.0
KS = -0.3  # TVB's sign: a permittivity coupling K = 0.3 is Ks = -0.3
X0_REST = -2.5
SEIZURE_X1 = -1.0
HEALTHY_RANGE = (-2.6, -2.2)
EZ_RANGE = (-1.8, -1.4)
NEAR_MM = 10.0
N_ELECTRODES = (8, 12)
MAX_CONTACTS = 120
MAX_SEED_TRIES = 30
IMPLANT_SEED_OFFSET = 5000
SENSORS_FILE = "seeg_588.txt"
REGION_MAPPING_FILE = "regionMapping_16k_76.txt"
CONNECTIVITY_FILE = "connectivity_76.zip"

# time scale -> settings. nsig per state variable (TVB Additive: sqrt(2 nsig dt) N(0, 1) per step).
SCALES = {
    "fast": {
        "model": "Epileptor2D",
        "params": {"r": 0.04, "Ks": KS, "Kvf": 0.0, "Iext": 3.1},
        "dt": 0.05,
        "length": 300.0,
        "period": 0.25,
        "source_period": 2.5,
        "nsig": (1e-4, 1e-5),
    },
    "slow": {
        "model": "Epileptor2D",
        "params": {"r": 0.00035, "Ks": KS, "Kvf": 0.0, "Iext": 3.1},
        "dt": 0.1,
        "length": 20000.0,
        "period": 4.0,
        "source_period": 100.0,
        "nsig": (1e-4, 1e-8),
    },
    "epileptor": {
        "model": "Epileptor",
        "params": {"r": 0.00035, "Ks": KS},
        "dt": 0.05,
        "length": 10000.0,
        "period": 1.0,
        "source_period": 50.0,
        "nsig": (0.0, 0.0, 0.0, 1e-3, 1e-3, 0.0),
    },
}
NOISE_SEED_OFFSET = 1000  # noise_seed = NOISE_SEED_OFFSET + seed for the stochastic patients
PZ_RANGE = (-2.12, -2.07)

MODEL_WORDS = {
    "Epileptor2D": "TVB Epileptor2D with its defaults (a 1, b 3, c 1, d 5, slope 0, Iext 3.1, tt 1, Kvf 0) except "
    "r = {r} /ms, Ks = {Ks} (permittivity coupling K = -Ks with TVB's sign: dz/dt = r (4 (x1 - x0) - z + Ks C)), "
    "Iext = {Iext}, Kvf = {Kvf}, modification = False, x0 per region",
    "Epileptor": "TVB 6-D Epileptor with its defaults (r 0.00035, Iext 3.1, Iext2 0.45, tau 10, aa 6, bb 2, a 1, b 3, "
    "c 1, d 5, slope 0, Kvf 0, Kf 0, tt 1) except r = {r} /ms (the default), Ks = {Ks} (TVB's default 0 would uncouple "
    "the regions; dz/dt = r (4 (x1 - x0) - z + Ks C)), modification = False, x0 per region",
}
CONNECTOME_WORDS = (
    "TVB connectivity_76.zip (tvb-data): diagonal zeroed (it stores 2s), weights divided by their maximum (3) so the "
    "largest is 1; tract lengths as stored, speed 3 mm/ms, delay rint(L / (speed dt)) steps on every afferent x_j"
)
COUPLING_WORDS = (
    "TVB Difference(a=1): C_i(t) = a sum_j W_ij (x1_j(t - tau_ij) - x1_i(t)), computed once per step from TVB's "
    "float32 history buffer and held through Heun's predictor and corrector; enters dz/dt as r Ks C (Ks < 0: seizing "
    "afferents lower z). For the 6-D Epileptor the x2 difference is computed too but multiplies Kf = 0"
)
INITIAL_WORDS = (
    "constant history of {rows} rows (>= TVB's horizon; rows - 1 a whole multiple of every monitor's period in steps, "
    "so TVB's step counter starts at rows and every monitor window is whole), every region at the resting state of "
    "an uncoupled region with x0 = -2.5, state (TVB's order) {rest}; TVB's default would be independent uniform "
    "draws within state_variable_range for every history row"
)
MONITOR_WORDS = (
    "TVB iEEG (Projection) monitor, period {period} ms = {p} steps, variables_of_interest [0] = '{expr}': each sample "
    "is the mean over the window's {p} states of gain @ {expr} (sum over the steps divided by {p}), stamped at the "
    "window centre (m + 0.5) period; obsnoise = None"
)
OBSNOISE_WORDS = (
    "disabled (obsnoise = None). TVB's default, obsnoise = noise.Additive(), adds sqrt(dt) N(0, 1) per sample and "
    "sensor (nsig is not applied; RandomState(42)), SD 0.22 at dt = 0.05 and 0.32 at dt = 0.1, against a signal "
    "range below ~0.03 (|gain| <= 0.011 mm^-2)"
)
GAIN_WORDS = (
    "TVB's own region-level iEEG gain (monitor.gain), rows = kept contacts: tvb-data ships no SEEG projection "
    "matrix, so TVB uses iEEG.analytic, G_ki = Q_i . (r_k - r_i) / (4 pi sigma |r_k - r_i|^3), sigma = 1, r_i the "
    "connectivity_76 centres, Q_i its orientations as stored (norms 0.18-0.92), r_k the contacts (mm): mm^-2"
)
IMPLANT_WORDS = (
    "electrodes = TVB's grouping of contact labels (first run of letters/primes); every electrode with a contact "
    "within 10 mm of an EZ centre (else the electrode nearest to that EZ region; at most 12, nearest first), then "
    "random electrodes (numpy.random.default_rng(seed + 5000)) up to a drawn total in 8..12, at most 120 contacts; "
    "contacts in seeg_588.txt order"
)
X0_WORDS = (
    "rng = numpy.random.default_rng(seed); x0 = rng.uniform(-2.6, -2.2, 76); x0[ez] = rng.uniform(-1.8, -1.4, "
    "len(ez)); x0[pz_candidates] = rng.uniform(-2.12, -2.07, len(pz_candidates)); seed = the first of base, base + 1, "
    "... whose run makes every EZ region seize"
)
SEIZURE_WORDS = (
    "a region seizes when its x1 averaged over one SEEG window (TVB TemporalAverage, period {period} ms) exceeds -1.0; "
    "onset_ms by linear interpolation between window centres (m + 0.5) period, from the initial x1 at t = 0"
)

# patient -> (time scale, EZ regions, propagation-zone candidates, stochastic, first seed of the x0 draw)
PATIENTS = {
    "tvb_fast_1": ("fast", [24], [9, 2], False, 101),
    "tvb_fast_2": ("fast", [31], [], False, 111),
    "tvb_fast_3": ("fast", [62, 70], [47, 40], True, 121),
    "tvb_fast_4": ("fast", [12, 28, 50], [], True, 131),
    "tvb_slow_1": ("slow", [62], [47, 40, 73], False, 201),
    "tvb_slow_2": ("slow", [33], [], True, 211),
    "tvb_slow_3": ("slow", [2, 24], [9], False, 221),
    "tvb_slow_4": ("slow", [45, 50, 66], [], True, 231),
    "tvb_epileptor_1": ("epileptor", [24], [9, 2, 35], True, 301),
    "tvb_epileptor_2": ("epileptor", [69], [], True, 311),
    "tvb_epileptor_3": ("epileptor", [32, 34], [2], True, 321),
    "tvb_epileptor_4": ("epileptor", [0, 1, 33], [], True, 331),
}


def _tvb_data_version():
    from importlib.metadata import version

    return version("tvb-data")


def connectivity():
    """connectivity_76: diagonal zeroed, weights / max, tract lengths as stored, speed SPEED."""
    from tvb.datatypes.connectivity import Connectivity

    conn = Connectivity.from_file(CONNECTIVITY_FILE)
    w = np.array(conn.weights, dtype=float)
    np.fill_diagonal(w, 0.0)
    conn.weights = w / w.max()
    conn.speed = np.array([SPEED])
    conn.configure()
    return conn


def sensors():
    from tvb.datatypes.sensors import SensorsInternal

    s = SensorsInternal.from_file(SENSORS_FILE)
    s.configure()
    return s


def electrodes(labels):
    """TVB's own grouping (SensorsInternal.group_sensors_to_electrodes): the first run of digits or non-digits of a
    contact's label names its electrode ("A'3" -> "A'"). Returns [(electrode, [contact indices])] in the order of
    first appearance in the sensors file."""
    order, groups = [], {}
    for k, lab in enumerate(labels):
        name = re.findall(r"(\d+|\D+)", str(lab))[0]
        if name not in groups:
            groups[name] = []
            order.append(name)
        groups[name].append(k)
    return [(e, groups[e]) for e in order]


def rest_state(model_name):
    """Resting state of an uncoupled region at x0 = X0_REST, as a (nvar,) vector in TVB's state-variable order."""
    from scipy.optimize import brentq

    # x1 on the lower branch: 4.1 - z - x1^3 - 2 x1^2 = 0 with z = 4 (x1 - x0)
    x1 = brentq(lambda x: 4.1 - 4.0 * (x - X0_REST) - x**3 - 2.0 * x**2, -2.5, -1.4, xtol=1e-15, rtol=1e-15)
    z = 4.0 * (x1 - X0_REST)
    if model_name == "Epileptor2D":
        return np.array([x1, z])
    # Epileptor: y1 = c - d x1^2; g = 0.1 x1; x2 < -0.25 (y2 = 0): -x2^3 + x2 + Iext2 + bb g - 0.3 (z - 3.5) = 0
    y1 = 1.0 - 5.0 * x1**2
    g = 0.1 * x1
    rhs = 0.45 + 2.0 * g - 0.3 * (z - 3.5)
    x2 = brentq(lambda x: x - x**3 + rhs, -2.0, -0.25, xtol=1e-15, rtol=1e-15)
    return np.array([x1, y1, z, x2, 0.0, g])


def draw_x0(ez, pz, seed):
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(*HEALTHY_RANGE, N_REGIONS)
    x0[ez] = rng.uniform(*EZ_RANGE, len(ez))
    x0[pz] = rng.uniform(*PZ_RANGE, len(pz))
    return x0


def history_rows(conn, scale):
    """Number of rows H of the constant initial history: at least TVB's horizon, with H - 1 a whole multiple of
    every monitor's period in steps, so that TVB's step counter (which starts at H) puts every monitor window
    exactly on [m P, (m + 1) P) of the model time."""
    s = SCALES[scale]
    p = int(round(s["period"] / s["dt"]))
    q = int(round(s["source_period"] / s["dt"]))
    lcm = p * q // math.gcd(p, q)
    conn.set_idelays(s["dt"])  # what Simulator.configure() does: idelays = rint(L / (speed dt)), horizon max + 1
    horizon = int(conn.horizon)
    return lcm * math.ceil((horizon - 1) / lcm) + 1


def run_tvb(conn, sens, scale, x0, stochastic, noise_seed=-1):
    from tvb.datatypes.region_mapping import RegionMapping
    from tvb.simulator import coupling, integrators, models, monitors, noise, simulator

    s = SCALES[scale]
    dt, period = s["dt"], s["period"]
    for name, v in (("period", period), ("source_period", s["source_period"]), ("length", s["length"])):
        n = v / dt
        assert abs(n - round(n)) < 1e-9, (name, v, dt)
    model_cls = getattr(models, s["model"])
    model = model_cls(
        x0=np.asarray(x0, float), **{k: np.array([v]) for k, v in s["params"].items()}, modification=np.array([False])
    )
    if s["model"] == "Epileptor":
        model.variables_of_interest = ("x2 - x1", "z", "x1")  # TVB's default ("x2 - x1", "z"), plus x1
        i_x1 = 2
    else:
        model.variables_of_interest = ("x1",)  # TVB's default
        i_x1 = 0
    if stochastic:
        integ = integrators.HeunStochastic(
            dt=dt, noise=noise.Additive(nsig=np.array(s["nsig"], float), noise_seed=noise_seed)
        )
    else:
        integ = integrators.HeunDeterministic(dt=dt)
    rm = RegionMapping.from_file(REGION_MAPPING_FILE)
    ieeg = monitors.iEEG(sensors=sens, region_mapping=rm, period=period, variables_of_interest=np.array([0]))
    ieeg.obsnoise = None  # TVB's default observation noise: see the module docstring
    detect = monitors.TemporalAverage(period=period, variables_of_interest=np.array([i_x1]))
    source = monitors.TemporalAverage(period=s["source_period"], variables_of_interest=np.array([0]))
    n_hist = history_rows(conn, scale)
    rest = rest_state(s["model"])
    hist = np.broadcast_to(rest[None, :, None, None], (n_hist, rest.size, N_REGIONS, 1)).copy()
    sim = simulator.Simulator(
        model=model,
        connectivity=conn,
        coupling=coupling.Difference(a=np.array([COUPLING_A])),
        integrator=integ,
        monitors=(ieeg, detect, source),
        initial_conditions=hist,
        simulation_length=s["length"],
    )
    sim.configure()
    assert sim.current_step == n_hist - 1, (sim.current_step, n_hist)
    t0 = sim.current_step * dt
    t_start = _time.perf_counter()
    (t_ieeg, seeg), (t_det, x1), (t_src, src) = sim.run()
    elapsed = _time.perf_counter() - t_start
    n = int(round(s["length"] / period))
    n_src = int(round(s["length"] / s["source_period"]))
    t_ieeg, t_det, t_src = (np.asarray(t, float) - t0 for t in (t_ieeg, t_det, t_src))
    np.testing.assert_allclose(t_ieeg, (np.arange(n) + 0.5) * period, rtol=0, atol=1e-6)
    np.testing.assert_allclose(t_det, t_ieeg, rtol=0, atol=1e-6)
    np.testing.assert_allclose(t_src, (np.arange(n_src) + 0.5) * s["source_period"], rtol=0, atol=1e-6)
    out = {
        "seeg_all": np.asarray(seeg, float)[:, 0, :, 0].T,  # (588, n)
        "x1_period": np.asarray(x1, float)[:, 0, :, 0],  # (n, 76)
        "source": np.asarray(src, float)[:, 0, :, 0],  # (n_src, 76)
        "time": t_ieeg,
        "elapsed": elapsed,
        "gain": np.array(ieeg.gain, float),
        "n_hist": n_hist,
        "rest": rest,
    }
    return sim, out


def onset_times(x1, period, x1_init, threshold=SEIZURE_X1):
    """First time each region's period-averaged x1 exceeds ``threshold``: linear interpolation between the window
    centres ``(m + 1/2) period``, starting from the initial ``x1_init`` at t = 0; NaN if never. x1: (T, N)."""
    t = np.concatenate([[0.0], (np.arange(x1.shape[0]) + 0.5) * period])
    x = np.concatenate([np.full((1, x1.shape[1]), x1_init), x1])
    out = np.full(x.shape[1], np.nan)
    for i in range(x.shape[1]):
        above = np.nonzero(x[:, i] > threshold)[0]
        if above.size:
            k = above[0]
            if k == 0:
                out[i] = 0.0
            else:
                xa, xb = x[k - 1, i], x[k, i]
                out[i] = t[k - 1] + (threshold - xa) / (xb - xa) * (t[k] - t[k - 1])
    return out


def implant(sens, centres, ez, seed):
    """Contacts kept: every electrode with a contact within NEAR_MM of an EZ region's centre (for an EZ region with
    none, the electrode with the nearest contact), then electrodes drawn at random until the patient's number of
    electrodes, itself drawn in N_ELECTRODES, is reached (an electrode is skipped if it would make more than
    MAX_CONTACTS contacts). Returns the contact indices (sensors-file order) and the electrode names."""
    rng = np.random.default_rng(seed + IMPLANT_SEED_OFFSET)
    groups = electrodes(sens.labels)
    loc = np.asarray(sens.locations, float)
    dist = np.linalg.norm(loc[:, None, :] - centres[None, ez, :], axis=-1)  # (contacts, n_ez)
    chosen = []
    for j in range(len(ez)):
        near = [g for g, (_, idx) in enumerate(groups) if dist[idx, j].min() <= NEAR_MM]
        if not near:
            near = [min(range(len(groups)), key=lambda g: dist[groups[g][1], j].min())]
        for g in near:
            if g not in chosen:
                chosen.append(g)
    if len(chosen) > N_ELECTRODES[1]:
        chosen.sort(key=lambda g: dist[groups[g][1]].min())
        chosen = chosen[: N_ELECTRODES[1]]
    target = max(int(rng.integers(N_ELECTRODES[0], N_ELECTRODES[1] + 1)), len(chosen))
    others = [g for g in rng.permutation(len(groups)) if g not in chosen]
    n_contacts = sum(len(groups[g][1]) for g in chosen)
    for g in others:
        if len(chosen) >= target:
            break
        if n_contacts + len(groups[g][1]) <= MAX_CONTACTS:
            chosen.append(int(g))
            n_contacts += len(groups[g][1])
    chosen.sort()
    idx = np.concatenate([groups[g][1] for g in chosen]).astype(np.int64)
    return idx, [groups[g][0] for g in chosen]


def seizing_run(name, conn, sens):
    scale, ez, pz, stochastic, base = PATIENTS[name]
    rest = rest_state(SCALES[scale]["model"])
    rejected = []
    for seed in range(base, base + MAX_SEED_TRIES):
        x0 = draw_x0(ez, pz, seed)
        sim, out = run_tvb(conn, sens, scale, x0, stochastic, NOISE_SEED_OFFSET + seed if stochastic else -1)
        onset = onset_times(out["x1_period"], SCALES[scale]["period"], rest[0])
        print(f"  {name} seed {seed}: EZ onsets {onset[ez]} ({out['elapsed']:.1f} s)", flush=True)
        if np.all(np.isfinite(onset[ez])):
            return seed, rejected, x0, sim, out, onset
        rejected.append(seed)
    raise RuntimeError(f"{name}: no seed in [{base}, {base + MAX_SEED_TRIES}) makes every EZ region {ez} seize")


def make(name):
    scale, ez, pz, stochastic, _ = PATIENTS[name]
    s = SCALES[scale]
    conn, sens = connectivity(), sensors()
    seed, rejected, x0, sim, out, onset = seizing_run(name, conn, sens)
    n = int(round(s["length"] / s["period"]))
    assert out["seeg_all"].shape == (588, n) and out["x1_period"].shape == (n, N_REGIONS)
    for key in ("seeg_all", "x1_period", "source"):
        assert np.all(np.isfinite(out[key])), f"{name}: TVB's {key} is not finite"
    ez_arr = np.asarray(ez, np.int64)
    seizing = np.nonzero(np.isfinite(onset))[0].astype(np.int64)
    assert np.all(np.isin(ez_arr, seizing))
    recruited = np.setdiff1d(seizing, ez_arr).astype(np.int64)

    centres = np.asarray(conn.centres, float)
    keep, names = implant(sens, centres, ez_arr, seed)
    gain = out["gain"][keep]
    seeg = out["seeg_all"][keep].astype(np.float32)
    pos = np.asarray(sens.locations, float)[keep]
    ch = np.asarray([str(v) for v in np.asarray(sens.labels)[keep]], dtype=np.str_)
    d_ez = np.linalg.norm(pos[:, None, :] - centres[None, ez_arr, :], axis=-1).min(axis=0)

    model = sim.model
    params = {p: np.asarray(getattr(model, p), float) for p in numeric_parameters(type(model))}
    labels = np.asarray([str(v) for v in conn.region_labels], dtype=np.str_)
    integrator = "HeunStochastic" if stochastic else "HeunDeterministic"
    nsig = np.asarray(s["nsig"] if stochastic else np.zeros(len(s["nsig"])), float)
    noise_seed = NOISE_SEED_OFFSET + seed if stochastic else -1
    expr = "x2 - x1" if s["model"] == "Epileptor" else "x1"
    idelays = np.asarray(sim.connectivity.idelays)
    meta = {
        "patient": name,
        "generator": "benchmarks/make_vep_patients.py",
        "tvb_library_version": _tvb_version(),
        "tvb_data_version": _tvb_data_version(),
        "numpy_version": np.__version__,
        "date": datetime.date.today().isoformat(),
        "units": "time ms, rates 1/ms, distances mm, sfreq Hz, gain mm^-2 (sigma = 1)",
        "time_scale": scale,
        "model": s["model"],
        "model_description": MODEL_WORDS[s["model"]].format(**s["params"]),
        "model_params": {k: v.tolist() for k, v in params.items()},
        "modification": False,
        "connectome": CONNECTOME_WORDS,
        "coupling": COUPLING_WORDS,
        "coupling_a": COUPLING_A,
        "Ks": s["params"]["Ks"],
        "K": -s["params"]["Ks"] * COUPLING_A,
        "speed_mm_per_ms": SPEED,
        "max_delay_ms": float(np.max(sim.connectivity.tract_lengths) / SPEED),
        "max_delay_steps": int(idelays.max()),
        "horizon_steps": int(sim.connectivity.horizon),
        "initial_state": INITIAL_WORDS.format(rows=out["n_hist"], rest=out["rest"].tolist()),
        "history_rows": out["n_hist"],
        "tvb_history_dtype": str(sim.history.buffer.dtype),
        "dt": s["dt"],
        "duration_ms": s["length"],
        "n_steps": int(round(s["length"] / s["dt"])),
        "integrator": integrator,
        "nsig": nsig.tolist(),
        "noise_seed": noise_seed,
        "noise": (
            f"TVB Additive noise on every step, sqrt(2 nsig) sqrt(dt) N(0, 1) per state variable and region, nsig = "
            f"{list(s['nsig'])} (in TVB's state-variable order), numpy.random.RandomState({noise_seed}); the same "
            "increment in Heun's predictor and corrector"
            if stochastic
            else None
        ),
        "monitored_expression": expr,
        "monitor": MONITOR_WORDS.format(expr=expr, period=s["period"], p=int(round(s["period"] / s["dt"]))),
        "observation_noise": OBSNOISE_WORDS,
        "sfreq_hz": 1000.0 / s["period"],
        "period_ms": s["period"],
        "n_samples": n,
        "t_ms": "sample m is centred at (m + 0.5) * period_ms (TVB's own time stamp minus (history_rows - 1) dt)",
        "gain": GAIN_WORDS,
        "sensors": f"tvb-data {SENSORS_FILE}, {len(sens.labels)} contacts, positions in mm in the connectome's frame",
        "implantation": IMPLANT_WORDS,
        "electrodes": names,
        "n_contacts": int(keep.size),
        "nearest_contact_to_ez_mm": {int(i): float(d) for i, d in zip(ez_arr, d_ez, strict=True)},
        "source": f"TVB TemporalAverage(period={s['source_period']}) of {expr}: (duration / source_period, 76); "
        "the window mean of seeg over the same windows is gain_tvb @ source",
        "source_period_ms": s["source_period"],
        "x0_draw": X0_WORDS,
        "seed": seed,
        "rejected_seeds": rejected,
        "ez": ez_arr.tolist(),
        "pz_candidates": list(pz),
        "seizure_criterion": SEIZURE_WORDS.format(period=s["period"]),
        "seizing": seizing.tolist(),
        "recruited": recruited.tolist(),
        "onset_ms": {int(i): float(onset[i]) for i in seizing},
        "tvb_run_seconds": out["elapsed"],
    }
    arrays = {
        "seeg": seeg,
        "sfreq": np.asarray(1000.0 / s["period"]),
        "ch_names": ch,
        "positions": pos,
        "ez": ez_arr,
        "pz_candidates": np.asarray(pz, np.int64),
        "x0": np.asarray(x0, float),
        "seizing": seizing,
        "recruited": recruited,
        "onset_ms": onset,
        "model": np.asarray(s["model"]),
        "time_scale": np.asarray(scale),
        "monitored_expression": np.asarray(expr),
        **{f"param_{k}": v for k, v in params.items()},
        "coupling": np.asarray(f"Difference(a={COUPLING_A})"),
        "coupling_a": np.asarray(COUPLING_A),
        "speed": np.asarray(SPEED),
        "dt": np.asarray(s["dt"]),
        "duration_ms": np.asarray(s["length"]),
        "integrator": np.asarray(integrator),
        "nsig": nsig,
        "noise_seed": np.asarray(noise_seed),
        "seed": np.asarray(seed),
        "gain_tvb": gain,
        "labels": labels,
        "centres": centres,
        "orientations": np.asarray(conn.orientations, float),
        "weights": np.asarray(sim.connectivity.weights, float),
        "tract_lengths": np.asarray(sim.connectivity.tract_lengths, float),
        "source": out["source"].astype(np.float32),
        "source_period": np.asarray(s["source_period"]),
        "meta_json": np.asarray(json.dumps(meta)),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.npz"
    np.savez_compressed(path, **arrays)
    on = ", ".join(f"{i} {labels[i]} {onset[i]:.1f}" for i in seizing)
    print(
        f"{name}: {s['model']} {scale} {integrator}, seed {seed} (rejected {rejected}), EZ {ez_arr.tolist()} PZ "
        f"candidates {list(pz)}; seizing (onset ms): {on}; {keep.size} contacts on {len(names)} electrodes "
        f"{names}; {n} samples at {1000.0 / s['period']:g} Hz; {path.stat().st_size / 1e6:.2f} MB; "
        f"TVB {out['elapsed']:.1f} s",
        flush=True,
    )
    return path


def main(names):
    logging.disable(logging.INFO)  # TVB logs every configuration step at INFO
    unknown = [n for n in names if n not in PATIENTS]
    if unknown:
        raise SystemExit(f"unknown patients {unknown}; known: {list(PATIENTS)}")
    t0 = _time.perf_counter()
    for name in names or list(PATIENTS):
        make(name)
    print(f"total {_time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
