"""ClassMix, DAFormer strong augmentation and MIC block masks (dgsslib.uda.classmix / masking)."""
from __future__ import annotations

import math

import pytest
import torch

from dgsslib.uda.classmix import (blur_kernel_size, class_mix, class_mix_masks, gaussian_blur,
                                  jitter_image, mix, strong_augment)
from dgsslib.uda.masking import apply_mask, block_mask


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def labels(B=6, H=8, W=10, seed=1):
    g = gen(seed)
    lab = torch.randint(0, 7, (B, H, W), generator=g)
    lab[torch.rand(B, H, W, generator=g) < 0.15] = 255
    lab[0] = 3  # one image with a single class
    lab[1, :, :5] = 4  # and one with two classes + ignore
    lab[1, :, 5:] = 255
    lab[1, 0, 5] = 6
    return lab


def test_half_of_present_classes_chosen_and_mask_is_membership():
    lab = labels()
    masks = class_mix_masks(lab, gen())
    assert masks.shape == lab.shape and masks.dtype == torch.bool
    for i in range(lab.shape[0]):
        present = set(lab[i].unique().tolist()) - {255}
        chosen = set(lab[i][masks[i]].unique().tolist())
        assert 255 not in chosen
        assert len(chosen) == math.ceil(len(present) / 2)
        assert chosen <= present
        direct = torch.zeros_like(masks[i])
        for c in chosen:
            direct |= lab[i] == c
        assert torch.equal(masks[i], direct)
    assert masks[0].all()  # a single class is always pasted (ceil(1/2) = 1)


def test_ignore_index_none_counts_255_as_a_class_like_dacs():
    lab = torch.full((1, 4, 4), 255)
    lab[0, :2] = 1  # classes {1, 255}: one of the two is chosen
    chosen = {tuple(lab[0][class_mix_masks(lab, gen(s), ignore_index=None)[0]].unique().tolist())
              for s in range(20)}
    assert chosen == {(1,), (255,)}


def test_masks_reproducible_and_seed_dependent():
    lab = labels(B=8)
    assert torch.equal(class_mix_masks(lab, gen(3)), class_mix_masks(lab, gen(3)))
    assert not torch.equal(class_mix_masks(lab, gen(3)), class_mix_masks(lab, gen(4)))
    with pytest.raises(ValueError):
        class_mix_masks(lab.float(), gen())


def test_mix_formula_images_labels_weights():
    g = gen(5)
    mask = torch.rand(2, 4, 5, generator=g) > 0.5
    a, b = torch.rand(2, 3, 4, 5, generator=g), torch.rand(2, 3, 4, 5, generator=g)
    m = mask.float()[:, None]
    assert torch.allclose(mix(mask, a, b), m * a + (1 - m) * b)
    la, lb = torch.randint(0, 19, (2, 4, 5), generator=g), torch.randint(0, 19, (2, 4, 5), generator=g)
    out = mix(mask, la, lb)
    assert out.dtype == torch.long and torch.equal(out, torch.where(mask, la, lb))
    wa, wb = torch.rand(2, 4, 5, generator=g), torch.rand(2, 4, 5, generator=g)
    assert torch.allclose(mix(mask.float(), wa, wb), mask * wa + (~mask) * wb)
    with pytest.raises(ValueError):
        mix(mask, a, b[:, :2])


def test_class_mix_weights_labels_and_reproducibility():
    lab = labels(B=3)
    g = gen(2)
    xs, xt = torch.rand(3, 3, 8, 10, generator=g), torch.rand(3, 3, 8, 10, generator=g)
    pseudo = torch.randint(0, 19, (3, 8, 10), generator=g)
    q = torch.tensor([0.2, 0.5, 0.9])
    out = class_mix(xs, lab, xt, pseudo, q, gen(7), augment=False)
    mask = out["mask"]
    assert torch.equal(mask, class_mix_masks(lab, gen(7)))  # masks are drawn first
    expected_w = torch.where(mask, torch.ones(3, 8, 10), q.view(3, 1, 1).expand(3, 8, 10))
    assert torch.equal(out["weight"], expected_w)
    assert torch.equal(out["label"], torch.where(mask, lab, pseudo))
    assert torch.equal(out["image"], torch.where(mask[:, None], xs, xt))
    aug1 = class_mix(xs, lab, xt, pseudo, 0.5, gen(7))
    aug2 = class_mix(xs, lab, xt, pseudo, 0.5, gen(7))
    assert torch.equal(aug1["image"], aug2["image"]) and torch.equal(aug1["label"], out["label"])
    assert (aug1["weight"][~mask] == 0.5).all() and (aug1["weight"][mask] == 1).all()


def test_strong_augment_shape_range_identity_and_seed():
    x = torch.rand(4, 3, 30, 40, generator=gen(0))
    assert torch.equal(strong_augment(x, gen(1), jitter_prob=0.0, blur_prob=0.0), x)
    y = strong_augment(x, gen(1), jitter_prob=1.0, blur_prob=1.0)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    assert not torch.allclose(y, x, atol=1e-3)
    assert torch.equal(y, strong_augment(x, gen(1), jitter_prob=1.0, blur_prob=1.0))
    assert not torch.equal(y, strong_augment(x, gen(2), jitter_prob=1.0, blur_prob=1.0))
    # default probabilities 0.8 / 0.5 (batch-level decisions): both outcomes occur over seeds
    changed = [not torch.equal(strong_augment(x[:1], gen(s)), x[:1]) for s in range(40)]
    assert 25 <= sum(changed) <= 40  # P(any) = 1 - 0.2*0.5 = 0.9


def test_blur_matches_direct_2d_gaussian_convolution():
    x = torch.rand(1, 2, 6, 7, generator=gen(3), dtype=torch.float64)
    sigma, k = 0.9, 5
    g1 = torch.exp(-(torch.arange(k, dtype=torch.float64) - k // 2) ** 2 / (2 * sigma ** 2))
    k2 = torch.outer(g1, g1) / g1.sum() ** 2

    def refl(i, n):  # reflect without repeating the edge (…2 1 | 0 1 2 … n-1 | n-2 …)
        return -i if i < 0 else (2 * (n - 1) - i if i >= n else i)

    direct = torch.zeros_like(x)
    for c in range(2):
        for i in range(6):
            for j in range(7):
                direct[0, c, i, j] = sum(k2[a, b] * x[0, c, refl(i + a - 2, 6), refl(j + b - 2, 7)]
                                         for a in range(k) for b in range(k))
    assert torch.allclose(gaussian_blur(x, sigma, (k, k)), direct, atol=1e-12)
    assert [blur_kernel_size(n) for n in (512, 112, 224, 30)] == [51, 11, 23, 3]


def test_jitter_brightness_and_contrast_direct_formulas():
    x = torch.rand(3, 5, 6, generator=gen(4))
    assert torch.allclose(jitter_image(x, brightness=1.15), (x + 0.15).clamp(0, 1), atol=1e-6)
    assert torch.allclose(jitter_image(x, contrast=0.85), (x * 0.85).clamp(0, 1), atol=1e-6)
    assert torch.allclose(jitter_image(x), x, atol=1e-6)  # neutral factors incl. HSV round trip
    grey = torch.full((3, 2, 2), 0.4)
    assert torch.allclose(jitter_image(grey, saturation=1.2, hue=0.3), grey, atol=1e-6)
    red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    assert torch.allclose(jitter_image(red, hue=1 / 3), torch.tensor([0.0, 1.0, 0.0]).view(3, 1, 1), atol=1e-6)
    # through strong_augment with brightness only: each image shifts by one constant in [-0.2, 0.2]
    xb = torch.rand(5, 3, 8, 8, generator=gen(6)) * 0.5 + 0.25
    y = strong_augment(xb, gen(8), jitter_prob=1.0, jitter_strength=(0.2, 0, 0, 0), blur_prob=0.0)
    d = (y - xb).flatten(1)
    assert torch.allclose(d, d[:, :1].expand_as(d), atol=1e-5) and d.abs().max() <= 0.2 + 1e-6
    assert d[:, 0].unique().numel() == 5  # drawn per image


def test_block_mask_ratio_structure_and_shapes():
    m = block_mask((64, 32, 32), block_size=4, ratio=0.7, generator=gen(0))  # 64*64 = 4096 blocks
    assert m.shape == (64, 1, 32, 32) and set(m.unique().tolist()) <= {0.0, 1.0}
    cells = m[:, :, ::4, ::4]
    assert abs(cells.mean().item() - 0.3) < 0.03
    assert torch.equal(m, cells.repeat_interleave(4, 2).repeat_interleave(4, 3))  # constant blocks
    assert torch.equal(m, block_mask((64, 32, 32), 4, 0.7, generator=gen(0)))
    assert not torch.equal(m, block_mask((64, 32, 32), 4, 0.7, generator=gen(1)))
    mc = block_mask((3, 112, 224), 64, generator=gen(2))  # ceil grid 2×4, last row/col cropped
    assert mc.shape == (3, 1, 112, 224)
    assert torch.equal(mc, mc[:, :, ::64, ::64].repeat_interleave(64, 2).repeat_interleave(64, 3)[:, :, :112, :224])
    mr = block_mask((3, 112, 224), 64, generator=gen(2), grid="round")  # MIC: 2×4 grid of 56 px
    assert torch.equal(mr, mr[:, :, ::56, ::56].repeat_interleave(56, 2).repeat_interleave(56, 3))
    assert block_mask((2, 10, 10), 64, ratio=0.0, generator=gen()).eq(1).all()
    assert block_mask((2, 10, 10), 64, ratio=1.0, generator=gen()).eq(0).all()
    with pytest.raises(ValueError):
        block_mask((2, 10, 10), 0, generator=gen())


def test_apply_mask_zeroes_dropped_blocks_and_fill():
    x = torch.rand(2, 3, 16, 16, generator=gen(9)) + 0.1
    m = block_mask((2, 16, 16), 4, generator=gen(3))
    y = apply_mask(x, m)
    assert torch.equal(y, x * m)
    drop = m.expand_as(x) == 0
    assert (y[drop] == 0).all() and torch.equal(y[~drop], x[~drop])
    mean = (0.485, 0.456, 0.406)
    yf = apply_mask(x, m, fill=mean)
    assert torch.allclose(yf[:, 1][m[:, 0] == 0], torch.tensor(0.456))
    with pytest.raises(ValueError):
        apply_mask(x, m[:, :, :8])
