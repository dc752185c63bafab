"""Evaluator: mIoU against a direct computation, slide inference, keep-ratio resize."""
import math

import numpy as np
import torch

from dgsslib.engine.evaluate import confusion_matrix, iou_from_confusion, predict, resize_keep_ratio
from dgsslib.inference import slide_scores as slide_probs


def test_miou_matches_direct_computation():
    g = torch.Generator().manual_seed(0)
    label = torch.randint(0, 5, (4, 16, 16), generator=g)
    label[:, :2] = 255
    pred = torch.where(torch.rand(label.shape, generator=g) < 0.7, label.clamp(max=4), torch.randint(0, 6, label.shape, generator=g))
    res = iou_from_confusion(confusion_matrix(pred, label))
    keep = label != 255
    ious = []
    for c in range(19):
        tp = ((pred == c) & (label == c) & keep).sum().item()
        fp = ((pred == c) & (label != c) & keep).sum().item()
        fn = ((pred != c) & (label == c) & keep).sum().item()
        if tp + fp + fn:
            ious.append(tp / (tp + fp + fn))
    assert math.isclose(res["miou"], 100 * np.mean(ious), rel_tol=1e-9)
    assert res["per_class"]["sky"] is None  # absent class is not counted
    assert math.isclose(res["acc"], 100 * ((pred == label) & keep).sum().item() / keep.sum().item())


def test_ignore_pixels_never_counted():
    label = torch.full((1, 4, 4), 255)
    label[0, 0, 0] = 3
    pred = torch.zeros_like(label)
    conf = confusion_matrix(pred, label)
    assert conf.sum() == 1 and conf[3, 0] == 1


class PixelModel(torch.nn.Module):
    """Scores depend only on the pixel itself, so slide == whole exactly."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(19, 3))

    def semantic_logits(self, x):
        return torch.einsum("kc,bchw->bkhw", self.w, x)


def test_slide_equals_whole_for_pixelwise_model():
    m = PixelModel()
    x = torch.rand(2, 3, 40, 70)
    whole = m.semantic_logits(x)
    slide = slide_probs(m, x, crop=24, stride=16)
    assert torch.allclose(whole, slide, atol=1e-5)
    assert torch.equal(predict(m, x, "slide", 24, 16), whole.argmax(1))


def test_keep_ratio_resize_matches_mmseg_rule():
    assert resize_keep_ratio((1024, 2048), (2048, 1024)) == (1024, 2048)
    assert resize_keep_ratio((1024, 2048), (1024, 512)) == (512, 1024)
    assert resize_keep_ratio((720, 1280), (1280, 720)) == (720, 1280)
