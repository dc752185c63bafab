"""Load a user-supplied backbone checkpoint (.safetensors / .pth / .pt) strictly into a timm model.

Accepts a bare state dict or one nested under ``model`` / ``state_dict``; strips ``module.``,
``model.`` and ``backbone.`` prefixes (with ``backbone.``, non-backbone keys such as a decode head
are dropped and counted in the message). Keys and shapes are checked before anything is loaded,
so a failure leaves the model unchanged. ``.pth`` files load with ``weights_only=True`` unless
``trusted=True``. Used by ``load_vfm(name, weights="/path/to/ckpt")``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Tuple, Union

import torch
from torch import nn

_PREFIXES = ("module.", "model.", "backbone.")


def _unwrap(obj: Any) -> Mapping[str, torch.Tensor]:
    while isinstance(obj, Mapping):
        inner = next((obj[k] for k in ("state_dict", "model") if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            return obj
        obj = inner
    raise TypeError(f"checkpoint is a {type(obj).__name__}, expected a state dict (mapping of tensors)")


def _strip_prefixes(sd: Dict[str, torch.Tensor], model_keys: set) -> Tuple[Dict[str, torch.Tensor], int]:
    """Strip wrapper prefixes the model does not use; for ``backbone.`` keep only that sub-tree."""
    dropped, changed = 0, True
    while changed:
        changed = False
        for p in _PREFIXES:
            if any(k.startswith(p) for k in model_keys):
                continue
            hits = [k for k in sd if k.startswith(p)]
            if hits and (len(hits) == len(sd) or p == "backbone."):
                dropped += len(sd) - len(hits)
                sd = {k[len(p):]: sd[k] for k in hits}
                changed = True
    return sd, dropped


class CheckpointFileError(ValueError, RuntimeError):
    """A ``--weights`` file that is not a usable backbone checkpoint (a user error: one line, exit 2)."""


def load_user_checkpoint(path: Union[str, Path], model: nn.Module, *, trusted: bool = False) -> None:
    """Strictly load a .safetensors / .pth / .pt checkpoint into ``model``.

    Accepts a bare state dict or one nested under "model" / "state_dict"; strips the prefixes
    "module.", "model." and "backbone." (for "backbone." the other keys, e.g. a decode head, are
    dropped). ``trusted=True`` allows pickled non-tensor objects (torch.load weights_only=False).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from ..checkpoint import header_meta
        meta = header_meta(path)
        if meta and "config" in meta:  # a dgsslib run's trained tensors, not a backbone's weights
            raise CheckpointFileError(f"{path} is the trained state of a dgsslib run (adapter/head tensors, not "
                                      "backbone weights): continue that run with --resume, or start Rein-A from it "
                                      "with recipe_options.init")
        from safetensors.torch import load_file
        try:
            raw: Any = load_file(str(path))
        except Exception as e:  # safetensors' own error types for foreign or truncated files
            raise CheckpointFileError(f"{path} is not a readable safetensors file ({type(e).__name__}); give a "
                                      "backbone checkpoint (.safetensors, .pth or .pt)") from None
    else:
        try:
            raw = torch.load(path, map_location="cpu", weights_only=not trusted)
        except Exception as e:  # pickle refused by weights_only, or not a torch file at all
            first = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
            raise CheckpointFileError(f"could not load {path} with torch.load(weights_only={not trusted}): {first} "
                                      "(not a torch checkpoint? If it is one you trust, pass trusted=True)") from e
    sd = {k: v for k, v in _unwrap(raw).items() if isinstance(v, torch.Tensor)}
    model_keys = set(model.state_dict().keys())
    sd, dropped = _strip_prefixes(sd, model_keys)
    missing = sorted(model_keys - sd.keys())
    unexpected = sorted(sd.keys() - model_keys)
    if missing or unexpected:
        note = f" ({dropped} non-backbone keys were dropped)" if dropped else ""
        raise CheckpointFileError(
            f"checkpoint {path} does not match {type(model).__name__}{note}: "
            f"missing ({len(missing)}): {missing[:10]}, unexpected ({len(unexpected)}): {unexpected[:10]}")
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:  # keys match, so this is a shape mismatch
        first = str(e).strip().splitlines()
        raise CheckpointFileError(f"checkpoint {path} has tensors of the wrong shape for {type(model).__name__}: "
                                  f"{' '.join(x.strip() for x in first[:3])}") from None
