"""A suite-wide guard: a test fails when dawexport's command line prints a Python traceback.

Users must never see one (bad input is one line naming the file, the key and the fix), so every way a
test can see the CLI's output is checked: what pytest captured, what a test read with capsys/capfd, and
what a `dawexport` subprocess wrote to its pipes. Registered in conftest.py.
"""
from __future__ import annotations

import subprocess

import pytest

TRACEBACK = "Traceback (most recent call last)"


def _text(data) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)


def _fail_on_traceback(data, where: str) -> None:
    text = _text(data)
    if TRACEBACK in text:
        pytest.fail(f"{where} printed a Python traceback (users must see one line naming file, key and fix):\n"
                    + text[text.index(TRACEBACK):][-3000:], pytrace=False)


def _is_dawexport(args) -> bool:
    words = [args] if isinstance(args, (str, bytes)) else list(args or [])
    return any("dawexport" in _text(word) for word in words)


@pytest.fixture(autouse=True)
def no_traceback_from_the_cli(monkeypatch):
    """Check what tests read with capsys/capfd and what dawexport subprocesses print."""
    real_readouterr = pytest.CaptureFixture.readouterr

    def readouterr(self):
        result = real_readouterr(self)
        _fail_on_traceback(result.out, "stdout")
        _fail_on_traceback(result.err, "stderr")
        return result

    real_communicate = subprocess.Popen.communicate

    def communicate(self, *args, **kwargs):
        out, err = real_communicate(self, *args, **kwargs)
        if _is_dawexport(self.args):
            _fail_on_traceback(out, f"subprocess {self.args!r} stdout")
            _fail_on_traceback(err, f"subprocess {self.args!r} stderr")
        return out, err

    monkeypatch.setattr(pytest.CaptureFixture, "readouterr", readouterr)
    monkeypatch.setattr(subprocess.Popen, "communicate", communicate)
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Output no test read (pytest's own capture) is checked too."""
    outcome = yield
    report = outcome.get_result()
    if report.passed:
        captured = report.capstdout + report.capstderr
        if TRACEBACK in captured:
            report.outcome = "failed"
            report.longrepr = ("printed a Python traceback (users must see one line naming file, key and fix):\n"
                               + captured[captured.index(TRACEBACK):][-3000:])
