"""The Virtual Epileptic Patient (VEP): where do seizures start, and what if that tissue is removed.

The VEP (Jirsa et al. 2017; Proix et al. 2017; Hashemi et al. 2020) is an :class:`~vbtjax.models.Epileptor2D` at
every region of a person's connectome, coupled through the permittivity variable; each region's excitability
``x0`` decides whether it starts seizures (``x0 > X0_CRITICAL``, the epileptogenic zone, EZ), joins them through
the network (propagation zone) or stays healthy. Seizures are seen through SEEG contacts; this module infers the
posterior of ``x0`` per region (and the global coupling) from SEEG log-power envelopes with NUTS, ranks the regions
by their probability of being epileptogenic, and predicts whether a virtual resection stops the seizures.

Conventions (shared by vbtjax's own synthetic patients and the TVB-simulated ones in ``tests/golden/vep``; the
time axis is the model's, in ms, with one observation window per ``period``):

- connectome: weights divided by their maximum, no self-connections, no conduction delays (seizure propagation is
  much slower than conduction; tract lengths are set to 0);
- model: ``Epileptor2D(r=0.04, Ks=-1, Kvf=0, Iext=3.1)``, TVB's other defaults, ``x0`` per region; coupling
  ``Difference(a=K)`` (``dz_i += -r K sum_j W_ij (x1_j - x1_i)``, Proix et al. 2014), ``K = 0.3`` by default;
- initial state: every region at the resting fixed point of an uncoupled region with ``x0 = -2.5``
  (:data:`X1_REST`, :data:`Z_REST`);
- Heun, ``dt = 0.1`` ms, ``duration = 50`` ms, one sample of ``x1`` per ``period = 2`` ms;
- observation: each region emits broadband activity of amplitude ``exp(x1)``; a contact's power is
  ``P_k = sum_i G_ki^2 exp(2 x1_i)`` with the inverse-square point-source gain ``G`` (mm^-2,
  :func:`vbtjax.sensors.seeg_gain_point_source`); the data are the log of the mean squared (demeaned) SEEG signal
  in consecutive windows, one window per model sample, modelled as ``log P_k + offset + sigma * N(0, 1)``.
"""

from ...data.recordings import SEEGRecording
from .infer import (
    MAX_DIVERGENT,
    MAX_RHAT,
    SAMPLERS,
    ConvergenceWarning,
    VEPResult,
    infer_ez,
    vep_twin,
    virtual_resection,
)
from .network import (
    DT,
    DURATION,
    K_DEFAULT,
    PERIOD,
    SEIZURE_X1,
    TIME_SCALE_RANGE,
    X0_CRITICAL,
    X0_HEALTHY,
    X1_REST,
    Z_REST,
    rest_history,
    seizing_regions,
    simulate_level,
    simulate_power,
    simulate_x1,
    vep_connectome,
    vep_network,
)
from .observation import (
    FEATURES,
    crop_to_cycles,
    level_envelope,
    log_power_envelope,
    seeg_features,
    seeg_log_power,
    seizure_onsets,
    signal_kind,
    silent,
    window_power,
)
from .patients import DETECTABLE, SyntheticPatient, detectability, implant, synthetic_patient, synthetic_seeg
from .posterior import (
    NOISE_MODELS,
    VEPPosterior,
    initial_guess,
    laplace_factor,
    posterior_mode,
    recording_posterior,
    shared_noise_basis,
    vep_posterior,
)
from .sbi import vep_problem  # importing .sbi registers the VEP with vbtjax.sbi.problem_from_spec

__all__ = [
    "DETECTABLE",
    "DT",
    "DURATION",
    "FEATURES",
    "K_DEFAULT",
    "MAX_DIVERGENT",
    "MAX_RHAT",
    "PERIOD",
    "SAMPLERS",
    "SEEGRecording",
    "SEIZURE_X1",
    "SyntheticPatient",
    "TIME_SCALE_RANGE",
    "VEPPosterior",
    "VEPResult",
    "X0_CRITICAL",
    "X0_HEALTHY",
    "X1_REST",
    "Z_REST",
    "crop_to_cycles",
    "detectability",
    "implant",
    "infer_ez",
    "initial_guess",
    "laplace_factor",
    "level_envelope",
    "log_power_envelope",
    "posterior_mode",
    "recording_posterior",
    "rest_history",
    "seeg_features",
    "seeg_log_power",
    "seizing_regions",
    "seizure_onsets",
    "signal_kind",
    "silent",
    "simulate_level",
    "simulate_power",
    "simulate_x1",
    "synthetic_patient",
    "synthetic_seeg",
    "vep_connectome",
    "vep_network",
    "vep_posterior",
    "vep_twin",
    "virtual_resection",
    "window_power",
    "vep_problem",
    "NOISE_MODELS",
    "shared_noise_basis",
    "ConvergenceWarning",
]
