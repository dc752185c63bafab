"""Training-cost bench: step time, peak memory, trainable parameters and checkpoint size.

What is measured, and how:

* The model is built exactly as training builds it (VFM + method + head, :class:`SegModel`),
  but with **random weights** (``weights="none"``): cost does not depend on the values, and
  no download is needed. Every row says so.
* Inputs are synthetic: random uint8 images and labels made of a few class blocks (plus an
  ignore strip) so that Mask2Former's matcher has real targets. One fixed batch is reused.
* One step = forward (bf16 autocast on CUDA by default), loss, backward, gradient masks (if the
  method has any) and an AdamW step over :func:`dgsslib.optim.param_groups` -- the very
  parameters training optimises. ``W`` warm-up steps are run and discarded, then ``N`` steps are
  timed one by one (``torch.cuda.synchronize()`` before and after each on CUDA); the median and
  mean are reported in s/iter.
* Peak memory: CUDA -- ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``
  (model, optimiser state and activations; the reserved pool is in the JSON too); CPU -- the
  process's peak RSS from ``resource.getrusage`` (includes Python, torch and the imports).
* Trainable backbone-side parameters: ``model.method.num_trainable()`` (the count the papers
  report: the decode head is excluded); head parameters counted separately.
* Checkpoint size: ``model.trainable_state()`` written with :func:`dgsslib.checkpoint.save_tensors`
  to a temporary directory, in two files (backbone-side | head) whose bytes are measured.

The comparison (Rein++ Table VII; A100-40G, batch 4, 512x512 crops, DINOv2-L, 40k iterations):
Full fine-tuning 14.7 GB, 11.2 h (about 1.01 s/iter); Rein-G 9.9 GB, 9.3 h (0.84 s/iter);
storage Full 1.22 GB vs Rein 0.01 GB + 0.08 GB of head. Reproduce that row with::

    python -m dgsslib.bench --backbone dinov2_l --method rein --batch 4 --crop 512 --patch16

CLI::

    python -m dgsslib.bench --backbone <name> --method <name> --batch B --crop S [--steps N]
        [--warmup W] [--head mask2former|linear] [--dtype auto|bf16|fp32] [--option k=v ...]
        [--patch16] [--depth D] [--out results/bench.md] [--json FILE]
    python -m dgsslib.bench --mini-step [--method rein] [--batch 8] [--steps 6]   # data included, render
        cache off / on (:mod:`dgsslib.bench_step`)
    python -m dgsslib.bench --mini-speed                     # each paper's mini step profiled, and torch.compile /
        channels-last / threads / inference_mode against today's step (:mod:`dgsslib.bench_speed`)

Taught in ``notebooks/10_rein_g.ipynb``.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from .data.labels import IGNORE_INDEX, NUM_CLASSES

WEIGHTS_NOTE = "random init (weights=none)"
PAPER_NOTE = ("Rein++ Table VII (A100-40G, batch 4, 512², DINOv2-L): Full 14.7 GB, 11.2 h/40k it "
              "(~1.01 s/iter); Rein-G 9.9 GB, 9.3 h (0.84 s/iter); storage Full 1.22 GB vs "
              "Rein 0.01 GB + head 0.08 GB.")
COLUMNS = ("date", "device", "torch", "backbone", "method", "head", "batch", "crop", "dtype",
           "s/iter median", "s/iter mean", "h/40k it", "peak mem GiB", "mem kind", "trainable backbone params",
           "head params", "state backbone-side MB", "state head MB", "state total GB", "steps", "weights")


# ------------------------------------------------------------------ building blocks
def build_bench_model(backbone: str, method: str, head: str = "mask2former", crop: int = 512,
                      options: dict | None = None, patch16: bool = False, depth: int | None = None,
                      verbose: bool = False):
    """A :class:`SegModel` with random weights, built by :func:`dgsslib.model.build_model` from a
    config (plus ``depth`` for reduced test backbones)."""
    from .model import build_model
    from .profiles import resolve
    cfg = resolve("smoke", {"backbone": backbone, "weights": "none", "method": method,
                            "method_options": dict(options or {}), "head": head, "img_size": crop,
                            "patch_size": 16 if patch16 else None})
    return build_model(cfg, verbose=verbose, depth=depth)


def synthetic_batch(batch: int, crop: int, device: torch.device, seed: int = 0,
                    classes_per_image: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Random uint8 images B×3×S×S and labels B×S×S: a 2×2 grid of class blocks per image
    (``classes_per_image`` distinct classes) and a bottom ignore strip of S/8 rows."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch, 3, crop, crop), generator=g, dtype=torch.uint8)
    labels = torch.empty(batch, crop, crop, dtype=torch.int64)
    halves = (slice(0, crop // 2), slice(crop // 2, crop))
    for b in range(batch):
        cls = torch.randperm(NUM_CLASSES, generator=g)[:classes_per_image]
        for k, (ys, xs) in enumerate((y, x) for y in halves for x in halves):
            labels[b, ys, xs] = cls[k % len(cls)]
        labels[b, crop - max(1, crop // 8):] = IGNORE_INDEX
    return images.to(device), labels.to(device)


def state_bytes(model) -> dict[str, int]:
    """Bytes on disk of the trainable state, split backbone-side (method + unfrozen backbone)
    and head, each written with :func:`dgsslib.checkpoint.save_tensors`."""
    from .checkpoint import save_tensors
    state = model.trainable_state()
    parts = {"head": {k: v for k, v in state.items() if k.startswith("head.")},
             "backbone_side": {k: v for k, v in state.items() if not k.startswith("head.")}}
    out = {}
    with tempfile.TemporaryDirectory(prefix="dgss_bench_") as tmp:
        for name, tensors in parts.items():
            path = Path(tmp) / f"{name}.safetensors"
            save_tensors(path, tensors, {"bench": name})
            out[name] = path.stat().st_size
    out["total"] = out["head"] + out["backbone_side"]
    return out


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {model} ({torch.get_num_threads()} threads)"


def _cpu_peak_rss_bytes() -> int:
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # Linux reports KiB


# ------------------------------------------------------------------ the bench
def run_bench(backbone: str, method: str, batch: int, crop: int, steps: int = 10, warmup: int = 3,
              head: str = "mask2former", dtype: str = "auto", options: dict | None = None,
              patch16: bool = False, depth: int | None = None, lr: float = 1e-4,
              weight_decay: float = 0.05, seed: int = 0, progress: bool = True,
              fused_attn: bool | None = None, compile_model: bool | str = False) -> dict:
    """Run ``warmup`` + ``steps`` training steps on synthetic data; return the measurements.
    ``fused_attn`` sets timm's fused attention (SDPA) on every attention block (None: timm's default);
    ``compile_model`` runs the forward through ``torch.compile`` (True: inductor, or a backend name such as
    ``eager``; its compile time falls in the warm-up)."""
    from .optim import apply_grad_masks, apply_masked_weight_decay, build_optimizer
    from .engine.runtime import amp_dtype
    if steps < 1 or warmup < 0 or batch < 1 or crop < 1:
        raise ValueError(f"need steps >= 1, warmup >= 0, batch >= 1, crop >= 1 "
                         f"(got steps={steps}, warmup={warmup}, batch={batch}, crop={crop})")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    amp = amp_dtype(dtype, device)
    torch.manual_seed(seed)
    model = build_bench_model(backbone, method, head, crop, options, patch16, depth).to(device)
    if fused_attn is not None:
        blocks = [m for m in model.modules() if hasattr(m, "fused_attn")]
        if not blocks:
            raise ValueError("fused_attn: this backbone has no timm attention block with a fused_attn switch")
        for m in blocks:
            m.fused_attn = bool(fused_attn)
    forward = model
    if compile_model:
        forward = torch.compile(model, backend="inductor" if compile_model is True else str(compile_model))
    opt = build_optimizer(model, {"lr": lr, "weight_decay": weight_decay})
    images, labels = synthetic_batch(batch, crop, device, seed)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    model.train()

    def step() -> float:
        if cuda:
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        ctx = torch.autocast(device_type=device.type, dtype=amp) if amp else contextlib.nullcontext()
        with ctx:
            out = forward(images)
        loss = model.loss(out, labels, generator=gen)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        masks = model.method.grad_masks(0)
        apply_grad_masks(masks, opt)
        apply_masked_weight_decay(opt, masks)
        opt.step()
        if cuda:
            torch.cuda.synchronize(device)
        if not torch.isfinite(loss.detach()):
            raise RuntimeError(f"loss is {loss.item()} during the bench (random weights, lr={lr})")
        return time.perf_counter() - t0

    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    from .progress import progress_bar
    bar = progress_bar(range(warmup + steps), desc=f"bench {backbone}/{method}", disable=not progress)
    for i in bar:
        dt = step()
        if i >= warmup:
            times.append(dt)
        bar.set_postfix(s_iter=f"{dt:.3f}", phase="warm-up" if i < warmup else "timed")
    bar.close()
    if cuda:
        peak, mem_kind = torch.cuda.max_memory_allocated(device), "CUDA max allocated"
        reserved = torch.cuda.max_memory_reserved(device)
    else:
        peak, mem_kind, reserved = _cpu_peak_rss_bytes(), "CPU peak RSS (process)", None
    sizes = state_bytes(model)
    head_params = sum(p.numel() for p in model.head.parameters())
    return {
        "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "device": device_name(device), "torch": torch.__version__,
        "backbone": backbone + (f" (depth {depth})" if depth else "") + (" p16" if patch16 else ""),
        "method": method + ("" if not options else " " + ",".join(f"{k}={v}" for k, v in options.items()))
        + ("" if fused_attn is None else f" fused_attn={fused_attn}") + (f" compiled ({'inductor' if compile_model is True else compile_model})" if compile_model else ""),
        "head": head, "batch": batch, "crop": crop,
        "dtype": "bf16 autocast" if amp is torch.bfloat16 else "fp32",
        "s_iter_median": statistics.median(times), "s_iter_mean": statistics.fmean(times),
        "step_times": times, "steps": steps, "warmup": warmup,
        "peak_mem_bytes": peak, "peak_mem_gib": peak / 2 ** 30, "mem_kind": mem_kind,
        "cuda_max_reserved_bytes": reserved,
        "trainable_backbone_params": model.method.num_trainable(), "head_params": head_params,
        "state_bytes_backbone_side": sizes["backbone_side"], "state_bytes_head": sizes["head"],
        "state_bytes_total": sizes["total"], "state_mb_total": sizes["total"] / 1e6,
        "state_gb_total": sizes["total"] / 1e9, "weights": WEIGHTS_NOTE,
        "hours_per_40k": statistics.median(times) * 40000 / 3600,
    }


# ------------------------------------------------------------------ markdown
def _m(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e4 else str(n)


def markdown_header() -> str:
    return (
        "# Training-cost bench (`python -m dgsslib.bench`)\n\n"
        "**All rows use random weights** (`weights=none`) and synthetic inputs: cost does not depend on\n"
        "the weight values. One step = forward + loss + backward + AdamW over `optim.param_groups`.\n"
        "s/iter: median and mean over the timed steps (after warm-up); h/40k it = median × 40,000. Peak mem: CUDA max allocated\n"
        "(GiB) or, on CPU, the process's peak RSS -- see `mem kind`. Trainable backbone params:\n"
        "`method.num_trainable()` (head excluded, as the papers count). State: bytes of\n"
        "`model.trainable_state()` in safetensors (MB/GB = 10^6/10^9 bytes), split backbone-side | head.\n"
        f"Paper reference: {PAPER_NOTE}\n\n"
        "| " + " | ".join(COLUMNS) + " |\n" + "|---" * len(COLUMNS) + "|\n")


def markdown_row(r: dict) -> str:
    cells = [r["date"], r["device"], r["torch"], r["backbone"], r["method"], r["head"], r["batch"], r["crop"],
             r["dtype"], f"{r['s_iter_median']:.4f}", f"{r['s_iter_mean']:.4f}", f"{r['hours_per_40k']:.2f}", f"{r['peak_mem_gib']:.2f}",
             r["mem_kind"], _m(r["trainable_backbone_params"]), _m(r["head_params"]),
             f"{r['state_bytes_backbone_side'] / 1e6:.3f}", f"{r['state_bytes_head'] / 1e6:.3f}",
             f"{r['state_gb_total']:.4f}", f"{r['steps']}+{r['warmup']}w", r["weights"]]
    return "| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |"


def append_row(path: str | Path, row: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.stat().st_size == 0:
        path.write_text(markdown_header())
    text = path.read_text()
    cut = text.find("\n## ")  # a later section (the mini-step table, dgsslib.bench_step): rows go above it
    if cut < 0:
        path.write_text(text.rstrip("\n") + "\n" + row + "\n")
    else:
        path.write_text(text[:cut].rstrip("\n") + "\n" + row + "\n" + text[cut:])


# ------------------------------------------------------------------ CLI
def _parse(argv) -> argparse.Namespace:
    from .adapters import METHODS
    from .backbones import BACKBONES
    from .heads import HEADS
    p = argparse.ArgumentParser(prog="python -m dgsslib.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--backbone", required=True, choices=list(BACKBONES))
    p.add_argument("--method", required=True, choices=list(METHODS))
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--crop", type=int, required=True)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--head", default="mask2former", choices=list(HEADS))
    p.add_argument("--dtype", default="auto", choices=("auto", "bf16", "fp32"))
    p.add_argument("--option", action="append", default=[], metavar="K=V", help="method option, e.g. r=4")
    p.add_argument("--patch16", action="store_true", help="Rein's patch 14->16 conversion (img_size=crop)")
    p.add_argument("--depth", type=int, help="reduced-depth backbone (CPU tests)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/bench.md", help="markdown table to append to ('' = none)")
    p.add_argument("--json", help="also write the measurements as JSON here")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--mini-speed"]:  # each paper's mini step profiled, and PyTorch's CPU options (dgsslib.bench_speed)
        from .bench_speed import main as mini_speed
        return mini_speed(argv[1:], device=device_name(torch.device("cpu")))
    if argv[:1] == ["--mini-step"]:  # the notebooks' step with data, render cache off / on (dgsslib.bench_step)
        from .bench_step import main as mini_step
        return mini_step(argv[1:], device=device_name(torch.device("cpu")))
    from .profiles import parse_value
    a = _parse(argv)
    options = {}
    for kv in a.option:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            print(f"[dgsslib] error: --option wants KEY=VALUE, got {kv!r}", file=sys.stderr)
            return 2
        options[k] = parse_value(v)
    from .adapters import METHODS
    from .engine.validation import plugin_options
    from .profiles import ConfigError
    try:  # typed and range-checked as the trainer does: r=2.7 is refused, not trained as rank 2
        options = plugin_options("method", a.method, options) if a.method in METHODS else options
    except ConfigError as exc:
        print(f"[dgsslib] error: {exc}", file=sys.stderr)
        return 2
    for flag, path in (("--out", a.out), ("--json", a.json)):  # outputs first: never lose a finished benchmark
        if path and Path(path).is_dir():
            print(f"[dgsslib] error: {flag} {path} is a folder; give a file path (e.g. {flag} "
                  f"{Path(path) / ('bench.md' if flag == '--out' else 'bench.json')})", file=sys.stderr)
            return 2
    print(f"[dgsslib] bench: {a.backbone}/{a.method}/{a.head}, weights = {WEIGHTS_NOTE}", flush=True)
    try:
        rec = run_bench(a.backbone, a.method, a.batch, a.crop, a.steps, a.warmup, a.head, a.dtype, options,
                        a.patch16, a.depth, seed=a.seed, progress=not a.no_progress)
    except torch.cuda.OutOfMemoryError as exc:
        print(f"[dgsslib] out of GPU memory: {str(exc).splitlines()[0]}; lower --batch/--crop", file=sys.stderr)
        return 3
    except (ValueError, ImportError, NotImplementedError) as exc:
        print(f"[dgsslib] error: {exc}", file=sys.stderr)
        return 2
    row = markdown_row(rec)
    print("| " + " | ".join(COLUMNS) + " |")
    print(row, flush=True)
    if a.out:
        append_row(a.out, row)
        print(f"[dgsslib] appended to {a.out}")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(rec, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
