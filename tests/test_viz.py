"""Visual helpers: overlays keep ignore pixels, PCA is well-formed, every plot returns a Figure."""
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from dgsslib import viz
from dgsslib.data.labels import PALETTE


def _image_label(h=8, w=10):
    g = np.random.default_rng(0)
    img = g.integers(0, 256, (3, h, w), dtype=np.uint8)
    lab = g.integers(0, 19, (h, w))
    lab[:3] = 255
    return img, lab


def test_overlay_blends_only_labelled_pixels():
    img, lab = _image_label()
    out = viz.overlay(torch.from_numpy(img), torch.from_numpy(lab), alpha=0.5)
    hwc = img.transpose(1, 2, 0)
    assert out.shape == (8, 10, 3) and out.dtype == np.uint8
    assert np.array_equal(out[:3], hwc[:3])  # ignore rows untouched
    expect = np.clip(0.5 * hwc[3:].astype(np.float32) + 0.5 * PALETTE[lab[3:]] + 0.5, 0, 255).astype(np.uint8)
    assert np.abs(out[3:].astype(int) - expect.astype(int)).max() <= 1
    # HWC float input gives the same result; alpha 0 is the image
    assert np.abs(viz.overlay(hwc / 255.0, lab).astype(int) - out.astype(int)).max() <= 1
    assert np.array_equal(viz.overlay(img, lab, alpha=0.0), hwc)
    with pytest.raises(ValueError):
        viz.overlay(img, lab[:4])


def test_feature_pca_shape_and_range():
    feats = torch.randn(2, 16, 5, 7)
    rgb = viz.feature_pca(feats)
    assert rgb.shape == (2, 5, 7, 3) and rgb.dtype == np.float32
    assert rgb.min() >= 0 and rgb.max() <= 1
    assert np.allclose(rgb.reshape(-1, 3).min(0), 0) and np.allclose(rgb.reshape(-1, 3).max(0), 1)
    one = viz.feature_pca(feats[0])
    assert one.shape == (5, 7, 3)
    assert viz.feature_pca(feats[:1], n=2).shape == (5, 7, 2)
    with pytest.raises(ValueError):
        viz.feature_pca(feats, n=17)


class _DS:
    def __init__(self, n=4):
        self.items = [dict(zip(("image", "label"), _image_label())) for _ in range(n)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_every_plot_returns_a_figure():
    img, lab = _image_label()
    rec = {"miou": 50.0, "per_class": {"road": 90.0, "sky": None}}
    figs = [
        viz.show_samples([{"image": img, "label": lab, "pred": lab}, (img, lab)], titles=["a", "b"], ncols=2),
        viz.show_samples([(img, lab)] * 5),
        viz.domain_grid({"source": _DS(), "target": _DS(2)}, n=3),
        viz.plot_curves([{"step": i, "loss": 1.0 / (i + 1)} for i in range(5)]),
        viz.plot_curves([{"step": i, "a": i, "b": -i} for i in range(3)], key=["a", "b"]),
        viz.bar_compare({"citys": 60.0, "bdd": 50.0}, {"citys": 66.4, "bdd": 60.4, "map": 66.1}, "Rein"),
        viz.per_class_heatmap({"citys": rec, "bdd": rec, "note": "x"}),
    ]
    for fig in figs:
        assert isinstance(fig, Figure)
        fig.canvas.draw()  # renders under Agg without error
    patches = viz.legend_patches()
    assert len(patches) == 19 and patches[0].get_label().endswith("road")
    figs[0].legend(handles=patches, ncols=4, fontsize=6)
