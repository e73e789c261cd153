"""Run by tests/test_sweep_distributed.py in a fresh interpreter with 4 virtual CPU devices: the same sweep of 1024
parameter sets on one device and sharded over four; prints a JSON summary on the last line.

Usage: python _sweep_devices.py [N_SETS]  (XLA_FLAGS=--xla_force_host_platform_device_count=4 must be set by the
caller, before JAX is imported).
"""

import json
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import numpy as np
from _sweep_net import small_network  # noqa: E402

import vbtjax as vbt


def main(n_sets: int) -> dict:
    net = small_network()  # deterministic; the key draws each simulation's random initial state
    a, v = vbt.sweep_grid(jnp.linspace(0.0, 0.05, n_sets // 8), jnp.linspace(2.0, 9.0, 8))
    kw = dict(
        where=lambda n: (n.coupling.a, n.speed),
        values=(a, v),
        t1=10.0,
        dt=0.1,
        key=jax.random.key(7),
        features=lambda sol: sol.ys["raw"][-20:, 0].mean(axis=0),
        progress=False,
    )
    out = {"devices": len(jax.devices())}
    for name, devs in (("one", jax.devices()[:1]), ("four", jax.devices()[:4])):
        t = time.perf_counter()
        res = vbt.sweep(net, devices=devs, **kw)
        out[f"{name}_s"] = time.perf_counter() - t
        out[f"{name}_n_devices"] = res.n_devices
        out[f"{name}_shape"] = list(res.features.shape)
        out.setdefault("_res", {})[name] = res.features
    f1, f4 = out.pop("_res").values()
    out["max_abs_diff"] = float(np.max(np.abs(f1 - f4)))
    out["bitwise_equal"] = bool(np.array_equal(f1, f4))
    out["all_finite"] = bool(np.all(np.isfinite(f1)))
    return out


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1024)))
