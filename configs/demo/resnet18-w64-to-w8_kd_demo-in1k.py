# Distil the demo classification teacher (timm ResNet-18-w64, trained by
# resnet18-w64_demo-in1k.py) into the demo student (ResNet-18-w8) with
# vanilla KD (T = 1) on the final logits, same schedule and seed as the
# baseline. The teacher sees the same mixup batch.
_base_ = './resnet18-w8_demo-in1k.py'

# the teacher the demo trained: `bash tools/demo.sh` caches it under
# work_dirs/demo/teachers/ and links its checkpoint to this name
teacher_ckpt = 'work_dirs/demo/teachers/resnet18-w64_demo-in1k.pth'
model = dict(
    _delete_=True,
    type='mmkd.ClassificationDistiller',
    student={{_base_.model}},
    teacher='{{fileDirname}}/resnet18-w64_demo-in1k.py',
    teacher_ckpt=teacher_ckpt,
    distill=dict(logits=dict(type='mmkd.KDLoss', temperature=1.0)))
custom_hooks = [dict(type='mmkd.StudentCheckpointHook')]
