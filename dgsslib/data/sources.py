"""Turn the config's data strings into datasets, and feed them to the trainer reproducibly.

Data strings: ``"synthetic:<domain>"`` (the procedural benchmark; ``"synthetic:<domain>:<corruption>:<severity>"``
for Cityscapes-C-style corruptions) or ``"<dataset>:<split>[:<condition>]"`` for the real
datasets (``gtav:train``, ``cityscapes:val``, ``acdc:val:fog``...).

Reproducible batches: :class:`StepBatchSampler` fixes, for every global sample position k,
the dataset index (a seeded permutation per epoch) and the augmentation seed (``seed``, k) --
so a run resumed at step s sees exactly the batches an uninterrupted run sees.
"""
from __future__ import annotations

import torch

from .labels import IGNORE_INDEX


def _split(spec: str) -> list[str]:
    parts = spec.split(":")
    if len(parts) < 2:
        raise ValueError(f"data string {spec!r} must look like 'synthetic:<domain>' or '<dataset>:<split>'")
    return parts


def build_source(spec: str, cfg: dict, train: bool):
    """One dataset from a data string (no augmentation: see :class:`Augmented`)."""
    parts, d = _split(spec), cfg["data"]
    if parts[0] == "synthetic":
        from .synthetic import SyntheticStreets
        corruption = parts[2] if len(parts) > 2 else None
        severity = int(parts[3]) if len(parts) > 3 else (3 if corruption else None)
        return SyntheticStreets(domain=parts[1], split="train" if train else "val",
                                length=d["train_length"] if train else d["eval_length"],
                                size=tuple(d["size"]), seed=cfg["seed"] if train else 0,
                                corruption=corruption, severity=severity, cache_dir=d["cache_dir"])
    from .registry import build_from_spec  # '<dataset>:<split>[:<condition|time>]', data.root
    return build_from_spec(spec, d["root"])


def eval_name(spec: str) -> str:
    parts = spec.split(":")
    return ":".join(parts[1:]) if parts[0] == "synthetic" else spec


def train_transform(cfg: dict):
    """Real data: the Rein/Mask2Former pipeline; synthetic: a horizontal flip."""
    if cfg["data"]["train"].startswith("synthetic"):
        return random_flip
    from .transforms import build_train_transform
    return build_train_transform(cfg["data"]["crop"], cfg["data"]["scales"])


def random_flip(sample: dict, generator: torch.Generator) -> dict:
    """Horizontal flip with probability 0.5 (the synthetic benchmark's whole augmentation)."""
    if torch.rand((), generator=generator) < 0.5:
        sample = dict(sample, image=sample["image"].flip(-1), label=sample["label"].flip(-1))
    return sample


random_flip.crops = False  # no crop to re-draw for Rare Class Sampling


class Augmented(torch.utils.data.Dataset):
    """Index with (k, idx) or (k, idx, cls): sample ``idx`` augmented with a generator seeded by
    (seed, k). With a class (Rare Class Sampling) and ``min_crop_pixels`` > 0, the augmentation is
    re-drawn (same generator, so still reproducible) up to ``redraws`` times until the crop holds
    more than ``min_crop_pixels`` pixels of that class; the last draw is kept otherwise (DAFormer)."""

    def __init__(self, dataset, transform, seed: int, min_crop_pixels: int = 0, redraws: int = 10):
        self.dataset, self.transform, self.seed = dataset, transform, seed
        self.min_crop_pixels, self.redraws = int(min_crop_pixels), int(redraws)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        k, idx, cls = key if len(key) == 3 else (*key, None)
        base = self.dataset[idx]
        sample = base
        if self.transform is not None:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + k)
            tries = self.redraws if (cls is not None and self.min_crop_pixels > 0
                                     and getattr(self.transform, "crops", True)) else 1
            for _ in range(tries):
                sample = self.transform(base, generator=g)
                if tries == 1 or int((sample["label"] == cls).sum()) > self.min_crop_pixels:
                    break
        return {"image": sample["image"], "label": sample["label"]}


class StepBatchSampler(torch.utils.data.Sampler):
    """Yields, for steps start..max-1, the (k, idx) pairs of this rank's share of the batch."""

    def __init__(self, n: int, batch_size: int, seed: int, start_step: int, max_steps: int,
                 rank: int = 0, world_size: int = 1):
        if n == 0:
            raise ValueError("the training set is empty")
        self.n, self.bs, self.seed = n, batch_size, seed
        self.start, self.max, self.rank, self.world = start_step, max_steps, rank, world_size
        self._perm_epoch, self._perm = None, None

    def _index(self, k: int) -> int:
        epoch = k // self.n
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(self.seed * 7919 + epoch)
            self._perm, self._perm_epoch = torch.randperm(self.n, generator=g), epoch
        return int(self._perm[k % self.n])

    def __iter__(self):
        for step in range(self.start, self.max):
            base = (step * self.world + self.rank) * self.bs
            yield [(k, self._index(k)) for k in range(base, base + self.bs)]

    def __len__(self):
        return max(0, self.max - self.start)


def collate(batch: list[dict]) -> dict:
    """Stack samples; pads to the largest H×W (image 0, label 255) when sizes differ."""
    H = max(b["image"].shape[-2] for b in batch)
    W = max(b["image"].shape[-1] for b in batch)
    imgs = torch.zeros(len(batch), 3, H, W, dtype=batch[0]["image"].dtype)
    labs = torch.full((len(batch), H, W), IGNORE_INDEX, dtype=torch.int64)
    for i, b in enumerate(batch):
        h, w = b["image"].shape[-2:]
        imgs[i, :, :h, :w] = b["image"]
        labs[i, :h, :w] = b["label"]
    return {"image": imgs, "label": labs}
