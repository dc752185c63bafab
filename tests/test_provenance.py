"""Provenance: declared dependencies, AST code identity, traces and attestations, flags, the
reproducibility check on a smoke record."""
import json
import shutil
import subprocess

import pytest

from dgsslib.notebook import train_and_eval
from dgsslib.profiles import resolve
from dgsslib.results import __main__ as results_cli
from dgsslib.results import codeid as C
from dgsslib.results import provenance as P
from dgsslib.results import tables
from dgsslib.results.reproduce import compare, init_run, main_reproduce, reproduce
from dgsslib.results.trace import shrink

CFG = {"method": "rein", "head": "linear", "recipe": "supervised"}


def test_code_hash_ignores_docstrings_comments_and_layout_but_not_code():
    a = 'def f(x):\n    return x + 1\n'
    b = '"""Module doc."""\n# a comment\n\ndef f(x):  # inline\n    """Doc."""\n\n    return (x +\n            1)\n'
    assert C.code_hash(a) == C.code_hash(b)
    assert C.code_hash(a) != C.code_hash(a.replace("+ 1", "+ 2"))
    assert C.code_hash(a) != C.code_hash(a.replace("x + 1", "1 + x"))  # the order of float sums can matter
    assert C.code_hash('s = "text"\n') != C.code_hash('s = "other"\n')  # a string that is not a docstring counts


def test_registry_tables_leave_the_hash_and_the_used_entries_are_recorded(tmp_path):
    src = 'M = Registry("method", {"a": "dgsslib.x:A"})\ndef build(n):\n    return M.build(n)\n'
    grown = src.replace('{"a": "dgsslib.x:A"}', '{"a": "dgsslib.x:A", "b": "dgsslib.y:B"}')
    assert C.code_hash(src) == C.code_hash(grown)
    (tmp_path / "dgsslib/adapters").mkdir(parents=True)
    (tmp_path / "dgsslib/adapters/__init__.py").write_text(grown)
    assert C.used_entries({"method": "b"}, C.TreeReader(tmp_path)) == {"registry:method:b": "dgsslib.y:B"}
    assert C.used_entries({"method": "zz"}, C.TreeReader(tmp_path)) == {"registry:method:zz": "missing"}


def _tree(root, files):
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return C.TreeReader(root)


def test_closure_is_static_and_transitive_with_parent_packages_and_no_observers(tmp_path):
    reader = _tree(tmp_path, {
        "dgsslib/__init__.py": "", "dgsslib/cli.py": "", "dgsslib/engine/__init__.py": "",
        "dgsslib/engine/train.py": "from . import loop\n",
        "dgsslib/engine/loop.py": "from ..progress import bar\nfrom ..results.provenance import p\n"
                                  "def f():\n    from ..pkg.mod import g\n",
        "dgsslib/pkg/__init__.py": "", "dgsslib/pkg/mod.py": "import dgsslib.leaf\n", "dgsslib/leaf.py": "",
        "dgsslib/progress.py": "from .unused import x\n", "dgsslib/unused.py": "",
        "dgsslib/results/__init__.py": "", "dgsslib/results/provenance.py": "from ..unused import x\n"})
    got = set(C.closure(["dgsslib.engine.train"], reader))
    assert got == {"dgsslib/__init__.py", "dgsslib/engine/__init__.py", "dgsslib/engine/train.py",
                   "dgsslib/engine/loop.py", "dgsslib/pkg/__init__.py", "dgsslib/pkg/mod.py", "dgsslib/leaf.py"}
    assert set(C.dependencies({}, reader)) == got  # the engine entry found in the tree


def test_dependencies_do_not_depend_on_what_the_process_imported():
    before = C.dependencies({"method": "full", "head": "linear", "recipe": "supervised"})
    import dgsslib.recipes.fishertune  # noqa: F401  (notebook 20 imports it between runs)
    after = C.dependencies({"method": "full", "head": "linear", "recipe": "supervised"})
    assert before == after and "dgsslib/recipes/fishertune.py" not in after
    ft = C.dependencies({"method": "fishertune", "head": "linear", "recipe": "fishertune"})
    assert "dgsslib/recipes/fishertune.py" in ft and "dgsslib/selection/fisher.py" in ft
    assert not any(k.startswith("dgsslib/results/") for k in ft)  # observers never stale a run
    assert after["registry:method:full"] == "dgsslib.adapters.base:Full"


def test_comments_and_blank_lines_everywhere_change_no_dependency(tmp_path):
    shutil.copytree(C.ROOT / "dgsslib", tmp_path / "dgsslib", ignore=shutil.ignore_patterns("__pycache__"))
    for f in (tmp_path / "dgsslib").rglob("*.py"):
        f.write_text(f.read_text() + "\n# a comment appended by a test\n\n")
    assert C.dependencies(CFG, C.TreeReader(tmp_path)) == C.dependencies(CFG)
    loop = tmp_path / "dgsslib/engine/loop.py"
    loop.write_text(loop.read_text() + "\nEXTRA = 1\n")
    assert C.diff(C.dependencies(CFG), C.dependencies(CFG, C.TreeReader(tmp_path))) == ["dgsslib/engine/loop.py"]


def test_git_reader_reads_a_commit(tmp_path):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    _tree(tmp_path, {"dgsslib/__init__.py": "", "dgsslib/train.py": "X = 1\n"})
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    (tmp_path / "dgsslib/train.py").write_text("X = 2\n")
    old = C.dependencies({}, C.GitReader("HEAD", tmp_path))
    assert old == C.dependencies({}, C.GitReader("HEAD", tmp_path)) != C.dependencies({}, C.TreeReader(tmp_path))
    with pytest.raises(LookupError, match="not in this clone"):
        C.GitReader("0" * 40, tmp_path)


def test_config_hash_ignores_key_order():
    assert P.config_hash({"a": 1, "b": {"c": 2}}) == P.config_hash({"b": {"c": 2}, "a": 1})
    assert P.config_hash({"a": 1}) != P.config_hash({"a": 2}) and P.config_hash(None) is None


def test_dirty_means_a_change_under_the_watched_folders(tmp_path):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    for rel in ("dgsslib/a.py", "configs/x.yaml", "notebooks/src/00.py", "README.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x\n")
    (tmp_path / ".gitignore").write_text("*.log\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    assert P.dirty_paths(tmp_path) == []
    (tmp_path / "scratch.py").write_text("untracked scratch outside\n")
    (tmp_path / "README.md").write_text("edited docs\n")
    (tmp_path / "dgsslib/run.log").write_text("ignored\n")
    assert P.dirty_paths(tmp_path) == []
    (tmp_path / "dgsslib/a.py").write_text("y\n")
    (tmp_path / "notebooks/src/new.py").write_text("untracked inside\n")
    assert P.dirty_paths(tmp_path) == ["dgsslib/a.py", "notebooks/src/new.py"]
    assert P.dirty_paths(tmp_path / "nonexistent") is None


def _run(code, **prov):
    cfg = dict(CFG, seed=0)
    return {"config": cfg, "provenance": {"dirty": False, "commit": "a" * 40, "benchmark_version": 2, "code": code,
                                          **prov}}


def test_flags_and_attestations():
    cur = {"benchmark_version": 2}
    now = P.current_code(CFG)
    assert P.provenance_flags(_run(now), cur) == []
    assert P.provenance_flags({}, cur) == ["no provenance"]
    old = dict(now, **{"dgsslib/engine/loop.py": "0" * 64})
    stale = _run(old, dirty=True, benchmark_version=1)
    assert P.provenance_flags(stale, cur) == ["dirty tree", "other code", "older benchmark"]
    assert P.provenance_flags(_run(None), cur)[0].startswith("no code identity")
    attested = _run(old, attestations=[{"commit": "b" * 40, "by": "trace", "code_digest": P.code_digest(now)}])
    assert P.provenance_flags(attested, cur) == [] and P.code_status(attested) == (True, "b" * 40)
    assert P.state_note([attested]) == "ok (aaaaaaa ≡ bbbbbbb)" and P.state_note([_run(now)]) == "ok (aaaaaaa)"
    wrong = _run(old, attestations=[{"commit": "b" * 40, "by": "trace", "code_digest": P.code_digest(old)}])
    assert P.provenance_flags(wrong, cur) == ["other code"]
    moved = _run(dict(now, **{"registry:method:rein": "dgsslib.adapters.other:Rein"}))
    assert P.provenance_flags(moved, cur) == ["other code"]


def test_trace_keeps_every_code_selecting_key_and_shrinks_sizes():
    cfg = resolve("mini", {"method": "fishertune", "recipe": "fishertune", "method_options": {"score": "drfim"},
                           "recipe_options": {"t1": 15, "t2": 5, "init": "somewhere"}})
    small = shrink(cfg)
    assert small["backbone"] == "tiny" and small["train"]["max_steps"] == 3 and small["data"]["eval_length"] == 2
    for key in ("method", "head", "recipe", "method_options", "head_options"):
        assert small[key] == cfg[key]
    assert small["recipe_options"] == {"t1": 1, "t2": 1} and small["data"]["size"] == cfg["data"]["size"]
    assert cfg["recipe_options"]["init"] == "somewhere"  # the run's own config is not touched
    for given in ({}, {"t1": 0.2, "t2": 0.1}):  # fractions (or the recipe's default ones) of 3 steps round T2 to 0
        frac = resolve("mini", {"method": "fishertune", "recipe": "fishertune", "recipe_options": given})
        assert shrink(frac)["recipe_options"] == {"t1": 1, "t2": 1} and frac["recipe_options"] == given
    assert shrink(resolve("mini", {"method": "rein"}))["recipe_options"] == {}


def test_trace_is_repeatable_and_sees_an_option(tmp_path):
    from dgsslib.results.restamp import _traces
    cfg = resolve("smoke", {"method": "lora"})
    jobs = [{"key": "a", "config": cfg}, {"key": "b", "config": cfg},
            {"key": "c", "config": dict(cfg, method_options={"r": 2})}]
    out = _traces(jobs, C.ROOT)
    assert out["a"]["digest"] == out["b"]["digest"] != out["c"]["digest"]
    assert len(out["a"]["losses"]) == 3 and out["a"]["cpu"]


def _write_record(root, runs):
    (root / "nb").mkdir(parents=True, exist_ok=True)
    (root / "nb" / "mini.json").write_text(json.dumps({"notebook": "nb", "runs": runs}))
    return root / "nb" / "mini.json"


def test_flagged_runs_are_never_averaged_with_clean_ones(tmp_path):
    prov = {"dirty": False, "code": P.current_code(CFG), "benchmark_version": P.benchmark_version(),
            "commit": "abc1234"}
    run = {"backbone": "dinov2_s", "weights": "w", "method": "rein", "metrics": {"source": {"miou": 40.0}},
           "summary": {"mean_targets": 30.0}, "config": dict(CFG), "provenance": prov}
    dirty = dict(run, metrics={"source": {"miou": 50.0}}, provenance=dict(prov, dirty=True))
    _write_record(tmp_path, [run, dict(run), dirty, {k: v for k, v in run.items() if k != "provenance"}])
    table = tables.readme_table(tmp_path).splitlines()[2:]
    assert len(table) == 3
    assert "| 2 | 40.0 | 30.0 | - | ok (abc1234) |" in table[0]
    assert "| 1 | 50.0 |" in table[1] and "⚠ dirty tree" in table[1]
    assert "⚠ no provenance" in table[2]
    assert results_cli.main(["--root", str(tmp_path)]) == 0
    assert results_cli.main(["--root", str(tmp_path), "--strict"]) == 1


def test_results_cli_exits_0_on_the_repository(capsys):
    assert results_cli.main([]) == 0
    assert "provenance" in capsys.readouterr().out


def test_reproduce_check_on_a_smoke_record(tmp_path, capsys):
    cfg = resolve("smoke", {"data": {"train_length": 4, "eval_length": 2, "eval": ["synthetic:source", "synthetic:citys"]},
                            "train": {"max_steps": 2, "batch_size": 2}})
    rec = train_and_eval(cfg, tmp_path / "runs", "rein-s0", progress=False)
    prov = rec["provenance"]
    assert prov["code"] == C.dependencies(cfg) and prov["config_hash"] == P.config_hash(rec["config"])
    assert prov["commit"] and {"dirty", "benchmark_version", "torch", "timm", "device", "cpu", "date"} <= set(prov)
    assert P.is_current(rec) and P.is_current(dict(rec, provenance=dict(prov, dirty=True)))  # reuse ignores dirt
    assert not P.is_current(dict(rec, provenance=dict(prov, benchmark_version=-1)))
    path = _write_record(tmp_path / "results", [rec])
    rows, ok, _ = reproduce(path, "rein-s0", progress=False)
    assert ok and [r["metric"] for r in rows][:2] == ["source mIoU", "citys mIoU"]
    assert all(r["diff"] <= 0.05 for r in rows)
    off = json.loads(json.dumps(rec))
    off["metrics"]["citys"]["miou"] += 0.5
    rows, ok = compare(off, rec)
    assert not ok and [r["ok"] for r in rows][:2] == [True, False]
    assert main_reproduce(str(path), "nope", 0.05, None) == 2
    assert "choose --run from: rein-s0" in capsys.readouterr().out


def test_reproduce_finds_the_run_a_run_starts_from_and_reports_a_missing_one(tmp_path, capsys):
    src = {"tag": "source-s0", "config": {"recipe_options": {}}}
    ada = {"tag": "rein_a-s0", "config": {"recipe_options": {"init": "../build/runs/11_rein_a/mini/source-s0"}}}
    assert init_run(ada, {"runs": [src, ada]}) is src and init_run(src, {"runs": [src, ada]}) is None
    full = resolve("smoke", {"method": "rein", "head": "mask2former", "recipe": "rein_a",
                             "data": {"target": "synthetic:night"}, "recipe_options": ada["config"]["recipe_options"]})
    path = _write_record(tmp_path, [dict(ada, config=full)])
    assert main_reproduce(str(path), "rein_a-s0", 0.05, None) == 2
    out = capsys.readouterr().out
    assert "[dgsslib] error" in out and "no run tagged 'source-s0'" in out and "Traceback" not in out


def test_reproduce_retrains_the_run_a_run_starts_from(tmp_path, capsys):
    base = {"data": {"train_length": 4, "eval_length": 2, "eval": ["synthetic:source", "synthetic:night"]},
            "train": {"max_steps": 2, "batch_size": 2}, "method": "rein",
            "head": "mask2former", "head_options": {"enc_layers": 1, "dec_layers": 1, "num_points_train": 784,
                                                    "dim_feedforward": 256, "enc_ffn": 256}}
    src_cfg = resolve("smoke", base)
    src = train_and_eval(src_cfg, tmp_path / "runs", "source-s0", progress=False)
    ada_cfg = resolve("smoke", dict(base, recipe="rein_a", recipe_options={"init": str(tmp_path / "runs/source-s0")},
                                    data=dict(base["data"], target="synthetic:night")))
    ada = train_and_eval(ada_cfg, tmp_path / "runs", "rein_a-s0", progress=False)
    ada["config"]["recipe_options"]["init"] = "../build/runs/elsewhere/source-s0"  # as a clone sees it: missing
    path = _write_record(tmp_path / "results", [src, ada])
    assert main_reproduce(str(path), "rein_a-s0", 0.05, str(tmp_path / "rerun")) == 0
    out = capsys.readouterr().out
    assert "starts from source-s0: retraining that first" in out and "PASS" in out
    assert (tmp_path / "rerun-source-s0" / "final.safetensors").exists()


@pytest.mark.parametrize("flag", ["--reproduce"])
def test_reproduce_cli_rejects_a_missing_record(flag, tmp_path):
    assert results_cli.main([flag, str(tmp_path / "missing.json")]) == 2


def test_restamp_help_exits_0():
    with pytest.raises(SystemExit) as exc:
        results_cli.main(["--restamp", "--help"])
    assert exc.value.code == 0
