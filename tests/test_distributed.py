"""A lazy recording computes on a dask.distributed cluster of processes."""

import pickle

import numpy as np
import pytest

from rsciio_tvips import file_reader

distributed = pytest.importorskip("distributed")


def test_lazy_sum_on_local_cluster(make_tvips):
    rec = make_tvips(n_frames=40, shape=(16, 12), split=[1000, 1001, 5000], truncate=7)
    with pytest.warns(UserWarning, match="truncated"):
        (d,) = file_reader(
            rec.path,
            lazy=True,
            scan_shape=(5, 7),
            scan_start_frame=2,
            rechunking=(2, 3, 16, 12),
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
