"""The Rein / Mask2Former (mmseg) data pipeline as small callables on the sample dict.

Training (``build_train_transform``)::

    RandomResizeShortEdge(scales=[int(512*x*0.1) for x in range(5, 21)], max_size=2048)
    -> RandomCrop(512, cat_max_ratio=0.75) -> RandomFlip(0.5) -> PhotoMetricDistortion()

Test (``build_test_transform``): ``Resize(scale, keep_ratio=True)``, factor
``min(long_max/long, short_max/short)`` as mmcv's ``rescale_size``. As in mmseg, the label is by
default left at its original resolution (metrics are computed there; upsample the logits to
``label.shape``); ``resize_label=True`` resizes it too (nearest).

Every transform takes and returns ``{"image": uint8 3×H×W, "label": int64 H×W, "meta": {...}}``;
images stay uint8 (bilinear, rounded), labels use nearest so no new values appear. Random
transforms take an optional ``generator: torch.Generator`` (second argument or keyword;
``Compose`` passes it on):
the same seed gives the same result; without one the global torch RNG is used (which the
DataLoader seeds per worker). Numerics follow mmseg/OpenCV closely, not bit-exactly
(HSV maths in float instead of OpenCV's uint8 HSV).

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from .labels import IGNORE_INDEX

Sample = dict[str, Any]
Gen = torch.Generator | None
REIN_SCALES = [int(512 * x * 0.1) for x in range(5, 21)]  # 256 .. 1024


def _uniform(lo: float, hi: float, generator: Gen) -> float:
    return lo + (hi - lo) * torch.rand((), generator=generator).item()


def _randint(lo: int, hi: int, generator: Gen) -> int:
    """Uniform integer in [lo, hi] (inclusive)."""
    return int(torch.randint(lo, hi + 1, (), generator=generator).item())


def _coin(p: float, generator: Gen) -> bool:
    return torch.rand((), generator=generator).item() < p


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def resize(sample: Sample, size_hw: tuple[int, int], resize_label: bool = True) -> Sample:
    """Image bilinear (uint8, rounded), label nearest, to ``size_hw`` = (H, W)."""
    out = dict(sample)
    img = sample["image"]
    if tuple(img.shape[-2:]) != tuple(size_hw):
        x = F.interpolate(img[None].float(), size=size_hw, mode="bilinear", align_corners=False)
        out["image"] = x[0].round_().clamp_(0, 255).to(torch.uint8)
    lbl = sample.get("label")
    if resize_label and lbl is not None and tuple(lbl.shape) != tuple(size_hw):
        y = F.interpolate(lbl[None, None].float(), size=size_hw, mode="nearest")
        out["label"] = y[0, 0].to(lbl.dtype)
    meta = dict(sample.get("meta", {}))
    meta.setdefault("ori_shape", tuple(img.shape[-2:]))
    meta["img_shape"] = tuple(size_hw)
    out["meta"] = meta
    return out


def keep_ratio_size(h: int, w: int, scale: Sequence[int]) -> tuple[int, int]:
    """(H, W) after scaling by ``min(long_max/long, short_max/short)`` (mmcv ``rescale_size``)."""
    f = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return int(h * f + 0.5), int(w * f + 0.5)


class Compose:
    """Apply transforms in order, passing the generator on."""

    def __init__(self, transforms: Sequence[Callable[..., Sample]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, sample: Sample, generator: Gen = None) -> Sample:
        for t in self.transforms:
            sample = t(sample, generator)
        return sample

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(type(t).__name__ for t in self.transforms) + ")"


class RandomResizeShortEdge:
    """Short edge -> a random choice of ``scales``; long edge capped at ``max_size``
    (mmseg ``RandomChoiceResize(resize_type='ResizeShortestEdge')``)."""

    def __init__(self, scales: Sequence[int] = REIN_SCALES, max_size: int = 2048) -> None:
        self.scales, self.max_size = list(scales), max_size

    def __call__(self, sample: Sample, generator: Gen = None) -> Sample:
        short = self.scales[_randint(0, len(self.scales) - 1, generator)]
        h, w = sample["image"].shape[-2:]
        f = short / min(h, w)
        if self.max_size and max(h, w) * f > self.max_size:
            f = self.max_size / max(h, w)
        return resize(sample, (int(h * f + 0.5), int(w * f + 0.5)))


class RandomCrop:
    """Random ``size`` (H, W) crop; re-drawn up to 10 times until the most frequent non-ignore
    class covers < ``cat_max_ratio`` of the non-ignore pixels and >1 class is present
    (mmseg). Smaller inputs are padded bottom/right with 0 (image) / ``ignore`` (label)."""

    def __init__(self, size: int | Sequence[int], cat_max_ratio: float = 0.75,
                 ignore: int = IGNORE_INDEX) -> None:
        self.size, self.cat_max_ratio, self.ignore = _pair(size), cat_max_ratio, ignore

    def _box(self, h: int, w: int, generator: Gen) -> tuple[int, int]:
        y = _randint(0, max(h - self.size[0], 0), generator)
        return y, _randint(0, max(w - self.size[1], 0), generator)

    def _ok(self, crop: torch.Tensor) -> bool:
        values, counts = torch.unique(crop, return_counts=True)
        counts = counts[values != self.ignore]
        return len(counts) > 1 and counts.max().item() / counts.sum().item() < self.cat_max_ratio

    def __call__(self, sample: Sample, generator: Gen = None) -> Sample:
        img, lbl = sample["image"], sample["label"]
        (h, w), (ch, cw) = img.shape[-2:], self.size
        y, x = self._box(h, w, generator)
        if self.cat_max_ratio < 1.0:
            for _ in range(10):
                if self._ok(lbl[y:y + ch, x:x + cw]):
                    break
                y, x = self._box(h, w, generator)
        img, lbl = img[:, y:y + ch, x:x + cw], lbl[y:y + ch, x:x + cw]
        ph, pw = ch - img.shape[1], cw - img.shape[2]
        if ph > 0 or pw > 0:
            img = F.pad(img, (0, pw, 0, ph), value=0)
            lbl = F.pad(lbl, (0, pw, 0, ph), value=self.ignore)
        return {**sample, "image": img.contiguous(), "label": lbl.contiguous()}


class RandomFlip:
    """Horizontal flip of image and label together with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, sample: Sample, generator: Gen = None) -> Sample:
        if not _coin(self.p, generator):
            return sample
        out = {**sample, "image": sample["image"].flip(-1)}
        if sample.get("label") is not None:
            out["label"] = sample["label"].flip(-1)
        return out


def _rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """3×H×W RGB in [0, 1] -> HSV with H in [0, 1)."""
    r, gr, b = rgb
    maxc, minc = rgb.max(0).values, rgb.min(0).values
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp(min=1e-8), torch.zeros_like(maxc))
    d = delta.clamp(min=1e-8)
    rc, gc, bc = (maxc - r) / d, (maxc - gr) / d, (maxc - b) / d
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == gr, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, maxc])


def _hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    h, s, v = hsv
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = torch.stack([torch.stack(c) for c in ((v, q, p, p, t, v), (t, v, v, q, p, p),
                                                  (p, p, t, v, v, q))])  # 3×6×H×W
    return table.gather(1, i[None, None].expand(3, 1, *i.shape))[:, 0]


class PhotoMetricDistortion:
    """mmseg ``PhotoMetricDistortion``: brightness ±32, contrast [0.5, 1.5], saturation
    [0.5, 1.5], hue ±18 (OpenCV units, 2° each); each applied with p=0.5, contrast before or
    after the HSV steps at random. Label untouched."""

    def __init__(self, brightness_delta: int = 32, contrast_range: tuple[float, float] = (0.5, 1.5),
                 saturation_range: tuple[float, float] = (0.5, 1.5), hue_delta: int = 18) -> None:
        self.brightness_delta, self.contrast_range = brightness_delta, contrast_range
        self.saturation_range, self.hue_delta = saturation_range, hue_delta

    def _contrast(self, img: torch.Tensor, generator: Gen) -> torch.Tensor:
        if _coin(0.5, generator):
            img = (img * _uniform(*self.contrast_range, generator)).clamp(0, 255)
        return img

    def __call__(self, sample: Sample, generator: Gen = None) -> Sample:
        img = sample["image"].float()
        if _coin(0.5, generator):
            img = (img + _uniform(-self.brightness_delta, self.brightness_delta, generator)).clamp(0, 255)
        contrast_first = _coin(0.5, generator)
        if contrast_first:
            img = self._contrast(img, generator)
        do_sat, sat = _coin(0.5, generator), _uniform(*self.saturation_range, generator)
        do_hue, hue = _coin(0.5, generator), _randint(-self.hue_delta, self.hue_delta, generator)
        if do_sat or do_hue:
            hsv = _rgb_to_hsv(img / 255.0)
            if do_sat:
                hsv[1] = (hsv[1] * sat).clamp(0, 1)
            if do_hue:
                hsv[0] = (hsv[0] + hue / 180.0) % 1.0
            img = _hsv_to_rgb(hsv) * 255.0
        if not contrast_first:
            img = self._contrast(img, generator)
        return {**sample, "image": img.round().clamp(0, 255).to(torch.uint8)}


class Resize:
    """Test-time resize to ``scale`` (W, H) in either order: with ``keep_ratio`` the factor is
    ``min(long_max/long, short_max/short)``; otherwise exactly (W, H). Labels nearest, or kept
    at full resolution with ``resize_label=False`` (mmseg evaluation protocol)."""

    def __init__(self, scale: Sequence[int], keep_ratio: bool = True, resize_label: bool = True) -> None:
        self.scale, self.keep_ratio, self.resize_label = tuple(scale), keep_ratio, resize_label

    def __call__(self, sample: Sample, generator: Gen = None) -> Sample:
        h, w = sample["image"].shape[-2:]
        size = keep_ratio_size(h, w, self.scale) if self.keep_ratio else (self.scale[1], self.scale[0])
        return resize(sample, size, self.resize_label)


def build_train_transform(crop: int | Sequence[int] = 512, scales: Sequence[int] | None = None,
                          max_size: int = 2048, cat_max_ratio: float = 0.75) -> Compose:
    """Rein training pipeline; ``scales`` default ``[int(c*x*0.1) for x in 5..20]`` with c the
    short side of ``crop`` (= the Rein list 256..1024 for crop 512)."""
    base = min(_pair(crop))
    scales = list(scales) if scales is not None else [int(base * x * 0.1) for x in range(5, 21)]
    return Compose([RandomResizeShortEdge(scales, max_size), RandomCrop(crop, cat_max_ratio),
                    RandomFlip(0.5), PhotoMetricDistortion()])


def build_test_transform(scale: Sequence[int] = (1024, 512), resize_label: bool = False) -> Compose:
    """Test pipeline: keep-ratio ``Resize(scale)``; the label stays at full resolution unless
    ``resize_label`` (then nearest). Use the dataset's ``TEST_SCALE``."""
    return Compose([Resize(scale, keep_ratio=True, resize_label=resize_label)])
