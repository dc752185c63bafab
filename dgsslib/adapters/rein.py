"""Rein-G: learnable tokens that refine a frozen VFM's features after every block.

Paper card
----------
*Rein++: Efficient Generalization and Adaptation for Semantic Segmentation with Vision
Foundation Models* (Wei et al., https://arxiv.org/abs/2508.01667), §IV "Rein-G"; first published as *Stronger,
Fewer, & Superior: Harnessing Vision Foundation Models for Domain Generalized Semantic
Segmentation* (Wei et al., CVPR 2024, https://arxiv.org/abs/2312.04265). Reference implementation studied:
github.com/w1oves/Rein ``rein/models/backbones/reins.py`` (equations only; this is our own code).

Key equations, for the patch features f_i (n×c) after block i and the layer's tokens T_i (m×c)::

    S_i      = Softmax(f_i T_iᵀ / √c)                         over ALL m tokens     (Eq. 5)
    Δf̄_i     = S_i[:, 1:] · (T_i[1:] W_Tᵀ + b_T)             drop token 0 AFTER softmax (Eq. 6)
    Δf_i     = (Δf̄_i + f_i) W_fᵀ + b_f                                              (Eq. 7)
    f_i'     = f_i + s · Δf_i                                 s: learnable scalar, init 1e-3
    T_i      = A_i B_i,  A: [L,m,r], B: [L,r,c]                                      (Eq. 12)
    Q        = merge( interleave[max_i, mean_i, last] (T_i W_Qᵀ + b_Q) )              (Eq. 9-10)

The scale ``s`` is not in the paper's Eq. 7 but is always applied by the official code (and
``scale_init=1e-2`` is reported to hurt, issue #58). Dropping token 0 *after* the softmax lets
each row of S sum to less than 1, so "no change" is reachable (issues #43/#50). Rein runs after
every hooked block including the last; only patch tokens change (cls/register tokens pass
through). On SAM-H it runs after the four global-attention blocks only (L = 4).

Options reproducing Rein++ Table V (``variant=`` presets; explicit options override a preset):

========== ====== ========== ====== ========== ===== ==========================
variant    lora   shared_mlp link   multi_head gelu  DINOv2-L params (paper)
========== ====== ========== ====== ========== ===== ==========================
core       False  False      False  False      False 52.84M
link       False  True       True   False      False 5.02M
lora *     True   True       True   False      False 2.99M
multihead  True   True       True   True       False 2.99M
gelu       True   True       True   True       True  2.99M
========== ====== ========== ====== ========== ===== ==========================

(* default = the official Rein-G config: ``LoRAReins``, m=100, r=16, p=16, link on.)

Rein++ extensions (no public code; choices made here, see the paper §IV-B):

- ``multi_head``: c is split into ``heads`` sub-spaces (default 8, i.e. 128 dims per head
  for c=1024); the softmax runs per head over all m tokens with scale (c/h)^-0.5, then token 0
  is dropped per head in the value path, and the heads' Δf̄ are concatenated. No new parameters;
  ``heads=1`` is exactly the single-head Rein.
- ``gelu``: Δf = W_g·GELU((Δf̄ + f) W_f + b_f) + b_g with W_f: c→c/2 (``mlp_delta_f``) and
  W_g: c/2→c (``mlp_delta_g``): c² + 3c/2 parameters instead of c² + c, i.e. +512 on DINOv2-L,
  which stays at 2.99M.

Init (as the official code): plain tokens U(±√(6/(3p²+c))); LoRA tokens A and B both
U(±√(6/(3p²+√(c·r)))) with p = ``patch_size`` = 16 (the official constant, independent of the
backbone's actual patch); Linear layers keep PyTorch's default init; ``scale`` = 1e-3.
No weight decay for ``learnable_tokens*`` and ``scale`` (``no_decay_keys``).

Taught in ``notebooks/10_rein_g.ipynb``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Method

#: Table V rows -> the switches they set
VARIANTS: dict[str, dict[str, bool]] = {
    "core": dict(lora=False, shared_mlp=False, link=False, multi_head=False, gelu=False),
    "link": dict(lora=False, shared_mlp=True, link=True, multi_head=False, gelu=False),
    "lora": dict(lora=True, shared_mlp=True, link=True, multi_head=False, gelu=False),
    "multihead": dict(lora=True, shared_mlp=True, link=True, multi_head=True, gelu=False),
    "gelu": dict(lora=True, shared_mlp=True, link=True, multi_head=True, gelu=True),
}
POOLS = ("max", "avg", "last")


def _parse_pool(link_pool) -> tuple[str, ...]:
    items = link_pool.split(",") if isinstance(link_pool, str) else list(link_pool)
    items = tuple(s.strip().lower() for s in items if str(s).strip())
    bad = [s for s in items if s not in POOLS]
    if bad or not items or len(set(items)) != len(items):
        raise ValueError(f"link_pool must be a non-empty, duplicate-free subset of {','.join(POOLS)}; got {link_pool!r}")
    return items


class Rein(Method):
    """Rein-G (and the Table V ablation steps) as a :class:`Method` hook.

    Args:
        variant: ``"core" | "link" | "lora" | "multihead" | "gelu"`` (Table V rows; default "lora").
        m: token sequence length (Table VIII; default 100).
        r: rank of the low-rank tokens (Table VI; default 16); only with ``lora=True``.
        lora: low-rank tokens T_i = A_i B_i (Eq. 12) instead of full [L,m,c] tokens.
        shared_mlp: one token2feat / delta_f / transform for all layers (Eq. 11) instead of per layer.
        link: build decoder queries from the tokens (Eq. 8-10); ``queries()`` returns [m, query_dim].
        link_pool: which of ``max,avg,last`` feed ``merge`` (order kept as written).
        multi_head, heads: Rein++ per-head similarity (default 8 heads when on).
        gelu: Rein++ non-linear delta MLP (Eq. 13).
        scale_init: the learnable scale's initial value (1e-3).
        query_dim: the decoder's query width (256).
        patch_size: the constant p in the token init ranges (16, as the official configs).
    """

    name = "rein"
    no_decay_keys = ("learnable_tokens", "scale")

    option_ranges = {"m": (1, None), "r": (1, None), "heads": (1, None), "query_dim": (1, None), "patch_size": (1, None),
                     "scale_init": (None, None)}  # any real start for the learnable scale

    def __init__(self, variant: str = "lora", m: int = 100, r: int = 16, lora: bool | None = None,
                 shared_mlp: bool | None = None, link: bool | None = None, link_pool: str = "max,avg,last",
                 multi_head: bool | None = None, heads: int = 8, gelu: bool | None = None,
                 scale_init: float = 1e-3, query_dim: int = 256, patch_size: int = 16):
        if variant not in VARIANTS:
            raise ValueError(f"unknown Rein variant {variant!r}; choose one of: {', '.join(VARIANTS)}")
        cfg = dict(VARIANTS[variant])
        for k, v in dict(lora=lora, shared_mlp=shared_mlp, link=link, multi_head=multi_head, gelu=gelu).items():
            if v is not None:
                cfg[k] = bool(v)
        pools = _parse_pool(link_pool)
        if int(m) < 2:
            raise ValueError(f"m (token length) must be >= 2 (token 0 is dropped), got {m}")
        if cfg["lora"] and int(r) < 1:
            raise ValueError(f"r must be >= 1, got {r}")
        if cfg["multi_head"] and int(heads) < 1:
            raise ValueError(f"heads must be >= 1, got {heads}")
        super().__init__(variant=variant, m=int(m), r=int(r), link_pool=",".join(pools), heads=int(heads),
                         scale_init=float(scale_init), query_dim=int(query_dim), patch_size=int(patch_size), **cfg)
        self.variant, self.m, self.r = variant, int(m), int(r)
        self.lora, self.shared_mlp, self.link = cfg["lora"], cfg["shared_mlp"], cfg["link"]
        self.multi_head, self.gelu = cfg["multi_head"], cfg["gelu"]
        self.heads = int(heads) if self.multi_head else 1
        self.link_pool, self.scale_init = pools, float(scale_init)
        self.query_dim, self.patch_size = int(query_dim), int(patch_size)
        self.num_layers = self.embed_dim = None
        self._slot: dict[int, int] = {}

    # ------------------------------------------------------------------ build
    def attach(self, vfm) -> "Rein":
        super().attach(vfm)  # freezes the backbone
        c, layers = int(vfm.embed_dim), tuple(vfm.hook_layers)
        if not layers:
            raise ValueError(f"{vfm.name} has no hook layers for Rein")
        if self.multi_head and c % self.heads:
            raise ValueError(f"heads={self.heads} must divide the embedding dim {c} of {vfm.name}")
        if self.gelu and c % 2:
            raise ValueError(f"gelu needs an even embedding dim, got {c}")
        if self.num_layers is not None and (self.num_layers, self.embed_dim) != (len(layers), c):
            raise ValueError("this Rein is already built for another backbone; make a new one")
        self._slot = {blk: k for k, blk in enumerate(layers)}  # block index -> token layer slot
        if self.num_layers is None:
            p0 = next(vfm.model.parameters())
            self._build(len(layers), c, device=p0.device,
                        dtype=p0.dtype if p0.dtype.is_floating_point else torch.float32)
        return self

    def _build(self, L: int, c: int, device, dtype) -> None:
        dd = dict(device=device, dtype=dtype)
        self.num_layers, self.embed_dim = L, c
        m, r, p = self.m, self.r, self.patch_size
        if self.lora:
            self.learnable_tokens_a = nn.Parameter(torch.empty(L, m, r, **dd))
            self.learnable_tokens_b = nn.Parameter(torch.empty(L, r, c, **dd))
            v = math.sqrt(6.0 / float(3 * p * p + math.sqrt(c * r)))
            nn.init.uniform_(self.learnable_tokens_a, -v, v)
            nn.init.uniform_(self.learnable_tokens_b, -v, v)
        else:
            self.learnable_tokens = nn.Parameter(torch.empty(L, m, c, **dd))
            v = math.sqrt(6.0 / float(3 * p * p + c))
            nn.init.uniform_(self.learnable_tokens, -v, v)
        self.scale = nn.Parameter(torch.tensor(self.scale_init, **dd))
        # shared: one Linear (the official parameter names); per layer: a ModuleList of L
        self.mlp_token2feat = self._linears(c, c, L, dd)
        self.mlp_delta_f = self._linears(c, c // 2 if self.gelu else c, L, dd)  # W_f, b_f
        if self.gelu:
            self.mlp_delta_g = self._linears(c // 2, c, L, dd)  # W_g, b_g (Eq. 13)
        if self.link:
            q = self.query_dim
            self.transform = self._linears(c, q, L, dd)
            self.merge = nn.Linear(len(self.link_pool) * q, q, **dd)

    def _linears(self, cin: int, cout: int, L: int, dd: dict) -> nn.Module:
        if self.shared_mlp:
            return nn.Linear(cin, cout, **dd)
        return nn.ModuleList(nn.Linear(cin, cout, **dd) for _ in range(L))

    # ------------------------------------------------------------------ tokens
    def tokens(self, k: int | None = None) -> torch.Tensor:
        """T for layer slot ``k`` ([m, c]) or all layers ([L, m, c])."""
        if self.num_layers is None:
            raise RuntimeError("Rein is not attached to a backbone yet (call attach(vfm))")
        if self.lora:
            if k is None:
                return self.learnable_tokens_a @ self.learnable_tokens_b
            return self.learnable_tokens_a[k] @ self.learnable_tokens_b[k]
        return self.learnable_tokens if k is None else self.learnable_tokens[k]

    def _mlp(self, mod: nn.Module, k: int) -> nn.Module:
        return mod if self.shared_mlp else mod[k]

    def delta(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Eq. 7 (Linear c->c) or, with ``gelu``, Eq. 13 (c->c/2, GELU, c/2->c) of x = Δf̄ + f."""
        y = self._mlp(self.mlp_delta_f, k)(x)
        return self._mlp(self.mlp_delta_g, k)(F.gelu(y)) if self.gelu else y

    def refine(self, f: torch.Tensor, k: int) -> torch.Tensor:
        """f' = f + s·Δf for patch features ``f`` [B, N, c] at layer slot ``k``."""
        return f + self.scale.to(f.dtype) * self.token_update(f, k)

    def token_update(self, f: torch.Tensor, k: int) -> torch.Tensor:
        """Δf (Eq. 5-7, before the scale s) for rows ``f`` [B, N, c] at layer slot ``k``; each row
        is refined independently (Causal-Tune feeds spectra through the same machinery)."""
        T = self.tokens(k).to(f.dtype)  # [m, c]
        B, N, c = f.shape
        h = self.heads
        d = c // h
        value = self._mlp(self.mlp_token2feat, k)(T[1:])  # [m-1, c]
        if h == 1:
            attn = torch.softmax(torch.einsum("bnc,mc->bnm", f, T) * c ** -0.5, dim=-1)
            delta_bar = torch.einsum("bnm,mc->bnc", attn[..., 1:], value)
        else:
            fh, Th = f.reshape(B, N, h, d), T.reshape(-1, h, d)
            attn = torch.softmax(torch.einsum("bnhd,mhd->bhnm", fh, Th) * d ** -0.5, dim=-1)
            delta_bar = torch.einsum("bhnm,mhd->bnhd", attn[..., 1:], value.reshape(-1, h, d)).reshape(B, N, c)
        return self.delta(delta_bar + f, k)

    # ------------------------------------------------------------------ Method API
    def hooks(self) -> list:
        return [self]

    def after_block(self, i: int, tokens: torch.Tensor, grid_hw=None) -> torch.Tensor:
        k = self._slot.get(i)
        return tokens if k is None else self.refine(tokens, k)

    def queries(self) -> torch.Tensor | None:
        """Image-independent decoder queries [m, query_dim] (None when ``link=False``)."""
        if not self.link or self.num_layers is None:
            return None
        T = self.tokens()  # [L, m, c]; token 0 is kept here
        if self.shared_mlp:
            t = self.transform(T)
        else:
            t = torch.stack([self.transform[k](T[k]) for k in range(self.num_layers)])
        t = t.permute(1, 2, 0)  # [m, q, L]
        pooled = {"max": t.amax(dim=-1), "avg": t.mean(dim=-1), "last": t[..., -1]}
        cat = torch.stack([pooled[p] for p in self.link_pool], dim=-1)  # [m, q, k]
        return self.merge(cat.flatten(-2, -1))  # interleaved (max_0, avg_0, last_0, max_1, ...)


__all__ = ["Rein", "VARIANTS"]
