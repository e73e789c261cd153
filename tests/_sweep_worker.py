"""One process of a multi-process sweep, spawned by tests/test_sweep_distributed.py (two of them on localhost).

Usage: python _sweep_worker.py PROCESS_ID NUM_PROCESSES PORT OUT.npz

Joins JAX's multi-controller runtime on localhost:PORT (CPU backend, gloo collectives), runs the sweep that
``sweep_case()`` describes over the devices of all processes and saves the gathered result (which every process
holds) to OUT.npz.
"""

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax

jax.config.update("jax_enable_x64", True)
try:  # the default on recent JAX; named explicitly for older versions
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
except Exception:  # noqa: BLE001
    pass


def sweep_case():
    """The sweep both the worker processes and the single-process reference run."""
    import jax.numpy as jnp
    from _sweep_net import small_network

    import vbtjax as vbt

    net = small_network()  # deterministic; the key draws each simulation's random initial state
    a, v = vbt.sweep_grid(jnp.linspace(0.0, 0.05, 16), jnp.linspace(2.0, 9.0, 4))
    return dict(
        net=net,
        where=lambda n: (n.coupling.a, n.speed),
        values=(a, v),
        t1=10.0,
        dt=0.1,
        key=jax.random.key(11),
        batch_size=16,
        progress=False,
    )


def main(pid: int, n: int, port: int, out: str) -> None:
    jax.distributed.initialize(
        coordinator_address=f"localhost:{port}", num_processes=n, process_id=pid, initialization_timeout=120
    )
    try:
        import vbtjax as vbt  # after initialize(): importing BlackJAX (vbtjax.inference) already computes with JAX

        res = vbt.sweep(**sweep_case())
        assert res.n_processes == n, res.n_processes
        res.save(out)
        print(
            f"process {pid}: {jax.process_count()} processes, {res.n_devices} devices, chunks of {res.batch_size}",
            flush=True,
        )
    finally:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
