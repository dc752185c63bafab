"""The optimiser side of the one trainer: AdamW groups, the poly schedule, and selection masks.

    θ ← AdamW(θ, ∇L),   lr_t = lr · (1 − t/T)^0.9   (poly; optional linear warm-up)

Groups: head and method parameters at ``lr``; unfrozen *original* backbone weights at
``lr × method.backbone_lr_mult`` (Full: 0.1); no weight decay on norms, position/level/query
embeddings, tokens and scales, except the names a method lists in ``decay_keys`` (VFMSeg's
``mask_token``, decayed by its official optimiser). A method may return its own groups (``Method.param_groups``).

Selection masks (FisherTune, ChildTune, Random): ``method.grad_masks(step)`` returns
{parameter: 0/1 mask} and may change with the step. :func:`apply_grad_masks` multiplies the
gradients *and* the AdamW moments by the mask, and the parameters a method declares in
``selection_parameters()`` get their decoupled weight decay from :func:`apply_masked_weight_decay`
(AdamW's own decay is off for them) -- so an unselected element never moves, bit for bit:
its gradient is 0, its moments are 0, its decay factor is exactly 1.
"""
from __future__ import annotations

import torch
from torch import nn

NO_DECAY = ("norm", "pos_embed", "cls_token", "reg_token", "mask_token", "level_embed", "query_embed",
            "query_feat", "gamma", "ls1", "ls2", "bn", "learnable_tokens", "scale", "prompt")


def param_groups(model, lr: float, weight_decay: float) -> list[dict]:
    """AdamW groups: (backbone original | rest) × (decay | no decay) × (masked | not)."""
    method = model.method
    own = method.param_groups(model, lr, weight_decay)
    if own is not None:
        return own
    norm_ids = {id(p) for m in model.modules()
                if isinstance(m, (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm))
                for p in m.parameters(recurse=False)}
    keys = NO_DECAY + tuple(method.no_decay_keys)
    force = tuple(getattr(method, "decay_keys", ()))
    method_ids = {id(p) for p in method.parameters()}  # parameters a method added inside timm modules
    masked_ids = {id(p) for p in method.selection_parameters()}
    groups: dict[tuple, dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad and id(p) not in masked_ids:
            continue
        original = name.startswith("vfm.") and id(p) not in method_ids
        no_wd = (id(p) in norm_ids or any(k in name for k in keys)) and not any(k in name for k in force)
        masked = id(p) in masked_ids
        key = (original, no_wd, masked)
        if key not in groups:
            wd = 0.0 if no_wd else weight_decay
            groups[key] = {"params": [], "names": [], "base_lr": lr * (method.backbone_lr_mult if original else 1.0),
                           "weight_decay": 0.0 if masked else wd, "masked_weight_decay": wd if masked else 0.0}
        groups[key]["params"].append(p)
        groups[key]["names"].append(name)
    for g in groups.values():
        g["lr"] = g["base_lr"]
    return list(groups.values())


def build_optimizer(model, train_cfg: dict) -> torch.optim.AdamW:
    groups = param_groups(model, train_cfg["lr"], train_cfg["weight_decay"])
    if not groups:
        raise ValueError("nothing to train: no parameter requires grad (check the method and head)")
    return torch.optim.AdamW(groups, lr=train_cfg["lr"], betas=(0.9, 0.999), eps=1e-8)


def lr_factor(step: int, max_steps: int, power: float, warmup: int) -> float:
    if warmup and step < warmup:
        return 1e-6 + (1 - 1e-6) * step / warmup
    return (1 - step / max(1, max_steps)) ** power


def set_lr(opt: torch.optim.Optimizer, factor: float) -> None:
    for g in opt.param_groups:
        g["lr"] = g["base_lr"] * factor


@torch.no_grad()
def apply_grad_masks(masks: dict | None, opt: torch.optim.Optimizer | None = None) -> None:
    """grad ← grad ⊙ mask (and AdamW moments ⊙ mask) for every {parameter: mask} entry."""
    for p, m in (masks or {}).items():
        if p.grad is None:
            continue
        m = m.to(p.grad.device, p.grad.dtype)
        p.grad.mul_(m)
        state = opt.state.get(p, {}) if opt is not None else {}
        for slot in ("exp_avg", "exp_avg_sq"):
            if slot in state:
                state[slot].mul_(m)


@torch.no_grad()
def apply_masked_weight_decay(opt: torch.optim.Optimizer, masks: dict | None) -> None:
    """Decoupled decay θ ← θ·(1 − lr·wd·mask) for the groups whose AdamW decay is off because
    their parameters are selected element-wise; call right before ``opt.step()`` (AdamW decays
    first, then applies the Adam update, so the order is the same)."""
    for g in opt.param_groups:
        wd = g.get("masked_weight_decay", 0.0)
        if not wd:
            continue
        for p in g["params"]:
            if p.grad is None:  # frozen in this phase: AdamW would skip it entirely, so do we
                continue
            m = (masks or {}).get(p)
            if m is None:
                p.mul_(1 - g["lr"] * wd)
            else:
                p.mul_(1 - g["lr"] * wd * m.to(p.device, p.dtype))
