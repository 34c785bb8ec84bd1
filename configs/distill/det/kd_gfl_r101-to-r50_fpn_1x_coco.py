# KD: GFL R101 (teacher) -> R50 (student), FPN, 1x schedule, COCO.
# Vanilla KD on the class(-quality) logits of every FPN level (binary KL,
# sigmoid head) and on the box distributions (softmax KD over the
# reg_max + 1 = 17 bins of each side, as LD, arXiv 2102.12252). Dataset,
# schedule and runtime are the student's mmdet config (gfl_r50_fpn_1x_coco.py).
# mmdet has no single-scale 1x GFL R101; the teacher is
# gfl_r101_fpn_ms-2x_coco (multi-scale 2x; only its weights and
# single-scale inference matter here).
#
# teacher_ckpt: mmdet's model-zoo weights of gfl_r101_fpn_ms-2x_coco
# (box AP 44.7), file
# gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth, saved under
# checkpoints/ (or pass --cfg-options model.teacher_ckpt=PATH).
_base_ = 'mmdet::gfl/gfl_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)

teacher_ckpt = \
    'checkpoints/gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth'
model = dict(
    _delete_=True,
    type='mmkd.DetectionDistiller',
    student={{_base_.model}},
    teacher='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py',
    teacher_ckpt=teacher_ckpt,
    distill=dict(
        # as the RetinaNet configs: T=1 keeps the background classes from
        # dominating the binary KL; a mean over locations per level
        cls=dict(type='mmkd.SigmoidKDLoss', temperature=1.0,
                 loss_weight=1.0),
        # LD's setting (T=10, weight 0.25): a 17-bin side distribution is
        # sharp, a high T transfers where the teacher is unsure about an
        # edge. Each location counts by the teacher's top class score (LD
        # weights its positives by the teacher's quality score).
        box=dict(type='mmkd.KDLoss', temperature=10.0, loss_weight=0.25)))
custom_hooks = [dict(type='mmkd.StudentCheckpointHook')]
