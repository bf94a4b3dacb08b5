"""Our reader against RosettaSciIO's rsciio.tvips on files both can read."""

import hashlib

import numpy as np
import pytest

from rsciio_tvips import TvipsRecording, file_reader

rsciio_tvips_ref = pytest.importorskip("rsciio.tvips")
FIXTURES = [
    "test_tvips_2233_000.tvips",
    "test_tvips_2345_000.tvips",
    "test_tvips_2345_split_000.tvips",
]


def test_fixture_checksums(rsciio_data):
    for line in (rsciio_data / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((rsciio_data / name).read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("lazy", [False, True])
def test_fixtures_match_rsciio(rsciio_data, name, lazy):
    (ref,) = rsciio_tvips_ref.file_reader(str(rsciio_data / name))
    (ours,) = file_reader(rsciio_data / name, lazy=lazy)
    np.testing.assert_array_equal(np.asarray(ours["data"]), ref["data"])
    assert ours["data"].dtype == ref["data"].dtype
    assert ours["metadata"]["General"]["date"] == ref["metadata"]["General"]["date"]
    assert ours["metadata"]["General"]["time"] == ref["metadata"]["General"]["time"]
    ref_header = {
        k: int(v)
        for k, v in ref["original_metadata"]["tvips_header"].items()
        if k != "dummy"
    }
    header = dict(ours["original_metadata"]["tvips_header"])
    filler = bytes.fromhex(header.pop("dummy"))
    assert header == ref_header
    assert filler.startswith(bytes(ref["original_metadata"]["tvips_header"]["dummy"]))


def test_fixture_values(rsciio_data):
    # what the fixtures' README says they hold
    r = TvipsRecording(rsciio_data / "test_tvips_2345_split_001.tvips")
    assert (r.n_frames, r.frame_shape, len(r.chain.parts)) == (6, (4, 5), 3)
    h = r.frame_headers
    np.testing.assert_array_equal(h["rotidx"], np.arange(6))
    np.testing.assert_array_equal(h["fcurrent"], np.full(6, 23.0, "f4"))
    assert set(h["timestamp"].tolist()) == {740399696}
    (d,) = file_reader(rsciio_data / "test_tvips_2233_000.tvips")
    np.testing.assert_array_equal(
        TvipsRecording(rsciio_data / "test_tvips_2233_000.tvips").frame_headers["ms"],
        [0, 1, 2, 3],
    )
    assert d["axes"][0]["scale"] == 0.001
    assert d["metadata"]["Acquisition_instrument"]["TEM"]["camera_length"] == 80.0


@pytest.mark.parametrize("scan_shape", [(2, 3), (3, 2), (6,)])
def test_scan_matches_rsciio(rsciio_data, scan_shape):
    path = str(rsciio_data / "test_tvips_2345_split_000.tvips")
    (ref,) = rsciio_tvips_ref.file_reader(path, scan_shape=scan_shape)
    (ours,) = file_reader(path, scan_shape=scan_shape)
    np.testing.assert_array_equal(ours["data"], ref["data"])


@pytest.mark.parametrize("fhb", [60, 108, 180])
@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_built_recordings_match_rsciio(make_tvips, fhb, dtype):
    rec = make_tvips(
        n_frames=7,
        shape=(6, 5),
        dtype=dtype,
        frame_header_bytes=fhb,
        records_per_part=3,
    )
    (ref,) = rsciio_tvips_ref.file_reader(str(rec.path))
    np.testing.assert_array_equal(ref["data"], rec.frames)
    np.testing.assert_array_equal(file_reader(rec.path)[0]["data"], ref["data"])


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "uint64"])
def test_rsciio_writer_output(tmp_path, dtype):
    data = (np.arange(5 * 4 * 6) * 3).astype(dtype).reshape(5, 4, 6)
    signal = {
        "data": data,
        "axes": [
            {
                "name": "time",
                "size": 5,
                "scale": 0.5,
                "offset": 0,
                "units": "s",
                "navigate": True,
            },
            {
                "name": "y",
                "size": 4,
                "scale": 2.0,
                "offset": 0,
                "units": "nm",
                "navigate": False,
            },
            {
                "name": "x",
                "size": 6,
                "scale": 2.0,
                "offset": 0,
                "units": "nm",
                "navigate": False,
            },
        ],
        "metadata": {
            "General": {"date": "2020-01-02", "time": "03:04:05", "time_zone": "UTC"}
        },
        "attributes": {"_lazy": False},
    }
    path = tmp_path / "w.tvips"
    rsciio_tvips_ref.file_writer(
        str(path), signal, max_file_size=600, show_progressbar=False
    )
    parts = sorted(p.name for p in tmp_path.iterdir())
    assert len(parts) > 1 and parts[0] == "w_000.tvips"
    (ours,) = file_reader(tmp_path / parts[-1])
    np.testing.assert_array_equal(ours["data"], data)
    assert ours["metadata"]["General"]["date"] == "2020-01-02"
    assert ours["metadata"]["General"]["time"] == "03:04:05"
    assert ours["axes"][0]["scale"] == 0.5
