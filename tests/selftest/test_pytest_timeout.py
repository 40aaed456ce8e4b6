"""pytest-timeout's ``signal`` method beside the suite (README, "Timeouts and pytest-timeout").

Its SIGALRM handler raises ``Failed`` wherever the process running the test is.  Under
pytest-xdist that is the worker running the check; under ``-n 0`` it is pytest's own
process, waiting for the runner that runs the check (``contain.py``).  Either way the
check ends as an ERROR that names pytest-timeout, the run goes on to its matrix, and
the stopped example leaves nothing behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_plugin import assert_nothing_left, run

pytest.importorskip("pytest_timeout", reason="pytest-timeout is not installed (tox installs it)")


@pytest.mark.parametrize("workers", ["0", "2"])
def test_pytest_timeouts_failure_ends_the_check_as_an_error_and_the_run_goes_on(tmp_path: Path, workers: str) -> None:
    tag = f"ptt{workers}x{tmp_path.name[-6:].replace('-', '')}"
    out = run(tmp_path, "-n", workers, "--ipc-deadline", "30", "--ipc-backend", "badbackends:HangingNamedBackend",
              "-k", "eof_after_last_writer_closes", "-p", "timeout", "--timeout", "2", "--timeout-method", "signal",
              env_extra=(("IPCC_RUN_TAG", tag),))
    text = out.stdout + out.stderr
    assert "INTERNALERROR" not in text, text[-3000:]
    assert out.returncode == 1 and "Timeout (>2.0s) from pytest-timeout" in text, text[-3000:]
    assert "IPC conformance matrix" in text and "ERROR" in text, text[-3000:]
    assert_nothing_left(tmp_path, tag)
