"""The shared pieces that replaced copies: one config-layering rule, one strict loader of trainable
state, one canvas rule, one test-scale validator, the Mask2Former loss terms, the EMA-teacher recipe
base and the optional hooks declared on the method base class."""
import pytest
import torch
import torch.nn.functional as F

from dgsslib.adapters.base import Method
from dgsslib.checkpoint import CheckpointMismatch, load_trainable_state
from dgsslib.engine.validation import validate
from dgsslib.heads.mask2former.criterion import class_ce, dice_per_mask
from dgsslib.model import build_model
from dgsslib.notebook import variant
from dgsslib.profiles import ConfigError, check_notebook_params, dotted_to_nested, merge, resolve
from dgsslib.recipes.ema import TeacherRecipe
from dgsslib.recipes.rein_a import ReinA
from dgsslib.recipes.self_training import SelfTraining


def test_dotted_options_add_and_a_whole_mapping_replaces():
    cfg = resolve("smoke", {"recipe_options": {"t1": 15, "t2": 5}})
    assert merge(cfg, dotted_to_nested({"recipe_options.t2": 40}))["recipe_options"] == {"t1": 15, "t2": 40}
    assert merge(cfg, {"recipe_options": {"t2": 40}})["recipe_options"] == {"t2": 40}
    assert variant(cfg, **{"recipe_options.t1": 1})["recipe_options"] == {"t1": 1, "t2": 5}
    assert variant(cfg, recipe_options={})["recipe_options"] == {}
    assert check_notebook_params("smoke", 0, {"method_options.r": 4})["method_options"] == {"r": 4}


def test_a_method_brings_its_recipe_in_the_notebook_path_as_in_the_cli():
    cfg = resolve("smoke")
    assert variant(cfg, method="fishertune")["recipe"] == "fishertune"
    assert variant(cfg, method="fishertune", recipe="supervised")["recipe"] == "supervised"
    assert check_notebook_params("smoke", 0, {"method": "vfmseg"})["recipe"] == "vfmseg"
    assert variant(cfg, method="lora")["recipe"] == "supervised"


def test_one_test_scale_rule():
    cfg = resolve("smoke", {"eval": {"test_scale": [1024, 2048], "test_scales": {"bdd": [720, 1280]}}})
    out = validate(cfg)
    assert out["eval"]["test_scale"] == [2048, 1024] and out["eval"]["test_scales"]["bdd"] == [1280, 720]
    with pytest.raises(ConfigError, match="long, short"):
        validate(resolve("smoke", {"eval": {"test_scale": [0, 5]}}))


def test_one_strict_loader_of_trainable_state():
    cfg = resolve("smoke", {"method": "lora"})
    torch.manual_seed(0)
    a, b = build_model(cfg, verbose=False), build_model(cfg, verbose=False)
    with torch.no_grad():
        for t in a.trainable_state().values():
            t.add_(1)
    bare = {k: v.clone() for k, v in a.trainable_state().items()}  # final.safetensors: bare names
    load_trainable_state(b, bare, "test")
    assert all(torch.equal(b.trainable_state()[k], v) for k, v in bare.items())
    with pytest.raises(CheckpointMismatch, match="does not fit"):
        load_trainable_state(b, {k: v for k, v in list(bare.items())[1:]}, "test")
    k0 = next(iter(bare))
    with pytest.raises(CheckpointMismatch, match="shape"):
        load_trainable_state(b, {**bare, k0: torch.zeros(3)}, "test")


def test_one_canvas_rule_for_labels_and_masks():
    model = build_model(resolve("smoke"), verbose=False)
    p = model.vfm.patch_size
    labels = torch.randint(0, 19, (2, p + 3, 2 * p))
    masks = torch.rand(2, 5, p + 3, 2 * p)
    ch, cw = model.canvas_size(labels.shape[-2:])
    assert (ch, cw) == (2 * p, 2 * p)
    lab = model.canvas_labels(labels)
    assert lab.shape[-2:] == (ch, cw) and torch.equal(lab[:, : p + 3], labels) and (lab[:, p + 3:] == 255).all()
    m = model.to_canvas(masks)
    assert torch.equal(m[:, :, : p + 3], masks) and (m[:, :, p + 3:] == 0).all()
    model.vfm.pad_mode = "resize"
    size = model.canvas_size(masks.shape[-2:])
    assert torch.equal(model.to_canvas(masks), F.interpolate(masks, size=size, mode="nearest"))


def test_mask2former_loss_terms_against_a_direct_computation():
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(2, 3, 5, generator=g), torch.tensor([[0, 4, 2], [4, 4, 1]])
    w = [1.0, 1.0, 1.0, 1.0, 0.1]
    num = sum(-w[t] * torch.log_softmax(logits[b, q], -1)[t] for b in range(2) for q in range(3)
              for t in [int(target[b, q])])
    den = sum(w[int(t)] for t in target.flatten())
    assert torch.allclose(class_ce(logits, target, 0.1), num / den)
    pred, gt = torch.randn(2, 7, generator=g), (torch.rand(2, 7, generator=g) > 0.5).float()
    direct = [1 - (2 * sum(torch.sigmoid(pred[n, i]) * gt[n, i] for i in range(7)) + 1)
              / (sum(torch.sigmoid(pred[n, i]) for i in range(7)) + gt[n].sum() + 1) for n in range(2)]
    assert torch.allclose(dice_per_mask(pred, gt), torch.stack(direct))


def test_teacher_recipes_share_one_teacher_state_and_hooks_are_declared():
    for cls in (SelfTraining, ReinA):
        assert issubclass(cls, TeacherRecipe)
        for name in ("after_step", "state_tensors", "load_state_tensors"):
            assert getattr(cls, name) is getattr(TeacherRecipe, name)
    for hook in ("predict", "predict_stats", "set_scores", "default_recipe"):
        assert getattr(Method, hook) is None
    assert Method.requires_recipe == ()


def test_readme_layout_is_generated_from_the_tree_and_nothing_cites_files_outside_the_repository():
    from pathlib import Path

    from dgsslib import layout
    assert layout.main(["--check"]) == 0
    root = Path(layout.ROOT)
    offenders = [str(p.relative_to(root)) for folder in ("dgsslib", "notebooks/src") for p in (root / folder).rglob("*.py")
                 if "shared/" in p.read_text()]
    assert offenders == []
