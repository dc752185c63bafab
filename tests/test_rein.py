"""Rein-G (dgsslib.adapters.rein): equations against direct computations, init, parameter
counts (meta device, Rein++ Tables III/V/VI/VIII) and every VFM family at reduced depth."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dgsslib.adapters import build_method
from dgsslib.adapters.rein import Rein
from dgsslib.backbones.vfm import load_vfm
from dgsslib.params import count_params


def stub_vfm(c: int, hook_layers=(0, 1, 2), name="stub"):
    """The facts Rein.attach reads, without a ViT."""
    return SimpleNamespace(embed_dim=c, hook_layers=tuple(hook_layers), model=nn.Linear(2, 2), name=name)


def attached(c=16, layers=(0, 1, 2), seed=0, **opts) -> Rein:
    torch.manual_seed(seed)
    r = Rein(**opts)
    r.attach(stub_vfm(c, layers))
    with torch.no_grad():
        r.scale.fill_(0.7)  # make s·Δf visible
    return r


def M(n: int) -> float:
    return round(n / 1e6, 2)


# ------------------------------------------------------------------ parameter counts (meta)
def rein_formula(L, c, m=100, r=16, q=256, lora=True, link=True, shared=True):
    tokens = L * m * r + L * r * c if lora else L * m * c
    mlps = (1 if shared else L) * 2 * (c * c + c)
    links = ((1 if shared else L) * (c * q + q) + 3 * q * q + q) if link else 0
    return tokens + mlps + links + 1  # + the learnable scale


@pytest.mark.parametrize("variant,paper,exact", [
    ("core", 52.84, rein_formula(24, 1024, lora=False, link=False, shared=False)),
    ("link", 5.02, rein_formula(24, 1024, lora=False)),
    ("lora", 2.99, rein_formula(24, 1024)),
    ("multihead", 2.99, rein_formula(24, 1024)),
    ("gelu", 2.99, rein_formula(24, 1024) + 512),
])
def test_table_v_chain(variant, paper, exact):
    n = count_params("dinov2_l", "rein", {"variant": variant})["trainable"]
    assert n == exact
    assert M(n) == paper


def test_default_is_rein_g_and_other_backbones():
    assert count_params("dinov2_l", "rein")["trainable"] == 2_990_081
    assert M(count_params("dinov2_g", "rein")["trainable"]) == 6.36
    assert count_params("dinov2_g", "rein")["trainable"] == rein_formula(40, 1536)
    for bb in ("eva02_l", "clip_l"):
        assert M(count_params(bb, "rein")["trainable"]) == 2.99
    # SAM-H: 4 global-attention blocks, c = 1280
    assert count_params("sam_h", "rein")["trainable"] == rein_formula(4, 1280)
    # Fig. 6 / CVPR version: link layers counted in the head -> 2.53M
    assert M(count_params("dinov2_l", "rein", {"link": False})["trainable"]) == 2.53


@pytest.mark.parametrize("r,paper", [(4, 2.67), (8, 2.77), (16, 2.99), (32, 3.42), (64, 4.28)])
def test_table_vi_rank(r, paper):
    assert M(count_params("dinov2_l", "rein", {"r": r})["trainable"]) == paper


@pytest.mark.parametrize("m,paper", [(25, 2.96), (50, 2.97), (100, 2.99), (150, 3.01), (200, 3.03)])
def test_table_viii_length(m, paper):
    assert M(count_params("dinov2_l", "rein", {"m": m})["trainable"]) == paper


# ------------------------------------------------------------------ init and options
def test_init_ranges_scale_and_names():
    c, r, p = 1024, 16, 16
    rein = Rein()
    rein.attach(stub_vfm(c, range(24)))
    v = math.sqrt(6 / (3 * p * p + math.sqrt(c * r)))
    for t in (rein.learnable_tokens_a, rein.learnable_tokens_b):
        assert t.abs().max() <= v and t.abs().max() > 0.95 * v  # U(-v, v), B not zero
        assert abs(t.mean().item()) < 0.1 * v
    assert rein.learnable_tokens_a.shape == (24, 100, 16) and rein.learnable_tokens_b.shape == (24, 16, 1024)
    assert rein.scale.shape == () and rein.scale.item() == pytest.approx(1e-3) and rein.scale.requires_grad
    # the official parameter names (LoRAReins), so official checkpoints map 1:1
    assert set(rein.state_dict()) == {
        "learnable_tokens_a", "learnable_tokens_b", "scale", "mlp_token2feat.weight", "mlp_token2feat.bias",
        "mlp_delta_f.weight", "mlp_delta_f.bias", "transform.weight", "transform.bias", "merge.weight", "merge.bias"}
    plain = Rein(variant="link")
    plain.attach(stub_vfm(c, range(2)))
    v = math.sqrt(6 / (3 * p * p + c))
    assert plain.learnable_tokens.abs().max() <= v and plain.learnable_tokens.abs().max() > 0.95 * v
    # no weight decay: tokens and scale, not the Linear layers
    nd = [n for n in rein.trainable_parameters() if any(k in n for k in rein.no_decay_keys)]
    assert sorted(nd) == ["method.learnable_tokens_a", "method.learnable_tokens_b", "method.scale"]


def test_variant_presets_and_overrides():
    assert Rein().options["lora"] and Rein().options["link"] and not Rein().options["multi_head"]
    core = Rein(variant="core")
    assert (core.lora, core.shared_mlp, core.link) == (False, False, False)
    g = Rein(variant="gelu")
    assert g.multi_head and g.gelu and g.heads == 8
    assert not Rein(variant="gelu", multi_head=False).multi_head
    with pytest.raises(ValueError, match="core, link, lora, multihead, gelu"):
        Rein(variant="nope")
    with pytest.raises(ValueError, match="link_pool"):
        Rein(link_pool="max,median")
    with pytest.raises(ValueError, match="accepted"):
        build_method("rein", token_len=3)
    with pytest.raises(ValueError, match="divide"):
        Rein(multi_head=True, heads=3).attach(stub_vfm(16))


# ------------------------------------------------------------------ equations
def direct_refine(f, T, W_T, b_T, W_f, b_f, s):
    """Eq. 5-7 + scale, written out: softmax over all m, then drop token 0."""
    c = f.shape[-1]
    S = torch.softmax(f @ T.t() / math.sqrt(c), dim=-1)  # [B, N, m]
    dbar = S[..., 1:] @ (T[1:] @ W_T.t() + b_T)
    df = (dbar + f) @ W_f.t() + b_f
    return f + s * df, S


def test_single_head_equations_shared_mlps():
    rein = attached(c=16, m=6, r=3)
    f = torch.randn(2, 5, 16)
    for k in range(3):
        T = rein.learnable_tokens_a[k] @ rein.learnable_tokens_b[k]
        want, S = direct_refine(f, T, rein.mlp_token2feat.weight, rein.mlp_token2feat.bias,
                                rein.mlp_delta_f.weight, rein.mlp_delta_f.bias, rein.scale)
        torch.testing.assert_close(rein.refine(f, k), want)
        torch.testing.assert_close(rein.after_block(k, f, (1, 5)), want)
        rows = S[..., 1:].sum(-1)
        assert (rows < 1).all() and (rows > 0).all()  # "no change" is reachable
    assert isinstance(rein.mlp_token2feat, nn.Linear)  # one shared Linear for all layers


def test_core_equations_per_layer_mlps():
    rein = attached(c=16, m=6, variant="core")
    assert isinstance(rein.mlp_token2feat, nn.ModuleList) and len(rein.mlp_delta_f) == 3
    assert rein.queries() is None and not hasattr(rein, "merge")
    f = torch.randn(2, 5, 16)
    for k in range(3):
        want, _ = direct_refine(f, rein.learnable_tokens[k], rein.mlp_token2feat[k].weight,
                                rein.mlp_token2feat[k].bias, rein.mlp_delta_f[k].weight,
                                rein.mlp_delta_f[k].bias, rein.scale)
        torch.testing.assert_close(rein.refine(f, k), want)


def test_multi_head_one_head_is_single_head_and_h4_direct():
    single = attached(c=16, m=6, r=3)
    one = attached(c=16, m=6, r=3, multi_head=True, heads=1)
    one.load_state_dict(single.state_dict())
    f = torch.randn(2, 5, 16)
    torch.testing.assert_close(one.refine(f, 1), single.refine(f, 1))
    four = attached(c=16, m=6, r=3, multi_head=True, heads=4)
    four.load_state_dict(single.state_dict())  # no new parameters
    T = four.tokens(1)
    V = four.mlp_token2feat(T[1:])
    parts = []
    for h in range(4):
        sl = slice(4 * h, 4 * h + 4)
        S = torch.softmax(f[..., sl] @ T[:, sl].t() / math.sqrt(4), dim=-1)  # per head, over all m
        parts.append(S[..., 1:] @ V[:, sl])  # drop token 0 per head
    dbar = torch.cat(parts, -1)
    want = f + four.scale * four.mlp_delta_f(dbar + f)
    torch.testing.assert_close(four.refine(f, 1), want)
    assert not torch.allclose(want, single.refine(f, 1))


def test_gelu_variant_shapes_and_equation():
    rein = attached(c=16, m=6, r=3, variant="gelu", heads=2)
    assert rein.mlp_delta_f.weight.shape == (8, 16) and rein.mlp_delta_g.weight.shape == (16, 8)
    x = torch.randn(2, 5, 16)
    want = F.gelu(x @ rein.mlp_delta_f.weight.t() + rein.mlp_delta_f.bias) @ rein.mlp_delta_g.weight.t() \
        + rein.mlp_delta_g.bias
    torch.testing.assert_close(rein.delta(x, 0), want)
    assert rein.refine(x, 2).shape == x.shape


def test_link_queries_interleave():
    q = 4
    rein = attached(c=16, m=6, r=3, query_dim=q)
    Tall = torch.stack([rein.learnable_tokens_a[k] @ rein.learnable_tokens_b[k] for k in range(3)])
    t = Tall @ rein.transform.weight.t() + rein.transform.bias  # [L, m, q]; token 0 kept
    mx, av, last = t.max(0).values, t.mean(0), t[-1]
    inter = torch.empty(6, 3 * q)
    for j in range(q):  # (max_0, avg_0, last_0, max_1, ...)
        inter[:, 3 * j], inter[:, 3 * j + 1], inter[:, 3 * j + 2] = mx[:, j], av[:, j], last[:, j]
    want = inter @ rein.merge.weight.t() + rein.merge.bias
    got = rein.queries()
    assert got.shape == (6, q)
    torch.testing.assert_close(got, want)
    sub = attached(c=16, m=6, r=3, query_dim=q, link_pool="max,last")
    assert sub.merge.in_features == 2 * q
    t = sub.tokens() @ sub.transform.weight.t() + sub.transform.bias
    inter = torch.stack([t.max(0).values, t[-1]], -1).reshape(6, 2 * q)
    torch.testing.assert_close(sub.queries(), inter @ sub.merge.weight.t() + sub.merge.bias)


def test_sam_style_slot_mapping():
    rein = attached(c=16, m=6, r=3, layers=(7, 15, 23, 31))
    assert rein.num_layers == 4 and rein.learnable_tokens_a.shape[0] == 4
    f = torch.randn(1, 5, 16)
    torch.testing.assert_close(rein.after_block(15, f, (1, 5)), rein.refine(f, 1))
    assert rein.after_block(3, f, (1, 5)) is f  # not a hooked block: untouched


class PrefixSpy:
    """A whole-sequence hook that records what comes out of Rein's hook."""

    wants_prefix = True

    def __init__(self):
        self.seen = {}

    def after_block(self, i, tokens, grid):
        self.seen[i] = tokens.detach().clone()
        return tokens


def test_prefix_tokens_untouched_on_reg4():
    torch.manual_seed(0)
    vfm = load_vfm("dinov2_s_reg4", weights="none", depth=2, img_size=56, verbose=False)
    rein = Rein(m=8, r=4)
    rein.attach(vfm)
    with torch.no_grad():
        rein.scale.fill_(5.0)
    x = torch.rand(2, 3, 28, 56)
    spy_on, spy_off = PrefixSpy(), PrefixSpy()
    with torch.no_grad():
        vfm.forward_features(x, rein.hooks() + [spy_on])
        vfm.forward_features(x, [spy_off])
    npt = vfm.num_prefix_tokens
    assert npt == 5
    torch.testing.assert_close(spy_on.seen[0][:, :npt], spy_off.seen[0][:, :npt], rtol=0, atol=0)  # cls + regs
    assert not torch.allclose(spy_on.seen[0][:, npt:], spy_off.seen[0][:, npt:])  # patches refined


# ------------------------------------------------------------------ every family, reduced depth
FAMILIES = [("dinov2_s", 2), ("dinov2_s_reg4", 2), ("eva02_l", 2), ("clip_l", 2), ("sam_h", 8), ("mae_h", 2)]


@pytest.mark.parametrize("name,depth", FAMILIES)
def test_rein_every_family(name, depth):
    torch.manual_seed(0)
    vfm = load_vfm(name, weights="none", depth=depth, img_size=64, verbose=False)
    rein = build_method("rein", m=8, r=4)
    rein.attach(vfm)
    L = len(vfm.hook_layers)
    assert rein.learnable_tokens_a.shape == (L, 8, 4) and rein.learnable_tokens_b.shape[-1] == vfm.embed_dim
    if name == "sam_h":
        assert vfm.hook_layers == (1, 3, 5, 7)  # global-attention blocks only
    rein.train()
    assert not vfm.training  # the frozen VFM stays in eval mode
    frozen = {n: p.detach().clone() for n, p in list(vfm.model.named_parameters())[:3]}
    assert not any(p.requires_grad for p in vfm.model.parameters())
    x = torch.rand(2, 3, 28, 56)
    taps = vfm.forward_features(x, rein.hooks())
    q = rein.queries()
    assert q.shape == (8, 256)
    loss = sum(t.square().mean() for t in taps) + q.square().mean()
    loss.backward()
    params = rein.trainable_parameters()
    assert all(n.startswith("method.") for n in params)
    assert rein.num_trainable() == sum(p.numel() for p in rein.parameters())
    for n, p in params.items():
        assert p.grad is not None and torch.isfinite(p.grad).all(), n
    assert rein.learnable_tokens_a.grad.abs().sum() > 0 and rein.scale.grad.abs() > 0
    before = {n: p.detach().clone() for n, p in params.items()}
    torch.optim.AdamW(params.values(), lr=1e-2, weight_decay=0.05).step()
    for n, p in vfm.model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), f"frozen {n} changed"
        assert p.grad is None
    assert not torch.equal(before["method.scale"], rein.scale)
