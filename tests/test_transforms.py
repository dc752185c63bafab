"""The Rein/mmseg training and test transforms on the sample dict."""
from __future__ import annotations

import torch

from dgsslib.data.transforms import (REIN_SCALES, Compose, PhotoMetricDistortion, RandomCrop,
                                     RandomFlip, RandomResizeShortEdge, Resize,
                                     build_test_transform, build_train_transform, keep_ratio_size)


def sample(h: int = 32, w: int = 48, seed: int = 0, label: torch.Tensor | None = None) -> dict:
    g = torch.Generator().manual_seed(seed)
    if label is None:
        label = torch.randint(0, 19, (h, w), generator=g)
        label[:4] = 255
    image = torch.randint(0, 256, (3, *label.shape), generator=g, dtype=torch.uint8)
    return {"image": image, "label": label, "meta": {"name": "x"}}


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def max_ratio(label: torch.Tensor, ignore: int = 255) -> tuple[float, int]:
    values, counts = torch.unique(label, return_counts=True)
    counts = counts[values != ignore]
    return counts.max().item() / counts.sum().item(), len(counts)


def test_rein_scales():
    assert REIN_SCALES == [int(512 * x * 0.1) for x in range(5, 21)]
    assert REIN_SCALES[0] == 256 and REIN_SCALES[-1] == 1024 and len(REIN_SCALES) == 16


def test_crop_respects_cat_max_ratio():
    # 8×40: columns 0..19 all class 0, columns 20..39 alternate classes 1/2 (plus an ignore
    # row that must not count). An 8×8 crop at x <= 14 has >= 75% class 0.
    label = torch.zeros(8, 40, dtype=torch.int64)
    label[:, 20::2], label[:, 21::2] = 1, 2
    label[0] = 255
    s = sample(label=label)
    with_check = [RandomCrop(8, cat_max_ratio=0.75)(s, gen(i))["label"] for i in range(30)]
    for lbl in with_check:
        ratio, n = max_ratio(lbl)
        assert lbl.shape == (8, 8) and n > 1 and ratio < 0.75
    without = [RandomCrop(8, cat_max_ratio=1.0)(s, gen(i))["label"] for i in range(30)]
    assert any(max_ratio(lbl)[0] >= 0.75 for lbl in without)  # the check made the difference


def test_crop_is_consistent_and_pads():
    s = sample(32, 48)
    s["image"][0] = s["label"].to(torch.uint8)  # channel 0 mirrors the label
    out = RandomCrop((16, 24))(s, gen(1))
    assert out["image"].shape == (3, 16, 24) and torch.equal(out["image"][0], out["label"].to(torch.uint8))
    small = RandomCrop(8, cat_max_ratio=0.75)(sample(4, 6), gen(0))
    assert small["image"].shape == (3, 8, 8) and small["label"].shape == (8, 8)
    assert (small["image"][:, 4:] == 0).all() and (small["image"][:, :, 6:] == 0).all()
    assert (small["label"][4:] == 255).all() and (small["label"][:, 6:] == 255).all()


def test_flip_flips_image_and_label_together():
    s = sample()
    s["image"][0] = s["label"].to(torch.uint8)
    out = RandomFlip(p=1.0)(s, gen(0))
    assert torch.equal(out["label"], s["label"].flip(-1)) and torch.equal(out["image"], s["image"].flip(-1))
    assert RandomFlip(p=0.0)(s, gen(0)) is s
    flips = 0
    for i in range(20):
        o = RandomFlip(0.5)(s, gen(i))
        assert torch.equal(o["image"][0], o["label"].to(torch.uint8))
        flips += not torch.equal(o["label"], s["label"])
    assert 0 < flips < 20


def test_resize_keeps_label_values():
    s = sample(30, 50)
    for scale in ((20, 10), (200, 100), (64, 33)):
        out = Resize(scale)(s)
        assert out["image"].dtype == torch.uint8 and out["label"].dtype == torch.int64
        assert out["label"].shape == out["image"].shape[1:]
        assert set(out["label"].unique().tolist()) <= set(s["label"].unique().tolist())
    assert Resize((20, 10))(s)["meta"]["ori_shape"] == (30, 50)


def test_keep_ratio_size():
    assert keep_ratio_size(1024, 2048, (1024, 512)) == (512, 1024)
    assert keep_ratio_size(1024, 2048, (2048, 1024)) == (1024, 2048)
    assert keep_ratio_size(1052, 1914, (1280, 720)) == (704, 1280)  # GTAV frame
    assert keep_ratio_size(1080, 1920, (960, 540)) == (540, 960)     # ACDC
    assert keep_ratio_size(100, 200, (50, 20)) == (20, 40)            # order-free (long, short)


def test_test_transform_keeps_full_res_label():
    s = sample(30, 60)
    out = build_test_transform((30, 15))(s)
    assert out["image"].shape == (3, 15, 30) and torch.equal(out["label"], s["label"])
    out = build_test_transform((30, 15), resize_label=True)(s)
    assert out["label"].shape == (15, 30)


def test_random_resize_short_edge():
    s = sample(10, 20)
    out = RandomResizeShortEdge([5, 15], max_size=100)(s, gen(0))
    assert min(out["image"].shape[1:]) in (5, 15)
    capped = RandomResizeShortEdge([20], max_size=30)(sample(10, 100), gen(0))
    assert capped["image"].shape[1:] == (3, 30)  # short 20 would make long 200 > 30


def test_photometric_distortion():
    s = sample()
    outs = [PhotoMetricDistortion()(s, gen(i)) for i in range(8)]
    for o in outs:
        assert o["image"].dtype == torch.uint8 and o["image"].shape == s["image"].shape
        assert torch.equal(o["label"], s["label"])
    assert any(not torch.equal(o["image"], s["image"]) for o in outs)
    grey = {**s, "image": torch.full((3, 4, 4), 100, dtype=torch.uint8)}
    hue_only = PhotoMetricDistortion(brightness_delta=0, contrast_range=(1, 1), saturation_range=(1, 1))
    assert torch.equal(hue_only(grey, gen(0))["image"], grey["image"])  # hue/sat leave grey grey


def test_seeded_reproducibility():
    s = sample(64, 96)
    t = build_train_transform(32)
    a, b, c = t(s, gen(7)), t(s, gen(7)), t(s, gen(8))
    assert a["image"].shape == (3, 32, 32) and a["label"].shape == (32, 32)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    assert not torch.equal(a["image"], c["image"])
    torch.manual_seed(3)
    d = t(s)
    torch.manual_seed(3)
    assert torch.equal(d["image"], t(s)["image"])  # global RNG path too
    assert isinstance(t, Compose) and len(t.transforms) == 4
    assert torch.equal(t(s, generator=gen(7))["image"], a["image"])  # keyword form
