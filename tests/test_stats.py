"""dgsslib.stats: the paired seed t-interval against scipy's own paired test, the image bootstrap on
counts whose answer is known, the verdict rule, and the evaluator's per-image counts summing to its mIoU."""
import numpy as np
import pytest
import torch
from scipy import stats as sps

from dgsslib import stats
from dgsslib.engine.evaluate import confusion_matrix, iou_from_confusion


def test_paired_seed_interval_is_scipys_paired_t_interval():
    a = {0: 41.2, 1: 39.8, 2: 40.5, 3: 42.0}
    b = {0: 40.1, 1: 39.9, 2: 39.0, 3: 40.2, 7: 99.0}                        # seed 7 has no partner: ignored
    out = stats.paired_seeds(a, b)
    ref = sps.ttest_rel([a[s] for s in range(4)], [b[s] for s in range(4)]).confidence_interval(0.95)
    assert out["n"] == 4 and out["diff"] == pytest.approx(np.mean([1.1, -0.1, 1.5, 1.8]))
    assert out["ci95"] == pytest.approx([ref.low, ref.high])
    with pytest.raises(ValueError, match=">= 2 shared seeds"):
        stats.paired_seeds({0: 1.0}, {0: 2.0})


def test_verdict_reads_the_interval():
    assert stats.verdict([0.1, 2.0]) == "better" and stats.verdict([-2.0, -0.1]) == "worse"
    assert stats.verdict([-0.1, 0.3]) == "tie" and stats.verdict([0.0, 1.0]) == "tie"
    with pytest.raises(ValueError, match="reversed"):
        stats.verdict([1.0, 0.0])


def _per_image(pred, lab):
    out = {"tp": [], "fp": [], "fn": []}
    for p, l in zip(pred, lab):
        c = confusion_matrix(p, l)
        tp = c.diag()
        out["tp"].append(tp.tolist()), out["fp"].append((c.sum(0) - tp).tolist()), out["fn"].append((c.sum(1) - tp).tolist())
    return out


def test_per_image_counts_sum_to_the_evaluators_miou():
    g = torch.Generator().manual_seed(0)
    lab = torch.randint(0, 6, (5, 8, 9), generator=g)
    lab[0, :2] = 255
    pred = torch.where(torch.rand(5, 8, 9, generator=g) < 0.6, lab.clamp(max=18), torch.randint(0, 19, (5, 8, 9), generator=g))
    conf = sum(confusion_matrix(p, l) for p, l in zip(pred, lab))
    pi = _per_image(pred, lab)
    got = stats.miou_from_counts(*(np.asarray(pi[k]).sum(0) for k in ("tp", "fp", "fn")))
    assert got == pytest.approx(iou_from_confusion(conf)["miou"])


def _record(seed, pred, lab):
    conf = sum(confusion_matrix(p, l) for p, l in zip(pred, lab))
    return {"config": {"seed": seed}, "metrics": {"d": {**iou_from_confusion(conf), "per_image": _per_image(pred, lab)}}}


def test_image_bootstrap_knows_a_clear_gain_a_tie_and_the_full_sample_difference():
    g = torch.Generator().manual_seed(1)
    lab = torch.randint(0, 4, (12, 6, 6), generator=g)
    noise = torch.randint(0, 4, (12, 6, 6), generator=g)
    good = torch.where(torch.rand(12, 6, 6, generator=g) < 0.9, lab, noise)
    bad = torch.where(torch.rand(12, 6, 6, generator=g) < 0.4, lab, noise)
    A, B = [_record(0, good, lab)], [_record(0, bad, lab)]
    c = stats.compare("good", "bad", A, B, "d")
    assert c["interval"] == "images" and c["verdict"] == "better"
    assert c["diff"] == pytest.approx(A[0]["metrics"]["d"]["miou"] - B[0]["metrics"]["d"]["miou"], abs=1e-3)
    assert c["ci95"][0] <= c["diff"] <= c["ci95"][1]
    same = stats.compare("a", "a", A, A, "d")
    assert same["diff"] == 0.0 and same["ci95"] == [0.0, 0.0] and same["verdict"] == "tie"
    assert stats.compare("bad", "good", B, A, "d")["verdict"] == "worse"
    assert "ties with" in stats.sentence(same) and "is better than" in stats.sentence(c)


def test_compare_uses_seeds_from_three_and_a_mean_over_domains():
    def rec(seed, x, y):
        return {"config": {"seed": seed}, "metrics": {"u": {"miou": x}, "v": {"miou": y}}}
    A = [rec(s, 40 + s, 30 + s) for s in range(3)]
    B = [rec(s, 39 + s * 1.1, 29.5 + s) for s in range(3)]
    c = stats.compare("A", "B", A, B, ["u", "v"], label="targets")
    diffs = [((40 + s + 30 + s) - (39 + s * 1.1 + 29.5 + s)) / 2 for s in range(3)]
    assert c["interval"] == "seeds" and c["n"] == 3 and c["domain"] == "targets"
    assert c["diff"] == pytest.approx(np.mean(diffs), abs=1e-3)
    assert c["verdict"] == stats.verdict(c["ci95"])
    with pytest.raises(ValueError, match="per-image"):
        stats.compare("A", "B", A[:2], B[:2], "u")                            # 2 seeds and no counts: refused
    with pytest.raises(ValueError, match="no evaluation on w"):
        stats.compare("A", "B", A, B, "w")
