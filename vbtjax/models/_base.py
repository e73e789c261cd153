"""The neural mass model interface shared by every model in :mod:`vbtjax.models`."""

from __future__ import annotations

import abc
import dataclasses
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._params import check_n_regions, check_parameter


class AbstractNeuralMass(eqx.Module):
    """A neural mass model: the local dynamics of one brain region, vectorised over regions.

    Concrete models follow The Virtual Brain (TVB): the same class name, parameter names and defaults, state-variable
    order (``state_variables``), coupling variables (``cvar``: indices of the state variables that are sent to other
    regions) and state-variable bounds. Every numeric parameter is a differentiable JAX array, either a scalar or one
    value per region with shape ``(N,)``.

    Subclasses define the class variables below and :meth:`dfun`.
    """

    state_variables: ClassVar[tuple[str, ...]]
    """Names of the state variables, in TVB's order."""
    cvar: ClassVar[tuple[int, ...]]
    """Indices (into ``state_variables``) of the coupling variables, in TVB's order."""
    state_variable_range: ClassVar[dict[str, tuple[float, float]]]
    """TVB's default range of each state variable, used to draw random initial conditions."""
    stvar: ClassVar[tuple[int, ...] | None] = None
    """Indices of the state variables a stimulus drives by default (TVB's ``stvar``; ``None``: the coupling
    variables ``cvar``)."""
    state_variable_boundaries: ClassVar[dict[str, tuple[float, float]]] = {}
    """Hard bounds ``(lo, hi)`` (``±inf`` for none) applied after every integration stage, as in TVB."""

    @abc.abstractmethod
    def dfun(self, state: Float[Array, "n_svar N"], coupling: Float[Array, "n_cpl N"]) -> Float[Array, "n_svar N"]:
        """Time derivative of ``state`` (per ms) given the long-range ``coupling``.

        **Arguments:**
        - `state`: ``(n_svar, N)``, rows in the order of ``state_variables``.
        - `coupling`: ``(n_cpl, N)``, the output of the coupling function; row ``k`` comes from state variable
          ``cvar[k]`` (a coupling such as ``SigmoidalJansenRit`` may return fewer rows).
        """

    def __check_init__(self):
        for name in self.parameter_names():
            check_parameter(type(self).__name__, name, getattr(self, name))

    # ------------------------------------------------------------------ metadata
    @classmethod
    def parameter_names(cls) -> tuple[str, ...]:
        """Names of the numeric parameters, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls) if not f.metadata.get("static", False))

    def parameters(self) -> dict[str, jax.Array]:
        """The numeric parameters as a dict ``{name: array}``."""
        return {name: getattr(self, name) for name in self.parameter_names()}

    @property
    def n_svar(self) -> int:
        """Number of state variables."""
        return len(self.state_variables)

    @property
    def stimulated_variables(self) -> tuple[int, ...]:
        """Indices of the state variables driven by a stimulus by default (``stvar``, else ``cvar``)."""
        return tuple(self.cvar if self.stvar is None else self.stvar)

    @property
    def n_cvar(self) -> int:
        """Number of coupling variables."""
        return len(self.cvar)

    def check_n_regions(self, n: int) -> None:
        """Raise ``ValueError`` when a per-region parameter does not match ``n`` regions."""
        check_n_regions(type(self).__name__, self.parameters(), n)

    # ------------------------------------------------------------------ bounds and initial states
    def bound(self, state: Float[Array, "n_svar N"]) -> Float[Array, "n_svar N"]:
        """Clip ``state`` to ``state_variable_boundaries`` (identity for unbounded models)."""
        if not self.state_variable_boundaries:
            return state
        lo, hi = self._bounds_arrays()
        return jnp.clip(state, jnp.asarray(lo, state.dtype)[:, None], jnp.asarray(hi, state.dtype)[:, None])

    def _bounds_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.full(self.n_svar, -np.inf)
        hi = np.full(self.n_svar, np.inf)
        for name, (a, b) in self.state_variable_boundaries.items():
            k = self.state_variables.index(name)
            lo[k], hi[k] = a, b
        return lo, hi

    def default_state(self, n: int, dtype=None) -> Float[Array, "n_svar N"]:
        """A deterministic initial state: the midpoint of each ``state_variable_range``, shape ``(n_svar, n)``."""
        mid = np.array([0.5 * sum(self.state_variable_range[v]) for v in self.state_variables])
        dtype = dtype or jnp.result_type(float)
        return self.bound(jnp.broadcast_to(jnp.asarray(mid, dtype)[:, None], (self.n_svar, n)))

    def random_state(self, key: jax.Array, n: int, dtype=None) -> Float[Array, "n_svar N"]:
        """A state drawn uniformly in each ``state_variable_range`` (TVB's random initial conditions)."""
        lo = np.array([self.state_variable_range[v][0] for v in self.state_variables])
        hi = np.array([self.state_variable_range[v][1] for v in self.state_variables])
        dtype = dtype or jnp.result_type(float)
        u = jax.random.uniform(key, (self.n_svar, n), dtype=dtype)
        return self.bound(jnp.asarray(lo, dtype)[:, None] + u * jnp.asarray(hi - lo, dtype)[:, None])
