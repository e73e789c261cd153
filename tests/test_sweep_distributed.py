"""vbt.sweep sharded over 4 virtual CPU devices and across 2 processes (JAX's multi-controller runtime on
localhost): the same results as on one device in one process.

Each case runs in fresh interpreters, because the device count (XLA_FLAGS) and jax.distributed.initialize() must be
set before JAX starts.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

HERE = Path(__file__).parent
# the processes of these tests find free ports: keep the tests on one pytest-xdist worker (``--dist loadgroup``)
pytestmark = pytest.mark.xdist_group("distributed")

jax.config.update("jax_enable_x64", True)


def _env(n_devices: int) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={n_devices}".strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.slow
def test_1024_sets_one_device_equals_four_devices():
    """The issue's "done when": 1024 parameter sets in one call, on one CPU device and sharded over four."""
    proc = subprocess.run(
        [sys.executable, str(HERE / "_sweep_devices.py"), "1024"],
        env=_env(4),
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["devices"] == 4 and out["one_n_devices"] == 1 and out["four_n_devices"] == 4
    assert out["one_shape"] == [1024, 5] and out["all_finite"]
    assert out["max_abs_diff"] <= 1e-12, out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_equal_one_process(tmp_path):
    """Two processes on localhost, two devices each: every process holds the full result of the one-process run."""
    from _sweep_worker import sweep_case

    import vbtjax as vbt

    port = _free_port()
    outs = [tmp_path / f"process{i}.npz" for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "_sweep_worker.py"), str(i), "2", str(port), str(outs[i])],
            env=_env(2),
            cwd=HERE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=600)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log[-3000:]
    ref = vbt.sweep(**sweep_case())  # this process: one device
    assert ref.n_processes == 1
    for path in outs:
        res = vbt.SweepResult.load(path)
        assert res.n_processes == 2 and res.n_devices == 4
        np.testing.assert_allclose(res.ys["raw"], ref.ys["raw"], rtol=1e-12, atol=1e-12)
        for v, r in zip(res.values, ref.values, strict=True):
            np.testing.assert_array_equal(v, r)
