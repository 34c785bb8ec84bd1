"""mmcv 2.1.0's compiled ops, built by tools/setup_env.sh, run on CPU."""
import torch
import torchvision


def _random_boxes(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 200
    wh = torch.rand(n, 2, generator=g) * 60 + 4
    return torch.cat([xy, xy + wh], dim=1)


def test_mmcv_ext_is_compiled():
    from mmcv.utils import ext_loader
    ext = ext_loader.load_ext('_ext', ['nms', 'roi_align_forward'])
    assert hasattr(ext, 'nms')


def test_nms_matches_torchvision():
    from mmcv.ops import nms
    boxes = _random_boxes(300)
    scores = torch.rand(300, generator=torch.Generator().manual_seed(1))
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    ref = torchvision.ops.nms(boxes, scores, 0.5)
    assert torch.equal(keep.sort().values, ref.sort().values)
    assert dets.shape == (len(ref), 5)


def test_batched_nms_keeps_classes_apart():
    from mmcv.ops import batched_nms
    box = torch.tensor([[0., 0., 10., 10.]])
    boxes = box.repeat(2, 1)
    scores = torch.tensor([0.9, 0.8])
    _, keep_same = batched_nms(boxes, scores, torch.tensor([0, 0]),
                               dict(type='nms', iou_threshold=0.5))
    _, keep_diff = batched_nms(boxes, scores, torch.tensor([0, 1]),
                               dict(type='nms', iou_threshold=0.5))
    assert keep_same.tolist() == [0]
    assert sorted(keep_diff.tolist()) == [0, 1]


def test_roi_align_matches_torchvision():
    from mmcv.ops import roi_align
    feats = torch.randn(2, 4, 32, 32, generator=torch.Generator().manual_seed(2))
    rois = torch.tensor([[0, 1.5, 2.0, 20.0, 25.0], [1, 0.0, 0.0, 31.0, 31.0]])
    out = roi_align(feats, rois, (7, 7), 0.5, 2, 'avg', True)
    ref = torchvision.ops.roi_align(feats, rois, (7, 7), 0.5, 2, aligned=True)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
