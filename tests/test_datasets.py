"""Dataset loaders, prepare scripts and verify on miniature fake trees in the real layouts."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dgsslib.data.base import DatasetError
from dgsslib.data.mapillary import id_map_from_config, trainid_for_name
from dgsslib.data.registry import DATASETS, build_dataset, data_root
from dgsslib.data.verify import main as verify_main

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ itself, for fake_trees
from fake_trees import (  # noqa: E402
    make_acdc, make_bdd, make_bdd_old, make_cityscapes, make_dark_zurich, make_gtav,
    make_mapillary, make_synthia, rgb, truncate, write_png)

REPO = Path(__file__).resolve().parents[1]

# ---- id facts, written out by hand (raw id, expected trainId) -------------------------------
CITYSCAPES_PAIRS = [(7, 0), (8, 1), (11, 2), (12, 3), (13, 4), (17, 5), (19, 6), (20, 7), (21, 8),
                    (22, 9), (23, 10), (24, 11), (25, 12), (26, 13), (27, 14), (28, 15), (31, 16),
                    (32, 17), (33, 18), (0, 255), (1, 255), (3, 255), (9, 255), (10, 255),
                    (14, 255), (29, 255), (30, 255), (255, 255)]
SYNTHIA_PAIRS = [(3, 0), (4, 1), (2, 2), (21, 3), (5, 4), (7, 5), (15, 6), (9, 7), (6, 8), (16, 9),
                 (1, 10), (10, 11), (17, 12), (8, 13), (18, 14), (19, 15), (20, 16), (12, 17),
                 (11, 18), (0, 255), (13, 255), (14, 255), (22, 255)]
TRAINID_PAIRS = [(v, v) for v in range(19)] + [(255, 255)]
MAPILLARY_NAMES = [  # (readable name in config_v1.2.json, expected trainId)
    ("Bird", 255), ("Road", 0), ("Curb", 1), ("Curb Cut", 1), ("Sidewalk", 1),
    ("Traffic Sign (Back)", 7), ("Traffic Sign (Front)", 7), ("Traffic Sign Frame", 7),
    ("Traffic Light", 6), ("Bicyclist", 12), ("Motorcyclist", 12), ("Other Rider", 12),
    ("Car Mount", 255), ("Ego Vehicle", 255), ("Utility Pole", 5), ("Pole", 5),
    ("Street Light", 5), ("Crosswalk - Plain", 0), ("Lane Marking - Crosswalk", 0),
    ("Lane Marking - General", 0), ("Parking", 0), ("Bike Lane", 0), ("Service Lane", 0),
    ("Pedestrian Area", 1), ("On Rails", 16), ("Rail Track", 255), ("Guard Rail", 255),
    ("Car", 13), ("Motorcycle", 17), ("Bicycle", 18), ("Person", 11), ("Terrain", 9),
    ("Sky", 10), ("Caravan", 255), ("Wheeled Slow", 255), ("Unlabeled", 255),
]


def labels_by_name(ds) -> dict[str, np.ndarray]:
    out = {}
    for i in range(len(ds)):
        s = ds[i]
        assert s["image"].dtype == torch.uint8 and s["image"].shape == (3, 8, 16)
        assert s["label"].dtype == torch.int64 and s["label"].shape == (8, 16)
        assert s["meta"]["dataset"] == ds.NAME and s["meta"]["index"] == i
        out[s["meta"]["name"]] = s["label"].numpy()
    return out


def assert_labels(ds, expected: dict[str, np.ndarray]) -> None:
    got = labels_by_name(ds)
    assert sorted(got) == sorted(expected)
    for name, exp in expected.items():
        np.testing.assert_array_equal(got[name], exp, err_msg=name)


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"_script_{name}", REPO / "data_scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def mtimes(files) -> dict[str, int]:
    return {str(f): f.stat().st_mtime_ns for f in files}


# ---- loading: labels equal the expected trainIds pixel for pixel ---------------------------
def test_cityscapes_raw_ids(tmp_path):
    exp = make_cityscapes(tmp_path, CITYSCAPES_PAIRS)
    for split in ("train", "val"):
        assert_labels(build_dataset("cityscapes", tmp_path, split), exp[split])
    test = build_dataset("cityscapes", tmp_path, "test")
    s = test[0]
    assert s["meta"]["unlabelled"] and (s["label"] == 255).all()


def test_cityscapes_train_ids_files(tmp_path):
    exp = make_cityscapes(tmp_path, CITYSCAPES_PAIRS, train_ids=True)
    assert_labels(build_dataset("cityscapes", tmp_path, "val"), exp["val"])


def test_gtav(tmp_path):
    exp = make_gtav(tmp_path, CITYSCAPES_PAIRS)
    assert_labels(build_dataset("gtav", tmp_path), exp["train"])


def test_gtav_split_file(tmp_path):
    make_gtav(tmp_path, CITYSCAPES_PAIRS)
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits/val.txt").write_text("00003\n00001\n")
    ds = build_dataset("gtav", tmp_path, "official_val")
    assert [it.image.name for it in ds.items] == ["00003.png", "00001.png"]
    assert len(build_dataset("gtav", tmp_path, "train")) == len(build_dataset("gtav", tmp_path, "all")) == 3
    with pytest.raises(DatasetError, match="train.txt"):
        build_dataset("gtav", tmp_path, "official_train")
    (tmp_path / "splits/test.txt").write_text("00009\n")
    with pytest.raises(DatasetError, match="00009"):
        build_dataset("gtav", tmp_path, "official_test")


def test_synthia_16bit_first_channel(tmp_path):
    exp = make_synthia(tmp_path, SYNTHIA_PAIRS)
    assert_labels(build_dataset("synthia", tmp_path), exp["train"])


def test_bdd(tmp_path):
    exp = make_bdd(tmp_path, TRAINID_PAIRS)
    for split in ("train", "val"):
        assert_labels(build_dataset("bdd", tmp_path, split), exp[split])
    assert build_dataset("bdd", tmp_path, "test")[0]["meta"]["unlabelled"]


def test_mapillary_name_mapping():
    for name, tid in MAPILLARY_NAMES:
        assert trainid_for_name(name) == tid, name
    labels = [{"readable": n} for n, _ in MAPILLARY_NAMES]
    expected = {i: t for i, (_, t) in enumerate(MAPILLARY_NAMES) if t != 255}
    assert id_map_from_config(labels) == expected


def test_mapillary(tmp_path):
    raw = make_mapillary(tmp_path, [n for n, _ in MAPILLARY_NAMES])
    lut = np.array([t for _, t in MAPILLARY_NAMES])
    for split in ("training", "validation"):
        ds = build_dataset("mapillary", tmp_path, split)
        assert_labels(ds, {k: lut[v] for k, v in raw[split].items()})
    assert build_dataset("mapillary", tmp_path, "val").split == "validation"


def test_acdc(tmp_path):
    exp = make_acdc(tmp_path, TRAINID_PAIRS)
    for split in ("train", "val"):
        assert_labels(build_dataset("acdc", tmp_path, split), exp[split])
    night = build_dataset("acdc", tmp_path, "val", conditions=("night",))
    assert len(night) == 1 and "/night/" in night.items[0].name
    assert night.expected_count() == 106
    assert len(build_dataset("acdc", tmp_path, "test")) == 4
    with pytest.raises(ValueError, match="dusk"):
        build_dataset("acdc", tmp_path, "val", conditions=("dusk",))


def test_acdc_raw_label_ids(tmp_path):
    exp = make_acdc(tmp_path, CITYSCAPES_PAIRS, train_ids=False)
    assert_labels(build_dataset("acdc", tmp_path, "val"), exp["val"])


def test_dark_zurich(tmp_path):
    exp = make_dark_zurich(tmp_path, TRAINID_PAIRS)
    assert_labels(build_dataset("dark_zurich", tmp_path, "val"), exp["val"])
    train = build_dataset("dark_zurich", tmp_path, "train")
    assert len(train) == 2 and all("/night/" in it.name for it in train.items)
    s = train[0]
    assert s["meta"]["unlabelled"] is True and s["label"].shape == (8, 16) and (s["label"] == 255).all()
    assert len(build_dataset("dark_zurich", tmp_path, "train", times=("day", "twilight", "night"))) == 6


def test_registry(tmp_path, monkeypatch):
    assert set(DATASETS) == {"gtav", "synthia", "cityscapes", "bdd", "mapillary", "acdc", "dark_zurich"}
    with pytest.raises(ValueError, match="cityscapes.*dark_zurich"):
        build_dataset("kitti", tmp_path)
    make_bdd(tmp_path / "bdd", TRAINID_PAIRS)
    monkeypatch.setenv("DGSS_DATA", str(tmp_path))
    assert data_root("bdd") == tmp_path / "bdd"
    assert len(build_dataset("bdd")) == 2  # root from $DGSS_DATA, default split val
    for cls in DATASETS.values():
        assert cls.__doc__ and len(cls.TEST_SCALE) == 2 and cls.EXPECTED_COUNTS


def test_transform_is_applied(tmp_path):
    make_bdd(tmp_path, TRAINID_PAIRS)
    ds = build_dataset("bdd", tmp_path, "val", transform=lambda s: {**s, "flag": True})
    assert ds[0]["flag"]


# ---- every bad input raises DatasetError naming the file -----------------------------------
def test_missing_root(tmp_path, monkeypatch):
    monkeypatch.delenv("DGSS_DATA", raising=False)
    with pytest.raises(DatasetError, match="DGSS_DATA") as e:
        build_dataset("cityscapes", tmp_path / "nope")
    assert "nope" in str(e.value) and "data_scripts/README.md" in str(e.value)


def test_wrong_layout_lists_found(tmp_path):
    make_cityscapes(tmp_path, CITYSCAPES_PAIRS)
    (tmp_path / "leftImg8bit").rename(tmp_path / "images")
    with pytest.raises(DatasetError, match="leftImg8bit") as e:
        build_dataset("cityscapes", tmp_path, "val")
    assert "images/" in str(e.value) and "gtFine/" in str(e.value)


def test_image_without_label(tmp_path):
    make_cityscapes(tmp_path, CITYSCAPES_PAIRS)
    lbl = tmp_path / "gtFine/val/frankfurt/frankfurt_000000_000576_gtFine_labelIds.png"
    lbl.unlink()
    with pytest.raises(DatasetError) as e:
        build_dataset("cityscapes", tmp_path, "val")
    assert "frankfurt_000000_000576_leftImg8bit.png" in str(e.value) and lbl.name in str(e.value)


def test_label_without_image(tmp_path):
    make_gtav(tmp_path, CITYSCAPES_PAIRS)
    (tmp_path / "images/00002.png").unlink()
    with pytest.raises(DatasetError) as e:
        build_dataset("gtav", tmp_path)
    assert "labels/00002.png" in str(e.value) and "images/00002.png" in str(e.value)


def test_size_mismatch(tmp_path):
    make_gtav(tmp_path, CITYSCAPES_PAIRS)
    write_png(tmp_path / "labels/00002.png", np.full((8, 15), 7, np.uint8))
    ds = build_dataset("gtav", tmp_path, size_mismatch="error")
    with pytest.raises(DatasetError) as e:
        ds[1]
    msg = str(e.value)
    assert "00002.png" in msg and "16x8" in msg and "15x8" in msg and "prepare_gtav.py" in msg
    # GTAV's default: the loader resizes the label to its image (nearest) and says so
    ds = build_dataset("gtav", tmp_path)
    with pytest.warns(UserWarning, match="00002.png.*resizing the label"):
        label = ds[1]["label"]
    assert label.shape == (8, 16) and (label == 0).all() and ds.resized_labels == ["images/00002.png"]
    make_cityscapes(tmp_path / "cs", CITYSCAPES_PAIRS)  # every other dataset refuses
    write_png(tmp_path / "cs/gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelIds.png",
              np.full((8, 15), 7, np.uint8))
    with pytest.raises(DatasetError, match="size mismatch"):
        build_dataset("cityscapes", tmp_path / "cs", "val")[0]


@pytest.mark.parametrize("dataset", ["cityscapes", "bdd"])
def test_unknown_label_ids(tmp_path, dataset):
    if dataset == "cityscapes":  # raw ids: 40 is no Cityscapes id
        make_cityscapes(tmp_path, CITYSCAPES_PAIRS)
        bad = tmp_path / "gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelIds.png"
        value = 40
    else:  # trainIds: 19 is neither 0..18 nor 255
        make_bdd(tmp_path, TRAINID_PAIRS)
        bad = tmp_path / "labels/sem_seg/masks/val/7d2f7975-e0c1c5a7.png"
        value = 19
    arr = np.full((8, 16), 7, np.uint8)
    arr[0, :3] = value
    write_png(bad, arr)
    ds = build_dataset(dataset, tmp_path, "val")
    with pytest.raises(DatasetError, match=rf"unknown ids \[{value} \(3 px\)\]") as e:
        [ds[i] for i in range(len(ds))]
    assert bad.name in str(e.value)


@pytest.mark.parametrize("which", ["png_image", "jpg_image", "label"])
def test_corrupt_files(tmp_path, which):
    if which == "jpg_image":
        make_bdd(tmp_path, TRAINID_PAIRS)
        bad, name = tmp_path / "images/10k/val/7d2f7975-e0c1c5a7.jpg", "bdd"
    else:
        make_cityscapes(tmp_path, CITYSCAPES_PAIRS)
        sub = "leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png" if which == "png_image" \
            else "gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelIds.png"
        bad, name = tmp_path / sub, "cityscapes"
    truncate(bad, 0.6)
    ds = build_dataset(name, tmp_path, "val")
    with pytest.raises(DatasetError) as e:
        [ds[i] for i in range(len(ds))]
    assert bad.name in str(e.value) and "corrupt" in str(e.value)


def test_colour_label_is_rejected(tmp_path):
    make_bdd(tmp_path, TRAINID_PAIRS)
    bad = write_png(tmp_path / "labels/sem_seg/masks/val/7d2f7975-e0c1c5a7.png", rgb(1))
    with pytest.raises(DatasetError, match="channels") as e:
        build_dataset("bdd", tmp_path, "val")[0]
    assert bad.name in str(e.value)


# ---- prepare scripts: converted files, second run skips (resumable) ------------------------
def _run_twice(script: str, root: Path, outputs_glob: str, extra=(), expected_files: int | None = None):
    main = load_script(script).main
    assert main(["--root", str(root), "--no-progress", *extra]) == 0
    outs = sorted(root.glob(outputs_glob))
    assert outs and (expected_files is None or len(outs) == expected_files)
    before = mtimes(outs)
    assert main(["--root", str(root), "--no-progress", *extra]) == 0
    assert mtimes(sorted(root.glob(outputs_glob))) == before  # nothing rewritten
    return outs


def test_prepare_cityscapes(tmp_path, capsys):
    exp = make_cityscapes(tmp_path, CITYSCAPES_PAIRS)
    outs = _run_twice("prepare_cityscapes", tmp_path, "gtFine/*/*/*_gtFine_labelTrainIds.png", expected_files=4)
    assert "skipped 4" in capsys.readouterr().out
    truncate(outs[0])  # a half-written output is detected and rewritten
    assert load_script("prepare_cityscapes").main(["--root", str(tmp_path), "--no-progress"]) == 0
    ds = build_dataset("cityscapes", tmp_path, "val")
    assert ds.items[0].label.name.endswith("_gtFine_labelTrainIds.png")
    assert_labels(ds, exp["val"])


def test_prepare_gtav_stats_and_sizes(tmp_path, capsys):
    exp = make_gtav(tmp_path, CITYSCAPES_PAIRS)
    _run_twice("prepare_gtav", tmp_path, "labels/*_labelTrainIds.png", expected_files=3)
    import json
    stats = json.loads((tmp_path / "sample_class_stats.json").read_text())
    assert [s["file"] for s in stats] == [f"labels/0000{i}_labelTrainIds.png" for i in (1, 2, 3)]
    first = exp["train"]["images/00001.png"]
    assert stats[0]["13"] == int((first == 13).sum()) and "255" not in stats[0]
    assert_labels(build_dataset("gtav", tmp_path), exp["train"])
    # a GTAV image/label size mismatch: an error with --strict-sizes (no stats written), else
    # the trainId label is written resized to its image and listed as a NOTE
    write_png(tmp_path / "labels/00004.png", np.full((6, 12), 7, np.uint8))
    write_png(tmp_path / "images/00004.png", rgb(4))
    (tmp_path / "sample_class_stats.json").unlink()
    main = load_script("prepare_gtav").main
    assert main(["--root", str(tmp_path), "--no-progress", "--strict-sizes"]) == 1
    assert not (tmp_path / "sample_class_stats.json").exists()
    capsys.readouterr()
    assert main(["--root", str(tmp_path), "--no-progress", "--workers", "2"]) == 0
    assert "NOTE 00004.png: label 12x6 resized to its image 16x8" in capsys.readouterr().out
    ds = build_dataset("gtav", tmp_path, size_mismatch="error")
    fixed = ds[3]["label"]
    assert fixed.shape == (8, 16) and (fixed == 0).all()
    stats = json.loads((tmp_path / "sample_class_stats.json").read_text())
    assert stats[3] == {"file": "labels/00004_labelTrainIds.png", "0": 128}


def test_prepare_synthia(tmp_path):
    exp = make_synthia(tmp_path, SYNTHIA_PAIRS)
    _run_twice("prepare_synthia", tmp_path, "GT/LABELS/*_labelTrainIds.png", expected_files=2)
    assert (tmp_path / "sample_class_stats.json").is_file()
    ds = build_dataset("synthia", tmp_path)
    assert ds.items[0].label.name.endswith("_labelTrainIds.png")
    assert_labels(ds, exp["train"])


def test_prepare_bdd_old_layout(tmp_path):
    make_bdd_old(tmp_path, TRAINID_PAIRS)
    _run_twice("prepare_bdd", tmp_path, "labels/sem_seg/masks/*/*.png", expected_files=4)
    assert len(build_dataset("bdd", tmp_path, "train")) == 2


def test_prepare_mapillary_half(tmp_path):
    names = [n for n, _ in MAPILLARY_NAMES]
    raw = make_mapillary(tmp_path, names, splits=("validation",), h=16, w=32)
    _run_twice("prepare_mapillary", tmp_path, "half/val_*/*", expected_files=4)
    ds = build_dataset("mapillary", tmp_path, "half_val")
    lut = np.array([t for _, t in MAPILLARY_NAMES])
    for i in range(len(ds)):
        s = ds[i]
        assert s["image"].shape == (3, 8, 16)
        full = lut[raw["validation"]["validation/images/" + ds.items[i].image.name]]
        np.testing.assert_array_equal(s["label"].numpy(), full[1::2, 1::2])  # nearest, pixel centres


def test_prepare_acdc(tmp_path):
    exp = make_acdc(tmp_path, CITYSCAPES_PAIRS, train_ids=False)
    _run_twice("prepare_acdc", tmp_path, "gt/*/*/*/*_gt_labelTrainIds.png", expected_files=8)
    ds = build_dataset("acdc", tmp_path, "val")
    assert ds.items[0].label.name.endswith("_gt_labelTrainIds.png")
    assert_labels(ds, exp["val"])


def test_prepare_dark_zurich(tmp_path):
    exp = make_dark_zurich(tmp_path, CITYSCAPES_PAIRS, train_ids=False)
    _run_twice("prepare_dark_zurich", tmp_path, "gt/val/night/*/*_gt_labelTrainIds.png", expected_files=2)
    assert_labels(build_dataset("dark_zurich", tmp_path, "val"), exp["val"])


# ---- verify ---------------------------------------------------------------------------------
def test_verify_good_and_broken(tmp_path, capsys):
    make_cityscapes(tmp_path, CITYSCAPES_PAIRS)
    assert verify_main(["cityscapes", "--root", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "WARN" in out and "2975" in out and "RESULT: OK" in out  # a subset: warning only
    bad = tmp_path / "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png"
    write_png(bad, np.full((8, 16), 77, np.uint8))
    assert verify_main(["cityscapes", "--root", str(tmp_path), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert bad.name in out and "RESULT: FAIL" in out


def test_verify_pairing_error_and_missing(tmp_path, capsys):
    make_acdc(tmp_path, TRAINID_PAIRS)
    assert verify_main(["acdc", "--root", str(tmp_path), "--no-progress", "--conditions", "fog"]) == 0
    write_png(tmp_path / "gt/fog/val/GOPR0475/GOPR0475_frame_009999_gt_labelTrainIds.png", rgb(0)[..., 0])
    assert verify_main(["acdc", "--root", str(tmp_path), "--no-progress"]) == 1
    assert "label(s) without image" in capsys.readouterr().out
    capsys.readouterr()
    assert verify_main(["bdd", "--root", str(tmp_path / "nothing"), "--no-progress"]) == 2  # user error
    err = capsys.readouterr().err
    assert err.startswith("[dgsslib] error: ") and "nothing" in err and err.count("\n") == 1
    assert verify_main(["bdd", "--root", str(tmp_path), "--no-progress"]) == 2  # no bdd split there
    assert "no split of bdd" in capsys.readouterr().err


@pytest.mark.parametrize("cmd", [["data_scripts/verify.py"], ["-m", "dgsslib.data.verify"]])
def test_verify_cli(tmp_path, cmd):
    make_dark_zurich(tmp_path, TRAINID_PAIRS)
    env = {**os.environ, "PYTHONPATH": str(REPO), "DGSS_DATA": str(tmp_path.parent)}
    args = [sys.executable, *cmd, "dark_zurich", "--root", str(tmp_path), "--no-progress"]
    ok = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (tmp_path / "gt/val/night/GOPR0356/GOPR0356_frame_000021_gt_labelTrainIds.png").unlink()
    broken = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True)
    assert broken.returncode == 1 and "GOPR0356_frame_000021" in broken.stdout
