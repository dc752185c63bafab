"""Rare Class Sampling (RCS, DAFormer: Hoyer et al., CVPR 2022, https://arxiv.org/abs/2111.14887, eq. 6-7).

    f_c  = N_c / Σ_c' N_c'                   (class frequency over the labelled source pixels)
    P(c) = exp((1 − f_c)/T) / Σ_c' exp((1 − f_c')/T),        T = 0.01
    c ~ P,   image ~ Uniform{ i : n_{i,c} > min_pixels },     min_pixels = 3000

so classes with f ≲ 1 % are drawn roughly uniformly and road/building almost never. Then the
crop is re-drawn (up to 10 times) until it holds > min_pixels × min_crop_ratio pixels of c
(:class:`dgsslib.data.sources.Augmented`). Used by VFMSeg and Rein-A on real data
(``data.rcs.enabled: true``). Classes that no image holds above ``min_pixels`` are left out of
P (DAFormer asserts instead; we print them).

Counts: real datasets read ``sample_class_stats.json`` (:mod:`dgsslib.data.class_stats`,
written by the prepare scripts / ``data_scripts/compute_rcs_stats.py``); other datasets (the
procedural benchmark) are counted from their labels once and cached in ``data.cache_dir``.
Sampling is step-indexed like :class:`~dgsslib.data.sources.StepBatchSampler`: the class and
image of global sample position k depend only on (seed, k), so resume stays exact.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from .labels import NUM_CLASSES
from .sources import StepBatchSampler


def class_probabilities(counts: np.ndarray, temperature: float = 0.01, min_pixels: int = 3000):
    """(classes, P(c)) from an N×K pixel-count matrix; classes without an eligible image are dropped."""
    totals = counts.sum(0).astype(np.float64)
    freq = totals / max(totals.sum(), 1.0)
    eligible = [c for c in range(counts.shape[1]) if (counts[:, c] > min_pixels).any()]
    if not eligible:
        raise ValueError(f"rare class sampling: no image holds more than {min_pixels} pixels of any class; "
                         "lower data.rcs.min_pixels")
    logits = (1.0 - freq[eligible]) / temperature
    p = np.exp(logits - logits.max())
    return np.array(eligible), p / p.sum()


def _count_labels(dataset) -> np.ndarray:
    from ..progress import progress_bar
    out = np.zeros((len(dataset), NUM_CLASSES), dtype=np.int64)
    for i in progress_bar(range(len(dataset)), desc="RCS class counts", leave=False):
        lab = dataset[i]["label"]
        out[i] = torch.bincount(lab[lab < NUM_CLASSES].flatten(), minlength=NUM_CLASSES).numpy()
    return out


def class_counts(dataset, cache_dir: str | None = None) -> np.ndarray:
    """N×19 pixel counts aligned with the dataset's indices."""
    from .base import SegFolderDataset
    if isinstance(dataset, SegFolderDataset):
        from .class_stats import class_pixels
        return class_pixels(dataset)
    params = getattr(dataset, "render_params", None)
    key = json.dumps(params() if callable(params) else repr(dataset), sort_keys=True, default=str)
    path = Path(cache_dir) / f"rcs_counts_{hashlib.sha256(key.encode()).hexdigest()[:16]}.npy" if cache_dir else None
    if path is not None and path.exists():
        counts = np.load(path)
        if counts.shape == (len(dataset), NUM_CLASSES):
            return counts
    counts = _count_labels(dataset)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, counts)
    return counts


class RareClassSampler(StepBatchSampler):
    """Yields, for steps start..max-1, (k, idx, class) triples of this rank's share of the batch."""

    def __init__(self, dataset, batch_size: int, seed: int, start_step: int, max_steps: int,
                 rank: int = 0, world_size: int = 1, temperature: float = 0.01, min_pixels: int = 3000,
                 cache_dir: str | None = None, counts: np.ndarray | None = None):
        super().__init__(len(dataset), batch_size, seed, start_step, max_steps, rank, world_size)
        self.counts = counts if counts is not None else class_counts(dataset, cache_dir)
        self.classes, self.probs = class_probabilities(self.counts, temperature, min_pixels)
        self.images = {int(c): np.flatnonzero(self.counts[:, c] > min_pixels) for c in self.classes}
        self._cum = torch.tensor(np.cumsum(self.probs), dtype=torch.float64)

    def pick(self, k: int) -> tuple[int, int]:
        """(image index, class) of global sample position k."""
        g = torch.Generator().manual_seed(self.seed * 104_729 + k)
        u = torch.rand((), generator=g, dtype=torch.float64)
        c = int(self.classes[min(int(torch.searchsorted(self._cum, u)), len(self.classes) - 1)])
        pool = self.images[c]
        return int(pool[int(torch.randint(len(pool), (), generator=g))]), c

    def __iter__(self):
        for step in range(self.start, self.max):
            base = (step * self.world + self.rank) * self.bs
            yield [(k, *self.pick(k)) for k in range(base, base + self.bs)]
