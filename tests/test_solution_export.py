"""A Solution's metadata (variables, region and channel labels, units, monitors) and its exports to xarray, MNE and
matplotlib, each checked through the other library's own API (``.sel``, ``get_data``, ``get_montage``, a FIF file
written and read by MNE, matplotlib's artists); and the default of ``simulate(progress=None)``."""

import jax

jax.config.update("jax_enable_x64", True)

import sys
from typing import ClassVar

import jax.numpy as jnp
import numpy as np
import pytest

import vbtjax as vbt
from vbtjax.observation.export import MNE_SCALE, OutputInfo, describe_outputs
from vbtjax.simulation.simulate import PROGRESS_MIN_WORK, auto_progress

xr = pytest.importorskip("xarray")

N = 4
REGIONS = ("lA", "lB", "rA", "rB")
T1, DT, PERIOD = 10.0, 0.1, 0.5


def sensors(prefix: str, n: int, seed: int) -> vbt.sensors.Sensors:
    rng = np.random.default_rng(seed)
    pos = rng.uniform(-80.0, 80.0, (n, 3))  # mm
    ori = rng.normal(size=(n, 3)) if prefix == "MEG" else None
    return vbt.sensors.Sensors(labels=[f"{prefix}{k}" for k in range(n)], positions=pos, orientations=ori)


def network(model=None) -> vbt.Network:
    rng = np.random.default_rng(0)
    W = rng.uniform(0, 1, (N, N)) * (1 - np.eye(N))
    L = rng.uniform(5, 30, (N, N)) * (1 - np.eye(N))
    conn = vbt.Connectome(weights=W, lengths=L, labels=REGIONS)
    model = model or vbt.models.MontbrioPazoRoxin()
    return vbt.Network(model=model, connectome=conn, coupling=vbt.coupling.Linear(a=0.1), speed=3.0)


def monitors():
    rng = np.random.default_rng(1)
    eeg, meg, seeg = sensors("E", 5, 2), sensors("MEG", 3, 3), sensors("S", 6, 4)
    return {
        "raw": vbt.monitors.Raw(),
        "tavg": vbt.monitors.TemporalAverage(period=PERIOD, variables_of_interest=("V",)),
        "eeg": vbt.monitors.EEG(rng.normal(size=(5, N)), period=PERIOD, sensors=eeg),
        "meg": vbt.monitors.MEG(rng.normal(size=(3, N)), period=PERIOD, variables_of_interest=("V",), sensors=meg),
        "seeg": vbt.monitors.SEEG(rng.normal(size=(6, N)), period=PERIOD, variables_of_interest=(1,), sensors=seeg),
    }


@pytest.fixture(scope="module")
def sol():
    return vbt.simulate(network(), T1, DT, monitors=monitors())


# ---------------------------------------------------------------------------------------------- metadata


def test_metadata_names_labels_units_and_kinds(sol):
    info = sol.info
    assert set(info) == {"raw", "tavg", "eeg", "meg", "seeg"}
    assert [i.name for i in sol.outputs] == sorted(info)  # the order of jax.tree.leaves(sol.ys)
    raw, tavg, eeg, meg, seeg = (info[k] for k in ("raw", "tavg", "eeg", "meg", "seeg"))
    assert raw.variables == ("r", "V") and tavg.variables == ("V",) and seeg.variables == ("V",)
    assert raw.space == tavg.space == "region" and raw.labels == tavg.labels == REGIONS
    assert (raw.monitor, tavg.monitor, eeg.monitor) == ("Raw", "TemporalAverage", "EEG")
    assert raw.model == "MontbrioPazoRoxin" and raw.time_units == "ms" and raw.units is None
    assert raw.period == pytest.approx(DT) and eeg.period == pytest.approx(PERIOD)
    mons = monitors()
    for key, kind in (("eeg", "eeg"), ("meg", "meg"), ("seeg", "seeg")):
        i = info[key]
        assert i.space == "channel" and i.channel_type == kind and i.labels == mons[key].sensors.labels
        np.testing.assert_array_equal(np.asarray(i.positions), np.asarray(mons[key].sensors.positions))
    np.testing.assert_array_equal(np.asarray(meg.orientations), np.asarray(mons["meg"].sensors.orientations))
    assert "x 3 mm" in repr(eeg) and len(repr(sol)) < 4000  # labels and positions summarised when printed


def test_units_from_the_model_and_single_monitor_name():
    class WithUnits(vbt.models.MontbrioPazoRoxin):
        state_variable_units: ClassVar[dict[str, str]] = {"V": "mV"}

    s = vbt.simulate(network(WithUnits()), 1.0, DT, monitors=vbt.monitors.SubSample(period=0.5))
    assert isinstance(s.info, OutputInfo) and s.info.name == "subsample" and s.info.units == (None, "mV")
    da = s.to_xarray()
    assert list(da["units"].values) == ["", "mV"] and da.dims == ("time", "variable", "region")
    fig = s.plot(variable="V")
    assert fig.axes[0].get_ylabel() == "V (mV)"
    _close(fig)


def test_metadata_survives_jit_vmap_grad_and_tree_maps():
    net = network()
    mons = {"eeg": monitors()["eeg"]}
    jitted = jax.jit(lambda n: vbt.simulate(n, 1.0, DT, monitors=mons))(net)
    assert jitted.outputs == describe_outputs(net, mons, DT) and jitted.info["eeg"].positions is not None
    # sensors traced (built inside jit, or passed as arguments): labels kept, positions unknown
    inside = jax.eval_shape(lambda n: vbt.simulate(n, 1.0, DT, monitors=monitors()), net)
    assert inside.info["eeg"].labels == ("E0", "E1", "E2", "E3", "E4") and inside.info["eeg"].positions is None

    def loss(a):
        n = vbt.Network(model=net.model, connectome=net.connectome, coupling=vbt.coupling.Linear(a=a), speed=3.0)
        sol = vbt.simulate(n, 1.0, DT)
        return jnp.sum(sol.ys["raw"][-1]), sol

    (values, batch), grads = jax.vmap(jax.value_and_grad(loss, has_aux=True))(jnp.array([0.0, 0.1]))
    assert np.all(np.isfinite(grads)) and batch.info["raw"].labels == REGIONS and batch.ys["raw"].shape[0] == 2
    with pytest.raises(ValueError, match="batched Solution"):
        batch.to_xarray()
    second = jax.tree.map(lambda x: x[1], batch)
    np.testing.assert_array_equal(second.to_xarray().sel(region="rB").values, np.asarray(batch.ys["raw"])[1, :, :, 3])


def test_a_solution_built_by_hand_still_works_and_says_what_it_lacks():
    s = vbt.Solution(ts=jnp.arange(3.0), ys=jnp.zeros((3, 1, 2)), final_state=jnp.zeros((1, 2)), dt=1.0, n_steps=3,
                     horizon=1, block=1)  # fmt: skip
    assert s.outputs == () and s.info is None
    with pytest.raises(ValueError, match="carries no description"):
        s.to_xarray()


# ---------------------------------------------------------------------------------------------- xarray


def test_to_xarray_round_trips_values_coords_and_labels(sol):
    da = sol.to_xarray("raw")
    ys, ts = np.asarray(sol.ys["raw"]), np.asarray(sol.ts["raw"])
    assert isinstance(da, xr.DataArray) and da.name == "raw" and da.dims == ("time", "variable", "region")
    np.testing.assert_array_equal(da.values, ys)
    np.testing.assert_array_equal(da["time"].values, ts)
    assert da["time"].attrs["units"] == "ms" and da.attrs["dt"] == DT and da.attrs["monitor"] == "Raw"
    assert tuple(da["region"].values) == REGIONS and tuple(da["variable"].values) == ("r", "V")
    for k, label in enumerate(REGIONS):
        np.testing.assert_array_equal(da.sel(region=label, variable="V").values, ys[:, 1, k])
    np.testing.assert_array_equal(da.sel(time=ts[7]).values, ys[7])

    eeg = sol.to_xarray("eeg")
    assert eeg.dims == ("time", "variable", "channel") and eeg.attrs["channel_type"] == "eeg"
    np.testing.assert_array_equal(eeg.sel(channel="E3", variable="r").values, np.asarray(sol.ys["eeg"])[:, 0, 3])
    np.testing.assert_array_equal(eeg["x"].values, np.asarray(monitors()["eeg"].sensors.positions)[:, 0])
    np.testing.assert_array_equal(eeg["time"].values, np.asarray(sol.ts["eeg"]))


def test_to_xarray_of_several_outputs_is_a_dataset(sol, tmp_path):
    ds = sol.to_xarray()
    assert isinstance(ds, xr.Dataset) and set(ds.data_vars) == {"raw", "tavg", "eeg", "meg", "seeg"}
    assert ds["raw"].dims == ("time_raw", "variable_raw", "region") and ds["tavg"].dims[2] == "region"
    assert ds["seeg"].dims == ("time_seeg", "variable_seeg", "channel_seeg")
    np.testing.assert_array_equal(ds["tavg"].sel(region="rA").values[:, 0], np.asarray(sol.ys["tavg"])[:, 0, 2])
    np.testing.assert_array_equal(ds["time_tavg"].values, np.asarray(sol.ts["tavg"]))
    path = tmp_path / "sol.nc"
    ds.to_netcdf(path, engine="scipy")  # attrs and coords are plain enough for netCDF
    with xr.open_dataset(path, engine="scipy") as back:
        xr.testing.assert_allclose(back["seeg"], ds["seeg"])
        assert tuple(back["region"].values) == REGIONS
    with pytest.raises(ValueError, match="no output named"):
        sol.to_xarray("bold")


# ---------------------------------------------------------------------------------------------- MNE


def test_to_mne_eeg_round_trips_through_mne_and_a_fif_file(sol, tmp_path):
    mne = pytest.importorskip("mne")
    with pytest.raises(ValueError, match="choose one"):
        sol.to_mne("eeg")  # two projected variables
    raw = sol.to_mne("eeg", variable="V")
    mon = monitors()["eeg"]
    assert isinstance(raw, mne.io.RawArray)
    np.testing.assert_allclose(raw.get_data(), np.asarray(sol.ys["eeg"])[:, 1, :].T * MNE_SCALE["eeg"], rtol=1e-12)
    assert raw.info["sfreq"] == pytest.approx(1000.0 / PERIOD)
    assert raw.ch_names == list(mon.sensors.labels) and raw.get_channel_types() == ["eeg"] * 5
    montage = raw.get_montage().get_positions()
    assert montage["coord_frame"] == "head"
    for label, p in zip(mon.sensors.labels, np.asarray(mon.sensors.positions), strict=True):
        np.testing.assert_allclose(montage["ch_pos"][label], p / 1000.0, rtol=1e-12)  # mm -> m
    assert "MontbrioPazoRoxin" in raw.info["description"]

    fif = tmp_path / "sim_raw.fif"
    raw.save(fif, verbose=False)
    back = mne.io.read_raw_fif(fif, preload=True, verbose=False)
    np.testing.assert_allclose(back.get_data(), raw.get_data(), rtol=1e-6)  # FIF stores float32
    assert back.ch_names == raw.ch_names and back.info["sfreq"] == raw.info["sfreq"]
    back_pos = back.get_montage().get_positions()["ch_pos"]
    np.testing.assert_allclose(np.array([back_pos[c] for c in raw.ch_names]), np.asarray(mon.sensors.positions) / 1e3)


def test_to_mne_seeg_and_meg_types_positions_and_scale(sol):
    pytest.importorskip("mne")
    seeg = sol.to_mne("seeg", scale=1.0)
    assert seeg.get_channel_types() == ["seeg"] * 6
    np.testing.assert_allclose(seeg.get_data(), np.asarray(sol.ys["seeg"])[:, 0, :].T, rtol=1e-12)
    pos = seeg.get_montage().get_positions()["ch_pos"]
    np.testing.assert_allclose(pos["S5"], np.asarray(monitors()["seeg"].sensors.positions)[5] / 1e3, rtol=1e-12)

    meg = sol.to_mne("meg")
    sens = monitors()["meg"].sensors
    assert meg.get_channel_types() == ["mag"] * 3 and meg.ch_names == list(sens.labels)
    np.testing.assert_allclose(meg.get_data(), np.asarray(sol.ys["meg"])[:, 0, :].T * 1e-15, rtol=1e-12)
    locs = np.array([ch["loc"] for ch in meg.info["chs"]])
    np.testing.assert_allclose(locs[:, :3], np.asarray(sens.positions) / 1e3, rtol=1e-12)
    ori = np.asarray(sens.orientations)
    np.testing.assert_allclose(locs[:, 9:12], ori / np.linalg.norm(ori, axis=1, keepdims=True), rtol=1e-12)
    assert sol.to_mne("meg", ch_type="grad").get_channel_types() == ["grad"] * 3
    with pytest.raises(ValueError, match="ch_type"):
        sol.to_mne("meg", ch_type="eeg")


def test_to_mne_refuses_region_level_outputs_and_says_how(sol):
    pytest.importorskip("mne")
    for which in ("raw", "tavg"):
        with pytest.raises(ValueError, match="region-level signals, not EEG/MEG/SEEG.*sensor monitor"):
            sol.to_mne(which)


def test_to_mne_without_mne_names_the_extra(sol, monkeypatch):
    monkeypatch.setitem(sys.modules, "mne", None)  # import mne -> ImportError
    with pytest.raises(ImportError, match=r"vbtjax\[io\]"):
        sol.to_mne("seeg")


# ---------------------------------------------------------------------------------------------- plotting


def _close(fig):
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_plot_returns_a_labelled_figure(sol):
    import matplotlib

    backend = matplotlib.get_backend()
    fig = sol.plot("raw", select=["rA", 0])
    assert matplotlib.get_backend() == backend
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 2  # one panel per variable
    top, bottom = fig.axes
    assert "MontbrioPazoRoxin" in top.get_title() and "Raw" in top.get_title()
    assert bottom.get_xlabel() == "time (ms)" and [a.get_ylabel() for a in fig.axes] == ["r", "V"]
    assert [t.get_text() for t in top.get_legend().get_texts()] == ["rA", "lA"]
    x, y = top.get_lines()[0].get_data()
    np.testing.assert_array_equal(x, np.asarray(sol.ts["raw"]))
    np.testing.assert_array_equal(y, np.asarray(sol.ys["raw"])[:, 0, 2])
    _close(fig)

    fig = sol.plot("seeg", max_traces=3, title="contacts")
    ax = fig.axes[0]
    assert ax.get_title() == "contacts" and len(ax.get_lines()) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["S0", "S2", "S5"]
    _close(fig)


def test_plot_into_given_axes_and_its_errors(sol):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert sol.plot("eeg", variable="r", select="E1", ax=ax) is fig
    assert "of 5" in ax.get_title() and ax.get_xlabel() == "time (ms)"
    with pytest.raises(ValueError, match="one variable"):
        sol.plot("eeg", ax=ax)
    with pytest.raises(ValueError, match="not one of"):
        sol.plot("raw", select="nowhere")
    with pytest.raises(ValueError, match="choose one with which"):
        sol.plot()
    _close(fig)


# ---------------------------------------------------------------------------------------------- progress


def test_progress_default_is_on_only_for_long_watched_untraced_runs(monkeypatch):
    net = network()
    steps = int(PROGRESS_MIN_WORK / (N * 2)) + 1
    assert auto_progress(True, net, 1) and not auto_progress(False, net, steps)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert auto_progress(None, net, steps)
    assert not auto_progress(None, net, steps // 2)  # short
    traced = []
    jax.jit(lambda n: traced.append(auto_progress(None, n, steps)) or 0.0)(net)
    assert traced == [False]  # under a transformation
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert not auto_progress(None, net, steps)  # nobody watches
