"""Rein-A: self-training of Rein-G + Mask2Former on an unlabelled target (Rein++ §V, Algorithm 1).

Paper card: *Rein++: Efficient Generalization and Adaptation for Semantic Segmentation with Vision
Foundation Models* (Wei et al., arXiv 2508.01667), §V, eq. 14–20 -- no public code. Per iteration
(student M_s, EMA teacher M_t, Semantic Transfer Module M_stm; the VFM frozen, Rein-G + decoder
+ STM train; Rein-G and the decoder start from a source-only run, option ``init``)::

    (p̂_t, m̂_t) = M_t(x_t);  Ŝ_t = p̂_tᵀ m̂_t;  ŷ_t = argmax Ŝ_t;  q = share(conf(Ŝ_t) > τ)    pseudo-labels
    (p̂_stm, m̂_stm) = M_stm[F_t(x_t), regions(x_t)]                                   eq. 17 (no grad)
    L_src  = L_mask-cls(M_s(x_s), y_s)                             eq. 14 (Hungarian, deep supervision)
    L_stm_src = L_mask-cls(M_stm[F_t(x_s), regions(x_s)], y_s)     eq. 18
    x_mix, y_mix, w_mix = ClassMix(x_s, y_s, x_t, ŷ_t, q) + strong augmentation           (DACS/DAFormer)
    L_mix  = Σ w_mix · NLL(log(S_mix / ΣS_mix), y_mix) / (B·H·W)   eq. 15 (pixel level, not Hungarian)
    L_stm_mix = the same on M_stm[F_t(x_mix), regions(x_mix)]      eq. 18 (mixed regions: ClassMix of both maps)
    x_m    = x_t ⊙ M + μ ⊙ (1 − M), M = MIC block mask (b, r = 0.7), μ = the mean colour (MIC's 0 after normalising)
    L_mask = CE(p_m,i, argmax p̂_t,i) + 1[ĉ_i ≠ ∅]·(BCE + dice)(m_m,i, m̂_t,i > 0.5)          eq. 16 (query i ↔ i)
    L_stm_mask = the same against the STM's query i                eq. 19
    L      = L_src + α·L_mix + β·L_mask + L_stm_src + α·L_stm_mix + β·L_stm_mask,  α = β = 1   eq. 20
    θ_t ← EMA(θ_s) after the step (the STM has no EMA copy)

Choices where the Rein++ paper is silent (DAFormer/MIC code values where they exist; each is an option):
the confidence score behind q (DAFormer's share of confident pixels) and τ are set per profile
(:mod:`dgsslib.uda.pseudo_label` lists the readings): S itself is not a distribution and softmax(S)
would switch the mix branch off; mini uses ``normalized`` = max S/ΣS at τ = 0.85 (the share of
confident pixels stays a fraction, 0.23-0.45, on every seed's source-only teacher, whereas with the
mask-weighted probability it ranged from 0.00 to 0.37 across seeds -- notebook 11 §4); the paper configs keep
``mask_weighted`` (max_k S_k / Σ_q σ(m_q), the default here) at DAFormer's 0.968. Eq. 15's CE is the NLL of
the normalised S (``mix_ce``); masked blocks take the
mean colour (``mask_fill=mean``: MIC masks normalised images, so a dropped block is 0 = the mean; ``black``
is the kit's earlier fill); ClassMix may paste the source's ignore (255) regions, as DACS, DDB and DAFormer
do (``paste_ignore=true``; ``false`` never pastes them). Two additions to Algorithm 1's masked branch are
MIC's, not the paper's, and are **off** by default: a fresh strong colour augmentation of x_t before
masking (``mask_augment``) and the weight q̄ (the teacher's confident share) on L_mask and eq. 19
(``mask_q_weight``); notebook 11 runs them as an ablation. EMA α = 0.999
(``alpha``): the paper cites DACS, whose teacher uses 0.99, but its mixing and masking come from
DAFormer and MIC, whose teachers use 0.999 -- we follow the code it builds on (``alpha=0.99`` gives
DACS's); the STM guides the student (eq. 17/19) from the first step in Algorithm 1, but it is a head
trained from scratch while the student starts from a source-only run: ``stm_warmup`` = K keeps eq. 19 off
for the first K steps (the STM still learns from eq. 18) -- 0, the paper's, in every config: eq. 19
against the untrained STM starts ~10× L_mask, and notebook 11's exercise 6 asks what a warm-up changes; MIC block 32 px at ratio 0.7 (half of MIC's 64 px, for 512 crops of half-resolution
images); the STM's construction and its region queries are described in :mod:`dgsslib.uda.stm`; ``regions`` = ``sam2`` (the
paper's, needs a checkpoint) or the named stand-ins ``oracle`` / ``slic`` (:mod:`dgsslib.uda.regions`).
``mix``, ``mask``, ``stm`` switch the branches for Table X. Images enter the step as uint8 and are
turned into [0, 1] floats first (the augmentations assume that range).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..data.labels import IGNORE_INDEX
from ..uda.classmix import class_mix, strong_augment
from ..uda.masking import apply_mask, block_mask
from ..uda.pseudo_label import SCORES, pseudo_labels, query_losses, query_targets
from ..uda.regions import REGION_SOURCES, mix_region_maps, oracle_regions, region_masks, slic_regions
from .ema import EMATeacher, TeacherRecipe


def normalized_nll(S: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Σ w · −log(S_y / Σ_k S_k) / (B·H·W), ignore 255 (eq. 15 on the semantic map)."""
    logp = torch.log((S / S.sum(1, keepdim=True).clamp_min(1e-8)).clamp_min(1e-8))
    nll = F.nll_loss(logp, labels, reduction="none", ignore_index=IGNORE_INDEX)
    return (nll * weight).mean()


def mask_mass(model, images: torch.Tensor, out: dict) -> torch.Tensor:
    """Σ_q σ(m_q) on the input grid (B × H × W), through the same resize/crop as ``semantic_logits``:
    the semantic map of the same masks when every query is one class with probability 1."""
    logits = torch.zeros_like(out["pred_logits"][..., :2])
    logits[..., 1] = -1e4                                                   # column 1 = void: p = 0
    return model.semantic_logits(images, out={"pred_logits": logits, "pred_masks": out["pred_masks"]})[:, 0].float()


def unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 or [0, 1] float images → float [0, 1]."""
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


def init_path(path: str | Path) -> Path:
    """A source-only run directory or its ``final.safetensors`` → the weights file (clear error otherwise)."""
    p = Path(path).expanduser()
    p = p / "final.safetensors" if p.is_dir() else p
    if not p.is_file():
        raise FileNotFoundError(f"rein_a init: no source-only weights at {p} (give a finished run directory "
                                "or its final.safetensors; train one with recipe: supervised)")
    return p


def load_source_only(model, path: str | Path) -> None:
    """Copy a source-only run's trained tensors (Rein-G + decoder) into ``model``, strictly."""
    from ..checkpoint import load_tensors, load_trainable_state
    p = init_path(path)
    load_trainable_state(model, load_tensors(p)[0], f"rein_a init: {p}")


class ReinA(TeacherRecipe):
    """Source + ClassMix + masked-target branches, EMA teacher and the STM (Rein++ Algorithm 1)."""

    name = "rein_a"
    #: bounds checked with the config (dgsslib.engine.validation); types come from the annotations below
    option_ranges = {"alpha": (0, 1), "tau": (0, 1), "mix_weight": (0, None), "mask_weight": (0, None),
                     "mask_block": (1, None), "mask_ratio": (0, 1), "ignore_top": (0, None), "ignore_bottom": (0, None),
                     "slic_segments": (1, None), "slic_compactness": (0, None), "stm_warmup": (0, None)}
    streams = ("source", "target")
    summary_terms = ("pseudo_weight",)  # summary.pseudo_weight_mean: is the target supervision on at all?

    def __init__(self, alpha: float = 0.999, tau: float = 0.968, score: str = "mask_weighted",
                 mix: bool = True, mask: bool = True, stm: bool = True, mix_weight: float = 1.0,
                 mask_weight: float = 1.0, mix_ce: str = "normalized", mask_block: int = 32,
                 mask_ratio: float = 0.7, mask_q_weight: bool = False, ignore_top: int = 0, ignore_bottom: int = 0,
                 regions: str = "oracle", slic_segments: int = 48, slic_compactness: float = 10.0,
                 sam_checkpoint: str | None = None, sam_config: str = "configs/sam2.1/sam2.1_hiera_l.yaml",
                 init: str | None = None, mask_fill: str = "mean", mask_augment: bool = False,
                 paste_ignore: bool = True, stm_warmup: int = 0):
        if isinstance(stm_warmup, bool) or not isinstance(stm_warmup, int) or stm_warmup < 0:
            raise ValueError(f"stm_warmup must be a whole number of steps >= 0, got {stm_warmup!r}")
        if mask_fill not in ("mean", "black"):
            raise ValueError(f"mask_fill must be mean or black, got {mask_fill!r}")
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        if mix_ce not in ("normalized", "logits"):
            raise ValueError(f"mix_ce must be normalized or logits, got {mix_ce!r}")
        if regions not in REGION_SOURCES:
            raise ValueError(f"regions must be one of {REGION_SOURCES}, got {regions!r}")
        if not 0.0 <= float(alpha) < 1.0 or not 0.0 <= float(tau) <= 1.0 or not 0.0 <= float(mask_ratio) < 1.0:
            raise ValueError("need 0 <= alpha < 1, 0 <= tau <= 1, 0 <= mask_ratio < 1")
        super().__init__(alpha=float(alpha), tau=float(tau), score=score, mix=bool(mix), mask=bool(mask),
                         stm=bool(stm), mix_weight=float(mix_weight), mask_weight=float(mask_weight), mix_ce=mix_ce,
                         mask_block=int(mask_block), mask_ratio=float(mask_ratio), mask_q_weight=bool(mask_q_weight),
                         ignore_top=int(ignore_top), ignore_bottom=int(ignore_bottom), regions=regions,
                         slic_segments=int(slic_segments), slic_compactness=float(slic_compactness),
                         sam_checkpoint=sam_checkpoint, sam_config=sam_config, init=init, mask_fill=mask_fill,
                         mask_augment=bool(mask_augment), paste_ignore=bool(paste_ignore),
                         stm_warmup=int(stm_warmup))
        self.o = dict(self.options)
        self.teacher: EMATeacher | None = None
        self.sam = None

    # ------------------------------------------------------------------ setup
    def setup(self, model, cfg):
        if not getattr(model.head, "needs_pyramid", False) or not hasattr(model.head, "semantic_logits"):
            raise ValueError("recipe rein_a needs the mask-classification head (head: mask2former)")
        if self.o["init"]:  # Rein-G + decoder from the source-only run (strict: same method and head)
            load_source_only(model, self.o["init"])
        else:
            print("[dgsslib] rein_a: no init given: Rein-G and the decoder start untrained "
                  "(the paper starts from a source-only run; set recipe_options.init)", flush=True)
        if self.o["stm"]:
            from ..uda.stm import SemanticTransferModule
            opts = {k: v for k, v in cfg.get("head_options", {}).items()
                    if k not in ("num_queries", "query_source", "replace_query_feat", "num_classes", "hidden_dim")}
            nq = model.head.num_queries
            model.stm = SemanticTransferModule([model.vfm.embed_dim] * 4, nq, model.head.num_classes,
                                               model.head.hidden_dim, **opts).to(next(model.head.parameters()).device)
            if self.o["regions"] == "sam2":
                from ..uda.sam_regions import SAM2Regions
                self.sam = SAM2Regions(self.o["sam_checkpoint"], self.o["sam_config"])
        self.teacher = EMATeacher(model, self.o["alpha"], exclude=("stm.",))  # θ_t ← θ_s at the start

    # ------------------------------------------------------------------ helpers
    def region_map(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """B × H × W region ids of a batch (``labels`` are read only by the ``oracle`` stand-in)."""
        if self.o["regions"] == "oracle":
            if labels is None:
                raise ValueError("regions=oracle reads the renderer's labels of each crop; this target stream "
                                 "has none (use regions=slic or regions=sam2)")
            return oracle_regions(labels)
        if self.o["regions"] == "slic":
            return slic_regions(images, self.o["slic_segments"], self.o["slic_compactness"])
        return self.sam(images)

    def stm_forward(self, model, images, regions, feats=None):
        """M_stm[F_t(x), regions]: teacher features (no grad; ``feats`` if already computed), region
        masks on the model's canvas."""
        if feats is None:
            with torch.no_grad(), self.teacher.applied(model), self.autocast():
                feats = model.features(images)
        masks, valid = region_masks(regions, model.stm.num_queries)            # B × Q × H × W, B × Q
        masks = model.to_canvas(masks)                                          # empty outside the image
        with self.autocast():
            return model.stm(feats, masks, valid)

    def query_loss(self, out_m, targets, q):
        loss = query_losses(out_m["pred_logits"].float(), out_m["pred_masks"].float(), targets)["loss"]
        return loss * q.mean() if self.o["mask_q_weight"] else loss

    def mix_loss(self, S_mix, m):
        if self.o["mix_ce"] == "normalized":
            return normalized_nll(S_mix, m["label"], m["weight"])
        # S read as logits (bounded, minimum ~log K)
        return (F.cross_entropy(S_mix, m["label"], reduction="none", ignore_index=IGNORE_INDEX) * m["weight"]).mean()

    # ------------------------------------------------------------------ Algorithm 1
    def step(self, model, batches, step):
        o, g = self.o, self.generator
        src, tgt = batches["source"], batches["target"]
        xs, xt = unit(src["image"]), unit(tgt["image"])
        stm = o["stm"]
        stm_teaches = stm and step >= o["stm_warmup"]                          # eq. 17 + eq. 19 (after the warm-up)
        # 1. pseudo-labels from the teacher's queries (and the STM's, eq. 17), no gradient
        with torch.no_grad(), self.teacher.applied(model), self.autocast():
            feats_t = model.features(xt)
            out_t = model.head(feats_t, queries=model.method.queries())        # = model(xt), features kept
            S_t = model.semantic_logits(xt, out=out_t).float()
            mass = mask_mass(model, xt, out_t) if o["score"] == "mask_weighted" else None
        y_t, w_t, q = pseudo_labels(S_t, o["tau"], o["score"], o["ignore_top"], o["ignore_bottom"], mass=mass)
        terms = {"pseudo_weight": q.mean()}
        if stm:
            r_s, r_t = self.region_map(xs, src["label"]), self.region_map(xt, tgt.get("label"))
        if stm_teaches:
            with torch.no_grad():
                out_stm_t = self.stm_forward(model, xt, r_t, feats_t)
        # 2. source branch: the Hungarian mask-classification loss (eq. 14; STM: eq. 18)
        l_src = model.loss(self.forward(xs), src["label"], generator=g)["loss"]
        total = l_src
        terms["loss_source"] = l_src.detach()
        if stm:
            l = model.stm.loss(self.stm_forward(model, xs, r_s), model.canvas_labels(src["label"]), generator=g)["loss"]
            total = total + l
            terms["loss_stm_src"] = l.detach()
        # 3. mix branch: ClassMix + strong augmentation, pixel-level CE on the semantic map (eq. 15; STM: eq. 18)
        if o["mix"]:
            m = class_mix(xs, src["label"], xt, y_t, w_t, g, ignore_index=None if o["paste_ignore"] else IGNORE_INDEX)
            l = self.mix_loss(model.semantic_logits(m["image"], out=self.forward(m["image"])).float(), m)
            total = total + o["mix_weight"] * l
            terms["loss_mix"] = l.detach()
            if stm:
                out = self.stm_forward(model, m["image"], mix_region_maps(r_s, r_t, m["mask"]))
                l = self.mix_loss(model.semantic_logits(m["image"], out=out).float(), m)
                total = total + o["mix_weight"] * l
                terms["loss_stm_mix"] = l.detach()
        # 4. mask branch: the student on a block-masked target, query i vs the teacher's (eq. 16) / STM's (eq. 19) query i
        if o["mask"]:
            x = strong_augment(xt, g) if o["mask_augment"] else xt
            B, _, H, W = x.shape
            fill = model.vfm.mean.flatten() if o["mask_fill"] == "mean" else None  # [0, 1] mean colour -> 0 normalised
            x = apply_mask(x, block_mask((B, H, W), o["mask_block"], o["mask_ratio"], generator=g, device=x.device),
                           fill=fill)
            out_m = self.forward(x)
            l = self.query_loss(out_m, query_targets(out_t["pred_logits"].float(), out_t["pred_masks"].float()), q)
            total = total + o["mask_weight"] * l
            terms["loss_mask"] = l.detach()
            if stm_teaches:
                targets = query_targets(out_stm_t["pred_logits"].float(), out_stm_t["pred_masks"].float())
                l = self.query_loss(out_m, targets, q)
                total = total + o["mask_weight"] * l
                terms["loss_stm_mask"] = l.detach()
        terms["loss"] = total
        return terms
