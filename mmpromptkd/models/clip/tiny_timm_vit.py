"""A tiny 32 px SigLIP-style timm ViT for the synthetic-shapes demo (timm's
test ViTs are fixed at 160 px); registered only on demand."""
from timm.models import is_model, register_model
from timm.models.vision_transformer import VisionTransformer

#: The timm name of the tower.
TINY_SHAPES_VIT = 'vit_tiny_patch8_32_map_shapes'


def vit_tiny_patch8_32_map_shapes(pretrained: bool = False,
                                  **kwargs) -> VisionTransformer:
    """A random 96-wide, 6-block ViT for 32 px images with MAP pooling
    (``kwargs`` override its ``VisionTransformer`` arguments)."""
    if pretrained:
        raise ValueError(f'{TINY_SHAPES_VIT} has no pretrained weights; '
                         'give them with checkpoint=')
    args = dict(img_size=32, patch_size=8, embed_dim=96, depth=6, num_heads=3,
                mlp_ratio=4.0, class_token=False, reg_tokens=1,
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
    """Register the tower with timm if ``timm_model_name`` names it."""
    if timm_model_name == TINY_SHAPES_VIT and not is_model(TINY_SHAPES_VIT):
        register_model(vit_tiny_patch8_32_map_shapes)
