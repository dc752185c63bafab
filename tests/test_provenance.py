"""Provenance: what makes a run dirty, what the source hash covers, how stale records are flagged,
and the reproducibility check on a smoke record."""
import hashlib
import json
import subprocess

import pytest

from dgsslib import provenance as P
from dgsslib import results
from dgsslib.notebook import train_and_eval
from dgsslib.profiles import resolve
from dgsslib.reproduce import compare, main_reproduce, reproduce


def test_source_hash_is_sha256_of_sorted_paths_and_contents_without_presentation_modules(tmp_path):
    (tmp_path / "sub").mkdir()
    files = {"train.py": b"a = 1\n", "sub/x.py": b"b = 2\n", "viz.py": b"plot\n"}
    for rel, data in files.items():
        (tmp_path / rel).write_bytes(data)
    h = hashlib.sha256()
    for rel in ("sub/x.py", "train.py"):  # sorted by path; viz.py is presentation-only
        h.update(rel.encode() + b"\0" + files[rel] + b"\0")
    assert P.source_hash(tmp_path) == "sha256:" + h.hexdigest()
    (tmp_path / "viz.py").write_text("another plot\n")
    assert P.source_hash(tmp_path) == "sha256:" + h.hexdigest()
    (tmp_path / "sub/x.py").write_text("b = 3\n")
    assert P.source_hash(tmp_path) != "sha256:" + h.hexdigest()


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


def test_flags_name_every_reason():
    cur = {"source_hash": "sha256:s", "benchmark_version": 3}
    clean = {"provenance": {"dirty": False, "source_hash": "sha256:s", "benchmark_version": 3}}
    assert P.provenance_flags(clean, cur) == []
    assert P.provenance_flags({}, cur) == ["no provenance"]
    stale = {"provenance": {"dirty": True, "source_hash": "sha256:old", "benchmark_version": 2}}
    assert P.provenance_flags(stale, cur) == ["dirty tree", "other code", "older benchmark"]
    assert P.provenance_flags({"provenance": {"dirty": None, "source_hash": "sha256:s", "benchmark_version": None}},
                              cur) == ["tree state unknown", "older benchmark"]


def test_a_run_is_stale_only_when_a_module_it_imported_changed(tmp_path, monkeypatch):
    pkg = tmp_path / "dgsslib"
    (pkg / "adapters").mkdir(parents=True)
    for rel in ("__init__.py", "train.py", "adapters/__init__.py", "adapters/rein.py", "viz.py"):
        (pkg / rel).write_text(f"# {rel}\n")
    monkeypatch.setattr(P, "PACKAGE", pkg)
    used = ["__init__.py", "adapters/__init__.py", "adapters/rein.py", "train.py"]
    run = {"provenance": {"dirty": False, "source_hash": P.source_hash(pkg), "source_modules": used,
                          "modules_hash": P.source_hash(pkg, modules=used), "benchmark_version": 2}}
    assert P.source_hash(pkg, modules=used) == P.source_hash(pkg)  # every non-presentation file used
    (pkg / "adapters/fishertune.py").write_text("# a new paper's module\n")
    cur = {"source_hash": P.source_hash(pkg), "benchmark_version": 2}
    assert run["provenance"]["source_hash"] != cur["source_hash"]
    assert P.provenance_flags(run, cur) == []  # the library grew; nothing the run imported changed
    (pkg / "viz.py").write_text("# a plot tweak\n")
    assert P.provenance_flags(run, cur) == []
    (pkg / "adapters/rein.py").write_text("# rein changed\n")
    assert P.provenance_flags(run, cur) == ["other code"]
    (pkg / "adapters/rein.py").unlink()
    assert P.provenance_flags(run, cur) == ["other code"]  # a deleted module is a change too


def test_per_file_hashes_and_registry_entries_decide_staleness(tmp_path, monkeypatch):
    pkg = tmp_path / "dgsslib"
    pkg.mkdir()
    for rel in ("loop.py", "rein.py"):
        (pkg / rel).write_text(f"# {rel}\n")
    monkeypatch.setattr(P, "PACKAGE", pkg)
    run = {"provenance": {"dirty": False, "benchmark_version": 2, "source_files": P.file_hashes(["loop.py", "rein.py"]),
                          "registry": {"method": {"rein": "dgsslib.adapters.rein:Rein"}}}}
    cur = {"source_hash": "sha256:whatever", "benchmark_version": 2}
    assert P.provenance_flags(run, cur) == []  # the catalogs may grow: only the entry the run used counts
    run["provenance"]["registry"]["method"]["rein"] = "dgsslib.adapters.other:Rein"
    assert P.changed_registry(run["provenance"]) == ["method:rein"]
    assert P.provenance_flags(run, cur) == ["other code"]
    run["provenance"]["registry"]["method"]["rein"] = "dgsslib.adapters.rein:Rein"
    (pkg / "rein.py").write_text("# changed\n")
    assert P.changed_files(run["provenance"]) == ["rein.py"] and P.provenance_flags(run, cur) == ["other code"]


def test_older_module_records_are_checked_against_their_commit_with_catalogs_by_entry(tmp_path, monkeypatch):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    pkg = tmp_path / "dgsslib"
    (pkg / "recipes").mkdir(parents=True)
    cat = 'R = {\n    "supervised": "dgsslib.recipes.supervised:Supervised",\n}\n'
    (pkg / "recipes/__init__.py").write_text(cat)
    (pkg / "loop.py").write_text("# loop\n")
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    monkeypatch.setattr(P, "PACKAGE", pkg)
    monkeypatch.setattr(P, "ROOT", tmp_path)
    mods = ["loop.py", "recipes/__init__.py"]
    run = {"config": {"recipe": "supervised"},
           "provenance": {"dirty": False, "commit": commit, "source_modules": mods, "benchmark_version": 2,
                          "modules_hash": P.source_hash(pkg, modules=mods)}}
    cur = {"source_hash": "sha256:x", "benchmark_version": 2}
    assert P.provenance_flags(run, cur) == []
    (pkg / "recipes/__init__.py").write_text(cat.replace("}\n", '    "rein_a": "dgsslib.recipes.rein_a:ReinA",\n}\n'))
    assert P.legacy_changed(run["provenance"], run["config"]) == [] and P.provenance_flags(run, cur) == []
    (pkg / "recipes/__init__.py").write_text(cat.replace("supervised:Supervised", "other:Supervised"))
    assert P.provenance_flags(run, cur) == ["other code"]  # the entry the run used now points elsewhere
    (pkg / "recipes/__init__.py").write_text(cat)
    (pkg / "loop.py").write_text("# loop changed\n")
    assert P.legacy_changed(run["provenance"], run["config"]) == ["loop.py"]
    assert P.provenance_flags(run, cur) == ["other code"]


def test_loaded_modules_lists_imported_library_files_without_presentation_modules():
    import dgsslib.freq  # noqa: F401
    import dgsslib.viz  # noqa: F401
    mods = P.loaded_modules()
    assert "freq.py" in mods and "__init__.py" in mods and "viz.py" not in mods and "provenance.py" not in mods
    prov = P.provenance({"method": "rein", "head": "linear", "recipe": "supervised"})
    assert "freq.py" in prov["source_files"] and not set(prov["source_files"]) & set(P.CATALOGS)
    assert prov["registry"]["method"] == {"rein": "dgsslib.adapters.rein:Rein"}
    assert P.changed_files(prov) == [] and P.changed_registry(prov) == []


def _write_record(root, runs):
    (root / "nb").mkdir(parents=True, exist_ok=True)
    (root / "nb" / "mini.json").write_text(json.dumps({"notebook": "nb", "runs": runs}))
    return root / "nb" / "mini.json"


def test_flagged_runs_are_never_averaged_with_clean_ones(tmp_path, monkeypatch):
    cur = {"dirty": False, "source_hash": P.source_hash(), "benchmark_version": P.benchmark_version(), "commit": "abc1234"}
    run = {"backbone": "dinov2_s", "weights": "w", "method": "rein", "metrics": {"source": {"miou": 40.0}},
           "summary": {"mean_targets": 30.0}, "provenance": cur}
    dirty = dict(run, metrics={"source": {"miou": 50.0}}, provenance=dict(cur, dirty=True))
    _write_record(tmp_path, [run, dict(run), dirty, {k: v for k, v in run.items() if k != "provenance"}])
    table = results.readme_table(tmp_path).splitlines()[2:]
    assert len(table) == 3
    assert "| 2 | 40.0 | 30.0 | - | ok (abc1234) |" in table[0]
    assert "| 1 | 50.0 |" in table[1] and "⚠ dirty tree" in table[1]
    assert "⚠ no provenance" in table[2]
    assert results.main(["--root", str(tmp_path)]) == 0
    assert results.main(["--root", str(tmp_path), "--strict"]) == 1


def test_results_cli_exits_0_on_the_repository(capsys):
    assert results.main([]) == 0
    assert "provenance" in capsys.readouterr().out


def test_reproduce_check_on_a_smoke_record(tmp_path, capsys):
    cfg = resolve("smoke", {"data": {"train_length": 4, "eval_length": 2, "eval": ["synthetic:source", "synthetic:citys"]},
                            "train": {"max_steps": 2, "batch_size": 2}})
    rec = train_and_eval(cfg, tmp_path / "runs", "rein-s0", progress=False)
    prov = rec["provenance"]
    assert prov["source_hash"] == P.source_hash() and prov["config_hash"] == P.config_hash(rec["config"])
    assert prov["commit"] and {"dirty", "benchmark_version", "torch", "timm", "device", "date"} <= set(prov)
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


@pytest.mark.parametrize("flag", ["--reproduce"])
def test_reproduce_cli_rejects_a_missing_record(flag, tmp_path):
    assert results.main([flag, str(tmp_path / "missing.json")]) == 2
