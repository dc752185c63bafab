"""Notebook helpers: a finished run is reused only when its config is identical."""
from dgsslib.notebook import train_and_eval, variant
from dgsslib.profiles import resolve


def test_finished_runs_are_reused_only_for_the_same_config(tmp_path, capsys):
    cfg = resolve("smoke", {"data": {"train_length": 4, "eval_length": 2, "eval": ["synthetic:source"]},
                            "train": {"max_steps": 2, "batch_size": 2}})
    first = train_and_eval(cfg, tmp_path, "a", progress=False)
    again = train_and_eval(cfg, tmp_path, "a", progress=False)
    out = capsys.readouterr().out
    assert "a: 2 steps" in out and "(finished run reused)" in out
    assert again["metrics"] == first["metrics"]
    assert again["wall_seconds"] == first["wall_seconds"] > 0  # a reuse reports the run's own time
    other = train_and_eval(variant(cfg, **{"train.max_steps": 3}), tmp_path, "a", progress=False)
    out = capsys.readouterr().out
    assert "(finished run reused)" not in out and "it is kept in a.replaced-" in out
    assert other["config"]["train"]["max_steps"] == 3
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("a.replaced-")]  # nothing finished is deleted
    assert len(kept) == 1 and (kept[0] / "final.safetensors").exists()


def test_a_damaged_run_file_is_named_and_the_run_kept_aside(tmp_path, capsys):
    """A half-written results.json (or config.json) in a notebook's run folder: named, never a JSONDecodeError
    traceback, and the finished run is kept aside rather than deleted."""
    cfg = resolve("smoke", {"data": {"train_length": 4, "eval_length": 2, "eval": ["synthetic:source"]},
                            "train": {"max_steps": 2, "batch_size": 2}})
    first = train_and_eval(cfg, tmp_path, "a", progress=False)
    (tmp_path / "a" / "results.json").write_text('{"config": {')   # a write cut short
    (tmp_path / "a" / "config.json").write_text("[1, 2]")          # valid JSON, not a config
    again = train_and_eval(cfg, tmp_path, "a", progress=False)
    out = capsys.readouterr().out
    assert "results.json in a/ is damaged" in out and "config.json in a/ is not a mapping" in out
    assert again["metrics"]["source"]["miou"] == first["metrics"]["source"]["miou"]  # same config, same numbers
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("a.replaced-")]) == 1


def test_a_run_the_committed_record_attests_is_reused(tmp_path, capsys, monkeypatch):
    """--restamp attests the committed record's runs, not the run folders: a notebook still reuses a local run
    whose config and code identity equal an attested committed run (and carries the attestation along), and
    does not when no committed run attests it."""
    import json

    from dgsslib import notebook as nbh
    from dgsslib.results.provenance import code_digest, current_code, is_current
    cfg = resolve("smoke", {"data": {"train_length": 4, "eval_length": 2, "eval": ["synthetic:source"]},
                            "train": {"max_steps": 2, "batch_size": 2}})
    first = train_and_eval(cfg, tmp_path / "runs", "a", progress=False)
    done = tmp_path / "runs" / "a" / "results.json"
    old = json.loads(done.read_text())
    old["provenance"]["code"] = {**old["provenance"]["code"], "dgsslib/engine/loop.py": "sha256:an-older-loop"}
    done.write_text(json.dumps(old))
    assert not is_current(old)
    twin = json.loads(json.dumps(old))
    twin["provenance"]["attestations"] = [{"commit": "abc1234", "by": "trace",
                                           "code_digest": code_digest(current_code(twin["config"]))}]
    committed = tmp_path / "results"
    (committed / "10_x").mkdir(parents=True)
    (committed / "10_x" / "smoke.json").write_text(json.dumps({"runs": [twin]}))
    monkeypatch.setattr(nbh, "RESULTS", committed)
    again = train_and_eval(cfg, tmp_path / "runs", "a", progress=False)
    out = capsys.readouterr().out
    assert "attests bit-equal" in out and "(finished run reused)" in out and again["metrics"] == first["metrics"]
    assert is_current(json.loads(done.read_text()))  # the run folder now carries the attestation
    old["provenance"]["code"]["dgsslib/engine/loop.py"] = "sha256:yet-another"  # no committed twin attests this one
    done.write_text(json.dumps(old))
    train_and_eval(cfg, tmp_path / "runs", "a", progress=False)
    assert "finished run reused" not in capsys.readouterr().out
