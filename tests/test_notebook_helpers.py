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
