"""The leaderboard protocol (dgsslib.leaderboard): both protocol files load and every row resolves to a valid
config on its profile; bad files are refused naming the row; overrides win over protocol and row; the board's
means, unseen score and 95 % half-width equal a direct computation; every row is compared with the baseline and
every combination with its parts, paired by seed."""
import json
import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from dgsslib import leaderboard as lb
from dgsslib.profiles import ConfigError, resolve

from test_train import ROOT


@pytest.mark.parametrize("profile", ["mini", "paper"])
def test_every_row_of_both_protocol_files_is_a_valid_config(profile):
    proto = lb.load_protocol(ROOT / "configs" / "leaderboard" / f"{profile}.yaml")
    names = [r.name for r in proto["rows"]]
    assert len(names) >= 12 and sum(r.combination for r in proto["rows"]) >= 2 and proto["baseline"] == "Freeze"
    assert len(proto["seeds"]) >= 3
    base = resolve(profile, {})
    for r in proto["rows"]:
        cfg = lb.row_config(base, proto["protocol"], r, seed=2)
        assert cfg["seed"] == 2 and cfg["method"] == r.changes["method"]
        for key in ("max_steps", "batch_size"):  # one schedule for every row
            assert cfg["train"][key] == proto["protocol"]["train"][key], (r.name, key)
        if r.combination:
            assert "+" in r.name and r.vs and all(v in names for v in r.vs)
    fishertune = next(r for r in proto["rows"] if r.name.startswith("FisherTune"))
    assert lb.row_config(base, proto["protocol"], fishertune, 0)["recipe"] == "fishertune"  # its phases


def test_overrides_win_and_options_do_not_leak_between_rows():
    proto = lb.load_protocol(ROOT / "configs" / "leaderboard" / "mini.yaml")
    base = resolve("mini", {})
    rein = next(r for r in proto["rows"] if r.name == "Rein-G")
    cfg = lb.row_config(base, proto["protocol"], rein, 0, [{"train": {"max_steps": 7}}, {"train": {"max_steps": 9}}])
    assert cfg["train"]["max_steps"] == 9 and cfg["method_options"] == {}
    base["method_options"] = {"r": 4}  # a notebook's cfg with options of another method
    assert lb.row_config(base, proto["protocol"], rein, 0)["method_options"] == {}


@pytest.mark.parametrize("text, expect", [
    ("rows: []\n", "non-empty list"),
    ("extra: 1\nrows: [{name: A, method: freeze}]\n", "unknown key(s) ['extra']"),
    ("rows: [{name: A, method: freeze, lr: 1}]\n", "row 'A' has unknown key(s) ['lr']"),
    ("rows: [{name: A, method: freeze}, {name: A, method: rein}]\n", "unique"),
    ("rows: [{name: A, method: freeze}, {name: B, method: rein, vs: [C]}]\n", "'C' (baseline or vs) names no row"),
    ("baseline: Z\nrows: [{name: A, method: freeze}]\n", "'Z' (baseline or vs) names no row"),
    ("rows: [{method: freeze}]\n", "needs a name and a method"),
    ("seeds: [0, 0]\nrows: [{name: A, method: freeze}]\n", "repeats a seed"),
])
def test_bad_protocol_files_are_refused_naming_the_problem(tmp_path, text, expect):
    f = tmp_path / "p.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=expect.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")):
        lb.load_protocol(f)


def test_a_bad_row_option_names_the_row():
    row = lb.Row("Mine", {"method": "lora", "method_options": {"r": 2.7}})
    with pytest.raises(ConfigError, match="leaderboard row 'Mine': method_options.r must be a whole number"):
        lb.row_config(resolve("mini", {}), {}, row, 0)
    assert lb.Row("Rein-G + FisherTune (DR-FIM 5 %)", {}).slug == "rein_g+fishertune_dr_fim_5"


def _rec(variant, seed, mious, params=10):
    return {"variant": variant, "config": {"seed": seed, "train": {"max_steps": 10}}, "train_seconds": 5.0,
            "trainable_backbone_params": params, "metrics": {d: {"miou": v} for d, v in mious.items()}}


def test_board_numbers_equal_a_direct_computation():
    rng = np.random.default_rng(0)
    rows = [lb.Row("Freeze", {"method": "freeze"}), lb.Row("A", {"method": "rein"}), lb.Row("B", {"method": "lora"}),
            lb.Row("A + B", {"method": "stack"}, vs=["A", "B"])]
    doms, unseen = ["source", "x", "y"], ["x", "y"]
    runs = [_rec(r.name, s, {d: float(rng.uniform(10, 50)) for d in doms}, params=0 if r.name == "Freeze" else 100)
            for r in rows for s in (0, 1, 2)]
    summary, comps = lb.board(runs, rows, "Freeze", doms, unseen)
    a = [r for r in runs if r["variant"] == "A"]
    u = [np.mean([r["metrics"][d]["miou"] for d in unseen]) for r in a]
    sa = next(s for s in summary if s["row"] == "A")
    assert sa["unseen"] == pytest.approx(np.mean(u))
    assert sa["unseen_pm"] == pytest.approx(student_t.ppf(0.975, 2) * np.std(u, ddof=1) / math.sqrt(3))
    assert sa["domains"]["x"] == pytest.approx(np.mean([r["metrics"]["x"]["miou"] for r in a]))
    assert sa["step_s"] == pytest.approx(0.5) and sa["seeds"] == [0, 1, 2]
    pairs = {(c["a"], c["b"]) for c in comps}
    assert pairs == {("A", "Freeze"), ("B", "Freeze"), ("A + B", "Freeze"), ("A + B", "A"), ("A + B", "B")}
    f = [r for r in runs if r["variant"] == "Freeze"]
    d = [ua - np.mean([r["metrics"][k]["miou"] for k in unseen]) for ua, r in zip(u, f)]
    c = next(c for c in comps if (c["a"], c["b"]) == ("A", "Freeze"))
    assert c["diff"] == pytest.approx(np.mean(d), abs=1e-3) and c["interval"] == "seeds"
    table = lb.markdown(summary, comps, "Freeze", doms)
    order = [line.split(" | ")[1] for line in table.splitlines()[2:]]
    assert order == [s["row"] + (" ⊕" if s["combination"] else "") for s in sorted(summary, key=lambda s: -s["unseen"])]
    assert "baseline" in table and c["verdict"] in table


def _record(rows, seeds=(0, 1, 2)):
    rng = np.random.default_rng(1)
    data = {"train": "synthetic:source", "eval": ["synthetic:source", "synthetic:citys", "synthetic:fog"], "size": [8, 16]}
    runs = []
    for r in rows:
        for s in seeds:
            run = _rec(r.name, s, {d: float(rng.uniform(10, 50)) for d in ("source", "citys", "fog")})
            run["config"].update({"data": data, "backbone": "tiny", "head": "linear",
                                  "train": {"max_steps": 10, "batch_size": 2}})
            runs.append(run)
    summary, comps = lb.board(runs, rows, "Freeze", ["source", "citys", "fog"], ["citys", "fog"])
    return {"profile": "mini", "commit": "abc1234", "runs": runs, "comparisons": comps,
            "rows": [{"name": r.name, **r.changes} for r in rows]}, summary


def test_the_readme_leaderboard_is_read_from_the_record_against_its_protocol(tmp_path, monkeypatch):
    from dgsslib.results import tables
    (tmp_path / "configs" / "leaderboard").mkdir(parents=True)
    (tmp_path / "configs" / "leaderboard" / "mini.yaml").write_text(
        "rows:\n  - {name: Freeze, method: freeze}\n  - {name: A, method: rein}\n  - {name: B, method: lora}\n"
        "  - {name: A + B, method: stack, vs: [A, B]}\n")
    proto = lb.load_protocol(tmp_path / "configs" / "leaderboard" / "mini.yaml")
    record, summary = _record(proto["rows"])
    text, fig = lb.readme_section(record, proto)
    assert lb.markdown(summary, record["comparisons"], "Freeze", ["source", "citys", "fog"]) in text
    assert "| A + B | A | unseen (2 domains) |" in text and "seeds [0, 1, 2]" in text and "abc1234" in text
    other = lb.load_protocol(ROOT / "configs" / "leaderboard" / "mini.yaml")
    with pytest.raises(ConfigError, match="rerun notebooks/90_leaderboard.ipynb"):
        lb.readme_section(record, other)
    # write_readme fills both generated blocks, saves the figure beside the record and keeps the rest
    (tmp_path / "results" / "90_leaderboard").mkdir(parents=True)
    (tmp_path / "results" / "90_leaderboard" / "mini.json").write_text(json.dumps(record))
    (tmp_path / "README.md").write_text("top\n<!-- leaderboard:start -->\nold\n<!-- leaderboard:end -->\nmid\n"
                                        "<!-- results:start -->\nold\n<!-- results:end -->\nend\n")
    monkeypatch.setattr(tables, "ROOT", tmp_path)
    tables.write_readme("| the table |", tmp_path / "results")
    out = (tmp_path / "README.md").read_text()
    assert out.startswith("top\n") and out.endswith("end\n") and "old" not in out and "| the table |" in out
    assert "(results/90_leaderboard/mini.png)" in out and (tmp_path / "results" / "90_leaderboard" / "mini.png").exists()
    one = lb.markdown([dict(summary[0], seeds=[0], unseen=28.6)], [], "Freeze", ["source", "citys", "fog"])
    assert "| 28.6 (1 seed) |" in one.splitlines()[-1] and "±" not in one.splitlines()[-1] and "| 10 |" in one
    (tmp_path / "README.md").write_text("no markers\n")
    with pytest.raises(tables.ResultsError, match="markers"):
        tables.write_readme("| t |", tmp_path / "results")
