"""Rein-A's region queries and Semantic Transfer Module (Rein++ eq. 17-19): region maps from the
named stand-ins (oracle = label components, SLIC), ClassMix composition, area-ordered masks,
mask-average pooling against a direct sum, SAM mask painting, the STM's external region queries."""
import numpy as np
import pytest
import torch

from dgsslib.uda.regions import mix_region_maps, oracle_regions, region_masks, rgb_to_lab, slic_regions
from dgsslib.uda.sam_regions import load_region_map, masks_to_region_map, save_region_map
from dgsslib.uda.stm import SemanticTransferModule, masked_average_pool


def test_oracle_regions_are_connected_components_per_class():
    lab = torch.tensor([[[0, 0, 1, 1, 0],
                         [0, 0, 1, 1, 0],
                         [2, 2, 255, 255, 0]]])
    r = oracle_regions(lab)[0]
    assert (r[lab[0] == 255] == -1).all()
    # the two separate class-0 blobs are two regions, class 1 and class 2 one each: 4 ids
    assert len(torch.unique(r[r >= 0])) == 4
    assert r[0, 0] == r[1, 1] and r[0, 0] != r[0, 4] and r[0, 4] == r[2, 4]
    assert r[0, 2] == r[1, 3] and r[2, 0] == r[2, 1]
    # diagonal neighbours are not connected (4-connectivity)
    d = oracle_regions(torch.tensor([[[3, 5], [5, 3]]]))[0]
    assert len(torch.unique(d)) == 4


def test_region_masks_sorted_by_area_truncated_and_padded():
    m = torch.tensor([[[0, 0, 0, 1],
                       [2, 2, -1, 1],
                       [2, 2, 2, 1]]])
    masks, valid = region_masks(m, 4)
    assert masks.shape == (1, 4, 3, 4) and valid.tolist() == [[True, True, True, False]]
    assert masks[0, 0].sum() == 5 and masks[0, 0, 1, 0] == 1           # region 2 (area 5) first
    assert masks[0, 1].sum() == 3 and masks[0, 1, 0, 0] == 1           # then region 0 (area 3, id 0 < 1)
    assert masks[0, 2].sum() == 3 and masks[0, 2, 0, 3] == 1
    assert masks[0, 3].sum() == 0
    masks2, valid2 = region_masks(m, 2)
    assert valid2.all() and torch.equal(masks2, masks[:, :2])
    assert (masks.sum(1) <= 1).all()                                     # disjoint


def test_mixed_regions_take_source_inside_the_classmix_mask():
    src = torch.tensor([[[0, 0, 1], [0, 1, 1]]])
    tgt = torch.tensor([[[0, 2, 2], [-1, 1, 1]]])
    M = torch.tensor([[[1, 0, 0], [1, 1, 0]]], dtype=torch.bool)
    mixed = mix_region_maps(src, tgt, M)
    assert mixed.tolist() == [[[0, 4, 4], [0, 1, 3]]]
    # target ids never collide with source ids; −1 stays
    mixed = mix_region_maps(src, tgt, torch.zeros_like(M))
    assert mixed[0, 1, 0] == -1 and set(mixed[mixed >= 0].tolist()).isdisjoint({0, 1})


def test_slic_recovers_two_flat_halves_and_lab_reference_values():
    img = torch.zeros(1, 3, 16, 32)
    img[:, 0, :, :16] = 1.0                      # red left half, black right half
    r = slic_regions(img, n_segments=8, compactness=1.0)[0]
    assert r.shape == (16, 32)
    left, right = set(r[:, :16].unique().tolist()), set(r[:, 16:].unique().tolist())
    assert left.isdisjoint(right)                # no superpixel crosses the colour edge
    lab = rgb_to_lab(torch.tensor([1.0, 1.0, 1.0]).view(1, 3, 1, 1)).flatten()
    assert torch.allclose(lab, torch.tensor([100.0, 0.0, 0.0]), atol=0.1)  # white
    lab = rgb_to_lab(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)).flatten()
    assert torch.allclose(lab, torch.tensor([53.24, 80.09, 67.20]), atol=0.2)  # sRGB red


def test_sam_masks_painted_largest_first_and_png_round_trip(tmp_path):
    big = np.zeros((4, 5), bool); big[:, :4] = True
    small = np.zeros((4, 5), bool); small[1:3, 1:3] = True
    r = masks_to_region_map([small, big], (4, 5))
    assert (r[:, 4] == -1).all() and r[0, 0] == 0 and (r[1:3, 1:3] == 1).all()
    save_region_map(tmp_path / "a.png", r)
    assert np.array_equal(load_region_map(tmp_path / "a.png"), r)
    with pytest.raises(ValueError, match="shape"):
        masks_to_region_map([np.zeros((3, 3), bool)], (4, 5))


def test_masked_average_pool_equals_direct_weighted_mean():
    torch.manual_seed(0)
    f = torch.randn(2, 3, 2, 4)                  # cells of 2×2 pixels on an 4×8 canvas
    masks = torch.zeros(2, 2, 4, 8)
    masks[0, 0, :2, :2] = 1                      # exactly cell (0, 0)
    masks[0, 1, :2, :3] = 1                      # cell (0,0) fully + half of cell (0,1)
    out = masked_average_pool(f, masks)
    assert torch.allclose(out[0, 0], f[0, :, 0, 0], atol=1e-6)
    assert torch.allclose(out[0, 1], (f[0, :, 0, 0] * 1.0 + f[0, :, 0, 1] * 0.5) / 1.5, atol=1e-6)
    assert torch.equal(out[1], torch.zeros(2, 3))  # empty masks pool to 0


def test_stm_uses_region_queries_and_empty_slots_share_the_learned_query():
    torch.manual_seed(0)
    stm = SemanticTransferModule([32] * 4, num_queries=4, num_classes=5, hidden_dim=64, enc_layers=1,
                                 dec_layers=1, dim_feedforward=64, enc_ffn=64, num_points_train=16)
    feats = [torch.randn(2, 32, 4 * 4 // s, 8 * 4 // s) for s in (1, 2, 4, 8)]
    masks = torch.zeros(2, 4, 16, 32)
    masks[:, 0, :8] = 1
    masks[:, 1, 8:] = 1
    valid = torch.tensor([[True, True, False, False]] * 2)
    q = stm.queries(feats, masks, valid)
    assert q.shape == (2, 4, 64)
    assert torch.equal(q[:, 2], stm.empty_query.expand(2, 64)) and torch.equal(q[:, 3], q[:, 2])
    assert not torch.allclose(q[:, 0], q[:, 1])
    out = stm(feats, masks, valid)
    assert out["pred_logits"].shape == (2, 4, 6) and out["pred_masks"].shape == (2, 4, 16, 32)
    # features are detached: a loss on the STM reaches its parameters, never the features
    feats = [f.requires_grad_() for f in feats]
    out = stm(feats, masks, valid)
    loss = stm.loss(out, torch.randint(0, 5, (2, 16, 32)))["loss"]
    loss.backward()
    assert all(f.grad is None for f in feats) and stm.region_embed.weight.grad is not None
    with pytest.raises(ValueError, match="region slots"):
        stm.queries(feats, masks[:, :3], valid[:, :3])
