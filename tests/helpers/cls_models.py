"""Tiny timm classifiers (``mmkd.TimmClassifier`` dicts) for tests."""


def tiny_classifier(kind: str = 'resnet', width: int = 4,
                    num_classes: int = 6, mean=(123.675, 116.28, 103.53),
                    std=(58.395, 57.12, 57.375), **preprocessor) -> dict:
    """A timm ResNet-18 with channels ``width``..``8 * width`` or a 4-block
    ViT of width ``8 * width`` at 32 px, with mmkd's data preprocessor."""
    if kind == 'resnet':
        name = 'resnet18'
        kwargs = dict(channels=tuple(width * m for m in (1, 2, 4, 8)),
                      stem_width=width, layers=(1, 1, 1, 1))
    else:
        name = 'vit_tiny_patch16_224'
        kwargs = dict(img_size=32, patch_size=8, depth=4,
                      embed_dim=8 * width, num_heads=2)
    return dict(
        type='mmkd.TimmClassifier',
        model_name=name,
        num_classes=num_classes,
        model_kwargs=kwargs,
        data_preprocessor=dict(
            type='mmkd.ClsDataPreprocessor',
            num_classes=num_classes,
            mean=list(mean),
            std=list(std),
            bgr_to_rgb=True,
            **preprocessor))
