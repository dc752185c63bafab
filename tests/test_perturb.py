"""DSU feature perturbation (dgsslib.selection.perturb): eq. 6 against an explicit-loop computation, the new
token statistics, identity cases, gradients, the hook's switches and an end-to-end tiny-VFM run."""
from __future__ import annotations

import math

import pytest
import torch

from dgsslib.backbones.vfm import load_vfm
from dgsslib.selection.perturb import DSU, domain_weight, dsu, token_statistics


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def direct_dsu(x: torch.Tensor, factor: float, eps: float, seed: int) -> torch.Tensor:
    """Eq. 6 with explicit loops and hand-written (unbiased) variances, float64."""
    B, N, C = x.shape
    g = gen(seed)
    e_mu = torch.randn(B, C, generator=g).double() * factor  # the documented draw order
    e_sig = torch.randn(B, C, generator=g).double() * factor
    xd = x.double()
    mu = [[sum(xd[b, n, c].item() for n in range(N)) / N for c in range(C)] for b in range(B)]
    sig = [[math.sqrt(sum((xd[b, n, c].item() - mu[b][c]) ** 2 for n in range(N)) / (N - 1) + eps)
            for c in range(C)] for b in range(B)]

    def batch_unc(s, c):
        if B == 1:
            return math.sqrt(eps)
        m = sum(s[b][c] for b in range(B)) / B
        return math.sqrt(sum((s[b][c] - m) ** 2 for b in range(B)) / (B - 1) + eps)

    out = torch.empty(B, N, C, dtype=torch.float64)
    for b in range(B):
        for c in range(C):
            beta = mu[b][c] + e_mu[b, c].item() * batch_unc(mu, c)
            gamma = sig[b][c] + e_sig[b, c].item() * batch_unc(sig, c)
            for n in range(N):
                out[b, n, c] = gamma * (xd[b, n, c].item() - mu[b][c]) / sig[b][c] + beta
    return out


@pytest.mark.parametrize("B", [1, 3])
def test_dsu_matches_direct_loops(B):
    x = torch.randn(B, 5, 4, dtype=torch.float64) * 2 + 1
    got = dsu(x, factor=0.7, eps=1e-6, generator=gen(3))
    torch.testing.assert_close(got, direct_dsu(x, 0.7, 1e-6, 3), rtol=1e-10, atol=1e-10)
    assert torch.isfinite(got).all()
    if B == 1:  # Σ = sqrt(eps): almost no perturbation
        torch.testing.assert_close(got, x, rtol=0, atol=1e-2)


def test_token_statistics_unbiased():
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    mu, sigma = token_statistics(x, eps=1e-6)
    assert mu.shape == sigma.shape == (2, 1, 3)
    d = x - x.sum(1, keepdim=True) / 6
    torch.testing.assert_close(sigma, ((d * d).sum(1, keepdim=True) / 5 + 1e-6).sqrt())


def test_output_statistics_are_the_new_ones():
    x = torch.randn(4, 16, 8, dtype=torch.float64)
    hook = DSU(p=1.0, factor=1.5)
    hook.generator = gen(1)
    with hook.perturbing():
        out = hook.before_blocks(x, (4, 4))
    last = hook.last
    assert set(last) == {"mu", "sigma", "mu_new", "sigma_new"} and last["mu"].shape == (4, 8)
    torch.testing.assert_close(out.mean(1), last["mu_new"])
    # std of x' = |γ|·std(x)/σ: equals |γ| up to the eps inside σ
    torch.testing.assert_close(out.std(1), last["sigma_new"].abs() * x.std(1) / last["sigma"])
    torch.testing.assert_close(out.std(1), last["sigma_new"].abs(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(last["mu"], x.mean(1))
    assert not torch.allclose(last["mu_new"], last["mu"])


def test_factor_zero_is_identity_and_seed_is_reproducible():
    x = torch.randn(3, 10, 6)
    torch.testing.assert_close(dsu(x, factor=0.0, generator=gen(0)), x, rtol=1e-5, atol=1e-5)
    a, b = dsu(x, generator=gen(7)), dsu(x, generator=gen(7))
    assert torch.equal(a, b) and not torch.allclose(a, dsu(x, generator=gen(8)))


def torch_reference(x, factor, eps, seed, detach_stats=False):
    """A second, differentiable eq. 6 written with sums (no .mean/.var) for gradient checks."""
    B, N, C = x.shape
    g = gen(seed)
    e_mu = torch.randn(B, 1, C, generator=g).to(x.dtype) * factor
    e_sig = torch.randn(B, 1, C, generator=g).to(x.dtype) * factor
    mu = x.sum(1, keepdim=True) / N
    sig = (((x - mu) ** 2).sum(1, keepdim=True) / (N - 1) + eps).sqrt()
    if detach_stats:
        mu, sig = mu.detach(), sig.detach()
    unc = lambda s: (((s - s.sum(0, keepdim=True) / B) ** 2).sum(0, keepdim=True) / (B - 1) + eps).sqrt()
    return (sig + e_sig * unc(sig)) * (x - mu) / sig + mu + e_mu * unc(mu)


def test_gradient_flows_through_statistics():
    x0 = torch.randn(3, 7, 5, dtype=torch.float64)
    w = torch.randn(3, 7, 5, dtype=torch.float64)
    grads = []
    for fn in (lambda x: dsu(x, generator=gen(2)), lambda x: torch_reference(x, 1.0, 1e-6, 2),
               lambda x: torch_reference(x, 1.0, 1e-6, 2, detach_stats=True)):
        x = x0.clone().requires_grad_(True)
        (fn(x) * w).sum().backward()
        grads.append(x.grad)
    assert torch.isfinite(grads[0]).all()
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-9, atol=1e-9)  # not detached (as DSU)
    assert not torch.allclose(grads[0], grads[2], atol=1e-3)  # detaching would change it


def test_hook_switches():
    x = torch.randn(2, 9, 4)
    hook = DSU(p=1.0)
    hook.generator = gen(0)
    assert hook.active is False and torch.equal(hook.before_blocks(x, (3, 3)), x) and hook.calls == 0
    with hook.perturbing():
        assert not torch.allclose(hook.before_blocks(x, (3, 3)), x)
    assert hook.active is False and hook.calls == 1
    never = DSU(p=0.0)
    with never.perturbing():
        assert all(torch.equal(never.before_blocks(x, (3, 3)), x) for _ in range(5))
    assert never.calls == 0 and never.last is None
    half = DSU(p=0.5)
    half.generator = gen(4)
    with half.perturbing():
        for _ in range(40):
            half.before_blocks(x, (3, 3))
    assert 5 < half.calls < 35  # one coin per call
    assert list(DSU().parameters()) == []


def test_perturbing_restores_on_exception():
    hook = DSU()
    with pytest.raises(RuntimeError):
        with hook.perturbing():
            assert hook.active
            raise RuntimeError("boom")
    assert hook.active is False
    hook.active = True
    with hook.perturbing():
        pass
    assert hook.active is True  # the previous value, not False


def test_after_block_only_listed_blocks():
    x = torch.randn(2, 9, 4)
    hook = DSU(embed=False, blocks=(1, 3))
    with hook.perturbing():
        assert torch.equal(hook.before_blocks(x, (3, 3)), x)
        assert torch.equal(hook.after_block(0, x, (3, 3)), x)
        assert torch.equal(hook.after_block(2, x, (3, 3)), x)
        assert not torch.allclose(hook.after_block(1, x, (3, 3)), x)
        assert not torch.allclose(hook.after_block(3, x, (3, 3)), x)
    assert hook.calls == 2


@pytest.mark.parametrize("kw", [dict(p=-0.1), dict(p=1.5), dict(factor=-1.0), dict(blocks=(-1,)),
                                dict(blocks=(1.5,)), dict(blocks=(True,)), dict(embed=False), dict(eps=0.0)])
def test_bad_options_raise(kw):
    with pytest.raises(ValueError):
        DSU(**kw)


def test_bad_inputs_raise_and_domain_weight():
    with pytest.raises(ValueError):
        token_statistics(torch.randn(2, 1, 3))  # one token: no unbiased variance
    with pytest.raises(ValueError):
        token_statistics(torch.randn(2, 3))
    with pytest.raises(ValueError):
        dsu(torch.randn(2, 4, 3), factor=-0.5)
    with pytest.raises(ValueError):
        domain_weight(-1.0, 0.0)
    assert domain_weight() == pytest.approx(math.exp(-2.0)) and domain_weight(0.0, 0.0) == 1.0
    assert domain_weight(0.5, 0.25) == pytest.approx(math.exp(-0.75))


def test_half_precision_tokens():
    x = torch.randn(2, 8, 4).to(torch.bfloat16)
    out = dsu(x, generator=gen(0))
    ref = dsu(x.float(), generator=gen(0))
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, rtol=2e-2, atol=2e-2)


class Spy:
    """Records the whole token sequence (cls included) before block 0 (key -1) and after every block."""
    wants_prefix = True

    def __init__(self):
        self.seen = {}

    def before_blocks(self, tokens, grid_hw):
        self.seen[-1] = tokens.detach().clone()
        return tokens

    def after_block(self, i, tokens, grid_hw):
        self.seen[i] = tokens.detach().clone()
        return tokens


def test_end_to_end_tiny_vfm():
    torch.manual_seed(0)
    vfm = load_vfm("tiny", weights="none", verbose=False).eval()
    npt = vfm.num_prefix_tokens
    assert npt >= 1
    x = torch.rand(2, 3, 56, 56)
    hook = DSU(p=1.0, embed=True)
    hook.generator = gen(0)
    with torch.no_grad():
        base = vfm.forward_features(x)
        off = vfm.forward_features(x, [hook])
        for a, b in zip(base, off):
            torch.testing.assert_close(a, b, rtol=0, atol=0)  # inactive = identity
        spy_on, spy_off = Spy(), Spy()
        with hook.perturbing():
            on = vfm.forward_features(x, [hook, spy_on])
        vfm.forward_features(x, [spy_off])
    assert hook.calls == 1 and hook.last["mu"].shape == (2, vfm.embed_dim)
    assert all(not torch.allclose(a, b) for a, b in zip(base, on))
    # embedding-level DSU (the spy runs after it): prefix tokens exact, patch tokens moved
    torch.testing.assert_close(spy_on.seen[-1][:, :npt], spy_off.seen[-1][:, :npt], rtol=0, atol=0)
    assert not torch.allclose(spy_on.seen[-1][:, npt:], spy_off.seen[-1][:, npt:])
    # block-level DSU after the last block leaves the prefix tokens exactly as they were
    last = vfm.depth - 1
    late = DSU(embed=False, blocks=(last,))
    spy_late = Spy()
    with torch.no_grad(), late.perturbing():
        vfm.forward_features(x, [late, spy_late])
    torch.testing.assert_close(spy_late.seen[last][:, :npt], spy_off.seen[last][:, :npt], rtol=0, atol=0)
    assert not torch.allclose(spy_late.seen[last][:, npt:], spy_off.seen[last][:, npt:])
