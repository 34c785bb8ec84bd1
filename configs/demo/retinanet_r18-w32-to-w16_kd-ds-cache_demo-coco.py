# The demo's detection distillation (KD + deep supervision) with the
# teacher-output cache: the demo's pipeline (a fixed Resize and RandomFlip)
# replays exactly, so after the first passes over the 400 training images
# most KD steps read the teacher's outputs from disk instead of running it.
# docs/results.md compares it with the live teacher over paired seeds
# (tools/analysis_tools/kd_study.py with --extra-arm live
# model.teacher_cache=None).
_base_ = './retinanet_r18-w32-to-w16_kd-ds_demo-coco.py'

model = dict(teacher_cache=dict(dir='work_dirs/demo/teacher_cache'))
custom_hooks = [
    dict(type='mmkd.StudentCheckpointHook'),
    # hands the training pipeline to the cache (checked, hashed)
    dict(type='mmkd.TeacherCacheHook')
]
