"""The paper profile's real-data path on fake trees in the real layouts (issue #15).

Per-dataset evaluation protocol, both Mapillary packages, one data root for a multi-dataset
run, Dark Zurich / ACDC by condition, the Synthia 16-class mIoU, GTAV size mismatches, RCS class
statistics, verify decoding images, the CLI error contract, no import circle in dgsslib.data,
and a paper-profile dry run (GTAV -> Cityscapes, BDD, Mapillary half_val).
"""
from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dgsslib.data.base import DatasetError
from dgsslib.data.labels import CLASSES, SYNTHIA_16_CLASSES
from dgsslib.data.protocol import eval_settings
from dgsslib.data.registry import DATASETS, build_dataset, build_from_spec
from dgsslib.data.sources import build_source
from dgsslib.data.verify import main as verify_main
from dgsslib.engine.evaluate import evaluate, iou_from_confusion
from dgsslib.profiles import ConfigError, resolve

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_trees import (  # noqa: E402
    make_acdc, make_bdd, make_cityscapes, make_dark_zurich, make_gtav, make_mapillary, make_synthia,
    truncate, write_png)
from test_datasets import (  # noqa: E402
    CITYSCAPES_PAIRS, MAPILLARY_NAMES, SYNTHIA_PAIRS, TRAINID_PAIRS, assert_labels, load_script)

REPO = Path(__file__).resolve().parents[1]
NAMES = [n for n, _ in MAPILLARY_NAMES]
LUT = np.array([t for _, t in MAPILLARY_NAMES])


# ---- per-dataset evaluation protocol -----------------------------------------------------------
def test_paper_profile_protocol():
    cfg = resolve("paper")
    assert "mapillary:half_val" in cfg["data"]["eval"] and "mapillary:val" not in cfg["data"]["eval"]
    got = {spec: eval_settings(spec, cfg)["test_scale"] for spec in cfg["data"]["eval"]}
    assert got == {"cityscapes:val": [2048, 1024], "bdd:val": [1280, 720], "mapillary:half_val": [1024, 512]}
    for name, cls in DATASETS.items():  # the default is each dataset's own documented TEST_SCALE
        assert eval_settings(f"{name}:val", cfg)["test_scale"] == list(cls.TEST_SCALE)
    s = eval_settings("acdc:val:night", cfg)
    assert s == {"mode": "slide", "crop": 512, "stride": 341, "test_scale": [960, 540], "class_subset": None}
    assert eval_settings("synthetic:citys", resolve("smoke"))["test_scale"] is None  # native, as before


def test_test_scale_overrides_and_strict_keys():
    cfg = resolve("paper", {"eval": {"test_scales": {"cityscapes": [512, 1024], "bdd": "native"}}})
    assert eval_settings("cityscapes:val", cfg)["test_scale"] == [1024, 512]  # [long, short] normalised
    assert eval_settings("bdd:val", cfg)["test_scale"] is None
    assert eval_settings("mapillary:half_val", cfg)["test_scale"] == [1024, 512]
    glob = resolve("paper", {"eval": {"test_scale": [2048, 1024], "test_scales": {"bdd": [1280, 720]}}})
    assert eval_settings("mapillary:half_val", glob)["test_scale"] == [2048, 1024]  # global override
    assert eval_settings("bdd:val", glob)["test_scale"] == [1280, 720]  # per dataset wins
    assert eval_settings("synthetic:citys", glob)["test_scale"] == [2048, 1024]
    with pytest.raises(ConfigError, match="citiscapes.*allowed here:.*cityscapes"):
        resolve("paper", {"eval": {"test_scales": {"citiscapes": [2048, 1024]}}})
    for bad in ([2048], [2048, 0], "half", [2048.0, 1024]):
        with pytest.raises(ConfigError, match=r"\[long, short\]"):
            eval_settings("bdd:val", resolve("paper", {"eval": {"test_scales": {"bdd": bad}}}))


def test_class_subset_setting():
    assert eval_settings("cityscapes:val", resolve("paper"))["class_subset"] is None
    syn = resolve("paper", {"data": {"train": "synthia:train"}})
    assert eval_settings("cityscapes:val", syn)["class_subset"] == SYNTHIA_16_CLASSES
    assert eval_settings("bdd:val", resolve("paper", {"eval": {"class_subset": [5, 2]}}))["class_subset"] == (2, 5)
    assert eval_settings("bdd:val", resolve("paper", {"data": {"train": "synthia:train"},
                                                      "eval": {"class_subset": "none"}}))["class_subset"] is None
    for bad in ("synthia13", [19], [1, 1]):
        with pytest.raises(ConfigError, match="class_subset"):
            eval_settings("bdd:val", resolve("paper", {"eval": {"class_subset": bad}}))


def test_synthia16_miou_beside_miou19():
    conf = torch.zeros(19, 19, dtype=torch.int64)
    for c in range(19):
        conf[c, c] = 10 + c
        conf[c, (c + 1) % 19] = 5  # row c: 5 pixels predicted as c+1
    conf[9, :] = 0  # terrain absent from GT...
    conf[:, 9] = 0  # ...and never predicted: NaN, left out
    res = iou_from_confusion(conf, SYNTHIA_16_CLASSES)
    tp, gt, pr = conf.diag().double(), conf.sum(1).double(), conf.sum(0).double()
    iou = tp / (gt + pr - tp)
    assert res["miou"] == pytest.approx(float(iou[torch.arange(19) != 9].mean()) * 100)
    assert res["miou16"] == pytest.approx(float(iou[list(SYNTHIA_16_CLASSES)].mean()) * 100)
    assert res["miou16"] != pytest.approx(res["miou"])
    assert res["class_subset"] == [CLASSES[i] for i in SYNTHIA_16_CLASSES] and "truck" not in res["class_subset"]
    assert "miou16" not in iou_from_confusion(conf)


class _Oracle(torch.nn.Module):
    """Scores the label of a fixed image it was built with (tests the evaluator, not a model)."""

    def __init__(self, label: torch.Tensor):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.label = label

    def semantic_logits(self, x):
        lab = torch.nn.functional.interpolate(self.label[None, None].float(), size=x.shape[-2:], mode="nearest")
        lab = lab[0, 0].long().clamp(max=18)
        return torch.nn.functional.one_hot(lab, 19).permute(2, 0, 1)[None].float().expand(x.shape[0], -1, -1, -1)


def test_evaluate_records_protocol_and_miou16(tmp_path):
    make_synthia(tmp_path, SYNTHIA_PAIRS, n=1)
    ds = build_dataset("synthia", tmp_path)
    label = ds[0]["label"]
    oracle = _Oracle(torch.where(label == 255, torch.full_like(label, 9), label))
    whole = evaluate(oracle, ds, progress=False, class_subset=SYNTHIA_16_CLASSES)
    assert (whole["mode"], whole["crop"], whole["stride"], whole["test_scale"]) == ("whole", None, None, "native")
    assert whole["miou"] == whole["miou16"] == 100.0  # perfect on every class present
    slide = evaluate(oracle, ds, "slide", crop=8, stride=6, test_scale=[32, 16], progress=False)
    assert (slide["crop"], slide["stride"], slide["test_scale"]) == (8, 6, [32, 16]) and "miou16" not in slide


# ---- data strings, roots, conditions ----------------------------------------------------------
def test_one_root_serves_a_multi_dataset_run(tmp_path, monkeypatch):
    monkeypatch.delenv("DGSS_DATA", raising=False)
    exp_cs = make_cityscapes(tmp_path / "cityscapes", CITYSCAPES_PAIRS)
    exp_bdd = make_bdd(tmp_path / "bdd", TRAINID_PAIRS)
    cfg = resolve("paper", {"data": {"root": str(tmp_path)}})
    assert_labels(build_source("cityscapes:val", cfg, train=False), exp_cs["val"])
    assert_labels(build_source("bdd:val", cfg, train=False), exp_bdd["val"])
    mapped = resolve("paper", {"data": {"root": {"cityscapes": str(tmp_path / "cityscapes"),
                                                 "bdd": str(tmp_path / "bdd")}}})
    assert len(build_source("bdd:val", mapped, train=False)) == 2
    with pytest.raises(DatasetError, match="not 'mapillary'"):
        build_source("mapillary:half_val", mapped, train=False)
    own = resolve("paper", {"data": {"root": str(tmp_path / "bdd")}})  # a dataset's own root: explained
    with pytest.raises(DatasetError, match=r"folder holding one '<dataset>/' subfolder.*data.root=\{'bdd'"):
        build_source("bdd:val", own, train=False)


def test_conditions_and_times_from_data_strings(tmp_path):
    make_dark_zurich(tmp_path / "dark_zurich", TRAINID_PAIRS)
    make_acdc(tmp_path / "acdc", TRAINID_PAIRS)
    make_bdd(tmp_path / "bdd", TRAINID_PAIRS)
    night = build_from_spec("dark_zurich:train:night", tmp_path)
    assert len(night) == 2 and all("/night/" in it.name for it in night.items)
    assert len(build_from_spec("dark_zurich:train:day+twilight", tmp_path)) == 4
    assert len(build_from_spec("dark_zurich:val:night", tmp_path)) == 2
    with pytest.raises(DatasetError, match="day"):
        build_from_spec("dark_zurich:val:day", tmp_path)
    fog = build_from_spec("acdc:val:fog", tmp_path)
    assert len(fog) == 1 and "/fog/" in fog.items[0].name
    assert len(build_from_spec("acdc:val:fog+rain", tmp_path)) == 2
    with pytest.raises(DatasetError, match="bdd has no conditions"):
        build_from_spec("bdd:val:fog", tmp_path)
    cfg = resolve("paper", {"data": {"root": str(tmp_path)}})
    assert len(build_source("dark_zurich:train:night", cfg, train=True)) == 2  # the TypeError is gone


# ---- Mapillary: both official packages ---------------------------------------------------------
@pytest.mark.parametrize("layout", ["v1.2", "v2.0"])
def test_mapillary_both_packages(tmp_path, layout):
    raw = make_mapillary(tmp_path, NAMES, layout=layout)
    for split in ("training", "validation"):
        ds = build_dataset("mapillary", tmp_path, split)
        assert ds.layout == layout
        assert_labels(ds, {k: LUT[v] for k, v in raw[split].items()})
    other = {"v1.2": "v2.0", "v2.0": "v1.2"}[layout]
    with pytest.raises(DatasetError, match="not found"):
        build_dataset("mapillary", tmp_path, "validation", layout=other)


def test_mapillary_without_config_names_both_packages(tmp_path):
    make_mapillary(tmp_path, NAMES, layout="v1.2")
    (tmp_path / "config.json").unlink()
    with pytest.raises(DatasetError) as e:
        build_dataset("mapillary", tmp_path, "validation")
    msg = str(e.value)
    assert "config.json" in msg and "v1.2 package" in msg and "config_v1.2.json" in msg and "v2.0 package" in msg


def test_mapillary_half_val_jpeg_quality(tmp_path):
    raw = make_mapillary(tmp_path, NAMES, splits=("validation",), h=16, w=32, layout="v1.2")
    prep = load_script("prepare_mapillary").main
    assert prep(["--root", str(tmp_path), "--no-progress"]) == 0
    out = sorted((tmp_path / "half/val_img").glob("*.jpg"))
    src = tmp_path / "validation/images" / out[0].name
    from dgsslib.data.imageio import read_image, resize_array
    ref = tmp_path / "ref.jpg"
    Image.fromarray(resize_array(read_image(src), (16, 8), nearest=False)).save(ref)  # Pillow default = 75
    assert out[0].read_bytes() == ref.read_bytes()
    ds = build_dataset("mapillary", tmp_path, "half_val")
    np.testing.assert_array_equal(ds[0]["label"].numpy(),
                                  LUT[raw["validation"]["validation/images/" + ds.items[0].image.name]][1::2, 1::2])
    before = {p: p.read_bytes() for p in out}
    assert prep(["--root", str(tmp_path), "--no-progress", "--jpeg-quality", "100"]) == 0  # other setting: rewritten
    assert all(p.read_bytes() != before[p] for p in out)
    assert json.loads((tmp_path / "half/prepare.json").read_text())["settings"]["jpeg_quality"] == 100


# ---- verify decodes images; CLI error contract -------------------------------------------------
def test_verify_decodes_images_by_default(tmp_path, capsys):
    make_cityscapes(tmp_path, CITYSCAPES_PAIRS)  # a truncated png: its header is intact
    bad = truncate(tmp_path / "leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png", 0.7)
    assert verify_main(["cityscapes", "--root", str(tmp_path), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert bad.name in out and "RESULT: FAIL (images decoded)" in out
    assert verify_main(["cityscapes", "--root", str(tmp_path), "--no-progress", "--no-decode-images"]) == 0
    assert "RESULT: OK (images NOT decoded" in capsys.readouterr().out


def test_prepare_user_error_exit_2(tmp_path, capsys):
    assert load_script("prepare_cityscapes").main(["--root", str(tmp_path / "missing"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("[dgsslib] error: cityscapes: dataset root") and err.count("\n") == 1


def test_verify_warns_on_gtav_size_mismatch(tmp_path, capsys):
    make_gtav(tmp_path, CITYSCAPES_PAIRS)
    write_png(tmp_path / "labels/00002.png", np.full((8, 15), 7, np.uint8))
    with pytest.warns(UserWarning):
        assert verify_main(["gtav", "--root", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "[WARN] train: images/00002.png: label size differs" in out


def test_synthia_exclude_file(tmp_path, capsys):
    make_synthia(tmp_path, SYNTHIA_PAIRS, n=2)
    truncate(tmp_path / "GT/LABELS/0000001.png", 0.5)  # a broken file from the archive
    assert verify_main(["synthia", "--root", str(tmp_path), "--no-progress"]) == 1
    assert "0000001.png" in capsys.readouterr().out
    (tmp_path / "exclude.txt").write_text("0000001\n")
    ds = build_dataset("synthia", tmp_path)
    assert len(ds) == 1 and ds.excluded == ["RGB/0000001.png"]
    assert verify_main(["synthia", "--root", str(tmp_path), "--no-progress"]) == 0
    assert "1 images excluded by exclude.txt" in capsys.readouterr().out
    (tmp_path / "exclude.txt").write_text("0009999\n")
    with pytest.raises(DatasetError, match="0009999"):
        build_dataset("synthia", tmp_path)


# ---- RCS class statistics: one format ----------------------------------------------------------
def test_rcs_stats_one_format(tmp_path):
    from dgsslib.data.class_stats import class_pixels
    exp = make_gtav(tmp_path / "gtav", CITYSCAPES_PAIRS)
    assert load_script("prepare_gtav").main(["--root", str(tmp_path / "gtav"), "--no-progress"]) == 0
    stats_file = tmp_path / "gtav/sample_class_stats.json"
    from_prepare = stats_file.read_text()
    stats_file.unlink()
    rcs = load_script("compute_rcs_stats").main
    assert rcs(["gtav", "--root", str(tmp_path / "gtav"), "--no-progress"]) == 0
    assert stats_file.read_text() == from_prepare  # the same file from both writers
    ds = build_dataset("gtav", tmp_path / "gtav")
    direct = np.stack([np.bincount(exp["train"][it.name][exp["train"][it.name] != 255].ravel(), minlength=19)
                       for it in ds.items])
    np.testing.assert_array_equal(class_pixels(ds), direct)
    # Cityscapes (the source of Cityscapes -> ACDC): computed by the script, DAFormer's keys
    make_cityscapes(tmp_path / "cityscapes", CITYSCAPES_PAIRS)
    assert rcs(["cityscapes", "--root", str(tmp_path / "cityscapes"), "--no-progress"]) == 0
    entries = json.loads((tmp_path / "cityscapes/sample_class_stats.json").read_text())
    assert entries[0]["file"] == "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png"
    assert set(entries[0]) - {"file"} <= {str(c) for c in range(19)}
    assert rcs(["cityscapes", "--root", str(tmp_path / "cityscapes"), "--split", "val", "--no-progress"]) == 0
    assert class_pixels(build_dataset("cityscapes", tmp_path / "cityscapes", "val")).shape == (2, 19)
    with pytest.raises(DatasetError, match="compute_rcs_stats.py bdd"):
        make_bdd(tmp_path / "bdd", TRAINID_PAIRS)
        class_pixels(build_dataset("bdd", tmp_path / "bdd", "val"))
    assert rcs(["bdd", "--root", str(tmp_path / "nope"), "--no-progress"]) == 2


# ---- no import circle between dgsslib.data modules ---------------------------------------------
def _imports(path: Path, package: str) -> set[str]:
    """dgsslib modules imported anywhere in ``path`` (function-level imports included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out |= {f"{mod}.{a.name}" for a in node.names} | {mod}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {m for m in out if m.startswith("dgsslib")}


def test_no_import_circle_in_data():
    files = {f"dgsslib.data.{p.stem}": p for p in (REPO / "dgsslib/data").glob("*.py") if p.stem != "__init__"}
    graph = {m: {d for d in _imports(p, "dgsslib.data") if d in files and d != m} for m, p in files.items()}
    assert "dgsslib.data.registry" in graph["dgsslib.data.verify"]
    seen, stack = set(), []

    def visit(m):
        assert m not in stack, f"import circle: {' -> '.join(stack[stack.index(m):] + [m])}"
        if m in seen:
            return
        stack.append(m)
        for d in graph[m]:
            visit(d)
        stack.pop()
        seen.add(m)
    for m in graph:
        visit(m)


# ---- the paper profile, dry run on fake trees in the real layouts ------------------------------
def test_paper_profile_dry_run(tmp_path, monkeypatch):
    """GTAV train -> Cityscapes, BDD, Mapillary half_val eval; tiny backbone, 2 steps, the CLI.
    One validation image per set keeps the slide evaluation at the paper's scales fast."""
    from dgsslib.train import main
    data = tmp_path / "data"
    make_gtav(data / "gtav", CITYSCAPES_PAIRS, n=2, h=64, w=128)
    make_cityscapes(data / "cityscapes", CITYSCAPES_PAIRS, h=64, w=128)
    make_bdd(data / "bdd", TRAINID_PAIRS, h=64, w=128)
    make_mapillary(data / "mapillary", NAMES, splits=("validation",), h=64, w=128, layout="v1.2")
    for f in [*(data / "cityscapes").rglob("frankfurt_000000_000576_*"), *(data / "bdd").rglob("7d4a9094-*"),
              *(data / "mapillary/validation").rglob("-0GxMr1Qb6bHVXBcuHvzwA.*")]:
        f.unlink()
    assert load_script("prepare_mapillary").main(["--root", str(data / "mapillary"), "--no-progress"]) == 0
    monkeypatch.setenv("DGSS_DATA", str(data))
    work = tmp_path / "run"
    assert main(["--method", "freeze", "--backbone", "tiny", "--weights", "none", "--profile", "paper",
                 "--work-dir", str(work), "--max-steps", "2", "--set", "data.num_workers=0",
                 "--set", "train.batch_size=1", "--set", "head=linear", "--no-progress"]) == 0
    metrics = json.loads((work / "results.json").read_text())["metrics"]
    scales = {k: metrics[k]["test_scale"] for k in ("cityscapes:val", "bdd:val", "mapillary:half_val")}
    assert scales == {"cityscapes:val": [2048, 1024], "bdd:val": [1280, 720], "mapillary:half_val": [1024, 512]}
    for k in scales:
        m = metrics[k]
        assert (m["mode"], m["crop"], m["stride"], m["n_images"]) == ("slide", 512, 341, 1)
        assert 0 <= m["miou"] <= 100
