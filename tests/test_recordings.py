"""vbtjax.recordings: SEEG recordings read from files written by MNE-Python (EDF/BDF via edfio, BrainVision via pybv,
FIF, BIDS-iEEG via mne-bids), bad channels, the bipolar montage and the gain of monopolar/bipolar channels."""

import json
import re
import sys

import numpy as np
import pytest

mne = pytest.importorskip("mne")
mne_bids = pytest.importorskip("mne_bids")
edfio = pytest.importorskip("edfio")
pytest.importorskip("pybv")

from vbtjax import recordings as R
from vbtjax.files import FileReadError
from vbtjax.sensors import Sensors, seeg_gain_point_source

SFREQ = 256.0
SEEG = ["TB'1", "TB'2", "TB'3", "TB'5", "Hp1", "Hp2", "Hp3"]
POS_MM = np.array(
    [[10.5, -20.25, 30.0], [13.5, -20.25, 30.0], [16.5, -20.25, 30.0], [22.5, -20.25, 30.0]]
    + [[-30.0, 5.0 + 3.5 * k, -12.0] for k in range(3)]
)


@pytest.fixture(scope="module")
def signals():
    """7 SEEG contacts (~50 uV, volts), a trigger and an ECG channel, 4 s at 256 Hz."""
    rng = np.random.default_rng(0)
    seeg = rng.standard_normal((len(SEEG), 1024)) * 50e-6
    stim = (np.arange(1024) % 256 == 0).astype(float)[None]
    ecg = 1e-3 * np.sin(np.arange(1024) / SFREQ * 2 * np.pi)[None]
    return seeg, stim, ecg


def _raw(signals, bads=()):
    seeg, stim, ecg = signals
    info = mne.create_info([*SEEG, "STI", "EKG"], SFREQ, ["seeg"] * len(SEEG) + ["stim", "ecg"])
    raw = mne.io.RawArray(np.vstack([seeg, stim, ecg]), info, verbose=False)
    raw.info["bads"] = list(bads)
    return raw


def _edf_step(path):
    """Resolution of an EDF/BDF file's voltage signals, V: one digital step, (physical range) / (digital range)."""
    edf = edfio.read_bdf(path) if str(path).lower().endswith(".bdf") else edfio.read_edf(path)
    steps = [
        (s.physical_range.max - s.physical_range.min) / (s.digital_range.max - s.digital_range.min)
        for s in edf.signals
        if s.physical_dimension == "uV"
    ]
    return max(steps) * 1e-6


def _float32_close(got, want):
    # stored as float32 in the file (FIF, BrainVision) and in SEEGRecording: two roundings of 2^-24 relative each
    np.testing.assert_allclose(got, want, rtol=2.0**-22, atol=2.0**-22 * np.abs(want).max())


# ---------------------------------------------------------------------------------------------------- the class


def test_npz_round_trip_bads_positions_and_old_files(tmp_path):
    rec = R.SEEGRecording(np.ones((3, 10)), 512.0, ["A1", "A2", "B1"], {"x": 1}, ["A2"], POS_MM[:3])
    back = R.SEEGRecording.load(rec.save(tmp_path / "s.npz"))
    assert back.ch_names == rec.ch_names and back.sfreq == 512.0 and back.meta == {"x": 1} and back.bads == ["A2"]
    np.testing.assert_array_equal(back.data, rec.data)
    np.testing.assert_array_equal(back.positions, POS_MM[:3])
    assert back.data.dtype == np.float32 and back.duration == pytest.approx(10 / 512)
    # a file written before bads/positions existed (vep.py's format) still loads
    np.savez(tmp_path / "old.npz", data=np.ones((2, 4)), sfreq=np.asarray(100.0), ch_names=np.asarray(["A1", "A2"]))
    old = R.read_seeg(tmp_path / "old.npz")
    assert old.bads == [] and old.positions is None and old.meta == {}
    # no positions: no key written, none read
    assert R.SEEGRecording.load(old.save(tmp_path / "o2.npz")).positions is None
    np.savez(tmp_path / "bad.npz", data=np.ones((2, 3)))
    with pytest.raises(ValueError, match="missing keys"):
        R.SEEGRecording.load(tmp_path / "bad.npz")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"data": np.ones(5)}, "expected \\(contacts, samples\\)"),
        ({"ch_names": ["A1"]}, "ch_names"),
        ({"sfreq": 0.0}, "sfreq must be a positive"),
        ({"ch_names": ["A1", "A1"]}, "more than once"),
        ({"bads": ["Z9"]}, "bads \\['Z9'\\] are not in ch_names"),
        ({"bads": "A1"}, "not the single string"),
        ({"positions": np.zeros((2, 2))}, "positions has shape"),
    ],
)
def test_validation(kwargs, match):
    args = {"data": np.ones((2, 8)), "sfreq": 100.0, "ch_names": ["A1", "A2"]} | kwargs
    with pytest.raises(ValueError, match=match):
        R.SEEGRecording(**args)


def test_pick_drop_bads_crop():
    data = np.arange(40, dtype=float).reshape(4, 10)
    rec = R.SEEGRecording(data, 10.0, ["A1", "A2", "B1", "B2"], {"k": [1]}, ["B1"], POS_MM[:4])
    p = rec.pick(["B2", "B1"])
    assert p.ch_names == ["B2", "B1"] and p.bads == ["B1"]
    np.testing.assert_array_equal(p.data, data[[3, 2]])
    np.testing.assert_array_equal(p.positions, POS_MM[[3, 2]])
    p.meta["k"].append(2)
    assert rec.meta == {"k": [1]}  # meta is copied
    d = rec.drop_bads()
    assert d.ch_names == ["A1", "A2", "B2"] and d.bads == []
    c = rec.crop(0.2, 0.5)  # samples 2, 3, 4
    np.testing.assert_array_equal(c.data, data[:, 2:5])
    assert c.duration == pytest.approx(0.3) and c.meta["t0_s"] == pytest.approx(0.2)
    cc = c.crop(0.1)
    np.testing.assert_array_equal(cc.data, data[:, 3:5])
    assert cc.meta["t0_s"] == pytest.approx(0.3)
    assert rec.crop(0.0).n_samples == 10 and rec.crop(0.0, 1.0).n_samples == 10
    with pytest.raises(ValueError, match="not in the recording"):
        rec.pick(["A1", "Z1"])
    with pytest.raises(ValueError, match="tmin_s < tmax_s <= duration"):
        rec.crop(0.5, 2.0)
    with pytest.raises(ValueError, match="holds no sample"):
        rec.crop(0.21, 0.29)


# ---------------------------------------------------------------------------------------------------- formats


@pytest.mark.parametrize("ext", [".edf", ".bdf"])
def test_read_edf_bdf(tmp_path, signals, ext):
    """EDF (16 bit) / BDF (24 bit) written by MNE (edfio) with type-prefixed labels ("SEEG TB'1"): the SEEG contacts
    in volts within half a digital step (plus float32 rounding), the trigger and ECG dropped."""
    path = tmp_path / f"rec{ext}"
    _raw(signals).export(path, add_ch_type=True, verbose=False)
    rec = R.read_seeg(path, bads=["Hp2"])
    assert rec.ch_names == SEEG and rec.sfreq == SFREQ and rec.bads == ["Hp2"] and rec.positions is None
    assert rec.meta["unit"] == "V" and rec.meta["format"] == ext[1:].upper()
    assert rec.meta["dropped"] == {"STI": "stim", "EKG": "ecg"}
    assert rec.meta["file_units"]["TB'1"] == "µV"
    step = _edf_step(path)
    bits = 16 if ext == ".edf" else 24  # the range spans every channel (ECG: +-1 mV): ~2 mV / 2^bits
    assert step == pytest.approx(2e-3 / (2**bits - 2), rel=0.05)
    seeg = signals[0]
    np.testing.assert_allclose(rec.data, seeg, rtol=0, atol=step / 2 + 2.0**-23 * np.abs(seeg).max())
    # without type prefixes every voltage channel reads as EEG (the ECG too); the trigger has no voltage unit
    plain = tmp_path / f"plain{ext}"
    _raw(signals).export(plain, verbose=False)
    untyped = R.read_seeg(plain)
    assert untyped.ch_names == [*SEEG, "EKG"] and untyped.meta["dropped"] == {"STI": "no voltage unit"}
    # channels= picks any channels, in order, whatever their type
    ecg = R.read_seeg(path, channels=["EKG", "Hp1"])
    assert ecg.ch_names == ["EKG", "Hp1"] and ecg.meta["dropped"]["TB'1"] == "seeg"


@pytest.mark.filterwarnings("ignore:Encountered data in 'double' format:RuntimeWarning")  # pybv stores float32
def test_read_brainvision(tmp_path, signals):
    """BrainVision (pybv, float32) carries no channel types: every voltage channel reads as EEG and is kept."""
    path = tmp_path / "rec.vhdr"
    _raw(signals).pick(SEEG).export(path, verbose=False)
    rec = R.read_seeg(path)
    assert rec.ch_names == SEEG and rec.sfreq == SFREQ and rec.bads == [] and rec.meta["format"] == "BrainVision"
    _float32_close(rec.data, signals[0])
    with pytest.raises(ValueError, match="give the .vhdr header"):
        R.read_seeg(path.with_suffix(".vmrk"))


@pytest.mark.parametrize("name", ["rec_raw.fif", "rec_raw.fif.gz"])
def test_read_fif(tmp_path, signals, name):
    """FIF keeps types and bads: trigger and ECG dropped, the file's bad channel plus the one passed in."""
    path = tmp_path / name
    _raw(signals, bads=["TB'2", "EKG"]).save(path, verbose=False)
    rec = R.read_seeg(path, bads=["Hp3"])
    assert rec.ch_names == SEEG and rec.sfreq == SFREQ and rec.bads == ["TB'2", "Hp3"]
    assert rec.meta["format"] == "FIF" and sorted(rec.meta["dropped"]) == ["EKG", "STI"]
    _float32_close(rec.data, signals[0])
    assert rec.drop_bads().ch_names == ["TB'1", "TB'3", "TB'5", "Hp1", "Hp2"]
    with pytest.raises(ValueError, match="channels \\['Z1'\\] are not in"):
        R.read_seeg(path, channels=["Z1"])
    with pytest.raises(ValueError, match="bads \\['Z1'\\] are not channels"):
        R.read_seeg(path, bads=["Z1"])


def _write_bids(root, signals, fmt, frame):
    """A BIDS-iEEG dataset written by mne-bids: contacts at POS_MM (written in m), Hp3 without a position (n/a), TB'2
    bad, a trigger channel. ``frame`` "mri" is written in ACPC space (mne-bids then names the recording with the
    space too), "mni_tal" in fsaverage space (only the electrodes/coordsystem files carry it, the usual layout)."""
    raw = _raw(signals, bads=["TB'2"]).drop_channels(["EKG"])
    pos = {n: p / 1000 for n, p in zip(SEEG, POS_MM, strict=True)}
    pos["Hp3"] = np.full(3, np.nan)
    montage = mne.channels.make_dig_montage(ch_pos=pos, coord_frame=frame)
    path = mne_bids.BIDSPath(
        subject="01", session="01", task="rest", run="01", acquisition="seeg", datatype="ieeg", root=root
    )
    if frame == "mri":
        path.update(space="ACPC")
    mne_bids.write_raw_bids(
        raw, path, format=fmt, allow_preload=True, montage=montage, acpc_aligned=True, overwrite=True, verbose=False
    )
    return path.fpath


@pytest.mark.parametrize("fmt, frame, space", [("EDF", "mri", "ACPC"), ("BrainVision", "mni_tal", "fsaverage")])
def test_read_bids_ieeg(tmp_path, signals, fmt, frame, space):
    root = tmp_path / "bids"
    fpath = _write_bids(root, signals, fmt, frame)
    folder = fpath.parent
    assert ("space-" in fpath.name) == (frame == "mri") and next(folder.glob(f"*_space-{space}_electrodes.tsv"))
    channels_tsv = next(folder.glob("*_channels.tsv")).read_text()
    assert "TB'2\tSEEG" in channels_tsv and "\tbad\t" in channels_tsv  # what mne-bids wrote
    rec = R.read_bids_ieeg(root, "01", session="01", task="rest", run=1)
    assert rec.ch_names == SEEG and rec.bads == ["TB'2"] and rec.sfreq == SFREQ
    assert rec.meta["dropped"] == {"STI": "trig"} and rec.meta["bids"]["acq"] == "seeg"
    assert rec.meta["positions_converted_from"] == "m" and rec.meta["coordinate_system"] == space
    np.testing.assert_allclose(rec.positions[:-1], POS_MM[:-1], rtol=1e-12, atol=1e-9)
    assert np.all(np.isnan(rec.positions[-1]))
    if fmt == "EDF":
        step = _edf_step(fpath)
        np.testing.assert_allclose(rec.data, signals[0], rtol=0, atol=step / 2 + 2.0**-23 * np.abs(signals[0]).max())
    else:
        _float32_close(rec.data, signals[0])
    same = R.read_seeg(fpath, bads=["Hp1"])
    assert same.bads == ["TB'2", "Hp1"]
    np.testing.assert_array_equal(same.data, rec.data)
    # sensors from the electrodes: every channel needs a position
    with pytest.raises(ValueError, match="channels \\['Hp3'\\] have no position"):
        R.sensors_from_recording(rec)
    sens = R.sensors_from_recording(rec.pick(SEEG[:-1]))
    assert sens.labels == tuple(SEEG[:-1])
    np.testing.assert_allclose(np.asarray(sens.positions), POS_MM[:-1], rtol=1e-6)
    # coordinates said to be in cm are converted by 10
    cs_path = next(folder.glob("*_coordsystem.json"))
    cs = json.loads(cs_path.read_text())
    cs_path.write_text(json.dumps(cs | {"iEEGCoordinateUnits": "cm"}))
    cm = R.read_seeg(fpath)
    assert cm.meta["positions_converted_from"] == "cm"
    np.testing.assert_allclose(cm.positions[:-1], POS_MM[:-1] / 100, rtol=1e-12)
    # damaged sidecars: refused naming the file, not a raw JSONDecodeError or UnicodeDecodeError
    cs_path.write_bytes(b"\xff\xfe{")
    with pytest.raises(FileReadError, match=re.escape(f"{cs_path} is not UTF-8")):
        R.read_seeg(fpath)
    cs_path.write_text("[1, 2]")
    with pytest.raises(FileReadError, match=re.escape(f"{cs_path} holds a list")):
        R.read_seeg(fpath)
    cs_path.write_text(json.dumps(cs))
    channels = next(folder.glob("*_channels.tsv"))
    channels.write_bytes(b"name\ttype\n\xff\xfe\tSEEG\n")
    with pytest.raises(FileReadError, match=re.escape(f"{channels} is not a readable UTF-8 TSV")):
        R.read_seeg(fpath)
    with pytest.raises(FileNotFoundError, match="no iEEG recording"):
        R.read_bids_ieeg(root, "01", task="sleep")
    with pytest.raises(FileNotFoundError, match="no subject folder sub-02"):
        R.read_bids_ieeg(root, "02")


def test_read_errors(tmp_path, signals, monkeypatch):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        R.read_seeg(tmp_path / "missing.edf")
    (tmp_path / "rec.xyz").write_text("")
    with pytest.raises(ValueError, match="supported extensions are .npz, .edf"):
        R.read_seeg(tmp_path / "rec.xyz")
    with pytest.raises(ValueError, match="is a folder"):
        R.read_seeg(tmp_path)
    rec = R.SEEGRecording(np.ones((1, 4)), 10.0, ["A1"])
    with pytest.raises(ValueError, match="no positions"):
        R.sensors_from_recording(rec)
    path = tmp_path / "rec.edf"
    _raw(signals).export(path, verbose=False)
    (tmp_path / "cut.edf").write_bytes(path.read_bytes()[:400])
    with pytest.raises(FileReadError, match=re.escape(f"{tmp_path / 'cut.edf'} cannot be read as EDF")):
        R.read_seeg(tmp_path / "cut.edf")
    monkeypatch.setitem(sys.modules, "mne", None)  # MNE not installed
    with pytest.raises(ImportError, match='pip install "vbtjax\\[io\\]"'):
        R.read_seeg(path)


# ---------------------------------------------------------------------------------------------------- montages


def test_contact_labels():
    assert R.split_contact("TB'12") == ("TB'", 12)
    assert R.split_contact("a01") == ("a", 1)
    assert R.split_contact("OR'a3") == ("OR'a", 3)
    assert R.split_contact("ECG") is None and R.split_contact("12") is None
    assert R.split_bipolar("TB'1-TB'2") == ("TB'1", "TB'2") and R.split_bipolar("TB'1") is None
    assert R.is_bipolar(["A1-A2", "b'3-b'4"]) and not R.is_bipolar(["A1-A2", "A3"]) and not R.is_bipolar([])


def test_bipolar():
    names = ["TB'1", "TB'2", "TB'3", "TB'5", "TB'6", "TB'7", "tb1", "tb2", "A'11", "A'10", "A'12", "ECG"]
    rng = np.random.default_rng(1)
    data = rng.standard_normal((len(names), 50)).astype(np.float32)
    pos = rng.normal(size=(len(names), 3)) * 20
    rec = R.SEEGRecording(data, 100.0, names, {"source": "x"}, ["TB'7"], pos)
    bip = R.bipolar(rec)
    want = [("TB'1", "TB'2"), ("TB'2", "TB'3"), ("TB'5", "TB'6"), ("tb1", "tb2"), ("A'10", "A'11"), ("A'11", "A'12")]
    assert bip.ch_names == [f"{a}-{b}" for a, b in want]  # no TB'3-TB'5 (gap), TB'6-TB'7 (bad), ECG
    ia, ib = [names.index(a) for a, _ in want], [names.index(b) for _, b in want]
    np.testing.assert_allclose(bip.data, data[ia].astype(float) - data[ib], rtol=1e-6)
    np.testing.assert_allclose(bip.positions, (pos[ia] + pos[ib]) / 2)
    assert bip.bads == [] and bip.meta == {"source": "x", "montage": "bipolar"} and bip.sfreq == 100.0
    assert R.is_bipolar(bip) and not R.is_bipolar(rec)
    with pytest.raises(ValueError, match="already is bipolar"):
        R.bipolar(bip)
    with pytest.raises(ValueError, match="no two good contacts"):
        R.bipolar(rec.pick(["TB'1", "TB'3", "ECG"]))


def test_channel_gain():
    rng = np.random.default_rng(2)
    sensors = Sensors(labels=["TB'1", "TB'2", "TB'3", "X-1"], positions=rng.normal(size=(4, 3)) * 30)
    centres = rng.normal(size=(6, 3)) * 40
    full = np.asarray(seeg_gain_point_source(sensors.positions, centres))
    g = np.asarray(R.channel_gain(["TB'2", "TB'1-TB'2", "TB'3-TB'2", "X-1", "TB'1-X-1"], sensors, centres))
    assert g.shape == (5, 6)
    np.testing.assert_allclose(g[0], full[1], rtol=1e-6)
    np.testing.assert_allclose(g[1], full[0] - full[1], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(g[2], full[2] - full[1], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(g[3], full[3], rtol=1e-6)  # a sensor whose label has a '-'
    np.testing.assert_allclose(g[4], full[0] - full[3], rtol=1e-5, atol=1e-9)
    # the power of a bipolar channel of independent sources: sum_i (G_Xi - G_Yi)^2 P_i
    power = rng.uniform(0.5, 2, 6)
    src = rng.standard_normal((6, 200_000)) * np.sqrt(power)[:, None]
    x = full[0] @ src - full[1] @ src
    assert np.mean(x**2) == pytest.approx(np.sum(g[1] ** 2 * power), rel=0.02)
    unknown = ["TB'9", "TB'1-Q1"]
    with pytest.raises(ValueError, match=re.escape(f"channels {unknown} are neither sensors")):
        R.channel_gain(["TB'1", "TB'9", "TB'1-Q1"], sensors, centres)


# ---------------------------------------------------------------------------------------------------- bad channels


def test_detect_bad_channels():
    rng = np.random.default_rng(3)
    amp = np.exp(0.3 * rng.standard_normal(40))  # contacts differ in amplitude (sd of log sd 0.3)
    data = rng.standard_normal((40, 2000)) * amp[:, None] * 50e-6
    names = [f"E{k // 10}{'abcd'[k // 10]}{k % 10 + 1}" for k in range(40)]
    rec = R.SEEGRecording(data, SFREQ, names)
    assert R.detect_bad_channels(rec) == []
    dirty = data.copy()
    dirty[3] = 1e-3  # flat (a constant offset)
    dirty[17] *= 30  # noisy
    dirty[25, 100] = np.nan
    dirty[31] *= 1e-3  # a nearly dead contact: a low outlier
    bad = R.SEEGRecording(dirty, SFREQ, names)
    assert R.detect_bad_channels(bad) == [names[3], names[17], names[25], names[31]]
    assert bad.bads == []  # not modified
    assert R.detect_bad_channels(bad, z=1e3) == [names[3], names[25]]
    with pytest.raises(ValueError, match="z must be a positive"):
        R.detect_bad_channels(rec, z=0)
