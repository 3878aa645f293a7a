# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""pytest configuration shared by all cnnext tests and doctests."""

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

# the deprecated alias of cnnext.cmds warns when imported (tested in test_cmds.py)
collect_ignore = ["cmd.py"]

try:
    from pytest_astropy_header.display import PYTEST_HEADER_MODULES, TESTED_VERSIONS
except ImportError:  # pragma: no cover
    PYTEST_HEADER_MODULES = {}
    TESTED_VERSIONS = {}


def pytest_configure(config):
    config.option.astropy_header = True
    for name in ("Pandas", "h5py", "Matplotlib"):
        PYTEST_HEADER_MODULES.pop(name, None)
    PYTEST_HEADER_MODULES.update({"astroquery": "astroquery", "dustmaps": "dustmaps",
                                  "regions": "regions", "onnxruntime": "onnxruntime",
                                  "torch": "torch"})
    from cnnext import __version__

    TESTED_VERSIONS["cnnext"] = __version__


@pytest.fixture(scope="session")
def dask_client():
    """
    A Dask client on one in-process `~distributed.LocalCluster` (two single-thread
    workers), shared by every test that needs one: real scheduling and serialisation
    of tasks and results, without the start-up cost of worker processes.
    """
    from distributed import Client, LocalCluster
    from distributed.comm import inproc

    # The in-process transport names itself after the IP address that routes to
    # 8.8.8.8 (a UDP connect, which pytest-remotedata forbids); on one machine
    # that address is irrelevant, so give it the loopback one.
    if getattr(inproc.global_manager, "_ip", "") is None:
        inproc.global_manager._ip = "127.0.0.1"
    # the diagnostics servers listen on 127.0.0.1 only: tests stay off the network
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address="127.0.0.1:0",
                      worker_dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        yield client


@pytest.fixture(scope="session")
def dask_process_client():
    """Two Dask worker processes: sources and results really cross process boundaries."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address="127.0.0.1:0",
                      worker_dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        yield client
