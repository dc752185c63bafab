"""The VFM wrapper: every family builds with random weights, taps and hooks behave."""
import pytest
import torch

from dgsslib.backbones import BACKBONES, get_spec, load_vfm

# real configs with reduced depth where memory demands (2 cores, 24 GB)
FAMILIES = [("tiny", {}), ("dinov2_s", {}), ("dinov2_s_reg4", {}), ("dinov2_b", dict(depth=4)),
            ("dinov2_l", dict(depth=4)), ("dinov2_g", dict(depth=4)), ("dinov2_l_reg4", dict(depth=4)),
            ("eva02_l", dict(depth=4)), ("clip_l", dict(depth=4)), ("sam_h", dict(depth=4, img_size=112)),
            ("mae_h", dict(depth=4))]


class Recorder:
    def __init__(self):
        self.calls = []

    def after_block(self, i, tokens, grid_hw):
        self.calls.append((i, tuple(tokens.shape), grid_hw))
        return tokens


@pytest.mark.parametrize("name,kw", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_family_builds_and_taps(name, kw):
    spec = get_spec(name)
    vfm = load_vfm(name, weights="none", verbose=False, **kw)
    assert vfm.embed_dim == vfm.model.embed_dim
    rec = Recorder()
    x = torch.rand(2, 3, 56, 112)
    with torch.no_grad():
        taps = vfm.forward_features(x, [rec])
    h, w = -(-56 // spec.patch_size), -(-112 // spec.patch_size)  # ceil: padded to the patch grid
    assert len(taps) == 4
    for t in taps:
        assert t.shape == (2, vfm.model.embed_dim, h, w)
    # hooks called once per hooked block, in order, with the patch tokens only
    assert [c[0] for c in rec.calls] == list(vfm.hook_layers)
    assert all(c[1] == (2, h * w, vfm.model.embed_dim) for c in rec.calls)
    assert all(c[2] == (h, w) for c in rec.calls)


def test_prefix_tokens_untouched_and_taps_after_hook():
    vfm = load_vfm("dinov2_s_reg4", weights="none", depth=2, verbose=False)
    assert vfm.num_prefix_tokens == 5  # cls + 4 registers
    seen = {}

    class AddOne:
        def after_block(self, i, tokens, grid_hw):
            return tokens + 1.0

    class Spy:
        wants_prefix = True

        def after_block(self, i, tokens, grid_hw):
            seen[i] = tokens.clone()
            return tokens

    x = torch.rand(1, 3, 28, 28)
    with torch.no_grad():
        base = vfm.forward_features(x, [Spy()])
        prefix_base = {i: t[:, :5].clone() for i, t in seen.items()}
        out = vfm.forward_features(x, [AddOne(), Spy()])
    # block 0's prefix tokens are identical (hook only touched patches); patches moved by +1
    assert torch.equal(seen[0][:, :5], prefix_base[0])
    last = vfm.out_indices[-1]
    assert torch.allclose(seen[last][:, 5:].transpose(1, 2).reshape(out[-1].shape), out[-1])
    assert not torch.allclose(out[-1], base[-1])


def test_prompt_tokens_are_inserted_and_dropped():
    vfm = load_vfm("tiny", weights="none", verbose=False)
    lengths = []

    class Prompt:
        def prompt_tokens(self, i, batch):
            return torch.zeros(batch, 3, vfm.model.embed_dim)

    class Len:
        wants_prefix = True

        def after_block(self, i, tokens, grid_hw):
            lengths.append(tokens.shape[1])
            return tokens

    with torch.no_grad():
        a = vfm.forward_features(torch.rand(1, 3, 28, 28), [Prompt(), Len()])
    assert lengths == [1 + 4] * vfm.depth  # prompts removed after each block
    assert a[0].shape == (1, 64, 2, 2)


def test_eva_rope_with_prompts():
    vfm = load_vfm("eva02_l", weights="none", depth=2, verbose=False)

    class Prompt:
        def prompt_tokens(self, i, batch):
            return torch.zeros(batch, 2, vfm.model.embed_dim)

    with torch.no_grad():
        taps = vfm.forward_features(torch.rand(1, 3, 28, 42), [Prompt()])
    assert taps[0].shape == (1, 1024, 2, 3) and torch.isfinite(taps[0]).all()


@pytest.mark.parametrize("mode", ["pad", "resize"])
def test_non_multiple_sizes(mode):
    vfm = load_vfm("tiny", weights="none", pad_mode=mode, verbose=False)
    x = torch.rand(1, 3, 30, 45)
    taps = vfm.forward_features(x)
    expect = (3, 4) if mode == "pad" else (2, 3)  # ceil vs round of 30/14, 45/14
    assert taps[0].shape[-2:] == expect
    from dgsslib.adapters import build_method
    from dgsslib.heads import build_head
    from dgsslib.model import SegModel
    model = SegModel(vfm, build_method("freeze"), build_head("linear", [vfm.embed_dim] * 4)).eval()
    assert model.semantic_logits(x).shape[-2:] == (30, 45)  # logits come back at the input size


def test_uint8_and_float_inputs_agree():
    vfm = load_vfm("tiny", weights="none", verbose=False)
    img = torch.randint(0, 256, (1, 3, 28, 28), dtype=torch.uint8)
    with torch.no_grad():
        a = vfm.forward_features(img)[0]
        b = vfm.forward_features(img.float() / 255)[0]
    assert torch.allclose(a, b, atol=1e-5)


def test_bad_names_and_sources():
    with pytest.raises(ValueError, match="dinov2_l"):
        load_vfm("dinov3_l", weights="none")
    from dgsslib.backbones.weights import WeightsUnavailable
    with pytest.raises(WeightsUnavailable, match="only dinov2_s"):
        load_vfm("clip_l", weights="offline", depth=2, verbose=False)


def test_hub_fails_fast_offline(monkeypatch):
    import time
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from dgsslib.backbones.weights import WeightsUnavailable
    t = time.time()
    with pytest.raises(WeightsUnavailable, match="alternatives"):
        load_vfm("mae_h", weights="hub", depth=2, verbose=False)
    assert time.time() - t < 10


def test_registry_matches_timm_configs():
    """Short names point at timm models whose real width/depth the registry states."""
    import timm
    for name, spec in BACKBONES.items():
        if name == "tiny":
            continue
        with torch.device("meta"):
            m = timm.create_model(spec.timm_name, pretrained=False, num_classes=0)
        assert m.embed_dim == spec.embed_dim, name
        assert len(m.blocks) == spec.depth, name
        assert max(spec.out_indices) == spec.depth - 1, name
