"""BitFit, LoRA, VPT-deep and AdaptFormer (dgsslib.adapters): Rein++ Table III parameter counts
(meta device), equations, zero-init identity, and every VFM family at reduced depth."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from dgsslib.adapters import build_method
from dgsslib.backbones.vfm import load_vfm
from dgsslib.params import count_params

FAMILIES = [("dinov2_s", 2), ("dinov2_s_reg4", 2), ("eva02_l", 2), ("clip_l", 2), ("sam_h", 2), ("mae_h", 2)]
METHODS = ["bitfit", "lora", "vpt", "adaptformer"]
X = torch.rand(2, 3, 28, 56, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def backbones():
    cache = {}

    def get(name, depth):
        if name not in cache:
            torch.manual_seed(0)
            cache[name] = load_vfm(name, weights="none", depth=depth, img_size=64, verbose=False)
        return copy.deepcopy(cache[name])  # methods mutate the backbone: give each test its own copy

    return get


def M(n: int) -> float:
    return round(n / 1e6, 2)


# ------------------------------------------------------------------ Table III counts (meta)
@pytest.mark.parametrize("method,paper,exact", [
    ("bitfit", 0.27, 24 * (1024 + 3 * 1024 + 1024 + 1024 + 4096 + 1024) + 1024),  # + patch-embed bias
    ("lora", 0.79, 24 * 2 * (1024 * 8 + 8 * 1024)),
    ("adaptformer", 3.17, 24 * (1024 * 64 + 64 + 64 * 1024 + 1024)),
    ("vpt", 3.69, 24 * 150 * 1024),
])
def test_table_iii_counts(method, paper, exact):
    rec = count_params("dinov2_l", method)
    assert rec["trainable"] == exact
    assert M(rec["trainable"]) == paper


def test_count_options():
    assert count_params("dinov2_l", "lora", {"r": 4})["trainable"] == 24 * 2 * 2 * 1024 * 4
    qkvo = count_params("dinov2_l", "lora", {"targets": "q,k,v,proj"})["trainable"]
    assert qkvo == 24 * 4 * 2 * 1024 * 8
    # EVA02 SwiGLU: fc1 = fc1_g + fc1_x (1024 -> 2730 each)
    assert count_params("eva02_l", "lora", {"targets": "fc1"})["trainable"] == 24 * 2 * 8 * (1024 + 2730)
    assert count_params("dinov2_l", "adaptformer", {"learnable_scale": True})["trainable"] == 3_171_840 + 24
    assert count_params("dinov2_l", "vpt", {"num_tokens": 10})["trainable"] == 24 * 10 * 1024


# ------------------------------------------------------------------ every family
@pytest.mark.parametrize("name,depth", FAMILIES)
@pytest.mark.parametrize("method", METHODS)
def test_method_on_family(backbones, name, depth, method):
    vfm = backbones(name, depth)
    m = build_method(method)
    if method == "vpt" and name == "sam_h":
        with pytest.raises(NotImplementedError, match="spatial grid"):
            m.attach(vfm)
        return
    with torch.no_grad():
        base = vfm.forward_features(X)
    m.attach(vfm)
    m.train()
    assert not vfm.training
    params = m.trainable_parameters()
    assert params and m.num_trainable() == sum(p.numel() for p in {id(p): p for p in params.values()}.values())
    if method == "bitfit":
        assert all(n.startswith("backbone.") and n.endswith("bias") for n in params)
        assert m.num_trainable() == sum(p.numel() for n, p in vfm.model.named_parameters()
                                        if n.endswith("bias") and n.split(".")[0] not in ("norm", "fc_norm", "neck", "head"))
    else:
        assert all(n.startswith("method.") for n in params)
        assert not any(p.requires_grad for p in vfm.model.parameters())
    frozen_name, frozen = next((n, p) for n, p in vfm.model.named_parameters() if not p.requires_grad)
    frozen_before = frozen.detach().clone()
    taps = vfm.forward_features(X, m.hooks())
    if method in ("lora", "adaptformer"):  # zero-init: the backbone output is unchanged at init
        for a, b in zip(taps, base):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)  # grad-mode vs no_grad attention kernels
    sum(t.square().mean() for t in taps).backward()
    for n, p in params.items():
        assert p.grad is not None and torch.isfinite(p.grad).all(), n
    assert any(p.grad.abs().sum() > 0 for p in params.values())
    before = {n: p.detach().clone() for n, p in params.items()}
    torch.optim.AdamW(params.values(), lr=1e-2, weight_decay=0.05).step()
    assert torch.equal(frozen, frozen_before), f"frozen {frozen_name} changed"
    assert frozen.grad is None
    assert any(not torch.equal(before[n], p) for n, p in params.items())


# ------------------------------------------------------------------ LoRA equations
def _merged_copy(plain, lora):
    """``plain`` (a hook-free copy of the same backbone) with W += (alpha/r)·B A merged in."""
    with torch.no_grad():
        for key, ad in lora.adapters.items():
            i, rest = key.split("_", 2)[1:]
            blk = plain.model.blocks[int(i)]
            t = rest.rsplit("_", 1)[-1] if rest.startswith("attn_qkv") else None
            path = "attn.qkv" if t else rest.replace("attn_", "attn.").replace("mlp_", "mlp.")
            lin = blk.get_submodule(path)
            if t:
                d = lin.out_features // 3
                j = "qkv".index(t)
                lin.weight[j * d:(j + 1) * d] += ad.delta_weight()
            else:
                lin.weight += ad.delta_weight()
    return plain


@pytest.mark.parametrize("name,targets", [("dinov2_s", "q,v"), ("dinov2_s", "k,proj,fc1,fc2"),
                                          ("eva02_l", "q,v"), ("sam_h", "q,k,v")])
def test_lora_equals_merged_weights(backbones, name, targets):
    vfm = backbones(name, dict(FAMILIES)[name])
    lora = build_method("lora", r=4, alpha=8, targets=targets)
    lora.attach(vfm)
    with torch.no_grad():
        for ad in lora.adapters.values():
            ad.lora_B.normal_(0, 0.05)
        got = vfm.forward_features(X, lora.hooks())
        want = _merged_copy(backbones(name, dict(FAMILIES)[name]), lora).forward_features(X)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert lora.adapters[next(iter(lora.adapters))].scaling == 2.0


def test_lora_bad_target_and_deepcopy(backbones):
    with pytest.raises(ValueError, match="q,k,v,proj,fc1,fc2"):
        build_method("lora", targets="q,zz")
    vfm = backbones("dinov2_s", 2)
    lora = build_method("lora", r=2)
    lora.attach(vfm)
    pair = nn.ModuleDict({"vfm": vfm, "method": lora})  # as SegModel holds them (e.g. an EMA copy)
    twin = copy.deepcopy(pair)
    with torch.no_grad():
        for ad in twin["method"].adapters.values():
            ad.lora_B.normal_(0, 0.5)
        a = vfm.forward_features(X)
        b = twin["vfm"].forward_features(X)
    assert not torch.allclose(a[-1], b[-1])  # the copy's hooks use the copy's adapters


# ------------------------------------------------------------------ AdaptFormer equations
def test_adaptformer_mlp_placement(backbones):
    vfm = backbones("dinov2_s", 2)
    af = build_method("adaptformer", bottleneck=4, scale=0.1)
    af.attach(vfm)
    ad = af.adapters[1]
    with torch.no_grad():
        ad.up.weight.normal_()
        ad.up.bias.normal_()
        x = torch.randn(2, 5, vfm.embed_dim)
        blk = vfm.model.blocks[1]
        got = blk.mlp(x)
        plain = blk.mlp.fc2(blk.mlp.norm(blk.mlp.drop1(blk.mlp.act(blk.mlp.fc1(x)))))
        want = plain + 0.1 * (torch.relu(x @ ad.down.weight.t() + ad.down.bias) @ ad.up.weight.t() + ad.up.bias)
    torch.testing.assert_close(got, want)


def test_adaptformer_block_placement(backbones):
    vfm = backbones("dinov2_s", 2)
    af = build_method("adaptformer", bottleneck=4, placement="block", learnable_scale=True)
    af.attach(vfm)
    ad = af.adapters[0]
    assert isinstance(ad.scale, nn.Parameter)
    with torch.no_grad():
        ad.up.weight.normal_()
        blk = vfm.model.blocks[0]
        x = torch.randn(2, 5, vfm.embed_dim)
        x_mid = x + blk.ls1(blk.attn(blk.norm1(x)))
        want = x_mid + blk.ls2(blk.mlp(blk.norm2(x_mid))) + ad.scale * ad.up(torch.relu(ad.down(x_mid)))
        got = blk(x)
    torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="placement"):
        build_method("adaptformer", placement="inside")


# ------------------------------------------------------------------ VPT
def test_vpt_init_and_prompts(backbones):
    vfm = backbones("eva02_l", 2)  # RoPE: prompts get identity rotations in VFM.forward_features
    vpt = build_method("vpt", num_tokens=7)
    vpt.attach(vfm)
    assert vpt.prompts.shape == (2, 7, 1024)
    v = math.sqrt(6 / (3 * vfm.patch_size ** 2 + 1024))
    assert vpt.prompts.abs().max() <= v and vpt.prompts.abs().max() > 0.9 * v
    assert vpt.prompt_tokens(1, 3).shape == (3, 7, 1024)
    with torch.no_grad():
        base = vfm.forward_features(X)
        out = vfm.forward_features(X, vpt.hooks())
    assert out[-1].shape == base[-1].shape and not torch.allclose(out[-1], base[-1])
