# timm ConvNeXt-V2-T trained alone on ImageNet-1K with the VanillaKD A2 recipe
# (300 epochs, LAMB; configs/_base_/schedules/vanillakd_a2.py): the baseline
# and student of the BEiTv2-B -> ConvNeXtV2-T configs in configs/distill/cls.
# It inherits resnet50_a2_in1k.py and changes only the timm model; the
# recipe settings are that file's (stochastic
# depth 0.05, mixup 0.1, cutmix 1.0, no label smoothing, BCE that does not
# smooth).
#
# No weight decay on the GRN weights and biases (1-d, as timm: the
# schedule's flat_decay_mult) nor on norms and biases.
_base_ = './resnet50_a2_in1k.py'

model = dict(model_name='convnextv2_tiny')
