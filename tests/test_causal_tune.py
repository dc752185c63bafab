"""Causal-Tune (dgsslib.adapters.causal_tune): both modes against direct (numpy) computations, each
documented official-code quirk pinned, gradients, state and parameter counts."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from dgsslib.adapters import build_method
from dgsslib.adapters.causal_tune import CausalTune
from dgsslib.backbones.vfm import load_vfm
from dgsslib.params import count_params


def stub_vfm(c: int, hook_layers=(0, 1)):
    return SimpleNamespace(embed_dim=c, hook_layers=tuple(hook_layers), model=nn.Linear(2, 2), name="stub")


def attached(c=16, seed=0, **opts) -> CausalTune:
    torch.manual_seed(seed)
    ct = CausalTune(m=6, r=4, **opts)
    ct.attach(stub_vfm(c))
    with torch.no_grad():
        ct.scale.fill_(0.7)  # make s·ΔF visible
    return ct


def np_dct_matrix(n: int) -> np.ndarray:
    k, i = np.arange(n)[:, None], np.arange(n)[None, :]
    d = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    d[0] /= np.sqrt(2.0)
    return d


def np_token_update(rows: np.ndarray, ct: CausalTune, k: int) -> np.ndarray:
    """Eq. 7-9 in numpy for rows [..., c]."""
    T = ct.tokens(k).detach().double().numpy()
    c = T.shape[1]
    W1, b1 = (t.detach().double().numpy() for t in (ct.mlp_token2feat.weight, ct.mlp_token2feat.bias))
    W2, b2 = (t.detach().double().numpy() for t in (ct.mlp_delta_f.weight, ct.mlp_delta_f.bias))
    a = rows @ T.T / math.sqrt(c)
    S = np.exp(a - a.max(-1, keepdims=True))
    S /= S.sum(-1, keepdims=True)
    dbar = S[..., 1:] @ (T[1:] @ W1.T + b1)
    return (dbar + rows) @ W2.T + b2


def np_paper(f: np.ndarray, ct: CausalTune, k: int, h: int, w: int) -> np.ndarray:
    """Spatial DCT per channel, Gaussian band-pass (0.2/0.7), tokens, true iDCT, f + s·ΔF."""
    B, N, c = f.shape
    Dh, Dw = np_dct_matrix(h), np_dct_matrix(w)
    x = f.transpose(0, 2, 1).reshape(B, c, h, w)
    nu, nv = np.arange(h)[:, None] / h, np.arange(w)[None, :] / w
    rho2 = (nu ** 2 + nv ** 2) / 2
    H = (1 - np.exp(-rho2 / (2 * 0.2 ** 2))) * np.exp(-rho2 / (2 * 0.7 ** 2))
    Fc = (Dh @ x @ Dw.T) * H
    dF = np_token_update(Fc.reshape(B, c, N).transpose(0, 2, 1), ct, k)  # [B, N, c]
    dx = Dh.T @ dF.transpose(0, 2, 1).reshape(B, c, h, w) @ Dw
    return f + ct.scale.item() * dx.reshape(B, c, N).transpose(0, 2, 1)


def np_official(f: np.ndarray, ct: CausalTune, k: int) -> np.ndarray:
    """The released code's steps, literally: permute to (N,B,C), reshape to (B,C,h,w) WITHOUT a
    permute, 2-D DCT of every grid, MAD mask (0.1/0.7), reshape to (N,B,C), tokens, reshape back,
    real(ifft2(ortho)).clip(0, 255), reshape to (N,B,C), feats + s·Δ."""
    B, N, C = f.shape
    h = w = int(np.sqrt(N))
    feats = f.transpose(1, 0, 2)  # (N, B, C)
    grids = feats.reshape(B, C, h, w)
    D = np_dct_matrix(h)
    dct = D @ grids @ D.T
    mm = np.maximum(np.arange(h)[:, None], np.arange(w)[None, :])
    v1, v2, v3 = int(h * 0.1), int(h * 0.7), h
    M = np.full((h, w), 0.5)
    M[mm <= v3] = ((mm - v2) / (v3 - v2) * 0.3)[mm <= v3]
    M[mm <= v2] = 0.01
    M[mm <= v1] = (1 - mm / (v1 + 1e-10) * 0.95)[mm <= v1]
    cal = (dct * (1 - M)).reshape(N, B, C)
    delta = np_token_update(cal, ct, k)
    delta = np.fft.ifft2(delta.reshape(B, C, h, w), norm="ortho").real.clip(0, 255).reshape(N, B, C)
    return (feats + ct.scale.item() * delta).transpose(1, 0, 2)


# ------------------------------------------------------------------ equations
@pytest.mark.parametrize("hw", [(4, 4), (3, 5)])
def test_paper_mode_matches_direct_computation(hw):
    ct = attached(c=16, mode="paper").double()
    h, w = hw
    f = torch.randn(2, h * w, 16, dtype=torch.float64)
    out = ct.after_block(1, f, hw)
    np.testing.assert_allclose(out.detach().numpy(), np_paper(f.numpy(), ct, 1, h, w), atol=1e-6)


@pytest.mark.parametrize("c,hw", [(16, (4, 4)), (24, (4, 4)), (16, (10, 10))])
def test_official_mode_matches_the_released_computation(c, hw):
    """N = C (one token per grid), N < C and N > C (grids straddle tokens and batch items)."""
    ct = attached(c=c, mode="official")
    with torch.no_grad():  # large token MLP outputs so the clamp at 0 and the scale both matter
        ct.mlp_delta_f.weight.mul_(50)
    f = torch.randn(2, hw[0] * hw[1], c) * 3
    out = ct.after_block(0, f, hw)
    ref = np_official(f.double().numpy(), ct, 0)
    np.testing.assert_allclose(out.detach().numpy(), ref, atol=2e-4)


def test_official_fold_is_the_reshape_without_permute():
    """N = C = 16, B = 2: grid (b', c') holds the channel vector of token n, batch b with n·B + b = b'·C + c'."""
    ct = attached(c=16, mode="official")
    f = torch.randn(2, 16, 16)
    g = ct.to_grids(f, 4, 4)
    for bp in range(2):
        for cp in range(16):
            n, b = divmod(bp * 16 + cp, 2)
            torch.testing.assert_close(g[bp, cp].flatten(), f[b, n])
    torch.testing.assert_close(ct.from_grids(g), f)
    # the paper layout is the per-channel token map instead
    sp = attached(c=16, mode="paper")
    torch.testing.assert_close(sp.to_grids(f, 4, 4)[1, 3].flatten(), f[1, :, 3])


def test_official_delta_is_non_negative_and_clamped():
    ct = attached(c=16, mode="official")
    with torch.no_grad():
        ct.mlp_delta_f.weight.mul_(20)
    f = torch.randn(3, 16, 16)
    delta = (ct.after_block(0, f, (4, 4)) - f) / ct.scale.item()
    assert delta.min() >= -1e-5 and (delta.abs() < 1e-7).float().mean() > 0.1  # clamp at 0 hit often
    assert delta.max() <= 255 + 1e-3


def test_official_no_gradient_reaches_the_dct_input():
    ct = attached(c=16, mode="official")
    f = torch.randn(2, 16, 16, requires_grad=True)
    g = torch.randn(2, 16, 16)
    (ct.after_block(0, f, (4, 4)) * g).sum().backward()
    torch.testing.assert_close(f.grad, g, rtol=0, atol=0)  # only the identity residual path
    assert ct.learnable_tokens_a.grad.abs().sum() > 0 and ct.scale.grad.abs() > 0


def test_paper_mode_gradient_flows_through_the_transform():
    ct = attached(c=16, mode="paper")
    f = torch.randn(2, 12, 16, requires_grad=True)
    g = torch.randn(2, 12, 16)
    (ct.after_block(0, f, (3, 4)) * g).sum().backward()
    assert (f.grad - g).abs().max() > 1e-4
    for p in (ct.learnable_tokens_a, ct.learnable_tokens_b, ct.mlp_token2feat.weight, ct.mlp_delta_f.weight, ct.scale):
        assert p.grad is not None and p.grad.abs().sum() > 0


@pytest.mark.parametrize("transform", ["dct", "fft", "hwt"])
def test_no_filter_zero_tokens_path_is_an_identity_map(transform):
    """With filter=none, residual=filtered and s=0, the output is T⁻¹(T(f)) = f for every transform;
    with s>0 and a zero token MLP + identity delta MLP, ΔF = T⁻¹(T(f)) = f, so out = f + s·f."""
    ct = attached(c=8, mode="paper", transform=transform, filter="none", residual="filtered")
    f = torch.randn(2, 15, 8)
    with torch.no_grad():
        ct.scale.zero_()
    torch.testing.assert_close(ct.after_block(0, f, (3, 5)), f, atol=1e-5, rtol=0)
    with torch.no_grad():
        ct.scale.fill_(0.5)
        ct.mlp_token2feat.weight.zero_()
        ct.mlp_token2feat.bias.zero_()
        ct.mlp_delta_f.weight.copy_(torch.eye(8))
        ct.mlp_delta_f.bias.zero_()
    torch.testing.assert_close(ct.after_block(0, f, (3, 5)), 1.5 * f, atol=1e-5, rtol=0)


def test_filter_changes_the_output_and_residual_option():
    f = torch.randn(2, 16, 16)
    outs = {flt: attached(c=16, filter=flt).after_block(0, f, (4, 4)) for flt in ("none", "lf", "hf", "bandpass", "mad")}
    keys = list(outs)
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            assert not torch.allclose(outs[keys[i]], outs[keys[j]])
    ct = attached(c=16, residual="filtered")
    with torch.no_grad():
        ct.scale.zero_()
    # DC removed by the band-pass: every channel's token map has zero mean
    assert ct.after_block(0, f, (4, 4)).mean(dim=1).abs().max() < 1e-5


# ------------------------------------------------------------------ state, options, counts
def test_state_dict_has_no_basis_and_unused_params_get_no_grad():
    ct = attached(c=16)
    keys = set(ct.state_dict())
    ct.after_block(0, torch.randn(1, 16, 16), (4, 4))
    assert set(ct.state_dict()) == keys and not list(ct.buffers())
    off = attached(c=16, mode="official", official_unused=True)
    extra = set(off.state_dict()) - keys
    assert extra == {"learnable_tokens2", "mlp_token2feat2.weight", "mlp_token2feat2.bias",
                     "mlp_delta_f2.weight", "mlp_delta_f2.bias"}
    off.after_block(0, torch.randn(1, 16, 16), (4, 4)).sum().backward()
    assert off.learnable_tokens2.grad is None and off.mlp_delta_f2.weight.grad is None


def test_parameter_counts_dinov2_l():
    L, c, m, r, q = 24, 1024, 100, 16, 256
    rein_g = L * m * r + L * r * c + 2 * (c * c + c) + (c * q + q) + (3 * q * q + q) + 1
    assert count_params("dinov2_l", "causal_tune")["trainable"] == rein_g == count_params("dinov2_l", "rein")["trainable"]
    official = count_params("dinov2_l", "causal_tune", {"mode": "official", "official_unused": True})["trainable"]
    assert official == rein_g + L * m * c + 2 * (c * c + c)


def test_modes_options_and_errors():
    p = build_method("causal_tune")
    assert (p.layout, p.kind, p.filter, p.detach, p.inverse, p.low, p.high) == ("spatial", "dct", "bandpass", False, "exact", 0.2, 0.7)
    o = build_method("causal_tune", mode="official")
    assert (o.layout, o.kind, o.filter, o.detach, o.inverse, o.low, o.high) == ("flat", "dct", "mad", True, "official", 0.1, 0.7)
    assert build_method("causal_tune", mode="official", transform="fft").kind == "fft"
    for bad, msg in [(dict(mode="code"), "unknown Causal-Tune mode"), (dict(filter="gauss"), "unknown filter"),
                     (dict(transform="dwt"), "unknown transform"), (dict(low=0.8), "0 < low < high"),
                     (dict(mode="official", residual="filtered"), "inverse=exact"), (dict(layout="grid"), "layout")]:
        with pytest.raises(ValueError, match=msg):
            build_method("causal_tune", **bad)
    ct = attached(c=16)
    with pytest.raises(ValueError, match="does not match"):
        ct.after_block(0, torch.randn(1, 16, 16), (3, 4))


class PrefixSpy:
    wants_prefix = True  # sees cls + registers too

    def __init__(self):
        self.seen = {}

    def after_block(self, i, tokens, grid_hw):
        self.seen[i] = tokens.detach().clone()
        return tokens


@pytest.mark.parametrize("mode", ["paper", "official"])
def test_on_a_vfm_prefix_untouched_and_trains(mode):
    torch.manual_seed(0)
    vfm = load_vfm("dinov2_s_reg4", weights="none", depth=2, img_size=56, verbose=False)
    ct = build_method("causal_tune", mode=mode, m=8, r=4).attach(vfm)
    with torch.no_grad():
        ct.scale.fill_(5.0)
    x = torch.rand(2, 3, 28, 56)  # a 2x4 grid (non-square: the official fold uses the true grid)
    on, off = PrefixSpy(), PrefixSpy()
    out = vfm.forward_features(x, ct.hooks() + [on])
    with torch.no_grad():
        vfm.forward_features(x, [off])
    npt = vfm.num_prefix_tokens
    torch.testing.assert_close(on.seen[0][:, :npt], off.seen[0][:, :npt], rtol=0, atol=0)  # cls + registers
    assert not torch.allclose(on.seen[0][:, npt:], off.seen[0][:, npt:])  # patches refined
    sum(o.sum() for o in out).backward()
    assert ct.learnable_tokens_b.grad.abs().sum() > 0 and ct.queries().shape == (8, 256)


def test_transcribed_paper_tables_are_consistent():
    from dgsslib.papers.causal_tune import CT_TABLE_1, CT_TABLE_2, CT_TABLE_3

    rows = [r["citys2acdc"] for r in CT_TABLE_1 + CT_TABLE_2 + CT_TABLE_3 if r["citys2acdc"]["Night"] is not None]
    bad = [r for r in rows if abs(np.mean([r[k] for k in ("Night", "Snow", "Fog", "Rain")]) - r["Avg."]) > 0.051]
    assert [r["Avg."] for r in bad] == [46.9, 70.4]  # Itenorm, Table 3 "HF" (documented in CT_INCONSISTENCIES)
    t1 = {r["method"]: r for r in CT_TABLE_1}
    ours, rein = t1["Causal-Tune"], t1["Rein"]
    assert ours["citys2acdc"] == CT_TABLE_2[-1]["citys2acdc"] == CT_TABLE_3[-1]["citys2acdc"]
    assert CT_TABLE_3[0]["citys2acdc"] == rein["citys2acdc"]  # the "no filter" row is the Rein baseline
    # the paper's "Comparison with Baseline (Rein)" row
    gains = [ours[g][k] - rein[g][k] for g in ("citys2acdc", "citys", "gtav") for k in ours[g]]
    np.testing.assert_allclose(gains, [0.3, 4.8, 1.8, 2.7, 2.4, 2.74, 2.02, -0.18, 1.40, 2.11], atol=1e-6)


def test_fidelity_official_fold_folds_perfect_square_token_counts_and_fails_otherwise():
    """#21 item 9: the official code folds N tokens into √N×√N (16×64 -> 32×32); 24×40 raises."""
    torch.manual_seed(1)
    f = torch.randn(2, 16 * 64, 16)
    folded = attached(mode="official", official_fold=True)
    direct = attached(mode="official")  # the official folding = our code on the 32×32 grid, by hand
    true_grid = attached(mode="official")
    with torch.no_grad():
        a = folded.refine(f, 0, (16, 64))
        b = direct.refine(f, 0, (32, 32))
        c = true_grid.refine(f, 0, (16, 64))
    assert torch.equal(a, b) and not torch.allclose(a, c)
    with pytest.raises(ValueError, match="not a perfect square"):
        folded.refine(torch.randn(1, 24 * 40, 16), 0, (24, 40))


def test_fidelity_official_mode_records_the_radius_it_uses():
    """#21 item 10: MAD ignores ``radius``; the options record says what is used."""
    assert attached(mode="official").options["radius"] == "chebyshev"
    assert attached(mode="paper").options["radius"] == "euclid"
