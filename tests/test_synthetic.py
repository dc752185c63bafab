"""The procedural street benchmark: determinism, layouts, classes, cache, errors, domain gap."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from dgsslib.data.labels import CLASSES, IGNORE_INDEX
from dgsslib.data.synthetic import (ADVERSE_DOMAINS, DOMAINS, PRESET_SIZES, TARGET_DOMAINS,
                                    THIN_CLASSES, SyntheticStreets, make_scene, render_sample)
from dgsslib.data.synthetic import objects as ob
from dgsslib.data.synthetic.draw import Camera, Canvas
from dgsslib.data.synthetic.noise import box_blur

SIZE = (112, 224)


def test_domain_names_and_presets() -> None:
    assert TARGET_DOMAINS == ("citys", "bdd", "mapillary")
    assert ADVERSE_DOMAINS == ("fog", "night", "rain", "snow")
    assert DOMAINS[0] == "source" and set(TARGET_DOMAINS + ADVERSE_DOMAINS) < set(DOMAINS)
    assert PRESET_SIZES == {"smoke": (112, 224), "mini": (112, 224), "hires": (224, 448)}
    assert all(h % 112 == 0 and w % 112 == 0 for h, w in PRESET_SIZES.values())


def test_deterministic_per_seed_and_index() -> None:
    a_img, a_lab = render_sample("bdd", 7, SIZE, seed=3)
    b_img, b_lab = render_sample("bdd", 7, SIZE, seed=3)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_lab, b_lab)
    c_img, c_lab = render_sample("bdd", 7, SIZE, seed=4)
    assert not np.array_equal(a_lab, c_lab)
    assert not np.array_equal(a_lab, render_sample("bdd", 8, SIZE, seed=3)[1])


def test_same_layout_in_every_domain() -> None:
    for index in (0, 5):
        samples = {d: render_sample(d, index, SIZE, split="val") for d in DOMAINS}
        ref = samples["source"][1]
        for d, (img, lab) in samples.items():
            assert np.array_equal(lab, ref), d
            if d != "source":  # ... but the appearance differs
                assert np.abs(img.astype(int) - samples["source"][0]).mean() > 10, d


def test_layout_is_resolution_independent() -> None:
    """The 2x preset shows the same layout: downsampled labels agree almost everywhere."""
    lo = make_scene(0, 11, (112, 224)).label
    hi = make_scene(0, 11, (224, 448)).label
    assert (hi[::2, ::2] == lo).mean() > 0.85


def test_splits_are_disjoint() -> None:
    def keys(split: str) -> set[bytes]:
        return {render_sample("source", i, (56, 112), split=split)[1].tobytes() for i in range(12)}
    train, val, test = keys("train"), keys("val"), keys("test")
    assert len(train) == len(val) == len(test) == 12
    assert not (train & val) and not (train & test) and not (val & test)


def test_item_format() -> None:
    ds = SyntheticStreets("citys", split="val", length=3, size=SIZE)
    assert len(ds) == 3
    item = ds[2]
    img, lab = item["image"], item["label"]
    assert img.dtype == torch.uint8 and img.shape == (3, *SIZE)
    assert lab.dtype == torch.int64 and lab.shape == SIZE
    values = set(torch.unique(lab).tolist())
    assert values <= set(range(19)) | {IGNORE_INDEX} and len(values) >= 6
    assert item["meta"] == {"domain": "citys", "index": 2, "name": "citys/val/000002"}
    fresh = render_sample("citys", 2, SIZE, split="val")[0]
    assert np.array_equal(img.permute(1, 2, 0).numpy(), fresh)
    with pytest.raises(IndexError):
        ds[3]


@pytest.mark.parametrize("size", [(64, 96), (70, 150), "hires"])
def test_any_size(size) -> None:
    ds = SyntheticStreets("night", length=1, size=size)
    H, W = PRESET_SIZES[size] if isinstance(size, str) else size
    item = ds[0]
    assert item["image"].shape == (3, H, W) and item["label"].shape == (H, W)


def test_all_classes_appear() -> None:
    labels = np.stack([make_scene(0, i, SIZE).label for i in range(60)])
    counts = np.bincount(labels.ravel(), minlength=256)
    frac = counts[:19] / labels.size
    present = np.array([(labels == c).any(axis=(1, 2)).mean() for c in range(19)])
    missing = [CLASSES[c] for c in range(19) if frac[c] < 0.0005 or present[c] < 0.15]
    assert not missing, (missing, frac.round(4), present.round(2))
    assert counts[IGNORE_INDEX] / labels.size < 0.05


def _coverage2x2(m: np.ndarray) -> np.ndarray:
    """Pixels of mask ``m`` that belong to at least one fully covered 2x2 block."""
    b = m[:-1, :-1] & m[1:, :-1] & m[:-1, 1:] & m[1:, 1:]
    c = np.zeros_like(m)
    c[:-1, :-1] |= b
    c[1:, :-1] |= b
    c[:-1, 1:] |= b
    c[1:, 1:] |= b
    return c


@pytest.mark.parametrize("Z", [5.0, 9.0, 14.0, 25.0, 45.0])
def test_thin_objects_have_width(Z: float) -> None:
    """Drawn alone, poles are >= 5 px wide within 15 m (>= 4 px beyond); frames, signs and
    riders are built from >= 2x2 blocks (no 1-px slivers) at 112x224. Far away a diagonal
    line may leave a stray corner pixel, so the bar is 97 % near and 90 % far."""
    cam = Camera(*SIZE, horizon=0.42, f=1.5, hc=1.6)
    want = 5 if Z < 15 else 4
    bar = 0.97 if Z < 15 else 0.9
    for k, draw in enumerate([
            lambda cv, i: ob.pole(cv, cam, 2.0, Z, 3.0, i, 0.09),
            lambda cv, i: ob.street_lamp(cv, cam, -3.0, Z, 8.0, 1.5, i)]):
        cv = Canvas(*SIZE, fill=10)
        draw(cv, cv.new(5, 0.5))
        m = cv.label == 5
        widths = m.sum(1)[m.any(1)]
        # the lamp arm is a separate, horizontal part: check the upright rows only
        assert np.median(widths) >= want and np.percentile(widths, 10) >= want, (k, widths)
    for motor in (False, True):
        cv = Canvas(*SIZE, fill=10)
        bike = cv.new(17 if motor else 18, 0.3)
        ob.two_wheeler(cv, cam, motor, 0.5, Z, 1, bike, cv.new(12, 0.6))
        # beyond 20 m the (stocky, benchmark v2) rider hides most of a bicycle: check the pair;
        # near, the rider's edges may leave a few stray frame pixels (bar 95 %)
        groups = [(12,), (17 if motor else 18,)] if Z < 20 else [(12, 17 if motor else 18)]
        for g in groups:
            m = np.isin(cv.label, g)
            assert m.sum() > 0 and _coverage2x2(m)[m].mean() > min(bar, 0.95), (motor, g, Z)
    cv = Canvas(*SIZE, fill=10)
    sid = cv.new(7, 0.1)
    for shape in range(4):
        ob.traffic_sign(cv, cam, -4.0 + 2.5 * shape, Z, 2.5, shape, 0.7, sid)
    m = cv.label == 7
    assert _coverage2x2(m)[m].mean() > bar


def test_thin_classes_in_scenes_are_not_slivers() -> None:
    """In full scenes (with occlusion) >= 90 % of thin-class pixels sit in 2x2 blocks."""
    labels = [make_scene(1, i, SIZE).label for i in range(40)]
    for c in THIN_CLASSES:
        tot = sum(int((lab == c).sum()) for lab in labels)
        good = sum(int(_coverage2x2(lab == c)[lab == c].sum()) for lab in labels)
        assert tot > 0 and good / tot > 0.9, (CLASSES[c], good / tot)


def test_cache_round_trip(tmp_path) -> None:
    ds = SyntheticStreets("rain", split="val", length=4, size=(56, 112), seed=2,
                          cache_dir=tmp_path)
    first = ds[1]
    path = ds.cache_path(1)
    assert path.startswith(os.path.join(str(tmp_path), "rain", "val", "56x112"))
    assert os.path.isfile(path)
    assert not [f for f in os.listdir(os.path.dirname(path)) if ".tmp" in f]
    again = SyntheticStreets("rain", split="val", length=4, size=(56, 112), seed=2,
                             cache_dir=tmp_path)[1]
    fresh = SyntheticStreets("rain", split="val", length=4, size=(56, 112), seed=2)[1]
    for item in (first, again):
        assert torch.equal(item["image"], fresh["image"])
        assert torch.equal(item["label"], fresh["label"])
    # the cached file is really used: overwrite it (keeping its parameters) and read it back
    img, lab = ds.load(1)
    with np.load(path) as z:
        params = z["params"]
    with open(path, "wb") as f:
        np.savez(f, image=np.zeros_like(img), label=lab, params=params)
    assert ds[1]["image"].sum() == 0
    corrupted = SyntheticStreets("rain", split="val", length=4, size=(56, 112), seed=2,
                                 corruption="fog", severity=2, cache_dir=tmp_path)
    assert corrupted.cache_path(1) != path


def test_corruption_option() -> None:
    clean = SyntheticStreets("citys", length=1, size=SIZE)[0]
    foggy = SyntheticStreets("citys", length=1, size=SIZE, corruption="fog", severity=4)[0]
    assert torch.equal(clean["label"], foggy["label"])
    assert (clean["image"].float() - foggy["image"].float()).abs().mean() > 10


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="source.*citys"):
        SyntheticStreets("gta", length=2)
    with pytest.raises(ValueError, match="train.*val.*test"):
        SyntheticStreets("source", split="training", length=2)
    with pytest.raises(ValueError, match="smoke"):
        SyntheticStreets("source", length=2, size="huge")
    with pytest.raises(ValueError, match="at least"):
        SyntheticStreets("source", length=2, size=(4, 4))
    with pytest.raises(ValueError, match="length"):
        SyntheticStreets("source", length=0)
    with pytest.raises(ValueError, match="gaussian_noise"):
        SyntheticStreets("source", length=2, corruption="blurry", severity=1)
    with pytest.raises(ValueError, match="severity"):
        SyntheticStreets("source", length=2, corruption="fog", severity=7)
    with pytest.raises(ValueError, match="severity"):
        SyntheticStreets("source", length=2, severity=2)


def test_cli_bench_writes_nothing(tmp_path, capsys, monkeypatch) -> None:
    from dgsslib.data.synthetic.__main__ import main
    monkeypatch.chdir(tmp_path)
    assert main(["--bench", "--n", "1", "--size", "56x112"]) == 0
    out = capsys.readouterr().out
    assert all(d in out for d in DOMAINS) and "img/s" in out
    assert os.listdir(tmp_path) == []


# -- the domain gap, measured with a per-pixel proxy model ----------------------------------
def _features(img: np.ndarray) -> np.ndarray:
    """(H*W, 9) per-pixel features: RGB, 5x5 mean RGB, 5x5 luma std, gradient, row."""
    x = img.astype(np.float32) / 255
    H, W = x.shape[:2]
    luma = x.mean(-1)
    std = np.sqrt(np.maximum(box_blur(luma * luma, 2, 2) - box_blur(luma, 2, 2) ** 2, 0))
    grad = (np.abs(np.diff(luma, axis=0, append=luma[-1:]))
            + np.abs(np.diff(luma, axis=1, append=luma[:, -1:])))
    row = np.broadcast_to(((np.arange(H) + 0.5) / H)[:, None], (H, W))
    f = np.concatenate([x, box_blur(x, 2, 2), std[..., None], grad[..., None], row[..., None]], -1)
    return f.reshape(-1, 9)                                      # (H, W, 9) -> (H*W, 9)


def _data(domain: str, split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    pairs = [render_sample(domain, i, SIZE, split=split) for i in range(n)]
    X = np.concatenate([_features(img) for img, _ in pairs])
    y = np.concatenate([lab.reshape(-1) for _, lab in pairs]).astype(np.int64)
    return X, y


def _miou(pred: np.ndarray, y: np.ndarray) -> float:
    keep = y < 19
    cm = np.bincount(y[keep] * 19 + pred[keep], minlength=361).reshape(19, 19)
    inter = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - inter
    return float(np.mean(inter[union > 0] / union[union > 0]) * 100)


def test_domain_gap_proxy() -> None:
    """A per-pixel Gaussian classifier fit on ``source`` is clearly worse on every target
    and worse still on adverse weather, while source->source is well above chance."""
    X, y = _data("source", "train", 16)
    keep = y < 19
    X, y = X[keep], y[keep]
    mu = np.stack([X[y == c].mean(0) for c in range(19)])        # (19, 9)
    var = np.stack([X[y == c].var(0) + 1e-4 for c in range(19)])  # (19, 9)
    prior = np.log(np.bincount(y, minlength=19) / len(y) + 1e-6)

    def evaluate(domain: str) -> float:
        Xv, yv = _data(domain, "val", 6)
        ll = -0.5 * (((Xv[:, None] - mu) ** 2) / var + np.log(var)).sum(-1) + prior  # (P, 19)
        return _miou(ll.argmax(1), yv)

    scores = {d: evaluate(d) for d in DOMAINS}
    chance = _miou(np.full(20000, int(prior.argmax())), y[:20000])
    assert scores["source"] > 25 and scores["source"] > 3 * chance, scores
    for d in TARGET_DOMAINS:
        assert scores[d] < scores["source"] - 10, scores
    target = np.mean([scores[d] for d in TARGET_DOMAINS])
    adverse = np.mean([scores[d] for d in ADVERSE_DOMAINS])
    assert adverse < target, scores


# -- benchmark version, render parameters and a cache that never serves stale images --------
def test_benchmark_version_and_render_params() -> None:
    from dgsslib.data.synthetic import BENCHMARK_VERSION, GENERATOR_HASH, render_params
    assert isinstance(BENCHMARK_VERSION, int) and BENCHMARK_VERSION >= 2
    base = render_params("source", "train", "mini", 0)
    assert base["benchmark_version"] == BENCHMARK_VERSION
    assert base["generator_hash"] == GENERATOR_HASH and len(GENERATOR_HASH) == 16
    assert base["size"] == [112, 224]
    others = [render_params("citys", "train", "mini", 0),
              render_params("source", "val", "mini", 0),
              render_params("source", "train", (56, 112), 0),
              render_params("source", "train", "mini", 1),
              render_params("source", "train", "mini", 0, "fog", 2)]
    assert all(o != base for o in others)
    ds = SyntheticStreets("rain", split="val", length=2, size=(56, 112), seed=2)
    assert ds.render_params() == render_params("rain", "val", (56, 112), 2)


def _write_cache(path: str, image: np.ndarray, label: np.ndarray, params: dict | None) -> None:
    import json
    os.makedirs(os.path.dirname(path), exist_ok=True)
    extra = {} if params is None else {"params": np.array(json.dumps(params, sort_keys=True))}
    with open(path, "wb") as f:
        np.savez(f, image=image, label=label, **extra)


def test_cache_never_serves_stale_files(tmp_path, monkeypatch) -> None:
    """A cached file is served only with its exact render parameters: files of another
    benchmark version, generator code, seed or a pre-versioning file are rendered again."""
    from dgsslib.data.synthetic import dataset as dsmod
    ds = SyntheticStreets("rain", split="val", length=2, size=(56, 112), seed=2, cache_dir=tmp_path)
    fresh_img, fresh_lab = render_sample("rain", 1, (56, 112), seed=2, split="val")
    path = ds.cache_path(1)
    zeros = np.zeros_like(fresh_img)
    # the cache is used when the parameters match (a doctored file is served as is)
    _write_cache(path, zeros, fresh_lab, ds.render_params())
    assert ds.load(1)[0].sum() == 0
    stale = [None,                                               # written before versioning
             dict(ds.render_params(), benchmark_version=1),      # older benchmark version
             dict(ds.render_params(), generator_hash="0" * 16),  # other generator code
             dict(ds.render_params(), seed=3)]                   # other render parameters
    for params in stale:
        _write_cache(path, zeros, fresh_lab, params)
        img, lab = ds.load(1)
        assert np.array_equal(img, fresh_img) and np.array_equal(lab, fresh_lab), params
        with np.load(path) as z:                                  # ... and overwritten
            assert np.array_equal(z["image"], fresh_img)
    # a generator change without a version bump (same path) also invalidates the cache
    _write_cache(path, zeros, fresh_lab, ds.render_params())
    monkeypatch.setattr(dsmod, "GENERATOR_HASH", "f" * 16)
    assert np.array_equal(ds.load(1)[0], fresh_img)
    # a version bump moves the cache to a new folder
    monkeypatch.setattr(dsmod, "BENCHMARK_VERSION", dsmod.BENCHMARK_VERSION + 1)
    assert ds.cache_path(1) != path


# -- object scale at the mini size: thin classes span about a token, far ones stay small -----
def test_thin_classes_reach_token_size() -> None:
    """At 112x224 (14-px tokens) >= 25 % of the pixels of person / pole / traffic light /
    traffic sign / rider belong to instances at least half a token (7 px) thick (benchmark
    v1: person 17 %, pole 4 %, light 0 %), while >= 8 % of their instances stay thinner than
    4 px (distant ones are still present)."""
    from dgsslib.data.synthetic.learnability import instance_sizes
    from dgsslib.data.synthetic.scene import LIGHT, PERSON, POLE, RIDER, SIGN
    sizes = [x for i in range(60) for x in instance_sizes(*(lambda sc: (sc.inst, sc.label))(
        make_scene(0, i, SIZE)))]
    for c in (PERSON, POLE, LIGHT, SIGN, RIDER):
        a = np.array([(t, h) for k, t, h in sizes if k == c])   # (n, 2) thickness, height px
        assert len(a) >= 20, CLASSES[c]
        pixels = a[:, 0] * a[:, 1]
        assert pixels[a[:, 0] >= 7].sum() / pixels.sum() >= 0.25, (CLASSES[c], a)
        assert (a[:, 0] < 4).mean() >= 0.08, (CLASSES[c], a)


def test_instance_sizes_direct() -> None:
    """Thickness = pixels / occupied rows, height = occupied rows; ignore is skipped."""
    from dgsslib.data.synthetic.learnability import instance_sizes
    inst = np.zeros((10, 12), np.int32)
    label = np.full((10, 12), 10, np.uint8)
    inst[2:6, 3:6], label[2:6, 3:6] = 1, 5             # 4 rows x 3 px pole
    inst[7, 0:8], inst[8, 0:4] = 2, 2                   # 12 px over 2 rows
    label[7, 0:8], label[8, 0:4] = 11, 11
    inst[9, 9:], label[9, 9:] = 3, 255                  # ignore: not an instance
    got = {c: (t, h) for c, t, h in instance_sizes(inst, label)}
    assert got == {10: (float((inst == 0).sum()) / 10, 10.0), 5: (3.0, 4.0), 11: (6.0, 2.0)}


def test_cli_version(capsys) -> None:
    from dgsslib.data.synthetic import BENCHMARK_VERSION, GENERATOR_HASH
    from dgsslib.data.synthetic.__main__ import main
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert f"benchmark version {BENCHMARK_VERSION}" in out and GENERATOR_HASH in out


def test_auto_cache_dir_is_the_mini_default(tmp_path, monkeypatch) -> None:
    """``cache_dir="auto"`` lands under ``$DGSS_CACHE/render``; mini turns it on, smoke keeps it off."""
    from dgsslib.profiles import resolve
    monkeypatch.setenv("DGSS_CACHE", str(tmp_path))
    ds = SyntheticStreets("fog", split="val", length=2, size=(56, 112), seed=1, cache_dir="auto")
    item = ds[0]
    assert ds.cache_path(0).startswith(os.path.join(str(tmp_path), "render", "fog", "val"))
    assert os.path.isfile(ds.cache_path(0))
    assert torch.equal(item["image"], SyntheticStreets("fog", split="val", length=2, size=(56, 112), seed=1)[0]["image"])
    assert resolve("mini")["data"]["cache_dir"] == "auto" and resolve("smoke")["data"]["cache_dir"] is None
