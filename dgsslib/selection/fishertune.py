"""FisherTune: train the backbone elements with the highest domain-related Fisher information.

Paper card: *FisherTune: Fisher-Guided Robust Tuning of Vision Foundation Models for Domain
Generalized Segmentation* (Zhao et al., CVPR 2025, arXiv 2503.17940; no public code -- this is
a first implementation). Algorithm 1:

    T1  warm up the decoder, VFM frozen
    T2  per batch: x′ = DSU(x) (eq. 6); estimate F(x), F(x′) -- directly (eq. 5/9) or by the
        variational posterior (eq. 11–15); DRF = F(x) + e^{−(ε_μ+ε_σ)}·|F(x) − F(x′)| / (min + ε)
    T3  train the top ρ(t) of θ = {Q, K, V, FFN} by DRF (eq. 16, growing) and the decoder (eq. 1)

This file is the *method* (which elements train at step t, stored how); the phases are the recipe
:mod:`dgsslib.recipes.fishertune`, the estimators :mod:`dgsslib.selection.fisher` /
:mod:`~dgsslib.selection.variational`, the schedule :mod:`~dgsslib.selection.schedule`, x′
:mod:`dgsslib.selection.perturb`. Options (defaults = our reading where the paper is silent):

- ``budget`` 0.05: δ_max, a fraction of *all* backbone parameters (Table 1's 15.21M = 5.0 % of
  ViT-L's 304.2M), or an element count when > 1 (``budget=15.21e6`` gives Table 1's count on
  SAM-H/MAE-H too); ``delta_min`` 0.01 (δ_min); ``schedule`` exp | printed_growing | linear | fixed.
- ``score``: drfim (the method) | fim (F only) | delta (the domain term only) | random (Table 4);
  ``estimator``: variational (eq. 11–15, the paper's) | direct (squared gradients);
  ``targets`` "q,k,v,ffn" (eq. 3); "q,k,v" gives Table 4's Q/K/V-only rows.
- ``gamma``, ``tau``: the prior weight and std of eq. 10–11. At the optimum Λ* = F/γ + τ⁻², so
  F is only visible in the SGVB estimate when F/γ is comparable to τ⁻², i.e. γ/τ² ~ F (γ/τ² is also
  the damping DR-FIM's denominator gets). The paper gives neither value; ``gamma="auto"`` (default)
  sets γ = τ²·median(g²) from the first T2 batch's squared gradients, so γ/τ² is the typical F;
  τ = 1e-3 (5 % of ViT weights' std 0.02, where eq. 12's second-order Taylor step still holds).
  ``init_std`` None = τ (the posterior starts at the prior); ``sgvb_lr`` the posterior's Adam lr;
  ``antithetic`` True: each SGVB step averages the pair ±ξ (one ξ shared by x and x′).
- ``damping``: ε of eq. 7. The paper prints 1e-8; with it the ratio |F_x − F_x′|/min explodes for
  elements whose F is ~0 (pure estimation noise), so the default ``"auto"`` damps at the median of
  F_x over the candidates -- what the variational estimate implies anyway (γ/τ² with auto γ), so
  both estimators rank with the same damping; ``damping=1e-8`` is the literal formula.
  ``scale`` mean (default: each term over its global mean before the sum) | none (eq. 7's literal sum).
  Literally, the domain term (O(0.1–1)) swamps F (~1e-6 on the mini model), so DR-FIM's top 5 % is
  exactly ΔF-only's (overlap 1.000 at damping 1e-8 or the median) and Table 4's DR-FIM and ΔF rows
  would be one selection -- the paper reports them apart (64.5 vs 67.7 on ACDC), so its two terms must
  have been on comparable scales; ``mean`` puts them there (notebook 20 measures the overlaps).
- ``seed`` None: the run's seed (Random's mask changes with the seed, as the other rows' data do).
- ``dsu_factor`` 1.0, ``dsu_blocks`` "" (x′ after patch + position embedding only; e.g. "5,11").
- ``lr_mult`` 0.1: selected backbone elements at 0.1× the decoder's lr (Rein's full-FT practice).

Known simplification: AdamW keeps one step count per tensor, so an element admitted late in T3
starts with zero moments under the tensor's bias correction (its first updates are up to ~3× lr
once 1 − β₂ᵗ ≈ 1; Child-Tuning and FISH behave the same). Multi-GPU estimation is refused (the
accumulators are per process).

Gradients *and* decoupled weight decay are masked (:mod:`dgsslib.optim`), so unselected elements
never move; the decoder always trains. Checkpoints keep only the ranking and the values (and
AdamW moments) of the top-δ_max elements (:meth:`pack_state`): 5 % of DINOv2-L is ~0.12 GB
instead of Full's 1.22 GB. Taught in ``notebooks/20_fishertune.ipynb``.
"""
from __future__ import annotations

import torch
from torch import nn

from ..adapters.base import Method
from .perturb import DSU, domain_weight
from .fisher import candidate_masks, parse_parts, theta_tensors
from .schedule import SHAPES, selected_count

SCORES = ("drfim", "fim", "delta", "random")
ESTIMATORS = ("variational", "direct")
PREFIX = "vfm.model."  # the backbone's parameter names inside SegModel


#: the direct estimator's squared gradients: of the batch-mean loss (``batch``, Child-Tuning-D's form) or of
#: every sample's loss from the same forward (``per_sample``, eq. 9's 1/N Σ_i g_i², FISH's batch-size-1 form)
FISHER_SAMPLES = ("batch", "per_sample")


class FisherTune(Method):
    """Element-wise selection of θ = {Q, K, V, FFN} by DR-FIM, growing from δ_min to δ_max."""

    name = "fishertune"
    #: bounds checked with the config (dgsslib.engine.validation); types come from the annotations below
    option_ranges = {"budget": (0, None), "delta_min": (0, 1), "tau": (0, None), "sgvb_lr": (0, None),
                     "init_std": (0, None), "damping": (0, None), "dsu_factor": (0, None), "lr_mult": (0, None),
                     "seed": (0, None), "grad_clip": (0, None), "gamma": (0, None)}
    default_recipe = "fishertune"
    requires_recipe = ("fishertune",)

    def __init__(self, budget: float = 0.05, delta_min: float = 0.01, schedule: str = "exp",
                 score: str = "drfim", estimator: str = "variational", targets: str = "q,k,v,ffn",
                 gamma: float | str = "auto", tau: float = 1e-3, sgvb_lr: float = 0.05, init_std: float | None = None,
                 damping: float | str = "auto", scale: str = "mean", dsu_factor: float = 1.0, dsu_blocks: str = "",
                 lr_mult: float = 0.1, seed: int | None = None, grad_clip: float | None = None,
                 antithetic: bool = True, fisher_samples: str = "batch", schedule_steps: str = "total"):
        if schedule_steps not in ("t3", "total"):
            raise ValueError(f"schedule_steps must be t3 or total (eq. 16's T), got {schedule_steps!r}")
        if fisher_samples not in FISHER_SAMPLES:
            raise ValueError(f"fisher_samples must be one of {FISHER_SAMPLES}, got {fisher_samples!r}")
        if not float(budget) > 0:
            raise ValueError(f"budget must be > 0 (a fraction <= 1 or an element count), got {budget}")
        if float(budget) > 1 and float(budget) != int(float(budget)):
            raise ValueError(f"budget {budget}: a fraction of the backbone must be <= 1 (0.05 = 5 %), and a value "
                             "> 1 is an element count, a whole number (15.21e6 = Table 1's 15.21M)")
        if schedule not in SHAPES:
            raise ValueError(f"schedule must be one of {SHAPES}, got {schedule!r}")
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        if gamma != "auto" and not float(gamma) > 0:
            raise ValueError(f"gamma must be > 0 or 'auto', got {gamma!r}")
        init_std = float(tau) if init_std is None else init_std
        for key, val in (("tau", tau), ("sgvb_lr", sgvb_lr), ("init_std", init_std), ("lr_mult", lr_mult)):
            if not float(val) > 0:
                raise ValueError(f"{key} must be > 0, got {val}")
        if (damping != "auto" and not float(damping) >= 0) or not float(dsu_factor) >= 0:
            raise ValueError(f"damping ('auto' or >= 0) and dsu_factor (>= 0) got {damping!r}, {dsu_factor!r}")
        if scale not in ("none", "mean"):
            raise ValueError(f"scale must be none or mean, got {scale!r}")
        parts = parse_parts(targets)
        blocks = tuple(int(b) for b in str(dsu_blocks).replace(" ", "").split(",") if b != "")
        super().__init__(budget=float(budget), delta_min=float(delta_min), schedule=schedule, score=score,
                         estimator=estimator, targets=",".join(parts), gamma=gamma if gamma == "auto" else float(gamma), tau=float(tau),
                         sgvb_lr=float(sgvb_lr), init_std=float(init_std),
                         damping=damping if damping == "auto" else float(damping), scale=scale,
                         dsu_factor=float(dsu_factor), dsu_blocks=",".join(map(str, blocks)), lr_mult=float(lr_mult),
                         seed=seed if seed is None else int(seed), grad_clip=grad_clip, antithetic=bool(antithetic),
                         fisher_samples=fisher_samples, schedule_steps=schedule_steps)
        self.fisher_samples, self.schedule_steps = fisher_samples, schedule_steps
        self.budget, self.delta_min, self.schedule = float(budget), float(delta_min), schedule
        self.score, self.estimator, self.parts = score, estimator, parts
        self.gamma_opt = gamma if gamma == "auto" else float(gamma)
        self.gamma = None if gamma == "auto" else float(gamma)  # "auto": set by the recipe at T2's first batch
        self.tau, self.sgvb_lr, self.init_std = float(tau), float(sgvb_lr), float(init_std)
        self.damping = damping if damping == "auto" else float(damping)
        self.scale, self.seed, self.antithetic = scale, (None if seed is None else int(seed)), bool(antithetic)
        self.grad_clip = None if grad_clip is None else float(grad_clip)
        self.backbone_lr_mult = float(lr_mult)
        self.dsu = DSU(p=1.0, factor=float(dsu_factor), embed=True, blocks=blocks)
        self.domain_weight = domain_weight(float(dsu_factor), float(dsu_factor))
        # Algorithm 1's schedule (set by the recipe, :meth:`set_schedule`) and the step it is at (the
        # recipe's clock): the phase is computed here and nowhere else
        self.warmup_steps, self.tune_start, self.tune_steps, self.max_steps = 0, 0, 1, 1
        self.clock: int | None = None
        self._cache: tuple | None = None

    # ------------------------------------------------------------------ attach
    def attach(self, vfm) -> "FisherTune":
        super().attach(vfm)
        theta = theta_tensors(vfm)
        self.cand = candidate_masks(theta, self.parts)          # name -> bool mask (chosen rows)
        self.theta = {n: theta[n] for n in self.cand}
        self.n_backbone = sum(p.numel() for p in vfm.model.parameters())
        self.k_max = int(round(self.budget * self.n_backbone)) if self.budget <= 1 else int(round(self.budget))
        self.delta_max = self.k_max / self.n_backbone
        n_cand = sum(int(m.sum()) for m in self.cand.values())
        if self.k_max > n_cand:
            raise ValueError(f"budget {self.k_max:,} exceeds the {n_cand:,} candidate elements of {self.parts}")
        if self.delta_min > self.delta_max:
            raise ValueError(f"delta_min {self.delta_min} > delta_max {self.delta_max:.4f} (the budget)")
        self.offsets, pos = {}, 0
        for n, (w, _) in self.theta.items():
            self.offsets[n] = (pos, w.numel())
            pos += w.numel()
        dtype = torch.int32 if pos < 2 ** 31 else torch.int64
        device = next(iter(self.theta.values()))[0].device
        # the ranking: global flat indices of the top-δ_max elements, best first (-1 = not estimated)
        self.register_buffer("order", torch.full((self.k_max,), -1, dtype=dtype, device=device))
        for w, _ in self.theta.values():
            w.requires_grad_(True)
        return self

    # ------------------------------------------------------------------ Algorithm 1's phases
    def set_schedule(self, t1: int, t2: int, max_steps: int) -> None:
        """T1 warm-up steps, T2 estimation steps, the rest (max_steps − T1 − T2) masked fine-tuning."""
        self.warmup_steps, self.tune_start, self.tune_steps = t1, t1 + t2, max_steps - t1 - t2
        self.max_steps = max_steps

    def phase_at(self, step: int) -> str:
        """``warmup`` (t < T1) | ``estimate`` (T1 ≤ t < T1+T2) | ``tune``."""
        return "warmup" if step < self.warmup_steps else "estimate" if step < self.tune_start else "tune"

    @property
    def phase(self) -> str:
        """The phase at the recipe's clock (``tune`` outside a phased run)."""
        return "tune" if self.clock is None else self.phase_at(self.clock)

    @property
    def backbone_no_grad(self) -> bool:  # T1: the VFM runs frozen (decoder warm-up)
        return self.phase == "warmup"

    # ------------------------------------------------------------------ what trains
    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        return {f"backbone.{n}": w for n, (w, _) in self.theta.items()}

    def num_trainable(self) -> int:
        """δ_max of the backbone, the papers' count (the budget, not the tensors holding it)."""
        return self.k_max

    def selection_parameters(self) -> list[nn.Parameter]:
        return [w for w, _ in self.theta.values()]

    def hooks(self) -> list:
        return [self.dsu]

    @property
    def estimated(self) -> bool:
        if self.order.is_meta or not self.order.numel():  # counting parameters on the meta device
            return False
        return int(self.order[0]) >= 0

    def count_at(self, step: int) -> int:
        """Elements selected at training step ``step`` (0 before T3 or before the estimate)."""
        if step < self.tune_start or not self.estimated:
            return 0
        if self.schedule_steps == "total":  # eq. 16's T: every training step, t the global step
            k = selected_count(step, self.max_steps, self.n_backbone, self.delta_min, self.delta_max, self.schedule)
        else:                               # T3: t counted from the first fine-tuning step
            k = selected_count(step - self.tune_start, self.tune_steps, self.n_backbone, self.delta_min,
                               self.delta_max, self.schedule)
        return min(k, self.k_max)

    def masks_for(self, k: int) -> dict[str, torch.Tensor]:
        """name -> 0/1 float mask (a view of one flat buffer) of the first ``k`` ranked elements.

        Nested in k: growing k only sets the newly admitted elements (no rebuild per step)."""
        if self._cache is None or k < self._cache[0]:
            total = sum(n for _, n in self.offsets.values())
            flat = torch.zeros(total, device=self.order.device)
            views = {n: flat[o:o + c].view_as(self.theta[n][0]) for n, (o, c) in self.offsets.items()}
            self._cache = (0, views, flat)
        k0, views, flat = self._cache
        if k > k0:
            flat[self.order[k0:k].long()] = 1.0
        self._cache = (k, views, flat)
        return views

    def grad_masks(self, step=None):
        k = self.count_at(int(step)) if step is not None else self.k_max * int(self.estimated)
        return {self.theta[n][0]: m for n, m in self.masks_for(k).items()}

    # ------------------------------------------------------------------ the selection
    def set_scores(self, scores: dict[str, torch.Tensor]) -> None:
        """Rank every candidate element by ``scores`` (name -> tensor of the weight's shape)."""
        missing = sorted(set(self.theta) - set(scores))
        if missing:
            raise ValueError(f"scores missing for {missing[:4]}")
        flat = torch.cat([torch.where(self.cand[n], scores[n].float().cpu(), torch.tensor(float("-inf"))).flatten()
                          for n in self.theta])
        top = torch.topk(flat, self.k_max, sorted=True).indices  # descending score
        self.order.copy_(top.to(self.order.dtype).to(self.order.device))
        self._cache = None

    def random_scores(self, seed: int = 0) -> dict[str, torch.Tensor]:
        """Table 4's Random baseline: a seeded uniform score per element (``seed`` option, else ``seed``)."""
        g = torch.Generator().manual_seed(self.seed if self.seed is not None else int(seed))
        return {n: torch.rand(w.shape, generator=g) for n, (w, _) in self.theta.items()}

    def selected_indices(self) -> dict[str, torch.Tensor]:
        """name -> sorted flat indices (int64) of its top-δ_max elements."""
        order = self.order.long().cpu()
        out = {}
        for n, (o, c) in self.offsets.items():
            sel = order[(order >= o) & (order < o + c)] - o
            out[n] = sel.sort().values
        return out

    # ------------------------------------------------------------------ small checkpoints
    def pack_state(self, tensors):
        """Full weight/moment tensors of θ -> their top-δ_max elements only (``<key>@sel``)."""
        if not self.estimated:  # nothing has moved yet: the pretrained weights are not stored
            return {k: v for k, v in tensors.items() if not self._theta_key(k)}
        idx = self.selected_indices()
        out = {}
        for k, v in tensors.items():
            name = self._theta_key(k)
            if name is None or v.dim() == 0:
                out[k] = v
            else:
                out[k + "@sel"] = v.detach().reshape(-1)[idx[name].to(v.device)].clone()
        return out

    def unpack_state(self, tensors):
        order = tensors.get("model.method.order")
        if order is not None:
            self.order.copy_(order.to(self.order.device, self.order.dtype))
            self._cache = None
        idx = self.selected_indices() if self.estimated else {}
        out = {k: v for k, v in tensors.items() if not k.endswith("@sel")}
        for n, (w, _) in self.theta.items():
            key = "model." + PREFIX + n
            if key + "@sel" in tensors:
                full = w.detach().clone()  # unselected elements never move: the model's own values
                full.view(-1)[idx[n].to(full.device)] = tensors[key + "@sel"].to(full.device, full.dtype)
                out[key] = full
            elif key not in tensors:
                out[key] = w.detach().clone()
        for k, v in tensors.items():
            if k.startswith("optim.") and k.endswith("@sel"):
                base = k[: -len("@sel")]
                name = self._theta_key(base)
                full = torch.zeros(self.theta[name][0].shape, dtype=v.dtype, device=v.device)
                full.view(-1)[idx[name].to(v.device)] = v
                out[base] = full
        return out

    def _theta_key(self, key: str) -> str | None:
        """``model.vfm.model.<θ name>`` or ``optim.vfm.model.<θ name>.<slot>`` -> the θ name."""
        for head in ("model." + PREFIX, "optim." + PREFIX):
            if key.startswith(head):
                rest = key[len(head):]
                if rest in self.theta:
                    return rest
                base = rest.rsplit(".", 1)[0]
                if head.startswith("optim") and base in self.theta:
                    return base
        return None
