"""Reliability of the trainer CLI: a run never silently mixes, overwrites or loses work, and
every bad input fails fast with one ``[dgsslib] error:`` line (exit 2) and no traceback.

| case | before | now | test |
|---|---|---|---|
| ``--resume`` with a changed setting (lr, method, seed, data...) | continued silently with the new value | exit 2, lists ``key: old -> new`` | test_resume_refuses_another_config |
| ``--resume`` alone | needed every original flag again | reads ``config.json`` | test_resume_reads_the_stored_config_and_extends |
| ``--resume --max-steps`` larger | - | extends, states the schedule change | test_resume_reads_the_stored_config_and_extends |
| ``--max-steps`` below the checkpoint | restarted / undefined | exit 2 | test_resume_reads_the_stored_config_and_extends |
| ``--resume`` on a finished run | trained again | reports the finished results | test_resume_reads_the_stored_config_and_extends |
| new run into a dir holding a run | overwrote results.json | exit 2 (``--resume``, new dir or ``--overwrite``) | test_finished_dir_is_not_overwritten |
| two runs in one dir | both wrote | ``.lock``: exit 2; a dead process's lock is taken over | test_lock |
| truncated / corrupt newest checkpoint or latest.json | restarted from step 0 | falls back to the newest readable one and says so | test_damaged_checkpoint_falls_back |
| rotation | could delete the only valid file | deletes only after the new one reads back | test_damaged_checkpoint_falls_back |
| ``train.max_steps=-3``, ``train.lr=abc``, ``1e-3`` as a YAML string | traceback / silent | exit 2 before any model is built / accepted as 0.001 | test_bad_values_fail_before_the_model |
| bad YAML | traceback | exit 2 naming file and line | test_bad_yaml_names_the_line |
| eval set missing on disk | failed after training | exit 2 before the first step | test_missing_eval_data_fails_before_training |
| unknown method option (Full) | accepted | exit 2 with the accepted options | test_bad_values_fail_before_the_model |
| NaN/inf | "last good" could hold the bad weights | demoted; last good gave a finite loss | tests/test_train.py |
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BASE = ["--method", "freeze", "--profile", "smoke", "--max-steps", "4", "--ckpt-every", "2", "--seed", "0",
        "--set", "data.train_length=8", "--set", "data.eval_length=2", "--set", 'data.eval=["synthetic:source"]',
        "--set", "train.batch_size=2"]


def cli(*args, env=None):
    e = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "dgsslib.train", "--no-progress", *args], cwd=ROOT, env=e,
                          capture_output=True, text=True, timeout=300)


def one_error_line(r):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("[dgsslib] error: "), r.stderr
    return lines[-1]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    r = cli(*BASE, "--work-dir", str(d))
    assert r.returncode == 0, r.stderr
    return d


def test_finished_dir_is_not_overwritten(finished):
    before = (finished / "results.json").read_bytes()
    r = cli(*BASE, "--work-dir", str(finished))
    assert "--resume" in one_error_line(r) and "--overwrite" in r.stderr
    assert (finished / "results.json").read_bytes() == before


def test_resume_refuses_another_config(finished):
    before = (finished / "config.json").read_bytes()
    line = one_error_line(cli(*BASE, "--work-dir", str(finished), "--resume", "--set", "train.lr=0.5"))
    assert "train.lr: 0.001 -> 0.5" in line
    assert "method: 'freeze' -> 'full'" in one_error_line(cli("--work-dir", str(finished), "--resume", "--method", "full"))
    assert (finished / "config.json").read_bytes() == before  # never overwritten by another config


def test_resume_reads_the_stored_config_and_extends(finished, tmp_path):
    r = cli("--work-dir", str(finished), "--resume")
    assert r.returncode == 0 and "finished run" in r.stdout, r.stderr
    import shutil
    d = tmp_path / "ext"
    shutil.copytree(finished, d)
    one_error_line(cli("--work-dir", str(d), "--resume", "--max-steps", "3"))
    r = cli("--work-dir", str(d), "--resume", "--max-steps", "6")
    assert r.returncode == 0 and "extending the run" in r.stdout, r.stderr
    rec = json.loads((d / "results.json").read_text())
    assert rec["final_step"] == 6 and rec["steps_run"] == 2 and rec["resumed_from"] == 4
    assert [h["step"] for h in rec["history"]] == [1, 2, 3, 4, 5, 6]


def test_damaged_checkpoint_falls_back(tmp_path):
    from dgsslib import checkpoint as ck
    from dgsslib.profiles import resolve
    from dgsslib.engine.train import fit
    cfg = resolve("smoke", {"data": {"train_length": 8, "eval_length": 2, "eval": ["synthetic:source"]},
                            "train": {"max_steps": 6, "batch_size": 2, "ckpt_every": 2, "keep_ckpts": 2}})
    fit(cfg, tmp_path, progress=False)
    files = ck.step_files(tmp_path)
    assert [f.name for f in files] == ["step_0000004.safetensors", "step_0000006.safetensors"]  # rotation kept 2
    (tmp_path / "results.json").unlink()
    (tmp_path / "final.safetensors").unlink()
    data = files[-1].read_bytes()
    files[-1].write_bytes(data[: len(data) // 2])  # truncated newest checkpoint
    path, notes = ck.resume_point(tmp_path)
    assert path == files[0] and any("truncated" in n for n in notes)
    (tmp_path / "ckpt" / "latest.json").write_text("{not json")
    path, notes = ck.resume_point(tmp_path)
    assert path == files[0] and any("latest.json" in n for n in notes)
    rec = fit(cfg, tmp_path, resume=True, progress=False)
    assert rec["resumed_from"] == 4 and rec["final_step"] == 6


def test_lock(tmp_path):
    from dgsslib.engine.workdir import RunLock, WorkDirError
    with RunLock(tmp_path):
        with pytest.raises(WorkDirError, match="in use by another run"):
            RunLock(tmp_path).acquire()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket
    (tmp_path / ".lock").write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout)}))
    lock = RunLock(tmp_path).acquire()
    assert "stale lock" in lock.note
    lock.release()
    assert not (tmp_path / ".lock").exists()


@pytest.mark.parametrize("args, expect", [
    (["--set", "train.max_steps=-3"], "train.max_steps must be >= 1"),
    (["--set", "train.lr=abc"], "train.lr must be a number"),
    (["--set", "data.size=224"], "data.size must be a list"),
    (["--method", "full", "--option", "lr_mul=0.2"], "accepted"),
    (["--set", "recipe=nope"], "recipe must be one of"),
])
def test_bad_values_fail_before_the_model(tmp_path, args, expect):
    r = cli("--profile", "smoke", "--work-dir", str(tmp_path), *args)
    assert expect in one_error_line(r)
    assert "weights:" not in r.stdout  # no model was built
    assert not (tmp_path / "config.json").exists()


def test_yaml_number_strings_are_numbers(tmp_path):
    from dgsslib.engine.validation import validate
    from dgsslib.profiles import load_config_file, merge, resolve
    (tmp_path / "c.yaml").write_text("train:\n  lr: 1e-3\n  max_steps: 4.0\n")
    cfg = validate(merge(resolve("smoke"), load_config_file(tmp_path / "c.yaml")))
    assert cfg["train"]["lr"] == 0.001 and cfg["train"]["max_steps"] == 4 and isinstance(cfg["train"]["max_steps"], int)


def test_bad_yaml_names_the_line(tmp_path):
    (tmp_path / "bad.yaml").write_text("train:\n  lr: 1e-3\n   max_steps: 4\n")
    line = one_error_line(cli("--work-dir", str(tmp_path / "w"), "--config", str(tmp_path / "bad.yaml")))
    assert "bad.yaml, line 3" in line


def test_missing_eval_data_fails_before_training(tmp_path):
    empty = tmp_path / "data"
    empty.mkdir()
    t0 = time.time()
    r = cli("--method", "freeze", "--profile", "smoke", "--work-dir", str(tmp_path / "w"), "--max-steps", "4",
            "--set", 'data.eval=["bdd:val"]', env={"DGSS_DATA": str(empty)})
    one_error_line(r)
    assert "bdd" in r.stderr and not (tmp_path / "w" / "history.jsonl").exists()
    assert time.time() - t0 < 120


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path):
    import signal
    e = dict(os.environ, PYTHONUNBUFFERED="1")
    # the child gets Ctrl-C's default disposition, as from a terminal: a test runner started as a background job
    # (``cmd &`` without job control) ignores SIGINT, and children inherit an ignored signal
    p = subprocess.Popen([sys.executable, "-m", "dgsslib.train", "--no-progress", *BASE[:4], "--max-steps", "400",
                          *BASE[8:], "--ckpt-every", "1", "--work-dir", str(tmp_path)],
                         cwd=ROOT, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    hist = tmp_path / "history.jsonl"
    t0 = time.time()
    while time.time() - t0 < 120 and not (hist.exists() and hist.read_text().count("\n") >= 2):
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, (out, err)
    assert "Traceback" not in err and "--resume" in err and "interrupted" in err
    assert not (tmp_path / ".lock").exists()  # released on the way out


def test_ctrl_c_while_reading_a_checkpoint_is_a_stop_not_a_damaged_file(tmp_path, monkeypatch):
    """safetensors' Rust layer can wrap a Ctrl-C that lands inside ``safe_open`` in its own error type: that
    must stop the run (exit 130, "--resume") rather than be read as a damaged checkpoint (and skipped)."""
    import torch
    from dgsslib import checkpoint as ck
    path = tmp_path / "c.safetensors"
    ck.save_file({"w": torch.zeros(2)}, str(path))

    def wrapped(*a, **k):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise RuntimeError("PyErr: KeyboardInterrupt") from exc

    monkeypatch.setattr(ck, "safe_open", wrapped)
    with pytest.raises(KeyboardInterrupt):
        ck.load_tensors(path)

    def broken(*a, **k):
        raise RuntimeError("header too large")

    monkeypatch.setattr(ck, "safe_open", broken)
    with pytest.raises(ck.CheckpointError, match="cannot be read"):
        ck.load_tensors(path)
