"""A lazy recording computes on a dask.distributed cluster of processes."""

import pickle

import numpy as np
import pytest

from rsciio_tvips import file_reader
from rsciio_tvips._reading.grid import FrameGrid

distributed = pytest.importorskip("distributed")


@pytest.mark.parametrize("io", ["pread", "mmap"])
def test_lazy_sum_on_local_cluster(make_tvips, io):
    rec = make_tvips(n_frames=40, shape=(16, 12), split=[1000, 1001, 5000], truncate=7)
    with pytest.warns(UserWarning, match="truncated"):
        (d,) = file_reader(
            rec.path,
            lazy=True,
            scan_shape=(5, 7),
            scan_start_frame=2,
            rechunking=(2, 3, 16, 12),
            io=io,
        )
    x = d["data"]
    assert len(pickle.dumps(x)) < 10_000
    expected = rec.frames[2:37].reshape(5, 7, 16, 12).astype(np.uint64)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            memory_limit="1GiB",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        total = client.compute(x.sum(axis=(0, 1), dtype=np.uint64)).result()
        vbf = client.compute(x[:, :, 4:8, 3:6].sum(axis=(2, 3))).result()
    np.testing.assert_array_equal(total, expected.sum(axis=(0, 1)))
    np.testing.assert_array_equal(vbf, expected[:, :, 4:8, 3:6].sum(axis=(2, 3)))


def cluster(memory_limit="512MiB"):
    """Two single-threaded worker processes with bounded memory."""
    return distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit=memory_limit,
        dashboard_address=None,
    )


def test_hyperspy_lazy_4d_signal_on_local_cluster(make_tvips):
    hs = pytest.importorskip("hyperspy.api")
    import rsciio_tvips

    rec = make_tvips(n_frames=48, shape=(20, 24), records_per_part=10)
    rsciio_tvips.register()
    try:
        s = hs.load(
            rec.path,
            lazy=True,
            scan_shape=(6, 8),
            winding_scan_axis="x",
            rechunking=(2, 8, 20, 24),
        )
    finally:
        rsciio_tvips.unregister()
    expected = rec.frames.reshape(6, 8, 20, 24).astype(np.uint64)
    # the snake, in RosettaSciIO's convention: rows 0, 2, 4 ... run backwards
    expected[0::2] = expected[0::2, ::-1]
    with cluster() as c, distributed.Client(c) as client:
        info = client.scheduler_info()["workers"].values()
        assert [w["memory_limit"] for w in info] == [512 * 2**20] * 2
        vbf = s.isig[5:9, 4:10].sum(axis=(2, 3))
        vbf.compute()
        mean_dp = s.mean(axis=(0, 1))
        mean_dp.compute()
    np.testing.assert_array_equal(vbf.data, expected[:, :, 4:10, 5:9].sum(axis=(2, 3)))
    np.testing.assert_allclose(mean_dp.data, expected.mean(axis=(0, 1)), rtol=1e-12)


def graph_parts(x):
    """The BlockSource of every task of a lazy recording's graph."""
    from dask._task_spec import DataNode, Task
    from dask.array.core import getter

    from rsciio_tvips._reading.lazy import BlockSource

    sources = []
    for task in dict(x.__dask_graph__()).values():
        assert isinstance(task, Task)
        assert task.func is getter
        (node,) = [a for a in task.args if isinstance(a, DataNode)]
        assert isinstance(node.value, BlockSource)
        sources.append(node.value)
    return sources


@pytest.mark.parametrize("n_scan_rows", [4, 40])
@pytest.mark.parametrize("winding", [None, "x"], ids=["in-order", "snake"])
def test_graph_holds_descriptions_only(make_tvips, n_scan_rows, winding):
    # Each task: the parts' paths and sizes, the main header and its chunk's
    # frame table: a rule of a few numbers for frames in order (FrameGrid),
    # 4 bytes a point for a snake. No pixel, no memmap, no open file.
    rec = make_tvips(n_frames=n_scan_rows * 10, shape=(4, 4), records_per_part=7)
    (d,) = file_reader(
        rec.path,
        lazy=True,
        scan_shape=(n_scan_rows, 10),
        winding_scan_axis=winding,
        rechunking=(n_scan_rows // 4, 10, 4, 4),
    )
    sources = graph_parts(d["data"])
    assert len(sources) == 4
    for source in sources:
        assert set(vars(source)) == {
            "records",
            "frames",
            "io",
            "shape",
            "dtype",
            "ndim",
        }
        assert source.io == "pread"
        if winding is None:
            assert isinstance(source.frames, FrameGrid)
            assert len(pickle.dumps(source.frames)) < 200
        else:
            assert source.frames.dtype == np.int32
        assert source.frames.size == n_scan_rows // 4 * 10
        assert set(vars(source.records)) == {"chain", "header"}
        for value in vars(source.chain).values():
            assert not isinstance(value, np.ndarray)
    table = sum(getattr(s.frames, "nbytes", 0) for s in sources)
    overhead = (len(pickle.dumps(dict(d["data"].__dask_graph__()))) - table) / 4
    # paths and sizes of the parts: the 40-row recording has 10x the parts
    assert overhead < 400 + 120 * len(sources[0].chain.parts)
