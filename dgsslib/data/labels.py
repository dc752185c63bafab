"""The 19 Cityscapes evaluation classes (trainIds), their palette and the official id maps.

Every dataset in the kit is mapped onto these 19 trainIds; everything else becomes
``IGNORE_INDEX`` (255). Sources: the Cityscapes label table (cityscapesScripts
``labels.py``: 34 ids -> 19 trainIds), GTAV uses the Cityscapes ids, Synthia
RAND-CITYSCAPES uses its own ids (DAFormer's mapping).

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

import numpy as np

IGNORE_INDEX = 255
NUM_CLASSES = 19

CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
    "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car",
    "truck", "bus", "train", "motorcycle", "bicycle",
)

PALETTE = np.array([
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70),
    (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32)], dtype=np.uint8)

# Cityscapes label ids (gtFine_labelIds, also used by GTAV) -> trainIds.
CITYSCAPES_ID_TO_TRAINID = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
    24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}
GTAV_ID_TO_TRAINID = dict(CITYSCAPES_ID_TO_TRAINID)

# Synthia RAND-CITYSCAPES label ids (first channel of the 16-bit GT/LABELS png) -> trainIds.
SYNTHIA_ID_TO_TRAINID = {
    3: 0, 4: 1, 2: 2, 21: 3, 5: 4, 7: 5, 15: 6, 9: 7, 6: 8, 16: 9, 1: 10,
    10: 11, 17: 12, 8: 13, 18: 14, 19: 15, 20: 16, 12: 17, 11: 18,
}
# Synthia has no terrain, truck or train: the 16-class protocol drops them.
SYNTHIA_16_CLASSES = tuple(i for i in range(NUM_CLASSES) if i not in (9, 14, 16))


def make_lut(id_map: dict[int, int], size: int = 256) -> np.ndarray:
    """A lookup table ``lut[id] = trainId`` (255 for ids not in ``id_map``)."""
    lut = np.full(size, IGNORE_INDEX, dtype=np.uint8)
    for src, dst in id_map.items():
        lut[src] = dst
    return lut


def map_ids(label: np.ndarray, id_map: dict[int, int]) -> np.ndarray:
    """Map a raw id image to trainIds with ``id_map``; unknown ids become 255."""
    size = max(256, int(label.max()) + 1) if label.size else 256
    return make_lut(id_map, size)[label.astype(np.int64)]


def count_classes(train_ids: np.ndarray) -> dict[int, int]:
    """{trainId: pixels} of a trainId label; ignore (255) and absent classes left out
    (the per-image entry of ``sample_class_stats.json``, see ``class_stats.py``)."""
    counts = np.bincount(np.asarray(train_ids).ravel().astype(np.int64), minlength=256)
    return {int(c): int(counts[c]) for c in np.flatnonzero(counts) if c != IGNORE_INDEX}


def colorize(label: np.ndarray) -> np.ndarray:
    """H×W trainIds -> H×W×3 uint8 colours (ignore shown black)."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[:NUM_CLASSES] = PALETTE
    return lut[label.astype(np.int64)]
