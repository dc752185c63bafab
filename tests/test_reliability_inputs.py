"""Reliability, second pass: inputs that used to run silently wrong or end in a traceback now either do the
right thing or stop with one ``[dgsslib] error:`` line (exit 2) and nothing lost.

| case | before | now | test |
|---|---|---|---|
| ``--set profile=paper`` / a config file setting ``profile`` | results said paper, smoke ran | exit 2: use ``--profile`` | test_refused_before_anything_runs |
| ``--set 'method=["rein"]'``, ``backbone={...}`` | ``TypeError: unhashable`` | exit 2: must be a name | test_refused_before_anything_runs |
| ``--method lora --option r=2.7``, ``head_options.dec_layers=-1`` | trained rank 2 / trained | exit 2 (option types from the constructor, ``option_ranges``) | test_refused_before_anything_runs |
| ``--option detach=no`` (any bool option) | ``"no"`` was truthy | read as false, recorded ``false`` | test_boolean_words_are_booleans |
| slide ``eval.stride > eval.crop`` | NaN scores, an mIoU | exit 2 | test_refused_before_anything_runs |
| ``eval.mode=nonsense`` | refused after training | exit 2 first | test_refused_before_anything_runs |
| ``--work-dir ''`` / an existing file | wrote into cwd / ``FileExistsError`` | exit 2 | test_refused_before_anything_runs |
| ``--resume --overwrite`` | ``--overwrite`` ignored | exit 2 | test_refused_before_anything_runs |
| ``data.target`` with a one-stream recipe | silently unused | exit 2 naming the recipes that use it | test_refused_before_anything_runs |
| ``dark_zurich:train`` as ``data.train`` | loss 0 every step | exit 2 (unlabelled split) | test_refused_before_anything_runs |
| a real ``data.train`` on the smoke profile | ``TypeError`` | exit 2: set data.crop / data.scales | test_refused_before_anything_runs |
| ``--seed 18446744073709551616`` | "Overflow when unpacking long long" | exit 2 naming ``seed`` | test_refused_before_anything_runs |
| binary YAML | codec traceback | exit 2 naming the file | test_refused_before_anything_runs |
| ``--resume`` after editing ``config.json`` | continued with the edit | exit 2 naming the key (the checkpoint's config rules) | test_resume_checks_the_checkpoints_own_config |
| ``--resume`` after deleting ``config.json`` | profile defaults | the checkpoint's config, ``config.json`` rewritten | test_resume_checks_the_checkpoints_own_config |
| ``--resume`` with ``results.json`` = ``{}`` / a history row without ``step`` | ``KeyError`` | exit 2 naming the file when there is nothing to extend; an extension reads the step from ``final.safetensors`` and keeps the file aside / row dropped, resume goes on | test_damaged_run_files |
| ``--weights`` random bytes / a run's ``final.safetensors`` | raw ``RuntimeError`` | exit 2 saying what the file is | test_weights_files_that_are_not_backbones |
| ``results --strict --root /nonexistent`` or empty | exit 0, "every run clean" | exit 2 | test_results_root_and_damaged_records |
| a corrupt / list record under ``--root`` | ``JSONDecodeError`` / ``AttributeError`` | named and skipped; ``--strict`` fails | test_results_root_and_damaged_records |
| ``--reproduce`` bad tolerance, unknown key, ``runs`` a string, missing ``train``, finished ``--work-dir`` | accepted / tracebacks | exit 2, one line | test_reproduce_refuses_bad_records |
| ``--reproduce WORK_DIR/results.json`` without ``--run`` | "no run tagged 'freeze'" | reproduces the single run | test_reproduce_refuses_bad_records |
| ``bench --json DIR`` (a folder) | ``IsADirectoryError`` after the benchmark | exit 2 before it | test_bench_checks_outputs_first |
| a notebook rerun with a changed setting | finished runs deleted | kept as ``<tag>.replaced-<time>/`` | tests/test_notebook_helpers.py |
| ``budget=1.5`` | read as 1 element, silently | exit 2: a fraction <= 1 or a whole count | test_ambiguous_budget_and_bad_subset_options |
| ``verify.py acdc --conditions foo`` | exit 1 (a "failed tree") | exit 2 (a user error) | test_ambiguous_budget_and_bad_subset_options |
| a truncated validation image / a BDD image-label size mismatch | refused after training | exit 2 before step 0, naming the file | test_broken_eval_files_stop_the_run_before_training |
| ``--option r=abc`` (any non-numeric number) | "invalid literal for int()" | exit 2 naming the option | test_refused_before_anything_runs |
| ``recipe_options.refine=off`` / YAML ``method: [rein]`` | truthy / ``TypeError: unhashable`` | false / exit 2: must be a name | test_bool_recipe_options_and_names_in_config_files |
| ``sam2_regions.py`` with a missing ``--checkpoint`` | pointed to a recipe option | exit 2 naming ``--checkpoint`` | test_sam2_regions_names_its_own_checkpoint_flag |
| ``bench --option r=2.7`` / ``r=abc`` | rank 2 / "invalid literal for int()" | exit 2, typed as the trainer types them | test_bench_checks_outputs_first |
| ``--option num_tokens=0`` (VPT), ``dropout=2``, ``head_options.hidden=-1``, ``recipe_options.tau=2`` | refused only at build time or trained | exit 2 at validation: every plug-in declares ``option_ranges`` | test_refused_before_anything_runs, test_every_numeric_option_has_declared_bounds |
| ``params --option r=2.7`` | counted rank 2 | exit 2 (``plugin_options``, the trainer's check) | test_params_types_options_as_the_trainer_does |
"""
import json

import pytest

from dgsslib import train as T
from dgsslib.results import __main__ as results_cli
from dgsslib.results.reproduce import main_reproduce

SMALL = ["--profile", "smoke", "--max-steps", "2", "--set", "data.train_length=4", "--set", "data.eval_length=2",
         "--set", 'data.eval=["synthetic:source"]', "--set", "train.batch_size=2", "--no-progress"]


def run(capsys, *args):
    rc = T.main(list(args))
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err


@pytest.mark.parametrize("args, expect", [
    (["--set", "profile=paper"], "profile is chosen with --profile"),
    (["--set", "profile=nonsense"], "profile is chosen with --profile"),
    (["--set", 'method=["rein"]'], "method must be a name"),
    (["--set", 'backbone={"a": 1}'], "backbone must be a name"),
    (["--method", "lora", "--option", "r=2.7"], "method_options.r must be a whole number"),
    (["--method", "lora", "--option", "r=0"], "method_options.r must be >= 1"),
    (["--method", "lora", "--option", "r=abc"], "method_options.r must be a number"),
    (["--set", "head=mask2former", "--set", "head_options.dec_layers=-1"], "head_options.dec_layers must be >= 1"),
    (["--method", "vpt", "--option", "num_tokens=0"], "method_options.num_tokens must be >= 1"),
    (["--method", "adaptformer", "--option", "dropout=2"], "method_options.dropout must be >= 0 and <= 1"),
    (["--set", "head_options.hidden=-1"], "head_options.hidden must be >= 0"),
    (["--set", "recipe=self_training", "--set", "data.target=synthetic:night", "--set", "recipe_options.tau=2"],
     "recipe_options.tau must be >= 0 and <= 1"),
    (["--set", "eval.mode=slide", "--set", "eval.crop=56", "--set", "eval.stride=100"], "eval.stride 100 > eval.crop 56"),
    (["--set", "eval.mode=nonsense"], "eval.mode must be one of whole, slide"),
    (["--set", "data.target=synthetic:night"], "has no target stream"),
    (["--set", "data.train=dark_zurich:train:night"], "unlabelled split"),
    (["--set", "data.train=cityscapes:train"], "needs data.crop and data.scales"),
    (["--seed", "18446744073709551616"], "seed must be <="),
    (["--resume", "--overwrite"], "give one of them"),
])
def test_refused_before_anything_runs(tmp_path, capsys, args, expect):
    rc, err = run(capsys, *SMALL, "--work-dir", str(tmp_path / "w"), *args)
    assert rc == 2 and len(err) == 1 and err[0].startswith("[dgsslib] error:") and expect in err[0], err
    assert not (tmp_path / "w").exists()  # nothing was written


def test_refused_work_dirs_and_files(tmp_path, capsys):
    rc, err = run(capsys, *SMALL, "--work-dir", "")
    assert rc == 2 and "--work-dir is empty" in err[0]
    (tmp_path / "f").write_text("x")
    rc, err = run(capsys, *SMALL, "--work-dir", str(tmp_path / "f"))
    assert rc == 2 and "is a file" in err[0]
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00\x81binary")
    rc, err = run(capsys, *SMALL, "--work-dir", str(tmp_path / "w"), "--config", str(tmp_path / "bin.yaml"))
    assert rc == 2 and "is not text" in err[0]
    (tmp_path / "p.yaml").write_text("profile: paper\n")
    rc, err = run(capsys, *SMALL, "--work-dir", str(tmp_path / "w"), "--config", str(tmp_path / "p.yaml"))
    assert rc == 2 and "sets profile" in err[0]


def test_boolean_words_are_booleans(tmp_path, capsys):
    assert T.main([*SMALL, "--max-steps", "1", "--method", "causal_tune", "--option", "detach=no",
                   "--work-dir", str(tmp_path / "w")]) == 0
    assert json.loads((tmp_path / "w/config.json").read_text())["method_options"]["detach"] is False
    rc, err = run(capsys, *SMALL, "--method", "causal_tune", "--option", "detach=maybe", "--work-dir", str(tmp_path / "x"))
    assert rc == 2 and "method_options.detach must be true or false" in err[0]


@pytest.fixture
def finished(tmp_path):
    work = tmp_path / "run"
    assert T.main([*SMALL, "--max-steps", "4", "--ckpt-every", "2", "--work-dir", str(work)]) == 0
    return work


def test_resume_checks_the_checkpoints_own_config(finished, capsys):
    cfg = json.loads((finished / "config.json").read_text())
    cfg["train"]["lr"] = 0.5
    (finished / "config.json").write_text(json.dumps(cfg))
    rc, err = run(capsys, "--work-dir", str(finished), "--resume", "--max-steps", "6", "--no-progress")
    assert rc == 2 and len(err) == 1 and "train.lr" in err[0] and "config.json was edited" in err[0]
    (finished / "config.json").unlink()
    assert T.main(["--work-dir", str(finished), "--resume", "--max-steps", "6", "--no-progress"]) == 0
    assert "using the config held in final.safetensors" in capsys.readouterr().out
    rebuilt = json.loads((finished / "config.json").read_text())
    assert rebuilt["train"]["lr"] == 1e-3 and rebuilt["train"]["max_steps"] == 6


def test_damaged_run_files(finished, capsys):
    with open(finished / "history.jsonl", "a") as f:
        f.write('{"loss": 1.0}\n{"step": 9, "lo')
    (finished / "results.json").write_text("{}")
    rc, err = run(capsys, "--work-dir", str(finished), "--resume", "--no-progress")  # nothing to report: refused
    assert rc == 2 and "results.json is damaged" in err[0] and "final.safetensors (step 4)" in err[0]
    assert (finished / "results.json").read_text() == "{}"  # refused with nothing changed
    # an extension needs no results.json: the step comes from final.safetensors, the damaged file is kept aside
    assert T.main(["--work-dir", str(finished), "--resume", "--max-steps", "6", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "is not a history row; it is dropped" in out and "kept aside as results.json.damaged" in out
    assert (finished / "results.json.damaged").read_text() == "{}"
    assert json.loads((finished / "results.json").read_text())["final_step"] == 6
    steps = [json.loads(line)["step"] for line in (finished / "history.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 6


def test_weights_files_that_are_not_backbones(finished, tmp_path, capsys):
    (tmp_path / "noise.pth").write_bytes(bytes(range(256)) * 8)
    for path, expect in ((tmp_path / "noise.pth", "could not load"),
                         (finished / "final.safetensors", "trained state of a dgsslib run")):
        rc, err = run(capsys, *SMALL, "--work-dir", str(tmp_path / "w"), "--weights", str(path))
        assert rc == 2 and len(err) == 1 and expect in err[0], err


def _record(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def test_results_root_and_damaged_records(tmp_path, capsys):
    assert results_cli.main(["--strict", "--root", str(tmp_path / "nonexistent")]) == 2
    (tmp_path / "empty").mkdir()
    assert results_cli.main(["--strict", "--root", str(tmp_path / "empty")]) == 2
    _record(tmp_path / "r/nb/bad.json", "{not json")
    _record(tmp_path / "r/nb/list.json", [1, 2])
    assert results_cli.main(["--root", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "bad.json was skipped: not readable JSON" in err and "list.json was skipped: not a results record" in err
    assert results_cli.main(["--strict", "--root", str(tmp_path / "r")]) == 1


def test_reproduce_refuses_bad_records(finished, tmp_path, capsys):
    rec = json.loads((finished / "results.json").read_text())
    single = _record(tmp_path / "single.json", rec)
    assert main_reproduce(str(single), None, -1, None) == 2
    bad_key = json.loads(json.dumps(rec))
    bad_key["config"]["train"]["lrr"] = 1
    no_train = json.loads(json.dumps(rec))
    del no_train["config"]["train"]
    for name, obj, expect in (("k.json", bad_key, "unknown config key 'train.lrr'"),
                              ("t.json", no_train, "lacks train"),
                              ("s.json", {"runs": "abc"}, "not a results record")):
        assert main_reproduce(str(_record(tmp_path / name, obj)), None, 0.05, None) == 2
        out = capsys.readouterr().out
        assert "[dgsslib] error" in out and expect in out and "Traceback" not in out, out
    assert main_reproduce(str(single), None, 0.05, str(finished)) == 2
    assert "already holds a run" in capsys.readouterr().out
    assert main_reproduce(str(single), None, 0.05, None) == 0  # a single-run record needs no --run


def test_bench_checks_outputs_first(tmp_path, capsys):
    from dgsslib import bench
    rc = bench.main(["--backbone", "tiny", "--method", "freeze", "--batch", "1", "--crop", "56", "--json", str(tmp_path)])
    assert rc == 2 and "is a folder" in capsys.readouterr().err
    for opt, expect in (("r=2.7", "method_options.r must be a whole number"), ("r=abc", "method_options.r must be a number")):
        rc = bench.main(["--backbone", "tiny", "--method", "lora", "--option", opt, "--batch", "1", "--crop", "56"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and err[-1].startswith("[dgsslib] error:") and expect in err[-1], err


def test_ambiguous_budget_and_bad_subset_options(tmp_path, capsys):
    rc, err = run(capsys, *SMALL, "--work-dir", str(tmp_path / "w"), "--method", "fishertune", "--option", "budget=1.5")
    assert rc == 2 and "a fraction of the backbone must be <= 1" in err[0]
    from dgsslib.data.verify import main as verify_main
    assert verify_main(["acdc", "--root", str(tmp_path), "--conditions", "foo"]) == 2
    assert "unknown --conditions ['foo']" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["truncate", "size"])
def test_broken_eval_files_stop_the_run_before_training(tmp_path, capsys, monkeypatch, damage):
    """Every real evaluation file is decoded once before the first step (``check_eval_data``)."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fake_trees import make_bdd, truncate, write_png
    import numpy as np
    data = tmp_path / "data"
    make_bdd(data / "bdd", [(v, v) for v in range(19)] + [(255, 255)], h=64, w=128)  # trainId labels
    img = next((data / "bdd/images/10k/val").glob("*.jpg"))
    if damage == "truncate":
        truncate(img, 0.3)
    else:
        write_png(data / "bdd/labels/sem_seg/masks/val" / (img.stem + ".png"), np.zeros((32, 64), np.uint8))
    monkeypatch.setenv("DGSS_DATA", str(data))
    work = tmp_path / "run"
    rc, err = run(capsys, *SMALL[:-3], "--set", 'data.eval=["bdd:val"]', "--work-dir", str(work), "--no-progress")
    assert rc == 2 and err[-1].startswith("[dgsslib] error:") and img.stem in err[-1]
    assert not (work / "ckpt").exists() and not (work / "final.safetensors").exists()  # nothing trained


def test_bool_recipe_options_and_names_in_config_files(tmp_path, capsys):
    """A recipe's bool option reads yes/no words like a method's (VFMSeg's ``refine=off``), and a list given as a
    name in a YAML config file is refused like the same value given with --set."""
    from pathlib import Path
    vfmseg = str(Path(__file__).resolve().parent.parent / "configs" / "vfmseg" / "mini.yaml")
    small = [*SMALL, "--max-steps", "1", "--config", vfmseg, "--set", "data.size=[112, 224]", "--set", "eval.crop=56",
             "--set", "eval.stride=35"]
    assert T.main([*small, "--set", "recipe_options.refine=off", "--work-dir", str(tmp_path / "w")]) == 0
    assert json.loads((tmp_path / "w/config.json").read_text())["recipe_options"]["refine"] is False
    rc, err = run(capsys, *small, "--set", "recipe_options.refine=maybe", "--work-dir", str(tmp_path / "x"))
    assert rc == 2 and len(err) == 1 and "recipe_options.refine must be true or false" in err[0], err
    (tmp_path / "list.yaml").write_text("method: [rein]\n")
    rc, err = run(capsys, *SMALL, "--config", str(tmp_path / "list.yaml"), "--work-dir", str(tmp_path / "y"))
    assert rc == 2 and len(err) == 1 and "method must be a name" in err[0] and not (tmp_path / "y").exists(), err


def test_sam2_regions_names_its_own_checkpoint_flag(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    script = Path(__file__).resolve().parent.parent / "data_scripts" / "sam2_regions.py"
    r = subprocess.run([sys.executable, str(script), "cityscapes", "--root", str(tmp_path), "--checkpoint",
                        str(tmp_path / "missing.pt")], capture_output=True, text=True)
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(err) == 1 and err[0].startswith("[dgsslib] error: --checkpoint"), r.stderr
    assert "Traceback" not in r.stderr


def test_every_plugin_annotates_its_options_as_strings():
    """Option types are read from constructor annotations as text (``check_option``): a plug-in module without
    ``from __future__ import annotations`` would silently skip the checks, so every registered one has it."""
    import importlib
    import inspect

    from dgsslib.adapters import METHODS
    from dgsslib.heads import HEADS
    from dgsslib.recipes import RECIPES
    missing = []
    for reg in (METHODS, HEADS, RECIPES):
        for name in reg:
            module = importlib.import_module(reg.get(name).__module__)
            if "from __future__ import annotations" not in inspect.getsource(module):
                missing.append(f"{reg.kind}:{name} ({module.__name__})")
    assert not missing, missing


def test_every_numeric_option_has_declared_bounds():
    """One schema per plug-in, beside its class: every int/float constructor option of every registered method,
    head and recipe has an ``option_ranges`` entry (``(None, None)`` where any real value is meaningful)."""
    import inspect

    from dgsslib.adapters import METHODS
    from dgsslib.heads import HEADS
    from dgsslib.recipes import RECIPES
    missing = []
    for reg in (METHODS, HEADS, RECIPES):
        for name in reg:
            cls = reg.get(name)
            ranges = getattr(cls, "option_ranges", {}) or {}
            for key, p in inspect.signature(cls.__init__).parameters.items():
                numeric = {"int", "float"} & set(str(p.annotation).replace(" ", "").split("|"))
                if numeric and key != "in_channels" and key not in ranges:
                    missing.append(f"{reg.kind}:{name}.{key}")
            assert all(lo is None or hi is None or lo <= hi for lo, hi in ranges.values()), name
    assert not missing, missing


def test_params_types_options_as_the_trainer_does(capsys):
    from dgsslib import params
    assert params.main(["--backbone", "dinov2_s", "--method", "lora", "--option", "r=2.7"]) == 2
    assert "method_options.r must be a whole number" in capsys.readouterr().err
    assert params.main(["--backbone", "dinov2_s", "--method", "lora", "--option", "r=4"]) == 0
    assert json.loads(capsys.readouterr().out)["options"]["r"] == 4
