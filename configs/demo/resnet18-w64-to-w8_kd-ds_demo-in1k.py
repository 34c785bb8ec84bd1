# As resnet18-w64-to-w8_kd_demo-in1k.py, plus deep supervision: auxiliary
# heads (separable downsampling blocks, pooling, linear) on the student's
# layer1..layer3, each trained by KD from the teacher's logits. The heads
# live in the distiller and are not part of the exported student.
_base_ = './resnet18-w64-to-w8_kd_demo-in1k.py'

model = dict(deep_supervision=dict(stages=[1, 2, 3]))
