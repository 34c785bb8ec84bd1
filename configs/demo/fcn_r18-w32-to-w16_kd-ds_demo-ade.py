# Distil the demo segmentation teacher (FCN R18-w32-d8, trained by
# fcn_r18-w32-d8_demo-ade.py) into the demo student (FCN R18-w16-d8) with
# pixel-wise vanilla KD on the decode head's logits (and on the student's own
# auxiliary head) plus deep supervision: auxiliary FCN heads on backbone
# stages 1 and 2 (light: 32 channels, trained by KD from the teacher only).
_base_ = './fcn_r18-w16-d8_demo-ade.py'

# the teacher the demo trained: `bash tools/demo.sh` caches it under
# work_dirs/demo/teachers/ and links its checkpoint to this name
teacher_ckpt = 'work_dirs/demo/teachers/fcn_r18-w32-d8_demo-ade.pth'
model = dict(
    _delete_=True,
    type='mmkd.SegmentationDistiller',
    student={{_base_.model}},
    teacher='{{fileDirname}}/fcn_r18-w32-d8_demo-ade.py',
    teacher_ckpt=teacher_ckpt,
    distill=dict(logits=dict(type='mmkd.PixelKDLoss', temperature=1.0,
                             loss_weight=1.0)),
    deep_supervision=dict(stages=[1, 2], channels=32))
custom_hooks = [dict(type='mmkd.StudentCheckpointHook')]
