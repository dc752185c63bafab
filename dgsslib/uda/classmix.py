"""ClassMix with DAFormer's strong augmentation: the mix branch of Rein-A.

ClassMix for UDA is from DACS (Tranheden et al., WACV 2021, https://arxiv.org/abs/2007.08702). The
settings are DAFormer's (Hoyer et al., CVPR 2022, https://arxiv.org/abs/2111.14887). Rein++
(Rein-A, §V-A eq. 15, Algorithm 1 lines 10-12) mixes "following the procedure in [18]" (DAFormer)
and takes the class-mix "from DDB" (§VI-B1)::

    K_i   = unique(y_s,i) without 255,   n_i = |K_i|
    C_i   = (n_i + n_i mod 2)/2 = ceil(n_i/2) classes of K_i, uniform without replacement
    M_i   = [y_s,i ∈ C_i]                                   (1 = take the source pixel)
    x_mix = M ⊙ x_s + (1−M) ⊙ x_t,   y_mix = M ⊙ y_s + (1−M) ⊙ ŷ_t,   w_mix = M ⊙ 1 + (1−M) ⊙ w_t
    x_mix ← GaussianBlur(ColorJitter(x_mix))                (labels/weights never augmented)
    L_mix = (1/BHW) Σ w_mix · CE(S_student(x_mix), y_mix)   (eq. 15; the loss lives in the recipe)

Values, from DAFormer's code (github.com/lhoyer/DAFormer, ``mmseg/models/utils/dacs_transforms.py``):

* §3.1: the classes are chosen **per image**, as in DACS and DDB. DAFormer/MIC draw them from the
  union over the batch, which the maintainer calls an unintended deviation with no effect on the
  final score (DAFormer #19, MIC #18). DACS also counts 255 as a class; ``ignore_index=None``
  reproduces that.
* §3.3, DAFormer ``configs/_base_/uda/dacs.py`` and ``strong_transform``:
  - Colour jitter: DAFormer draws u ~ U(0,1) once per batch and jitters if u > 0.2
    (``color_jitter_probability``), so the jitter **applies with probability 0.8**.
  - Jitter strength s = 0.2 (DACS used 0.25). Each image draws its own values, as in kornia
    0.5.8 ``ColorJitter``: brightness b ~ U[0.8, 1.2], added as x + (b−1); contrast ~ U[0.8, 1.2],
    x·c; saturation ~ U[0.8, 1.2], multiplying HSV S; hue ~ U[−0.2, 0.2] turns (×2π rad).
  - The four ops run in a random order per image, each output clamped to [0, 1].
  - Gaussian blur: decided once per batch with probability 0.5. Each image draws
    σ ~ U(0.15, 1.15).
  - Blur kernel: k = floor(ceil(0.1·n) − 0.5 + ceil(0.1·n) mod 2) per axis of length n, giving
    51 for 512, 11 for 112 and 23 for 224. Borders are reflected.
* Images here are [0, 1] floats, **not** normalised: the model normalises them itself.
  - DAFormer de-normalises before the jitter and re-normalises after it. Pass ``mean``/``std``
    for normalised input.
  - Mixing and blurring commute with a per-channel affine normalisation, so those two steps
    work on whatever they are given.

Randomness comes only from an explicit CPU ``torch.Generator``. Draws are made on the CPU and
then moved, so results do not depend on the device and resume exactly. Each call makes a fixed
number of draws, whatever it then applies. Taught in ``notebooks/11_rein_a.ipynb``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..data.labels import IGNORE_INDEX

JITTER_PROB = 0.8         # DAFormer: jitter if u > color_jitter_probability = 0.2 (§3.3)
JITTER_STRENGTH = 0.2     # DAFormer color_jitter_strength (DACS: 0.25)
BLUR_PROB = 0.5           # DAFormer: blur if u > 0.5
BLUR_SIGMA = (0.15, 1.15)


def _check_generator(generator: torch.Generator) -> None:
    if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        raise ValueError("generator must be a CPU torch.Generator (draws happen on CPU, then move)")


def class_mix_masks(labels: torch.Tensor, generator: torch.Generator,
                    ignore_index: int | None = IGNORE_INDEX) -> torch.Tensor:
    """B×H×W source labels -> B×H×W bool masks (True = paste the source pixel), one per image."""
    _check_generator(generator)
    if labels.dim() != 3 or labels.is_floating_point():
        raise ValueError(f"labels must be an integer B×H×W tensor, got {tuple(labels.shape)} {labels.dtype}")
    masks = torch.zeros_like(labels, dtype=torch.bool)
    for i, lab in enumerate(labels):
        classes = torch.unique(lab)  # sorted, so the draw below does not depend on the device
        if ignore_index is not None:
            classes = classes[classes != ignore_index]
        n = int(classes.numel())
        k = (n + n % 2) // 2  # ceil(n/2), DACS int((n + n%2)/2)
        pick = torch.randperm(n, generator=generator)[:k].to(classes.device)
        masks[i] = torch.isin(lab, classes[pick])
    return masks


def mix(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``mask*a + (1-mask)*b`` with a = source and b = target, as in DACS.

    The mask is B×H×W. It is broadcast to images B×C×H×W, or used as is for labels (long, via
    ``where`` and a binary mask) and for weights B×H×W.
    """
    if a.shape != b.shape:
        raise ValueError(f"mix: a {tuple(a.shape)} and b {tuple(b.shape)} differ")
    m = mask.unsqueeze(1) if mask.dim() == a.dim() - 1 else mask  # B×H×W -> B×1×H×W for images
    if m.dim() != a.dim() or m.shape[0] != a.shape[0] or m.shape[-2:] != a.shape[-2:]:
        raise ValueError(f"mix: mask {tuple(mask.shape)} does not fit {tuple(a.shape)}")
    if a.is_floating_point():
        m = m.to(a.dtype)
        return m * a + (1 - m) * b
    if m.dtype != torch.bool:
        if not ((m == 0) | (m == 1)).all():
            raise ValueError("mix: integer tensors (labels) need a binary mask")
        m = m.bool()
    return torch.where(m, a, b)


# ---------------------------------------------------------------- colour jitter (kornia 0.5.8)
def _rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """B×3×H×W RGB in [0,1] -> B×3×H×W HSV, hue in turns [0, 1)."""
    r, g, b = x.unbind(1)
    v, mn = x.amax(1), x.amin(1)
    d = v - mn
    dc = d.clamp_min(1e-12)
    s = torch.where(v > 0, d / v.clamp_min(1e-12), torch.zeros_like(v))
    h = torch.where(v == r, (g - b) / dc, torch.where(v == g, 2 + (b - r) / dc, 4 + (r - g) / dc))
    h = torch.where(d > 0, torch.remainder(h / 6, 1.0), torch.zeros_like(h))
    return torch.stack([h, s, v], 1)


def _hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    h, s, v = hsv.unbind(1)
    h6 = torch.remainder(h, 1.0) * 6
    i = torch.floor(h6)
    f = h6 - i
    i = i.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    chans = [torch.stack(c, 0).gather(0, i[None])[0]  # 6×B×H×W -> B×H×W per channel
             for c in ((v, q, p, p, t, v), (t, v, v, q, p, p), (p, p, t, v, v, q))]
    return torch.stack(chans, 1)


def jitter_image(x: torch.Tensor, brightness: float = 1.0, contrast: float = 1.0,
                 saturation: float = 1.0, hue: float = 0.0,
                 order: tuple[int, ...] = (0, 1, 2, 3)) -> torch.Tensor:
    """Deterministic kornia-0.5.8 jitter of [0,1] images (…×3×H×W). Ops: 0 brightness x+(b−1),
    1 contrast x·c, 2 saturation S·s, 3 hue H+h turns; each clamps to [0,1]; applied in ``order``."""
    if x.shape[-3] != 3:
        raise ValueError(f"colour jitter needs 3 channels, got {tuple(x.shape)}")
    lead = x.shape[:-3]
    y = x.reshape(-1, *x.shape[-3:])  # …×3×H×W -> N×3×H×W
    for op in order:
        if op == 0:
            y = (y + (brightness - 1.0)).clamp(0, 1)
        elif op == 1:
            y = (y * contrast).clamp(0, 1)
        elif op in (2, 3):
            hsv = _rgb_to_hsv(y)
            if op == 2:
                hsv = torch.stack([hsv[:, 0], (hsv[:, 1] * saturation).clamp(0, 1), hsv[:, 2]], 1)
            else:
                hsv = torch.stack([torch.remainder(hsv[:, 0] + hue, 1.0), hsv[:, 1], hsv[:, 2]], 1)
            y = _hsv_to_rgb(hsv).clamp(0, 1)
        else:
            raise ValueError(f"unknown jitter op {op}")
    return y.reshape(*lead, *x.shape[-3:])


# ---------------------------------------------------------------- Gaussian blur
def blur_kernel_size(n: int) -> int:
    """DAFormer's odd kernel side for an axis of n px: floor(ceil(0.1n) − 0.5 + ceil(0.1n) mod 2)."""
    c = math.ceil(0.1 * n)
    return int(math.floor(c - 0.5 + c % 2))


def gaussian_kernel1d(size: int, sigma: float, dtype=torch.float32, device=None) -> torch.Tensor:
    if size < 1 or size % 2 == 0:
        raise ValueError(f"Gaussian kernel size must be odd and positive, got {size}")
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-x ** 2 / (2 * float(sigma) ** 2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def gaussian_blur(x: torch.Tensor, sigma: float, kernel_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Separable Gaussian blur of B×C×H×W with reflect padding; default kernel per axis is
    :func:`blur_kernel_size` (kornia ``GaussianBlur2d`` semantics)."""
    if x.dim() != 4:
        raise ValueError(f"gaussian_blur expects B×C×H×W, got {tuple(x.shape)}")
    B, C, H, W = x.shape
    ky, kx = kernel_size or (blur_kernel_size(H), blur_kernel_size(W))
    if ky // 2 >= H or kx // 2 >= W:
        raise ValueError(f"kernel {(ky, kx)} too large for reflect padding of {H}×{W}")
    gy = gaussian_kernel1d(ky, sigma, x.dtype, x.device).view(1, 1, ky, 1).expand(C, 1, ky, 1)
    gx = gaussian_kernel1d(kx, sigma, x.dtype, x.device).view(1, 1, 1, kx).expand(C, 1, 1, kx)
    y = F.pad(x, (kx // 2, kx // 2, ky // 2, ky // 2), mode="reflect")
    return F.conv2d(F.conv2d(y, gx, groups=C), gy, groups=C)  # depthwise: rows, then columns


# ---------------------------------------------------------------- strong augmentation
def _strengths(s) -> tuple[float, float, float, float]:
    s = (float(s),) * 4 if isinstance(s, (int, float)) else tuple(float(v) for v in s)
    if len(s) != 4 or min(s) < 0 or s[3] > 0.5:
        raise ValueError("jitter_strength: one value or (brightness, contrast, saturation, hue), "
                         f"all >= 0 and hue <= 0.5; got {s}")
    return s


def strong_augment(images: torch.Tensor, generator: torch.Generator, jitter_prob: float = JITTER_PROB,
                   jitter_strength=JITTER_STRENGTH, blur_prob: float = BLUR_PROB,
                   blur_sigma: tuple[float, float] = BLUR_SIGMA,
                   mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None) -> torch.Tensor:
    """DAFormer ``strong_transform`` on B×3×H×W mixed images: jitter, then blur.

    Input is in [0,1] unless ``mean``/``std`` are given. The jitter/blur decision is drawn once per
    batch, the parameters once per image. ``jitter_strength`` is one s or (b, c, s, h).
    """
    _check_generator(generator)
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"strong_augment expects B×3×H×W, got {tuple(images.shape)}")
    if not (0 <= jitter_prob <= 1 and 0 <= blur_prob <= 1):
        raise ValueError("jitter_prob and blur_prob must be in [0, 1]")
    sb, sc, ss, sh = _strengths(jitter_strength)
    B = images.shape[0]
    u = torch.rand(2, generator=generator, dtype=torch.float64)  # batch decisions (DAFormer u > p)
    factors = torch.rand(B, 5, generator=generator, dtype=torch.float64)  # per image: b, c, s, h, σ
    orders = [torch.randperm(4, generator=generator).tolist() for _ in range(B)]
    do_jitter, do_blur = bool(u[0] >= 1 - jitter_prob), bool(u[1] >= 1 - blur_prob)
    out = images
    if do_jitter:
        if mean is not None:
            m = torch.as_tensor(mean, dtype=out.dtype, device=out.device).view(1, -1, 1, 1)
            sd = torch.as_tensor(std, dtype=out.dtype, device=out.device).view(1, -1, 1, 1)
            out = out * sd + m                           # de-normalise to [0,1]
        out = torch.stack([jitter_image(out[i], 1 + sb * (2 * f[0] - 1), 1 + sc * (2 * f[1] - 1),
                                        1 + ss * (2 * f[2] - 1), sh * (2 * f[3] - 1), tuple(orders[i]))
                           for i, f in enumerate(factors.tolist())])
        if mean is not None:
            out = (out - m) / sd
    if do_blur:
        lo, hi = blur_sigma
        out = torch.cat([gaussian_blur(out[i:i + 1], lo + (hi - lo) * factors[i, 4].item())
                         for i in range(B)])
    return out


def class_mix(src_img: torch.Tensor, src_lbl: torch.Tensor, tgt_img: torch.Tensor,
              tgt_pseudo: torch.Tensor, tgt_weight, generator: torch.Generator, augment: bool = True,
              ignore_index: int | None = IGNORE_INDEX, **augment_kwargs) -> dict[str, torch.Tensor]:
    """Mix the source into the target (a = source, b = target). Source pixels get weight 1,
    target pixels ``tgt_weight``, which may be a scalar, per image (B,) or B×H×W.
    Returns ``image`` B×3×H×W, ``label`` B×H×W long, ``weight`` B×H×W float and ``mask`` B×H×W bool."""
    if src_img.shape != tgt_img.shape or src_lbl.shape != tgt_pseudo.shape \
            or src_img.shape[0:1] + src_img.shape[-2:] != src_lbl.shape:
        raise ValueError(f"class_mix: shapes disagree: {tuple(src_img.shape)}, {tuple(src_lbl.shape)}, "
                         f"{tuple(tgt_img.shape)}, {tuple(tgt_pseudo.shape)}")
    w_t = torch.as_tensor(tgt_weight, dtype=src_img.dtype, device=src_img.device)
    w_t = (w_t.view(-1, 1, 1) if w_t.dim() == 1 else w_t).expand(src_lbl.shape)
    mask = class_mix_masks(src_lbl, generator, ignore_index)
    image = mix(mask, src_img, tgt_img)
    if augment:
        image = strong_augment(image, generator, **augment_kwargs)
    return {"image": image, "label": mix(mask, src_lbl, tgt_pseudo.to(src_lbl.dtype)),
            "weight": mix(mask, torch.ones_like(w_t), w_t), "mask": mask}
