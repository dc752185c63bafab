"""VPT-deep: learnable prompt tokens prepended to the sequence of every block.

Paper card
----------
*Visual Prompt Tuning* (Jia et al., ECCV 2022, https://arxiv.org/abs/2203.12119). A PEFT baseline of
Rein++ Table III (DINOv2-L, 150 tokens per layer: 24·150·1024 = 3,686,400 = 3.69M).

Key equation (VPT-deep), for block L_i and its own prompts P_i (p×c)::

    [x_i, _, E_i] = L_i([x_{i-1}, P_{i-1}, E_{i-1}])      i = 1..N

The prompts are inserted after the prefix tokens (cls, registers) before each block and the
block's prompt outputs are dropped (``prompt_tokens`` hook of :meth:`VFM.forward_features`; on
EVA02 the prompts get identity RoPE rotations). Init as VPT: U(±√(6/(3·P² + c))) with P the
backbone's patch size (Xavier-uniform for a P×P×3 -> c "patch"). Optional prompt ``dropout``
(VPT's default 0.0 here).

**SAM-H is not supported**: SAM's blocks work on a B×H×W×C grid (windowed attention and 2-D
relative positions), so there is no token sequence into which prompts could be inserted;
``attach`` raises ``NotImplementedError`` for ``family == "sam"``.

Taught in ``notebooks/10_rein_g.ipynb``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .base import Method


class VPTDeep(Method):
    """Deep visual prompts: ``num_tokens`` (150) fresh prompt tokens before every block."""

    name = "vpt"
    #: bounds checked with the config (dgsslib.engine.validation); types come from the annotations below
    option_ranges = {"num_tokens": (1, None), "dropout": (0, 1)}

    def __init__(self, num_tokens: int = 150, dropout: float = 0.0):
        if int(num_tokens) < 1:
            raise ValueError(f"num_tokens must be >= 1, got {num_tokens}")
        super().__init__(num_tokens=int(num_tokens), dropout=float(dropout))
        self.num_tokens = int(num_tokens)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.prompts = None

    def attach(self, vfm) -> "VPTDeep":
        if vfm.spec.family == "sam":
            raise NotImplementedError(
                "VPT-deep cannot run on SAM: SAM's blocks work on a B×H×W×C spatial grid (windowed "
                "attention, 2-D relative positions), so there is no token sequence to insert prompt "
                "tokens into. Use LoRA, AdaptFormer, BitFit or Rein on SAM instead.")
        super().attach(vfm)
        if self.prompts is not None:
            if tuple(self.prompts.shape) != (vfm.depth, self.num_tokens, vfm.embed_dim):
                raise ValueError("this VPT is already built for another backbone; make a new one")
            return self
        p0 = next(vfm.model.parameters())
        self.prompts = nn.Parameter(torch.empty(vfm.depth, self.num_tokens, vfm.embed_dim,
                                                device=p0.device, dtype=p0.dtype))
        v = math.sqrt(6.0 / float(3 * vfm.patch_size ** 2 + vfm.embed_dim))
        nn.init.uniform_(self.prompts, -v, v)
        return self

    def hooks(self) -> list:
        return [self]

    def prompt_tokens(self, i: int, batch_size: int) -> torch.Tensor:
        return self.drop(self.prompts[i]).unsqueeze(0).expand(batch_size, -1, -1)


__all__ = ["VPTDeep"]
