"""Replay of TVB's reference runs (``../shared/reference``, see its README) through the public API, and their
comparison variable by variable: shared by ``test_tvb_reference.py`` (float64) and ``test_float32.py``.

Each state variable is compared with its own scale: the largest ``|x|`` of that variable in the reference within the
run's compare window (``compare_until.json``: the time up to which TVB's own float32 history rounding has not been
amplified above 1e-7), floored at :data:`FLOOR` times the largest scale of the run for a variable that sits at ~0
(none of the twelve runs has one today; the floor keeps the ratio finite if one does).
"""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np

import vbtjax as vbt

RUNS = (
    "Generic2dOscillator",
    "Generic2dOscillator_Difference",
    "MontbrioPazoRoxin",
    "JansenRit",
    "JansenRit_SigmoidalJansenRit",
    "ReducedWongWang",
    "ReducedWongWangExcInh",
    "Epileptor",
    "SupHopf",
    "Kuramoto",
    "WilsonCowan",
    "LarterBreakspear",
)

FLOOR = 1e-3
"""A variable's scale is at least this fraction of the run's largest variable scale."""


@dataclasses.dataclass(frozen=True)
class Reference:
    """One TVB run cut to its compare window: `data` (the npz), `until` (ms), `n_keep` samples of the subsampled
    trajectory (every 10th step, at 1, 2, ... ms), `n_steps` steps to simulate to reach the last of them."""

    name: str
    data: dict
    until: float

    @property
    def n_keep(self) -> int:
        return int(np.searchsorted(self.data["time_rel"], self.until, side="right"))

    @property
    def n_steps(self) -> int:
        return int(self.data["step_index"][self.n_keep - 1]) + 1

    @property
    def dt(self) -> float:
        return float(self.data["dt"])

    @property
    def trajectory(self) -> np.ndarray:
        """The reference states within the window, ``(n_keep, n_svar, 76)``."""
        return np.asarray(self.data["trajectory"][: self.n_keep], np.float64)

    @property
    def state_variables(self) -> list[str]:
        return [str(s) for s in self.data["state_variables"]]


def load(shared_dir, name: str) -> Reference:
    folder = shared_dir / "reference"
    with np.load(folder / f"{name}.npz") as z:
        data = {k: z[k] for k in z.files}
    until = json.loads((folder / "compare_until.json").read_text())[name]
    return Reference(name, data, float(until))


def _value(v):
    v = np.asarray(v, dtype=float).reshape(-1)
    return float(v[0]) if v.size == 1 else v


def build(ref: Reference, dtype=None) -> vbt.Network:
    """The run's network (TVB's model, coupling and parameters, the stored connectome); with `dtype`, every floating
    leaf cast to it, so that ``net.dtype`` (the dtype the simulation runs in) is `dtype` even under x64."""
    d = ref.data
    params = {k[6:]: _value(d[k]) for k in d if k.startswith("param_")}
    cparams = {k[9:]: _value(d[k]) for k in d if k.startswith("coupling_") and k != "coupling_name"}
    model = getattr(vbt.models, str(d["model_name"]))(**params)
    coupling = getattr(vbt.coupling, str(d["coupling_name"]))(**cparams)
    conn = vbt.Connectome(weights=d["weights"], lengths=d["tract_lengths"])
    net = vbt.Network(model=model, connectome=conn, coupling=coupling, speed=float(d["speed"]))
    if dtype is not None:
        net = cast(net, dtype)
    return net


def cast(tree, dtype):
    """Every floating array leaf of `tree` cast to `dtype` (a Network keeps its static edge layout)."""

    def leaf(x):
        return x.astype(dtype) if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating) else x

    return jax.tree.map(leaf, tree)


def run(ref: Reference, net: vbt.Network | None = None, history=None, solver=None, **kwargs) -> vbt.Solution:
    """The run through :func:`vbtjax.simulate` up to the end of its window (`net`: default :func:`build`; `history`:
    default the run's own initial history; `solver`: default :class:`vbtjax.Heun`, TVB's; `kwargs` go to
    ``simulate``)."""
    net = build(ref) if net is None else net
    history = ref.data["initial_history"] if history is None else history
    solver = vbt.Heun() if solver is None else solver
    return vbt.simulate(net, t1=ref.n_steps * ref.dt, dt=ref.dt, history=history, solver=solver, **kwargs)


def samples(ref: Reference, sol: vbt.Solution) -> np.ndarray:
    """A solution's states at the reference's sample times within the window, ``(n_keep, n_svar, 76)`` float64."""
    return np.asarray(sol.ys["raw"], np.float64)[ref.data["step_index"][: ref.n_keep]]


def replay(ref: Reference, net: vbt.Network | None = None, history=None, **kwargs) -> np.ndarray:
    """``samples(ref, run(ref, net, history, **kwargs))``."""
    return samples(ref, run(ref, net, history, **kwargs))


def scales(reference: np.ndarray) -> np.ndarray:
    """Per state variable, the scale its errors are measured against: ``max |x|`` over time and regions, floored at
    :data:`FLOOR` times the largest of them. `reference` ``(T, n_svar, N)`` -> ``(n_svar,)``."""
    s = np.max(np.abs(reference), axis=(0, 2))
    return np.maximum(s, FLOOR * s.max())


def errors(got: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per state variable, the max abs error over time and regions divided by that variable's scale: ``(n_svar,)``."""
    if got.shape != reference.shape:
        raise AssertionError(f"shapes differ: got {got.shape}, reference {reference.shape}")
    return np.max(np.abs(got - reference), axis=(0, 2)) / scales(reference)


def describe(names, errs) -> str:
    return ", ".join(f"{n} {e:.2e}" for n, e in zip(names, errs, strict=True))
