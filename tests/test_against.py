"""``python -m dgsslib.results --against DIR`` (make demo's last step): new runs beside the committed runs of the
same tag and config, PASS within the tolerance, FAIL outside it, and a config or tag that does not match is
never counted as reproduced."""
import json
import subprocess
import sys
from pathlib import Path

from dgsslib.results.against import check_against, config_diff

ROOT = Path(__file__).resolve().parent.parent


def _run(tag, miou, lr=1e-3, log_every=10):
    return {"tag": tag, "method": "freeze", "config": {"seed": 0, "train": {"lr": lr, "log_every": log_every}},
            "metrics": {"source": {"miou": miou}, "citys": {"miou": miou / 2}}, "summary": {"mean_targets": miou / 2}}


def _write(root, runs):
    (root / "10_x").mkdir(parents=True)
    (root / "10_x" / "mini.json").write_text(json.dumps({"notebook": "10_x", "runs": runs}))


def test_pass_fail_other_config_and_missing(tmp_path):
    committed, new = tmp_path / "committed", tmp_path / "new"
    _write(committed, [_run("a-s0", 40.0), _run("b-s0", 40.0), _run("c-s0", 40.0)])
    _write(new, [_run("a-s0", 40.04, log_every=1),   # a runtime key differs: still the same run
                 _run("b-s0", 40.2), _run("c-s0", 40.0, lr=0.5), _run("d-s0", 1.0)])
    rows, ok = check_against(new, committed, tolerance=0.05)
    assert [r["result"] for r in rows] == ["PASS", "FAIL", "OTHER CONFIG", "NO RECORD"] and not ok
    assert abs(rows[0]["max_diff"] - 0.04) < 1e-9 and "train.lr" in rows[2]["why"]
    assert config_diff(_run("a", 1, log_every=1), _run("a", 1)) == []
    rows, ok = check_against(new, committed, tolerance=0.25)
    assert [r["result"] for r in rows][:2] == ["PASS", "PASS"]


def test_cli_exit_codes(tmp_path):
    committed, new = tmp_path / "committed", tmp_path / "new"
    _write(committed, [_run("a-s0", 40.0)])
    _write(new, [_run("a-s0", 40.0)])
    cli = [sys.executable, "-m", "dgsslib.results", "--root", str(committed), "--against"]
    r = subprocess.run(cli + [str(new)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and "| PASS |" in r.stdout and "1/1 runs reproduce" in r.stdout, r.stderr
    r = subprocess.run(cli + [str(tmp_path / "nothing")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("[dgsslib] error:") and "Traceback" not in r.stderr


def test_a_fail_names_runs_that_took_different_float_paths(tmp_path):
    from dgsslib.results.against import numerics_note
    committed, new = tmp_path / "committed", tmp_path / "new"
    old = dict(_run("a-s0", 40.0), provenance={"cpu": "EPYC (avx2)"})          # before dgsslib.numerics: native
    port = {"numerics": {"mode": "portable"}, "cpu": "EPYC (avx512)"}
    _write(committed, [old, dict(_run("b-s0", 40.0), provenance=port)])
    _write(new, [dict(_run("a-s0", 41.0), provenance=port), dict(_run("b-s0", 41.0), provenance=port)])
    rows, _ = check_against(new, committed, tolerance=0.05)
    assert "committed with native CPU numerics (EPYC (avx2)), this run portable" in rows[0]["why"]
    assert "float paths" not in rows[1]["why"] and rows[1]["result"] == "FAIL"  # same numerics: a real failure
    native = {"cpu": "EPYC (avx2)"}
    assert "native CPU numerics on EPYC (avx2) vs EPYC (avx512)" in numerics_note({"provenance": native},
                                                                               {"provenance": {"cpu": "EPYC (avx512)"}})
    assert numerics_note({"provenance": native}, {"provenance": native}) == ""
    assert numerics_note({"provenance": native}, {"provenance": {"cpu": "AMD EPYC 7B13 (avx2)"}}) == ""  # same ISA
    assert numerics_note({"provenance": {"device": "cuda (H100)"}}, {"provenance": port}) == ""  # GPU numbers


def test_numerics_of_names_the_kernels_a_record_was_made_with(tmp_path):
    """make demo reruns each notebook under its record's numerics: one mode per record, anything else refused."""
    port = {"numerics": {"mode": "portable"}}
    for name, provs, want in [("old", [{}, {"cpu": "x"}], "native"), ("new", [port, port], "portable"),
                              ("mixed", [port, {}], None), ("bad", [{"numerics": {"mode": "fast"}}], None)]:
        root = tmp_path / name
        _write(root, [dict(_run(f"r{i}-s0", 40.0), provenance=p) for i, p in enumerate(provs)])
        r = subprocess.run([sys.executable, "-m", "dgsslib.results", "--numerics-of", str(root / "10_x" / "mini.json")],
                           cwd=ROOT, capture_output=True, text=True)
        if want:
            assert r.returncode == 0 and r.stdout.strip() == want, (name, r.stdout, r.stderr)
        else:
            assert r.returncode == 2 and r.stderr.startswith("[dgsslib] error: --numerics-of") and "Traceback" not in r.stderr
