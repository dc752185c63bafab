"""``python -m dgsslib.params`` (CLI, meta device) and the paper data in dgsslib.papers.rein."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dgsslib.papers import rein as PT
from dgsslib import params as P
from dgsslib.params import main, parse_options, parse_value

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "dgsslib.params", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_cli_json_rein_default():
    p = run_cli("--backbone", "dinov2_l", "--method", "rein")
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1  # exactly one JSON object
    rec = json.loads(lines[0])
    assert {"backbone", "method", "options", "trainable", "total"} <= set(rec)
    assert rec["backbone"] == "dinov2_l" and rec["method"] == "rein"
    assert rec["trainable"] == 2_990_081 and round(rec["trainable"] / 1e6, 2) == 2.99
    assert rec["total"] == 304_198_656 + 2_990_081  # DINOv2-L at patch 16 / 512 + Rein
    assert rec["options"]["r"] == 16 and rec["options"]["m"] == 100 and rec["options"]["link"] is True


def test_cli_bad_option_and_method():
    p = run_cli("--backbone", "dinov2_l", "--method", "rein", "--option", "rank=4")
    assert p.returncode != 0
    assert "rank" in p.stderr and "accepted" in p.stderr and "variant" in p.stderr


def test_bad_method_in_process(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--backbone", "dinov2_l", "--method", "prefix"])
    assert exc.value.code != 0
    err = capsys.readouterr().err
    assert "choose one of" in err and "rein" in err


def test_in_process_options_and_errors(capsys):
    assert main(["--backbone", "dinov2_l", "--method", "rein", "--option", "variant=core"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["trainable"] == 52_838_401 and rec["options"]["variant"] == "core"
    assert main(["--backbone", "dinov2_l", "--method", "rein", "--option", "variant=bogus"]) == 2
    assert "core, link, lora, multihead, gelu" in capsys.readouterr().err
    assert main(["--backbone", "sam_h", "--method", "vpt"]) == 2
    assert "spatial grid" in capsys.readouterr().err
    assert main(["--backbone", "dinov2_l", "--method", "full", "--patch-size", "native"]) == 0
    assert json.loads(capsys.readouterr().out)["trainable"] == 304_367_616  # patch 14 / 518


def test_parse_values():
    assert parse_value("4") == 4 and parse_value("1e-3") == 1e-3 and parse_value("True") is True
    assert parse_value("none") is None and parse_value("max,avg") == "max,avg"
    assert parse_options(["r=4", "variant=core", "gelu=false"]) == {"r": 4, "variant": "core", "gelu": False}
    with pytest.raises(ValueError):
        parse_options(["r4"])


def test_paper_tables_all_match(capsys):
    assert main(["--paper-tables", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    tables = {r["table"] for r in rows}
    assert tables == {"III", "V", "VI", "VIII", "FT1"}
    bad = [r["row"] for r in rows if r["must_match"] and not r["match"]]
    assert not bad
    by = {(r["table"], r["row"]): r for r in rows}
    assert by[("III", "DINOv2-L + Rein-G")]["ours_M"] == 2.99
    assert by[("V", "+ Rein-core")]["ours_M"] == 52.84
    assert by[("V", "+ Rein-link")]["ours_M"] == 5.02
    assert by[("III", "DINOv2-G + Rein-G")]["ours_M"] == 6.36
    ft = {r["row"]: r for r in rows if r["table"] == "FT1"}
    assert ft["DINOv2-L FisherTune (5 %)"]["trainable"] == round(0.05 * 304_198_656)  # 15.21M = 5 % of ViT-L
    assert ft["SAM-H FisherTune (5 %)"]["ours_M"] > 30 and not ft["SAM-H FisherTune (5 %)"]["match"]  # not 5 % there
    assert ft["SAM-H FisherTune (budget=15.21e6)"]["trainable"] == 15_210_000


def test_matching_rule():
    assert P.matches(304_198_656, "304M") and P.matches(304_198_656, "304.20M")
    assert not P.matches(304_198_656, "304.24M")
    assert P.matches(1_136_225_792, "1.14B") and P.matches(2_990_081, "2.99M")
    assert P.parse_paper_count("0.27M") == (0.27, 2, "M")


def _close(mean, printed, tol=0.1 + 1e-9):
    return abs(mean - printed) <= tol


def test_transcribed_mious_are_consistent():
    """Averages in the paper are means of the printed per-dataset numbers (to rounding),
    except exactly the paper's own inconsistencies listed in PAPER_INCONSISTENCIES."""
    odd = set()
    for row in PT.TABLE_III:
        for proto in ("gtav", "usg", "citys"):
            vals = list(row[proto].values())
            if None not in vals and not _close(sum(vals[:3]) / 3, vals[3]):
                odd.add(("III", f"{row['backbone']}/{row['method']}", proto))
    assert len(PT.TABLE_III) == 25
    for name, row in PT.TABLE_V.items():
        assert len(row["per_class"]) == 19
        if not _close(sum(row["per_class"].values()) / 19, row["mIoU"]):
            odd.add(("V", name, "mIoU"))
    assert odd == set(PT.PAPER_INCONSISTENCIES)
    for r, row in PT.TABLE_VI.items():
        assert _close((row["Citys"] + row["BDD"] + row["Map"]) / 3, row["Avg"]), r
    assert PT.TABLE_VIII[100]["mIoU"] == 70.7 and len(PT.TABLE_VII) == 5
    assert set(PT.TABLE_V_VARIANT.values()) == {"core", "link", "lora", "multihead", "gelu"}
