"""A tiny timm ViT for the synthetic-shapes demo of a second CLIP family.

timm's small test ViTs are fixed at 160 px and open_clip passes no image
size to a timm tower, hence this 32 px SigLIP-style tower. Importing this
module changes nothing in timm (see :func:`register_tiny_shapes_vit`).
"""
from timm.models import is_model, register_model
from timm.models.vision_transformer import VisionTransformer

__all__ = ['TINY_SHAPES_VIT', 'register_tiny_shapes_vit']

#: The timm name of the tower.
TINY_SHAPES_VIT = 'vit_tiny_patch8_32_map_shapes'


def vit_tiny_patch8_32_map_shapes(pretrained: bool = False,
                                  **kwargs) -> VisionTransformer:
    """A 96-wide, 6-block ViT for 32 px images with MAP pooling.

    Args:
        pretrained (bool): Must be False (no published weights).
        **kwargs: Overrides of the timm ``VisionTransformer`` arguments.

    Returns:
        VisionTransformer: The randomly initialised tower.

    Raises:
        ValueError: If ``pretrained``.
    """
    if pretrained:
        raise ValueError(f'{TINY_SHAPES_VIT} has no pretrained weights; '
                         'give them with checkpoint=')
    args = dict(
        img_size=32,
        patch_size=8,
        embed_dim=96,
        depth=6,
        num_heads=3,
        mlp_ratio=4.0,
        class_token=False,
        reg_tokens=1,
        global_pool='map')
    for option in ('pretrained_cfg', 'pretrained_cfg_overlay', 'cache_dir'):
        kwargs.pop(option, None)
    args.update(kwargs)
    model = VisionTransformer(**args)
    # timm's factories attach the model's input settings; open_clip reads
    # them where it puts its own head (timm_proj='linear' or 'mlp').
    model.pretrained_cfg = model.default_cfg = dict(
        architecture=TINY_SHAPES_VIT, input_size=(3, 32, 32),
        num_classes=model.num_classes)
    return model


def register_tiny_shapes_vit(timm_model_name: str) -> None:
    """Register the tower with timm if ``timm_model_name`` names it.

    Args:
        timm_model_name (str): A ``vision_cfg.timm_model_name``.
    """
    if timm_model_name == TINY_SHAPES_VIT and not is_model(TINY_SHAPES_VIT):
        register_model(vit_tiny_patch8_32_map_shapes)
