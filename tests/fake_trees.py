"""Miniature fake dataset trees in the REAL on-disk layouts (8×16 px images, a few per split).

Each ``make_<dataset>(root, pairs, ...)`` writes raw label values ``pairs[i][0]`` in a diagonal
stripe pattern and returns ``{split: {meta name: expected trainId array}}`` built from
``pairs[i][1]``, so the tests state the id facts themselves and compare pixel for pixel.
"""
from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

H, W = 8, 16
Pairs = Sequence[tuple[int, int]]
Expected = dict[str, dict[str, np.ndarray]]


def pattern(values: Sequence[int], shift: int = 0, h: int = H, w: int = W) -> np.ndarray:
    """values[(x + y + shift) % n] at (y, x): every value appears, differently per shift."""
    yy, xx = np.mgrid[:h, :w]
    return np.asarray(values)[(xx + yy + shift) % len(values)]


def rgb(seed: int, h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def write_png(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr, dtype=np.uint8)).save(path)
    return path


def write_jpg(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, quality=95)
    return path


def write_palette_png(path: Path, ids: np.ndarray) -> Path:
    """Mode 'P' png (GTAV / Mapillary labels): the palette index is the class id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(np.asarray(ids, dtype=np.uint8), mode="P")
    im.putpalette(list(np.random.default_rng(0).integers(0, 256, 768, dtype=np.uint8)))
    im.save(path)
    return path


def write_png16(path: Path, arr: np.ndarray) -> Path:
    """A 16-bit RGB png (Synthia GT/LABELS), written by hand: Pillow cannot write these."""
    arr = np.asarray(arr, dtype=">u2")
    h, w, c = arr.shape
    raw = b"".join(b"\x00" + arr[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, {3: 2, 4: 6}[c], 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return path


def _raw_and_expected(pairs: Pairs, shift: int, h: int = H, w: int = W) -> tuple[np.ndarray, np.ndarray]:
    return (pattern([p[0] for p in pairs], shift, h, w),
            pattern([p[1] for p in pairs], shift, h, w).astype(np.int64))


def make_cityscapes(root: Path, pairs: Pairs, train_ids: bool = False, h: int = H, w: int = W) -> Expected:
    """leftImg8bit/<split>/<city>/<x>_leftImg8bit.png + gtFine labelIds (or labelTrainIds)."""
    out: Expected = {"train": {}, "val": {}}
    files = {"train": [("aachen", "aachen_000000_000019"), ("bremen", "bremen_000001_000019")],
             "val": [("frankfurt", "frankfurt_000000_000294"), ("frankfurt", "frankfurt_000000_000576")]}
    for k, (split, entries) in enumerate(files.items()):
        for i, (city, stem) in enumerate(entries):
            raw, exp = _raw_and_expected(pairs, 3 * k + i, h, w)
            img = write_png(root / f"leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png", rgb(10 * k + i, h, w))
            if train_ids:
                write_png(root / f"gtFine/{split}/{city}/{stem}_gtFine_labelTrainIds.png", exp)
            else:
                write_png(root / f"gtFine/{split}/{city}/{stem}_gtFine_labelIds.png", raw)
            write_png(root / f"gtFine/{split}/{city}/{stem}_gtFine_color.png", rgb(99))  # distractor
            out[split][img.relative_to(root).as_posix()] = exp
    write_png(root / "leftImg8bit/test/berlin/berlin_000000_000019_leftImg8bit.png", rgb(5))
    return out


def make_gtav(root: Path, pairs: Pairs, n: int = 3, h: int = H, w: int = W) -> Expected:
    """images/<id>.png + labels/<id>.png (palette png of Cityscapes ids)."""
    out: Expected = {"train": {}}
    for i in range(n):
        raw, exp = _raw_and_expected(pairs, i, h, w)
        img = write_png(root / f"images/{i + 1:05d}.png", rgb(i, h, w))
        write_palette_png(root / f"labels/{i + 1:05d}.png", raw)
        out["train"][img.relative_to(root).as_posix()] = exp
    return out


def make_synthia(root: Path, pairs: Pairs, n: int = 2) -> Expected:
    """RGB/<id>.png + GT/LABELS/<id>.png: 16-bit, class id in channel 0, instance ids (>255)
    in channel 1 -- a reader that drops 16 bits or picks the wrong channel fails the test."""
    out: Expected = {"train": {}}
    for i in range(n):
        raw, exp = _raw_and_expected(pairs, i)
        lbl = np.stack([raw, 1000 + pattern(range(7), i), np.zeros_like(raw)], -1)
        img = write_png(root / f"RGB/{i:07d}.png", rgb(i))
        write_png16(root / f"GT/LABELS/{i:07d}.png", lbl)
        out["train"][img.relative_to(root).as_posix()] = exp
    return out


def make_bdd(root: Path, pairs: Pairs, h: int = H, w: int = W) -> Expected:
    """images/10k/<split>/<name>.jpg + labels/sem_seg/masks/<split>/<name>.png (trainIds)."""
    out: Expected = {"train": {}, "val": {}}
    for k, split in enumerate(("train", "val")):
        for i, stem in enumerate(("7d2f7975-e0c1c5a7", "7d4a9094-0455564b")):
            raw, exp = _raw_and_expected(pairs, 3 * k + i, h, w)
            img = write_jpg(root / f"images/10k/{split}/{stem}.jpg", rgb(i, h, w))
            write_png(root / f"labels/sem_seg/masks/{split}/{stem}.png", raw)
            out[split][img.relative_to(root).as_posix()] = exp
    write_jpg(root / "images/10k/test/ac517380-00000000.jpg", rgb(3))
    return out


def make_bdd_old(root: Path, pairs: Pairs) -> None:
    """The pre-2021 release: seg/images/<split>/*.jpg, seg/labels/<split>/*_train_id.png."""
    for k, split in enumerate(("train", "val")):
        for i, stem in enumerate(("0a0a0b1a-7c39d841", "0a0c3694-24b5193a")):
            write_jpg(root / f"seg/images/{split}/{stem}.jpg", rgb(i))
            write_png(root / f"seg/labels/{split}/{stem}_train_id.png", pattern([p[0] for p in pairs], k + i))


MAPILLARY_LAYOUTS = {  # package -> (config file, label dir of a split)
    "v1.2": ("config.json", "{split}/labels"),              # mapillary-vistas-dataset_public_v1.2.zip
    "v2.0": ("config_v1.2.json", "{split}/v1.2/labels"),    # mapillary-vistas-dataset_public_v2.0.zip
}


def make_mapillary(root: Path, names: Sequence[str], splits: Sequence[str] = ("training", "validation"),
                   h: int = H, w: int = W, layout: str = "v2.0") -> dict[str, dict[str, np.ndarray]]:
    """The v1.2 labels as one of the two official packages ship them (``layout``: "v1.2" zip:
    config.json + <split>/labels; "v2.0" zip: config_v1.2.json + <split>/v1.2/labels, next to
    an unused 124-label config_v2.0.json and <split>/v2.0/labels). Returns the RAW ids per image
    (the test maps them with its own expected table)."""
    config, label_dir = MAPILLARY_LAYOUTS[layout]
    labels = [{"readable": n, "name": n.lower().replace(" ", "-"), "color": [i, i, i],
               "instances": False, "evaluate": True} for i, n in enumerate(names)]
    root.mkdir(parents=True, exist_ok=True)
    (root / config).write_text(json.dumps({"labels": labels, "version": "1.2"}))
    if layout == "v2.0":  # a decoy: the 124-label v2.0 config must not be used
        (root / "config_v2.0.json").write_text(json.dumps({"labels": [{"readable": "Bird"}] * 124}))
    out: dict[str, dict[str, np.ndarray]] = {}
    for k, split in enumerate(splits):
        out[split] = {}
        for i, stem in enumerate(("--0Gb2EVz7fqXzHaJX8SkBA", "-0GxMr1Qb6bHVXBcuHvzwA")):
            raw = pattern(range(len(names)), 5 * k + i, h, w)
            img = write_jpg(root / f"{split}/images/{stem}.jpg", rgb(i, h, w))
            write_palette_png(root / label_dir.format(split=split) / f"{stem}.png", raw)
            if layout == "v2.0":  # v2.0 ids (all 0 = "Bird" in the decoy config) must not be read
                write_palette_png(root / f"{split}/v2.0/labels/{stem}.png", np.zeros_like(raw))
            out[split][img.relative_to(root).as_posix()] = raw
    return out


def make_acdc(root: Path, pairs: Pairs, conditions: Sequence[str] = ("fog", "night", "rain", "snow"),
              train_ids: bool = True) -> Expected:
    """rgb_anon/<cond>/<split>/<seq>/<x>_rgb_anon.png + gt/... _gt_labelTrainIds.png
    (or only _gt_labelIds.png with ``train_ids=False``); test split without gt."""
    out: Expected = {"train": {}, "val": {}}
    for c, cond in enumerate(conditions):
        for k, split in enumerate(("train", "val")):
            seq, stem = f"GOPR0{475 + c}", f"GOPR0{475 + c}_frame_00{k}041"
            raw, exp = _raw_and_expected(pairs, c + k)
            img = write_png(root / f"rgb_anon/{cond}/{split}/{seq}/{stem}_rgb_anon.png", rgb(c + k))
            gt = root / f"gt/{cond}/{split}/{seq}"
            if train_ids:
                write_png(gt / f"{stem}_gt_labelTrainIds.png", exp)
            write_png(gt / f"{stem}_gt_labelIds.png", raw)
            write_png(gt / f"{stem}_gt_labelColor.png", rgb(7))  # distractor
            out[split][img.relative_to(root).as_posix()] = exp
        write_png(root / f"rgb_anon/{cond}/test/GOPR0999/GOPR0999_frame_000001_rgb_anon.png", rgb(c))
    return out


def make_dark_zurich(root: Path, pairs: Pairs, train_ids: bool = True) -> Expected:
    """rgb_anon/train/{day,twilight,night}/<seq>/ (unlabelled), rgb_anon/val/night/<seq>/ +
    gt/val/night/<seq>/<x>_gt_labelTrainIds.png (or only _gt_labelIds.png)."""
    out: Expected = {"val": {}}
    for t, time in enumerate(("day", "twilight", "night")):
        for i in range(2):
            write_png(root / f"rgb_anon/train/{time}/GOPR03{t}0/GOPR03{t}0_frame_00{i}100_rgb_anon.png",
                      rgb(t + i))
    for i in range(2):
        stem = f"GOPR0356_frame_000{i}21"
        raw, exp = _raw_and_expected(pairs, i)
        img = write_png(root / f"rgb_anon/val/night/GOPR0356/{stem}_rgb_anon.png", rgb(i))
        if train_ids:
            write_png(root / f"gt/val/night/GOPR0356/{stem}_gt_labelTrainIds.png", exp)
        write_png(root / f"gt/val/night/GOPR0356/{stem}_gt_labelIds.png", raw)
        out["val"][img.relative_to(root).as_posix()] = exp
    return out


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut a file to ``keep`` of its bytes (a broken download)."""
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * keep))])
    return path
