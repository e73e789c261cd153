"""Checks shared by the model test files."""

import jax
import jax.numpy as jnp
import numpy as np


def assert_per_region_equals_scalar(cls, values, state, cpl):
    """A model built with per-region (N,) parameters gives, region by region, what the same model with that region's
    scalar parameters gives."""
    arrays = {k: jnp.array(v) for k, v in values.items()}

    @jax.jit
    def both(arrays, state, cpl):
        per_region = cls(**arrays).dfun(state, cpl)

        def one_region(scalars, s, c):  # each region alone, with scalar parameters
            return cls(**scalars).dfun(s[:, None], c[:, None])[:, 0]

        one_by_one = jax.vmap(one_region, in_axes=(0, 1, 1), out_axes=1)(arrays, state, cpl)
        return per_region, one_by_one

    per_region, one_by_one = both(arrays, state, cpl)
    assert per_region.shape == state.shape
    np.testing.assert_allclose(per_region, one_by_one, rtol=1e-13, atol=1e-15)
