# KD: FCOS R101-caffe (teacher) -> R50-caffe (student), FPN, GN head, 1x,
# COCO. Vanilla KD on the class logits of every FPN level (binary KL,
# sigmoid head; centerness and boxes are not distilled). Dataset, schedule
# and runtime are the student's mmdet config
# (fcos_r50-caffe_fpn_gn-head_1x_coco.py). Both use caffe-style inputs (BGR,
# the same mean/std), so the teacher sees the student's batch as is.
#
# teacher_ckpt: mmdet's model-zoo weights of
# fcos_r101-caffe_fpn_gn-head-1x_coco (box AP 39.1), file
# fcos_r101_caffe_fpn_gn-head_1x_coco-0e37b982.pth,
# downloaded once by URL into torch hub's cache
# # (or pass --cfg-options model.teacher_ckpt=PATH for a local file).
_base_ = 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/fcos/fcos_r101_caffe_fpn_gn-head_1x_coco/fcos_r101_caffe_fpn_gn-head_1x_coco-0e37b982.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmkd.DetectionDistiller',
    student={{_base_.model}},
    # (sic: mmdet 3.3 names this file '...gn-head-1x...', not '..._1x...')
    teacher='mmdet::fcos/fcos_r101-caffe_fpn_gn-head-1x_coco.py',
    teacher_ckpt=teacher_ckpt,
    # as the RetinaNet configs: T=1, a mean over locations per level
    distill=dict(
        cls=dict(type='mmkd.SigmoidKDLoss', temperature=1.0,
                 loss_weight=1.0)))
custom_hooks = [
    dict(type='mmkd.StudentCheckpointHook'),
    # logs processes x batch, the lr after --auto-scale-lr and the sampler
    dict(type='mmkd.RunInfoHook')
]
