"""Progress display: one mode per environment, log lines a papermill log shows, no widgets."""
import io

import pytest

from dgsslib import progress


def test_mode_from_environment(monkeypatch):
    monkeypatch.setenv("DGSS_PROGRESS", "log")
    assert progress.progress_mode() == "log"
    monkeypatch.setenv("DGSS_PROGRESS", "auto")
    assert progress.progress_mode() in ("bar", "log")  # pytest is not a Jupyter kernel
    monkeypatch.setenv("DGSS_PROGRESS", "fancy")
    with pytest.raises(ValueError, match="DGSS_PROGRESS"):
        progress.progress_mode()


def test_log_mode_prints_prefixed_lines_and_the_final_state(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    monkeypatch.setenv("DGSS_PROGRESS", "log")
    monkeypatch.setenv("DGSS_PROGRESS_INTERVAL", "1000")
    bar = progress.progress_bar(total=5, desc="train freeze")
    for _ in range(5):
        bar.update(1)
        bar.set_postfix(loss="0.5")  # must not print a line per call
    bar.close()
    lines = err.getvalue().splitlines()
    assert all(line.startswith(progress.LOG_PREFIX) for line in lines)
    assert lines[0].endswith("0/5 (0%) [00:00<?, ?it/s]") and "5/5 (100%)" in lines[-1] and len(lines) == 2
    assert "\r" not in err.getvalue() and "%|" not in err.getvalue()


def test_live_mode_erases_its_bar_and_off_prints_nothing(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    monkeypatch.setenv("DGSS_PROGRESS", "live")
    assert list(progress.progress_bar(range(3), desc="eval", leave=True)) == [0, 1, 2]
    assert err.getvalue().rsplit("\r", 1)[-1].strip() == ""  # the last redraw is blank: nothing stays
    monkeypatch.setenv("DGSS_PROGRESS", "off")
    err.truncate(0)
    assert list(progress.progress_bar(range(3))) == [0, 1, 2] and err.getvalue().strip("\x00") == ""
