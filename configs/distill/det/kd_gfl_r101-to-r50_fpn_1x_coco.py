# KD: GFL R101 (teacher) -> R50 (student), FPN, 1x schedule, COCO.
# Vanilla KD on the class(-quality) logits of every FPN level (binary KL,
# sigmoid head) and Localization Distillation on the box distributions
# (the reg_max + 1 = 17 bins of each side, LD, arXiv 2102.12252). Dataset,
# schedule and runtime are the student's mmdet config (gfl_r50_fpn_1x_coco.py).
# mmdet has no single-scale 1x GFL R101; the teacher is
# gfl_r101_fpn_ms-2x_coco (multi-scale 2x; only its weights and
# single-scale inference matter here).
#
# teacher_ckpt: mmdet's model-zoo weights of gfl_r101_fpn_ms-2x_coco
# (box AP 44.7), file
# gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth,
# downloaded once by URL into torch hub's cache
# (or pass --cfg-options model.teacher_ckpt=PATH for a local file).
_base_ = 'mmdet::gfl/gfl_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/gfl/gfl_r101_fpn_mstrain_2x_coco/gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth'  # noqa: E501
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
        # LD (arXiv 2102.12252) as mmdet's LDHead computes it: on the
        # student's positive locations, the KL of each box side's 17-bin
        # distribution averaged over the bins (class_reduction='mean'),
        # weighted by the student's top class score, summed over the sides
        # and divided by 4; LD's T=10 and weight 0.25 therefore carry over.
        box=dict(type='mmkd.KDLoss', temperature=10.0, loss_weight=0.25,
                 class_reduction='mean')))
custom_hooks = [
    dict(type='mmkd.StudentCheckpointHook'),
    # logs processes x batch, the lr after --auto-scale-lr and the sampler
    dict(type='mmkd.RunInfoHook')
]
