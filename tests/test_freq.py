"""dgsslib.adapters.freq: transforms against direct formulas / scipy, exact inverses, and the filters' shapes."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dgsslib.adapters import freq

SIZES = [(1, 1), (3, 4), (5, 7), (8, 16), (16, 16), (9, 2)]


def direct_dct2(x: np.ndarray) -> np.ndarray:
    """X[u,v] = a_u a_v Σ_ij x[i,j] cos(π(2i+1)u/2h) cos(π(2j+1)v/2w), by explicit sums."""
    h, w = x.shape
    a = lambda k, n: math.sqrt((1 if k == 0 else 2) / n)  # noqa: E731
    out = np.zeros((h, w))
    for u in range(h):
        for v in range(w):
            s = sum(x[i, j] * math.cos(math.pi * (2 * i + 1) * u / (2 * h)) * math.cos(math.pi * (2 * j + 1) * v / (2 * w))
                    for i in range(h) for j in range(w))
            out[u, v] = a(u, h) * a(v, w) * s
    return out


def test_dct_matches_direct_formula():
    x = torch.randn(3, 5, dtype=torch.float64)
    np.testing.assert_allclose(freq.dct2(x).numpy(), direct_dct2(x.numpy()), atol=1e-12)


@pytest.mark.parametrize("hw", SIZES)
def test_dct_matches_scipy_and_inverse_is_exact(hw):
    scipy_fft = pytest.importorskip("scipy.fft")
    x = torch.randn(2, 3, *hw)
    X = freq.dct2(x)
    np.testing.assert_allclose(X.numpy(), scipy_fft.dctn(x.numpy(), type=2, norm="ortho", axes=(-2, -1)), atol=1e-5)
    torch.testing.assert_close(freq.idct2(X), x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", freq.TRANSFORMS)
@pytest.mark.parametrize("hw", SIZES)
def test_every_transform_is_orthonormal_and_invertible(kind, hw):
    x = torch.randn(2, 4, *hw)
    X = freq.spectrum(x, kind)
    assert X.shape == (2 if kind == "fft" else 1, 2, 4, *hw)
    torch.testing.assert_close(freq.inverse(X, kind), x, atol=1e-5, rtol=0)
    # Parseval: energy is preserved (for fft: |z|² = Re² + Im²)
    torch.testing.assert_close(X.pow(2).sum(), x.pow(2).sum(), rtol=1e-5, atol=1e-5)


def test_haar_matrix_by_hand_and_odd_lengths():
    s, q = 1 / math.sqrt(2), 0.5
    h4 = torch.tensor([[q, q, q, q], [-q, -q, q, q], [-s, s, 0, 0], [0, 0, -s, s]], dtype=torch.float64)
    torch.testing.assert_close(freq.basis("hwt", 4, dtype=torch.float64), h4)
    for n in range(1, 12):
        for kind in ("dct", "hwt"):
            b = freq.basis(kind, n, dtype=torch.float64)
            torch.testing.assert_close(b @ b.T, torch.eye(n, dtype=torch.float64), atol=1e-12, rtol=0)
    # row 0 is the DC (constant) row (Haar: for power-of-two lengths; odd ones carry a sample)
    for kind, n in (("dct", 6), ("hwt", 8)):
        b = freq.basis(kind, n, dtype=torch.float64)
        torch.testing.assert_close(b[0], torch.full((n,), 1 / math.sqrt(n), dtype=torch.float64))


def test_pure_cosine_lands_on_its_index():
    h, w, u0, v0 = 8, 6, 3, 2
    i, j = torch.arange(h)[:, None].double(), torch.arange(w)[None, :].double()
    x = torch.cos(math.pi * (2 * i + 1) * u0 / (2 * h)) * torch.cos(math.pi * (2 * j + 1) * v0 / (2 * w))
    X = freq.dct2(x)
    assert X.abs().argmax().item() == u0 * w + v0
    assert X.abs().sum() - X[u0, v0].abs() < 1e-9


def test_fft_frequencies_are_symmetric():
    nu = freq.frequencies(8, "fft")
    torch.testing.assert_close(nu, torch.tensor([0, .25, .5, .75, 1, .75, .5, .25], dtype=torch.float64))
    assert freq.frequencies(4, "dct").tolist() == [0, .25, .5, .75]


def test_basis_cache_is_not_a_buffer_and_follows_dtype():
    b32, b64 = freq.basis("dct", 5), freq.basis("dct", 5, dtype=torch.float64)
    assert b32.dtype == torch.float32 and b64.dtype == torch.float64
    assert freq.basis("dct", 5) is b32  # cached
    with pytest.raises(ValueError, match="dct' or 'hwt'"):
        freq.basis("fft", 4)


# ----------------------------------------------------------------------------- filters
def test_gaussian_filters_shapes():
    h = w = 32
    bp = freq.filter_mask("bandpass", h, w)
    lf, hf = freq.filter_mask("lf", h, w), freq.filter_mask("hf", h, w)
    assert bp[0, 0] == 0 and lf[0, 0] == 0 and hf[0, 0] == 1  # DC removed by band-pass and LF removal
    torch.testing.assert_close(bp, lf * hf)
    assert torch.all((bp >= 0) & (bp <= 1))
    rho = freq.radius(h, w).float()
    # the band-pass keeps the middle band: its peak radius lies between the cutoffs
    peak = rho.flatten()[bp.flatten().argmax()].item()
    assert 0.2 < peak < 0.7
    # Gaussian cutoff convention: exp(-1/2) at the cutoff radius
    ref = torch.exp(torch.tensor(-0.5))
    torch.testing.assert_close(freq.gaussian_lowpass(torch.tensor(0.7), 0.7), ref)
    torch.testing.assert_close(freq.gaussian_highpass(torch.tensor(0.2), 0.2), 1 - ref)
    # the corner (highest frequency) is attenuated by the band-pass and the HF removal
    r = 31 / 32  # the corner: ν_u = ν_v = 31/32, ρ = √((ν_u² + ν_v²)/2)
    expect = (1 - math.exp(-r * r / (2 * 0.2 ** 2))) * math.exp(-r * r / (2 * 0.7 ** 2))
    assert abs(bp[-1, -1].item() - expect) < 1e-6 and bp[-1, -1] < 0.6 * bp.max()
    assert torch.all(freq.filter_mask("none", 4, 6) == 1)


def test_chebyshev_radius_and_custom_cutoffs():
    r = freq.radius(4, 4, metric="chebyshev")
    assert r[3, 1].item() == 0.75 and r[0, 2].item() == 0.5
    a, b = freq.filter_mask("bandpass", 16, 16, low=0.1, high=0.9), freq.filter_mask("bandpass", 16, 16)
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="0 < low < high"):
        freq.filter_mask("bandpass", 8, 8, low=0.7, high=0.2)
    with pytest.raises(ValueError, match="unknown filter"):
        freq.filter_mask("gauss", 8, 8)
    with pytest.raises(ValueError, match="unknown transform"):
        freq.spectrum(torch.zeros(2, 2), "dwt")


def test_mad_mask_matches_the_documented_diagonal():
    """Reference §B.2: pass weights along the 32×32 diagonal."""
    p = freq.filter_mask("mad", 32, 32, dtype=torch.float64)
    diag = p.diagonal()
    expect = {0: 0.0, 1: 0.95 / 3, 2: 1.9 / 3, 3: 0.95, 4: 0.99, 22: 0.99, 23: 0.97, 31: 0.73}
    for m, v in expect.items():
        assert abs(diag[m].item() - v) < 1e-6, (m, diag[m].item(), v)
    # Chebyshev index radius: constant along the L-shaped shell m = max(u, v)
    assert p[10, 0] == p[0, 10] == p[10, 7] == p[10, 10]
    # non-square: the shell beyond min(h, w) is region 4 (non-causal 0.5)
    assert freq.filter_mask("mad", 8, 12, dtype=torch.float64)[0, 11].item() == 0.5


def test_official_inverse_is_real_ifft_clamped():
    X = torch.randn(2, 3, 4, 4)
    out = freq.official_inverse(X * 300)
    ref = np.fft.ifft2((X * 300).numpy(), norm="ortho").real.clip(0, 255)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-3)
    assert out.min() >= 0 and out.max() <= 255 and (out == 0).any()
    # not an inverse DCT: it does not undo dct2
    x = torch.rand(8, 8)
    assert not torch.allclose(freq.official_inverse(freq.dct2(x)), x, atol=1e-2)
