"""FisherTune's training process (Algorithm 1) as a phased recipe over the one trainer.

Paper card: *FisherTune* (Zhao et al., CVPR 2025, arXiv 2503.17940), Algorithm 1::

    Step 1 (t < T1)            train the decoder on D, θ_VFM frozen                  phase "warmup"
    Step 2 (T1 <= t < T1+T2)   (x, y) ~ D;  x′ = DSU(x) (eq. 6)                        phase "estimate"
                               direct:      F(x) += g(x)²,  F(x′) += g(x′)²          (eq. 5/9, g = ∂L/∂θ)
                               variational: one SGVB step on q_x and on q_x′         (eq. 11, reparameterised)
                               no model update (the step returns loss=None)
                               at the last T2 step: DRF (eq. 7 / eq. 15) -> the method's ranking
    Step 3 (t >= T1+T2)        (x, y) ~ D;  select the top ρ(t) by DRF (eq. 16);     phase "tune"
                               update the selected θ_VFM and the decoder (eq. 1)

``t1`` / ``t2``: steps (int) or fractions of ``train.max_steps`` (float < 1); T3 = the rest.
The poly learning-rate schedule runs over all steps (the trainer's); the paper gives no T1/T2/T3
(our defaults: 20 % / 10 % / 70 %). Every phase resumes exactly: the T2 accumulators (or the two
posteriors and their Adam moments) are recipe state, the ranking is the method's buffer. x and
x′ use the same batch, labels and loss point sample (one generator state), so F(x) − F(x′) is
the effect of the perturbation alone; the two signs of an antithetic pair (variational estimator) also
see the same DSU draw, so ±ξ differ by the sign alone. Taught in ``notebooks/20_fishertune.ipynb``.
"""
from __future__ import annotations

import torch

from ..selection.fisher import FisherAccumulator, combine, part_summary
from .base import Recipe


def selector(model):
    """The selection method the phases drive: the model's method, or the selecting part of a method stack
    (:mod:`dgsslib.adapters.stack`: Rein-G tokens + FisherTune's elements)."""
    return getattr(model.method, "selector", None) or model.method


def candidate_median(maps: dict, cand: dict) -> float:
    """Median of per-element values over the candidate elements (exact, via kthvalue)."""
    vals = torch.cat([maps[n].float().cpu()[cand[n]] for n in cand])
    return float(vals.kthvalue(max(1, (vals.numel() + 1) // 2)).values)


def phase_steps(value, max_steps: int, name: str) -> int:
    v = float(value)
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(round(v * max_steps)) if (isinstance(value, float) and v < 1) else int(v)


def take_sample(out, i: int):
    """Sample ``i`` of a head's batched output (tensors sliced on dim 0; dicts and lists walked)."""
    if torch.is_tensor(out):
        return out[i:i + 1]
    if isinstance(out, dict):
        return {k: take_sample(v, i) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return type(out)(take_sample(v, i) for v in out)
    return out


class FisherTuneRecipe(Recipe):
    """T1 decoder warm-up -> T2 DR-FIM estimation -> T3 growing masked fine-tuning."""

    name = "fishertune"
    #: bounds checked with the config (dgsslib.engine.validation); types come from the annotations below
    option_ranges = {"t1": (0, None), "t2": (0, None)}
    streams = ("source",)

    def __init__(self, t1: float = 0.2, t2: float = 0.1):
        super().__init__(t1=t1, t2=t2)
        self.t1_opt, self.t2_opt = t1, t2
        self.t1 = self.t2 = 0
        self.acc: dict[str, FisherAccumulator] = {}
        self.post: dict = {}
        self.post_opt: dict = {}
        self.sensitivity: dict = {}

    # ------------------------------------------------------------------ setup
    def setup(self, model, cfg):
        method = selector(model)
        if method.set_scores is None:
            raise ValueError(f"recipe fishertune needs a selection method (fishertune, childtune), got {method.name!r}")
        T = int(cfg["train"]["max_steps"])
        self.t1, self.t2 = phase_steps(self.t1_opt, T, "t1"), phase_steps(self.t2_opt, T, "t2")
        if method.score != "random" and self.t2 < 1:
            raise ValueError("t2 must be >= 1 step: the estimation phase computes the selection")
        if self.t1 + self.t2 >= T:
            raise ValueError(f"t1 + t2 = {self.t1 + self.t2} leaves no fine-tuning step of max_steps = {T}")
        if torch.distributed.is_available() and torch.distributed.is_initialized() and \
                torch.distributed.get_world_size() > 1:
            raise ValueError("recipe fishertune runs on one process: its T2 accumulators are per process")
        method.set_schedule(self.t1, self.t2, T)
        self.model = model
        names = list(method.theta)
        self.needs_xp = method.score in ("drfim", "delta")
        if method.score == "random":  # nothing to estimate: the ranking is known before training
            method.set_scores(method.random_scores(seed=int(cfg.get("seed", 0))))
            return
        if method.estimator == "direct":
            self.acc = {"x": FisherAccumulator(names, clip=method.grad_clip)}
            if self.needs_xp:
                self.acc["xp"] = FisherAccumulator(names, clip=method.grad_clip)
        else:
            from ..selection.variational import GaussianPosterior
            means = {f"vfm.model.{n}": method.theta[n][0] for n in names}
            for key in (["x", "xp"] if self.needs_xp else ["x"]):
                self.post[key] = GaussianPosterior(means, init_std=method.init_std)
                self.post_opt[key] = torch.optim.Adam(self.post[key].parameters(), lr=method.sgvb_lr)

    def phase(self, step):
        return selector(self.model).phase_at(step)  # the method holds the schedule

    # ------------------------------------------------------------------ the algorithm box
    def step(self, model, batches, step):
        method, src = selector(model), batches["source"]
        method.clock = step
        if method.phase != "estimate":  # Step 1 / Step 3: the segmentation loss (eq. 1)
            out = model.loss(self.forward(src["image"]), src["label"], generator=self.generator)
            if method.phase == "tune":
                out["selected"] = method.count_at(step) / method.n_backbone
            return out
        terms = {"loss": None}
        if method.score == "random":
            return terms
        terms.update(self._estimate(model, src, step))
        if step == self.t1 + self.t2 - 1:
            method.set_scores(self.scores(model))
            self.acc, self.post, self.post_opt = {}, {}, {}
        return terms

    def _pass(self, key, model, src, step, gen_state, xi_state=None):
        """One clean (key "x") or DSU-perturbed ("xp") estimation pass; returns the data loss.

        ``gen_state``: the loss's point-sampling generator state, ``xi_state``: the SGVB noise's --
        both shared by x and x′, so the two estimates differ by the perturbation alone."""
        method = selector(model)
        g = torch.Generator().manual_seed(0)
        g.set_state(gen_state)  # the same loss point sample for x and x'
        dsu_seed = self.cfg.get("seed", 0) * 1_000_033 + step
        method.dsu.generator = torch.Generator().manual_seed(dsu_seed)
        method.dsu.active = key == "xp"
        try:
            if method.estimator == "direct":
                params = [method.theta[n][0] for n in method.theta]
                if method.fisher_samples == "per_sample":  # eq. 9: 1/N Σ_i g_i², one shared forward (DSU's
                    out, labels = self.forward(src["image"]), src["label"]  # batch statistics stay the batch's)
                    losses = []
                    for i in range(labels.shape[0]):
                        loss_i = model.loss(take_sample(out, i), labels[i:i + 1], generator=g)["loss"]
                        grads = torch.autograd.grad(loss_i, params, retain_graph=i < labels.shape[0] - 1)
                        self.acc[key].add(dict(zip(method.theta, grads)))
                        losses.append(loss_i.detach())
                    return torch.stack(losses).mean()
                loss = model.loss(self.forward(src["image"]), src["label"], generator=g)["loss"]
                grads = torch.autograd.grad(loss, params)
                self.acc[key].add(dict(zip(method.theta, grads)))
                return loss.detach()
            from ..selection.variational import sgvb_loss

            def data_loss(call):
                with self.autocast():
                    out = call(src["image"])
                return model.loss(out, src["label"], generator=g)["loss"]
            post, opt = self.post[key], self.post_opt[key]
            opt.zero_grad(set_to_none=True)
            signs = (1.0, -1.0) if method.antithetic else (1.0,)
            datas = []
            for sign in signs:  # the antithetic pair ±ξ from one noise state, on the same x′
                xi = torch.Generator().manual_seed(0)
                xi.set_state(xi_state)
                g.set_state(gen_state)
                method.dsu.generator = torch.Generator().manual_seed(dsu_seed)  # both signs: the same DSU draw
                total, data = sgvb_loss(model, post, data_loss, method.gamma, method.tau, generator=xi, sign=sign)
                (total / len(signs)).backward()
                datas.append(data)
            opt.step()
            return sum(datas) / len(datas)
        finally:
            method.dsu.active = False

    def _auto_gamma(self, model, src, state) -> float:
        """γ = τ²·median(g²) over the candidate elements, one clean batch (``gamma="auto"``)."""
        m = selector(model)
        g = torch.Generator().manual_seed(0)
        g.set_state(state)
        loss = model.loss(self.forward(src["image"]), src["label"], generator=g)["loss"]
        grads = torch.autograd.grad(loss, [m.theta[n][0] for n in m.theta])
        sq = {n: gr.detach().float().pow(2).cpu() for n, gr in zip(m.theta, grads)}
        return m.tau ** 2 * max(candidate_median(sq, m.cand), 1e-30)

    def _estimate(self, model, src, step):
        state = self.generator.get_state()
        xi_state = torch.Generator().manual_seed(self.cfg.get("seed", 0) * 2_000_003 + step).get_state()
        m = selector(model)
        if m.estimator == "variational" and m.gamma is None:
            m.gamma = self._auto_gamma(model, src, state)
        terms = {"fisher_loss_x": self._pass("x", model, src, step, state, xi_state)}
        if self.needs_xp:
            terms["fisher_loss_xp"] = self._pass("xp", model, src, step, state, xi_state)
        return terms

    def fisher_maps(self) -> tuple[dict, dict | None]:
        """(F(x), F(x′) or None) per θ tensor, from the accumulators or the posteriors (eq. 14)."""
        m = selector(self.model)
        if self.acc:
            return self.acc["x"].mean(), (self.acc["xp"].mean() if "xp" in self.acc else None)
        strip = lambda d: {k[len("vfm.model."):]: v.cpu() for k, v in d.items()}  # noqa: E731
        fx = strip(self.post["x"].fisher(m.gamma, m.tau))
        return fx, (strip(self.post["xp"].fisher(m.gamma, m.tau)) if "xp" in self.post else None)

    def scores(self, model) -> dict:
        m = selector(model)
        if m.score == "random":
            return m.random_scores()
        fx, fxp = self.fisher_maps()
        if m.damping == "auto":  # the median F over the candidates (= γ/τ² of the variational estimate)
            damping = m.gamma / m.tau ** 2 if m.estimator == "variational" else candidate_median(fx, m.cand)
        else:
            damping = m.damping + (m.gamma / m.tau ** 2 if m.estimator == "variational" else 0.0)
        self.damping = float(damping)
        kw = dict(weight=m.domain_weight, damping=damping, scale=m.scale)
        maps = {"F_x": fx}
        if fxp is not None:
            maps.update(F_xp=fxp, delta=combine("delta", fx, fxp, **kw), drfim=combine("drfim", fx, fxp, **kw))
        depth = len(m.vfm.model.blocks)  # Fig. 6: blocks × (Q, K, V, FFN) means, kept in every checkpoint
        self.sensitivity = {k: part_summary(v, m.theta, depth).tolist() for k, v in maps.items()}
        return combine(m.score, fx, fxp, **kw)

    def after_step(self, model, step):
        selector(model).clock = step + 1

    def state_meta(self):
        """γ (when "auto") and the Fig. 6 sensitivity summary: ``<ckpt>.json["recipe_state"]``."""
        return {"gamma": selector(self.model).gamma, "damping": getattr(self, "damping", None),
                "sensitivity": self.sensitivity}

    def load_state_meta(self, meta):
        if meta.get("gamma") is not None and selector(self.model).gamma_opt == "auto":
            selector(self.model).gamma = float(meta["gamma"])
        self.sensitivity = meta.get("sensitivity") or {}
        if meta.get("damping") is not None:
            self.damping = float(meta["damping"])

    # ------------------------------------------------------------------ resumable T2 state
    def state_tensors(self):
        out = {}
        for key, acc in self.acc.items():
            out.update(acc.state(f"acc_{key}"))
        for key, post in self.post.items():
            out.update({f"post_{key}.{k}": v.detach() for k, v in post.state_dict().items()})
            for i, st in self.post_opt[key].state_dict()["state"].items():
                out.update({f"adam_{key}.{i}.{s}": (v if torch.is_tensor(v) else torch.tensor(v)) for s, v in st.items()})
        return out

    def load_state_tensors(self, tensors):
        for key, acc in self.acc.items():
            acc.load(tensors, f"acc_{key}")
        for key, post in self.post.items():
            sd = {k[len(f"post_{key}."):]: v for k, v in tensors.items() if k.startswith(f"post_{key}.")}
            if sd:
                post.load_state_dict(sd)
            opt_sd = self.post_opt[key].state_dict()
            state: dict = {}
            for k, v in tensors.items():
                if k.startswith(f"adam_{key}."):
                    _, i, s = k.split(".")
                    state.setdefault(int(i), {})[s] = v
            opt_sd["state"] = state
            self.post_opt[key].load_state_dict(opt_sd)
        if selector(self.model).estimated:  # resumed in T3: the estimate is the method's ranking now
            self.acc, self.post, self.post_opt = {}, {}, {}
