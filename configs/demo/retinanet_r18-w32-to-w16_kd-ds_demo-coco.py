# Distil the demo teacher (RetinaNet R18-w32, trained by
# retinanet_r18-w32_fpn_demo-coco.py) into the demo student (R18-w16)
# with vanilla KD on the class logits of every FPN level plus deep
# supervision: auxiliary RetinaNet heads on backbone stages 1 and 2, each
# trained on the labels and by KD from the teacher's final predictions.
_base_ = './retinanet_r18-w16_fpn_demo-coco.py'

# the teacher the demo trained: `bash tools/demo.sh` caches it under
# work_dirs/demo/teachers/ and links its checkpoint to this name
teacher_ckpt = 'work_dirs/demo/teachers/retinanet_r18-w32_fpn_demo-coco.pth'
model = dict(
    _delete_=True,
    type='mmkd.DetectionDistiller',
    student={{_base_.model}},
    teacher='{{fileDirname}}/retinanet_r18-w32_fpn_demo-coco.py',
    teacher_ckpt=teacher_ckpt,
    distill=dict(
        cls=dict(type='mmkd.SigmoidKDLoss', temperature=1.0, loss_weight=1.0)),
    # light auxiliary branches (the default): 64 channels, one conv per
    # head tower (the student's own head has 4)
    deep_supervision=dict(stages=[1, 2], mode='light'))
custom_hooks = [dict(type='mmkd.StudentCheckpointHook')]
