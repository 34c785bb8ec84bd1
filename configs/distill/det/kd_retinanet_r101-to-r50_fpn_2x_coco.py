# KD: RetinaNet R101 (teacher) -> R50 (student), FPN, 2x schedule, COCO.
# Vanilla KD on the class logits of every FPN level (binary KL per class:
# RetinaNet's classifier is sigmoid). Dataset, schedule and runtime are the
# student's mmdet config (retinanet_r50_fpn_2x_coco.py), unchanged.
#
# teacher_ckpt: mmdet's model-zoo weights of retinanet_r101_fpn_2x_coco
# (box AP 38.9), file retinanet_r101_fpn_2x_coco_20200131-5560aee8.pth,
# downloaded once by URL into torch hub's cache
# (or pass --cfg-options model.teacher_ckpt=PATH for a local file).
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_2x_coco.py'
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/retinanet/retinanet_r101_fpn_2x_coco/retinanet_r101_fpn_2x_coco_20200131-5560aee8.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmkd.DetectionDistiller',
    student={{_base_.model}},
    teacher='mmdet::retinanet/retinanet_r101_fpn_2x_coco.py',
    teacher_ckpt=teacher_ckpt,
    # T=1: with T>1 the background classes' logits (most of every
    # location's 80 scores) move towards p=0.5 and their noise dominates
    # the binary KL. Weight 1: the term is a mean over locations per level,
    # summed over the 5 levels, the scale of the focal loss late in training.
    distill=dict(
        cls=dict(type='mmkd.SigmoidKDLoss', temperature=1.0,
                 loss_weight=1.0)))
custom_hooks = [
    dict(type='mmkd.StudentCheckpointHook'),
    # logs processes x batch, the lr after --auto-scale-lr and the sampler
    dict(type='mmkd.RunInfoHook')
]
