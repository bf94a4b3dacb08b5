"""A pytest plugin that runs RosettaSciIO's own TVIPS tests on rsciio_tvips.

``tests/test_rsciio_suite.py`` runs the installed
``rsciio/tests/test_tvips.py`` in a subprocess with ``-p plugin``. The plugin

- registers rsciio_tvips with HyperSpy, so that the tests' ``hs.load`` and
  ``s.save`` of ``.tvips`` run on this package;
- points the test module's own ``file_reader``/``file_writer`` (imported
  from ``rsciio.tvips._api``) at this package's;
- makes RosettaSciIO's reader and writer raise if anything still calls them;
- writes every test's outcome, and the message and the report of each
  failure, as JSON to the file named by ``RSCIIO_SUITE_REPORT``.
"""

import json
import os

import pytest

import rsciio_tvips

OUTCOMES = {}


def _refuse(*args, **kwargs):
    raise AssertionError("rsciio.tvips ran instead of rsciio_tvips")


def pytest_configure(config):
    import rsciio.tvips
    import rsciio.tvips._api

    rsciio_tvips.register()
    for module in (rsciio.tvips, rsciio.tvips._api):
        module.file_reader = _refuse
        module.file_writer = _refuse


@pytest.fixture(autouse=True)
def _rsciio_tvips(request, monkeypatch):
    monkeypatch.setattr(request.module, "file_reader", rsciio_tvips.file_reader)
    monkeypatch.setattr(request.module, "file_writer", rsciio_tvips.file_writer)


def pytest_runtest_logreport(report):
    name = report.nodeid.split("::", 1)[1]
    if report.when == "call" or report.outcome != "passed":
        outcome = report.outcome
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        message = detail = ""
        if report.failed and report.longrepr is not None:
            crash = getattr(report.longrepr, "reprcrash", None)
            message = str(crash if crash is not None else report.longrepr).strip()
            detail = report.longreprtext
        OUTCOMES.setdefault(name, (outcome, message, detail))


def pytest_sessionfinish(session):
    with open(os.environ["RSCIIO_SUITE_REPORT"], "w") as f:
        json.dump(OUTCOMES, f, indent=1, sort_keys=True)
