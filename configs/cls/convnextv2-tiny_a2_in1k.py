# timm ConvNeXt-V2-T trained alone on ImageNet-1K with the VanillaKD A2 recipe
# (300 epochs, LAMB; configs/_base_/schedules/vanillakd_a2.py): the baseline
# and student of the BEiTv2-B -> ConvNeXtV2-T configs in configs/distill/cls.
# It inherits resnet50_a2_in1k.py and changes only the timm model; the
# recipe settings are that file's (stochastic
# depth 0.05, mixup 0.1, cutmix 1.0, no label smoothing, BCE that does not
# smooth).
#
# GRN weight decay as VanillaKD: its ConvNeXt-V2 (models/convnextv2.py of
# Hao840/vanillaKD) holds GRN's gamma / beta as (1, 1, 1, C) tensors, so
# timm 0.6.5's filter_bias_and_bn (no decay for ndim <= 1 or names ending
# in .bias) decays both. timm 1.x's GRN is 1-d (`mlp.grn.weight` / `.bias`)
# and would land in the no-decay group through the schedule's
# flat_decay_mult / bias_decay_mult; the custom key below puts them back
# under weight decay 0.02 (mmengine applies a matching custom key before the
# norm / bias / flat rules). Norms and other biases stay undecayed.
_base_ = './resnet50_a2_in1k.py'

model = dict(model_name='convnextv2_tiny')
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'.grn.': dict(decay_mult=1.0)}))
