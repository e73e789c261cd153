"""A tiny "network" for analytic posterior tests (tests/test_smc.py, tests/test_compare.py): the sampled vector
``theta`` and the data of the linear-Gaussian model ``y = X theta + N(0, sigma^2)``."""

import equinox as eqx
import jax

from vbtjax.inference import Parameter, Real, Selection


class Linear(eqx.Module):
    """``y = X theta + N(0, sigma^2)``; only ``theta`` is sampled (:data:`SELECT`)."""

    theta: jax.Array
    X: jax.Array
    y: jax.Array
    sigma: jax.Array


SELECT = Selection([Parameter(lambda m: m.theta, Real())])
