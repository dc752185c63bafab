"""The method stack (dgsslib.adapters.stack): combinations as a config. Parts attach in order and keep what
each trains, counts add up to the parts' own, the fishertune recipe drives the selecting part, unselected
backbone elements never move while Rein's tokens train, a killed run resumes bit-exact (each part packs its
own tensors), and every pair the contract cannot express is refused with the reason at config time."""
import pytest
import torch
from safetensors.torch import load_file

from dgsslib.adapters import build_method
from dgsslib.backbones import load_vfm
from dgsslib.engine.train import fit
from dgsslib.engine.validation import validate
from dgsslib.model import build_model
from dgsslib.profiles import ConfigError, resolve, with_method_recipe

from test_train import _run


def _cfg(parts="rein,fishertune", **opts):
    cfg = resolve("smoke", {"data": {"train_length": 8, "eval_length": 2, "eval": ["synthetic:source"]},
                            "train": {"max_steps": 7, "batch_size": 2}})
    cfg.update(method="stack", seed=1, method_options={"parts": parts, "rein": {"m": 6, "r": 4},
                                                       "fishertune": {"estimator": "direct"}, **opts})
    cfg = with_method_recipe(cfg, named=False)
    if cfg["recipe"] == "fishertune":
        cfg["recipe_options"] = {"t1": 2, "t2": 2}
    return validate(cfg)


def test_parts_attach_in_order_and_keep_what_each_trains():
    alone = {}
    for name, opts in (("rein", {"m": 6, "r": 4}), ("fishertune", {})):
        alone[name] = build_method(name, **opts).attach(load_vfm("tiny", weights="none", verbose=False))
    for parts in ("rein,fishertune", "fishertune,rein"):  # rein's attach re-freezes θ: the stack unfreezes it
        vfm = load_vfm("tiny", weights="none", verbose=False)
        m = build_method("stack", parts=parts, rein={"m": 6, "r": 4}, fishertune={}).attach(vfm)
        assert m.num_trainable() == alone["rein"].num_trainable() + alone["fishertune"].num_trainable()
        theta = {id(w) for w, _ in m.selector.theta.values()}
        assert {id(p) for p in vfm.model.parameters() if p.requires_grad} == theta
        assert m.selector.name == "fishertune" and m.backbone_lr_mult == 0.1  # FisherTune's lr_mult
        assert [type(h).__name__ for h in m.hooks()] == (["Rein", "DSU"] if parts.startswith("rein") else ["DSU", "Rein"])
        assert "learnable_tokens" in m.no_decay_keys and m.set_scores is not None


def test_rein_tokens_train_and_unselected_backbone_elements_never_move(tmp_path):
    cfg = _cfg()
    assert cfg["recipe"] == "fishertune"  # brought by the FisherTune part
    torch.manual_seed(cfg["seed"])
    fresh = build_model(cfg, verbose=False)
    rec = fit(cfg, tmp_path, progress=False)
    assert [h["phase"] for h in rec["history"]] == ["warmup"] * 2 + ["estimate"] * 2 + ["tune"] * 3
    torch.manual_seed(cfg["seed"])
    model = build_model(cfg, verbose=False)
    from dgsslib.checkpoint import load_checkpoint
    load_checkpoint(sorted((tmp_path / "ckpt").glob("*.safetensors"))[-1], model)
    sel = model.method.selector
    allowed = sel.masks_for(sel.k_max)
    moved = 0
    for n, (w, _) in sel.theta.items():
        changed = w.detach() != fresh.method.selector.theta[n][0].detach()
        assert not (changed & (allowed[n] == 0)).any(), n
        moved += int(changed.sum())
    assert 0 < moved <= sel.k_max
    rein_now, rein_then = model.method.members[0], fresh.method.members[0]
    assert not torch.equal(rein_now.learnable_tokens_a, rein_then.learnable_tokens_a)  # the tokens trained
    others = [n for n, p in model.vfm.model.named_parameters() if n not in sel.theta]
    ref = dict(fresh.vfm.model.named_parameters())
    assert all(torch.equal(dict(model.vfm.model.named_parameters())[n], ref[n]) for n in others)
    assert rec["trainable_backbone_params"] == model.method.num_trainable()


def test_killed_stack_run_resumes_bit_exact(tmp_path):
    cfg = _cfg()
    cfg["train"]["ckpt_every"] = 1
    a, b = tmp_path / "a", tmp_path / "b"
    assert _run(cfg, a).returncode == 0
    assert _run(cfg, b, kill=5).returncode == -9  # in T3, after the estimate: packed selections on disk
    r = _run(cfg, b, resume=True)
    assert r.returncode == 0, r.stderr[-2000:]
    fa, fb = load_file(a / "final.safetensors"), load_file(b / "final.safetensors")
    assert fa.keys() == fb.keys() and any(k.startswith("method.members.0.") for k in fa)
    assert any(k.endswith("@sel") for k in fa)  # FisherTune's part still stores only its selected elements
    for k in fa:
        assert torch.equal(fa[k], fb[k]), k


@pytest.mark.parametrize("opts, expect", [
    ({"parts": "rein"}, "two or more"),
    ({"parts": "rein,rein"}, "twice"),
    ({"parts": "rein,stack"}, "cannot hold a stack"),
    ({"parts": "rein,nope"}, "stack part 'nope'"),
    ({"parts": "rein,lora", "lora": {"r": 2.7}}, "stack part 'lora': method_options.r must be a whole number"),
    ({"parts": "rein,lora", "vpt": {}}, "unknown method_options ['vpt']"),
    ({"parts": "fishertune,childtune"}, "at most one selection method"),
    ({"parts": "vfmseg,fishertune"}, "different recipes"),
    ({"parts": "full,bitfit"}, "both train the same backbone tensors"),
])
def test_what_the_contract_cannot_express_is_refused(tmp_path, opts, expect):
    cfg = resolve("smoke", {"train": {"max_steps": 2}})
    cfg.update(method="stack", method_options=opts)
    with pytest.raises(ValueError, match=expect.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        cfg = validate(with_method_recipe(cfg, named=False))
        build_model(cfg, verbose=False)
