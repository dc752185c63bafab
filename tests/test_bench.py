"""The bench CLI on CPU: a markdown row, JSON fields, and Full stores more than Freeze."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--backbone", "tiny", "--head", "linear", "--batch", "2", "--crop", "56", "--steps", "2",
        "--warmup", "1", "--no-progress"]
POSITIVE = ("s_iter_median", "s_iter_mean", "peak_mem_bytes", "head_params", "state_bytes_head",
            "state_bytes_total")


def _bench(tmp_path: Path, method: str) -> tuple[dict, str]:
    out, js = tmp_path / "bench.md", tmp_path / f"{method}.json"
    proc = subprocess.run([sys.executable, "-m", "dgsslib.bench", "--method", method, *ARGS,
                           "--out", str(out), "--json", str(js)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(js.read_text()), proc.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    return {m: _bench(tmp, m) for m in ("freeze", "full")}, tmp / "bench.md"


def test_rows_and_fields(runs):
    recs, md = runs
    for method, (rec, stdout) in recs.items():
        for key in POSITIVE:
            assert rec[key] > 0, (method, key, rec[key])
        assert rec["weights"].startswith("random")
        assert rec["mem_kind"].startswith("CPU peak RSS")
        assert rec["dtype"] == "fp32" and rec["torch"] and rec["device"]
        assert len(rec["step_times"]) == 2
        assert "random init" in stdout
        assert any(line.startswith("| ") and f"| tiny | {method} | linear | 2 | 56 |" in line
                   for line in stdout.splitlines())
    text = md.read_text()
    assert "random weights" in text.lower()  # the header explains the rows
    rows = [l for l in text.splitlines() if l.startswith("| ") and "| tiny |" in l]
    assert len(rows) == 2 and text.count("| date |") == 1  # header written once, rows appended


def test_full_stores_and_trains_more_than_freeze(runs):
    recs, _ = runs
    freeze, full = recs["freeze"][0], recs["full"][0]
    assert freeze["trainable_backbone_params"] == 0
    assert full["trainable_backbone_params"] > 0
    assert full["state_bytes_total"] > freeze["state_bytes_total"]
    assert full["state_bytes_backbone_side"] > 4 * full["trainable_backbone_params"] * 0.99  # fp32
    assert full["head_params"] == freeze["head_params"]


def test_unknown_names_fail_with_the_valid_ones():
    proc = subprocess.run([sys.executable, "-m", "dgsslib.bench", "--backbone", "nope", "--method", "freeze",
                           "--batch", "1", "--crop", "56", "--out", ""],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "dinov2_l" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "dgsslib.bench", "--backbone", "tiny", "--method", "freeze",
                           "--head", "linear", "--batch", "1", "--crop", "56", "--option", "zz=1", "--out", ""],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "error" in proc.stderr


def test_synthetic_labels_have_blocks_and_ignore():
    import torch
    from dgsslib.bench import synthetic_batch
    img, lab = synthetic_batch(2, 32, torch.device("cpu"), seed=1)
    assert img.dtype == torch.uint8 and img.shape == (2, 3, 32, 32)
    for b in range(2):
        vals = set(lab[b].unique().tolist())
        assert 255 in vals and 3 <= len(vals - {255}) <= 4


def test_mini_step_cache_rows_and_section(tmp_path):
    """The render-cache bench runs the real step three times (off / cold / warm, same images), and its section
    stays below the model-step table when ``make bench`` appends a row later."""
    from dgsslib import bench, bench_step
    rows = bench_step.mini_step_cache("freeze", batch=2, steps=1, progress=False, profile="smoke")
    assert [r["cache"] for r in rows] == ["off", "on, cold", "on, warm"]
    assert rows[0]["ratio"] == 1.0 and all(r["s_per_step"] > 0 and r["loads"] == rows[0]["loads"] > 0 for r in rows)
    out = tmp_path / "bench.md"
    bench.append_row(out, "| model row 1 |")
    bench_step.append(out, bench_step.markdown(rows, "freeze", 2, 1, "CPU test"))
    bench.append_row(out, "| model row 2 |")
    text = out.read_text()
    assert text.index("| model row 2 |") < text.index(bench_step.SECTION) < text.index("on, warm")
    assert text.count(bench_step.SECTION) == 1


def test_mini_speed_profiles_every_paper_step_and_keeps_sections_apart(tmp_path):
    """bench --mini-speed: each paper's step split into parts that sum to at most the step, with data, backward and
    the optimiser seen; the CPU-option contexts restore what they change; rows land in their own sections."""
    import torch

    from dgsslib import bench_speed
    from dgsslib.recipes.base import Recipe
    rows = bench_speed.step_profiles("smoke", steps=1, progress=False)
    assert [r["step"] for r in rows] == [s[0] for s in bench_speed.STEPS]
    for r in rows:
        parts = r["parts"]
        assert r["s_per_step"] > 0 and sum(parts.values()) <= r["s_per_step"] * 1.001, r
        assert parts["data"] > 0 and parts["backward"] > 0 and parts["optimiser"] > 0, r  # smoke renders every image
        assert parts["VFM fwd"] > 0, r
    bind, threads = Recipe.bind, torch.get_num_threads()
    for option in ("channels_last", "threads_1"):
        with bench_speed.cpu_option(option):
            assert (Recipe.bind is not bind) == (option == "channels_last")
        assert Recipe.bind is bind and torch.get_num_threads() == threads
    out = tmp_path / "bench.md"
    out.write_text("# bench\n\n" + bench_speed.PROFILE_SECTION + "\n\nintro\n\n| a |\n|---|\n| old |\n\n## Later\n\nkept\n")
    a, _ = bench_speed.markdown(rows, [], "CPU test", 1)
    bench_speed.append_section(out, bench_speed.PROFILE_SECTION, a, *bench_speed.HEADERS[bench_speed.PROFILE_SECTION])
    text = out.read_text()
    assert text.index("| old |") < text.index("Rein-A (+ STM)") < text.index("## Later") and text.endswith("kept\n")
