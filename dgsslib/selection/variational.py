"""Variational (SGVB) estimate of the diagonal Fisher information: FisherTune §3.3.2.

Paper card: *FisherTune: Fisher-Guided Robust Tuning of Vision Foundation Models for Domain
Generalized Segmentation*, CVPR 2025, arXiv 2503.17940. Posterior and prior over the tuned weights:

    q(θ) = N(θ̂, Λ⁻¹)          θ̂ = the current (warmed-up) weights, Λ diagonal here     (§3.3.2)
    p(θ) = N(θ_pt, τ² I)                                                               (eq. 10)
    L(θ̂, Λ⁻¹) = E_{θ~q}[L(θ)] + γ · KL(q ‖ p)                                          (eq. 11)
    E_q[L(θ)] ≈ L(θ̂) + ½ Tr(F Λ⁻¹)          (2nd-order Taylor, Hessian ≈ F)           (eq. 12)
    KL(q ‖ p) = ½ (τ⁻² Tr(Λ⁻¹) + τ⁻² ‖θ̂ − θ_pt‖² − k + k ln τ² + ln det Λ)            (eq. 13)
    ∂L/∂Λ⁻¹ = 0  ⇒  F = γ Λ − γ τ⁻² I,  i.e.  Λ* = F/γ + τ⁻²                           (eq. 14)
    DRF = γ(Λ_x − τ⁻²) + e^{−(ε_μ+ε_σ)} |Λ_x − Λ_x′| / (min(Λ_x, Λ_x′) + ε)           (eq. 15, our reading:
          the typeset trailing γ divides the whole second term, cancelling its outer γ -- our derivation, tested in tests/test_fisher_variational.py)

Per element with log-variance s (Λ = e^{−s}) the objective is, with ξ ~ N(0, I),

    L_s = L(θ̂ + e^{s/2} ⊙ ξ) + (γ/2) Σ [e^{s}/τ² − 1 + ln τ² − s + (θ̂ − θ_pt)²/τ²]

(reparameterisation trick, one Monte-Carlo sample per call); only s is optimised, θ̂ stays fixed.
``sign=-1`` draws the antithetic sample θ̂ − e^{s/2}⊙ξ from the same generator state: averaging the
pair cancels the first-order term g·ξ of the s-gradient, whose noise otherwise swamps the signal
½e^{s}·H when θ̂ is not a minimum (after a warm-up it is not) -- see the FisherTune recipe.
Its stationary point is e^{−s} = F/γ + τ⁻², so ``fisher()`` returns F̂ = γ(Λ − τ⁻²).

What it means: at the optimum γΛ = F + γ/τ², so eq. 15 reads F_x + e^{−(ε_μ+ε_σ)}|F_x − F_x′| /
(min(F_x, F_x′) + γ/τ²): the variational estimate adds a damping constant γ/τ² to DR-FIM's
denominator (plus SGVB's averaging over samples); only γ/τ² matters at the fixed point.
Taught in ``notebooks/20_fishertune.ipynb``.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call


def _key(name: str) -> str:
    return name.replace(".", "__")


def _check_positive(**values) -> None:
    for k, v in values.items():
        if not float(v) > 0:
            raise ValueError(f"{k} must be > 0, got {v}")


class GaussianPosterior(nn.Module):
    """q(θ) = N(θ̂, diag(e^{s})) over a dict of named tensors; s = per-element log-variance
    (nn.Parameters, one per name, in a ParameterDict with '.' replaced by '__' in keys).

    ``means`` are kept by reference (the live weights θ̂): not copied, not registered as
    parameters or buffers, so ``state_dict()`` holds only the log-variances."""

    def __init__(self, means: dict[str, Tensor], init_std: float = 1e-3):
        super().__init__()
        _check_positive(init_std=init_std)
        if not means:
            raise ValueError("means must name at least one tensor")
        keys = [_key(n) for n in means]
        if len(set(keys)) != len(keys):
            raise ValueError("two names in means collide once '.' is replaced by '__'")
        # plain dict attribute: nn.Module does not register it, the tensors are not duplicated
        self.means: dict[str, Tensor] = dict(means)
        bad = [n for n, t in means.items() if not t.is_floating_point()]
        if bad:
            raise ValueError(f"means must be floating-point tensors: {bad}")
        s0 = 2.0 * math.log(init_std)  # log-variance of the initial std
        self.log_var = nn.ParameterDict({
            _key(n): nn.Parameter(torch.full(t.shape, s0, dtype=t.dtype, device=t.device))
            for n, t in means.items()
        })

    def names(self) -> list[str]:
        return list(self.means)

    def log_variance(self, name: str) -> nn.Parameter:
        """s for the tensor called ``name`` (the nn.Parameter Adam updates)."""
        return self.log_var[_key(name)]

    def sample(self, generator: torch.Generator | None = None, sign: float = 1.0) -> dict[str, Tensor]:
        """θ = θ̂ + sign·e^{s/2} ⊙ ξ; ξ drawn on CPU (device-independent), differentiable w.r.t. s only."""
        out = {}
        for name, mu in self.means.items():
            s = self.log_variance(name)
            xi = torch.randn(mu.shape, generator=generator, dtype=s.dtype).to(s.device)
            out[name] = mu.detach() + float(sign) * torch.exp(0.5 * s) * xi
        return out

    def kl_term(self, gamma: float, tau: float, prior_means: dict[str, Tensor] | None = None) -> Tensor:
        """γ·KL(q ‖ N(θ_pt, τ²I)) = (γ/2)·Σ[e^{s}/τ² − 1 + ln τ² − s + (θ̂−θ_pt)²/τ²] (eq. 13).

        prior_means None: θ_pt = θ̂ (the distance term vanishes, as right after the warm-up)."""
        _check_positive(gamma=gamma, tau=tau)
        if prior_means is not None and set(prior_means) != set(self.means):
            raise ValueError(f"prior_means names {sorted(prior_means)} != posterior names {sorted(self.means)}")
        tau2 = float(tau) ** 2
        total = None
        for name, mu in self.means.items():
            s = self.log_variance(name)
            term = (torch.exp(s) / tau2 - 1.0 + math.log(tau2) - s).sum()
            if prior_means is not None:
                d = mu.detach().to(s) - prior_means[name].detach().to(s)
                term = term + (d * d).sum() / tau2
            total = term if total is None else total + term
        return 0.5 * float(gamma) * total

    def precision(self) -> dict[str, Tensor]:
        """Λ = e^{−s} per element, detached."""
        return {n: torch.exp(-self.log_variance(n).detach()) for n in self.means}

    def fisher(self, gamma: float, tau: float) -> dict[str, Tensor]:
        """F̂ = γ(Λ − τ⁻²) (eq. 14), detached. SGVB noise can leave Λ slightly below τ⁻² where the
        true F ≈ 0, which would give a (meaningless) negative Fisher: it is clamped at 0."""
        _check_positive(gamma=gamma, tau=tau)
        inv_tau2 = 1.0 / float(tau) ** 2
        return {n: (float(gamma) * (lam - inv_tau2)).clamp_min(0.0) for n, lam in self.precision().items()}


def sgvb_loss(module: nn.Module, posterior: GaussianPosterior, loss_fn: Callable[[Callable], Tensor],
              gamma: float, tau: float, generator: torch.Generator | None = None,
              prior_means: dict[str, Tensor] | None = None, sign: float = 1.0) -> tuple[Tensor, Tensor]:
    """One SGVB sample of eq. 11: params = posterior.sample(generator) substituted into ``module``
    via torch.func.functional_call.

    loss_fn(call): ``call(*args, **kw)`` runs the module with the sampled weights and loss_fn
    returns the scalar data loss (so the caller controls inputs and labels).
    Returns (total = data_loss + kl_term, data_loss.detach()). Only the posterior's s receives
    gradients: every other parameter of ``module`` enters detached."""
    _check_positive(gamma=gamma, tau=tau)
    own = dict(module.named_parameters())
    missing = [n for n in posterior.names() if n not in own]
    if missing:
        raise ValueError(f"posterior names not among module's parameters: {missing[:5]}")
    params = {n: p.detach() for n, p in own.items()}
    params.update(posterior.sample(generator, sign=sign))

    def call(*args, **kwargs):
        return functional_call(module, params, args, kwargs)

    data_loss = loss_fn(call)
    if not isinstance(data_loss, Tensor) or data_loss.dim() != 0:
        raise ValueError("loss_fn must return a scalar tensor")
    return data_loss + posterior.kl_term(gamma, tau, prior_means), data_loss.detach()
