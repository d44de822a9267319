"""Any mmpretrain backbone as a PromptKD student image encoder."""
import math
from typing import Optional

import torch
from mmengine.model import BaseModule
from torch import nn

from mmpromptkd.registry import MODELS


@MODELS.register_module()
class BackboneStudent(BaseModule):
    """An mmpretrain backbone (plus neck), all trained, with the student
    interface.

    Args:
        backbone (dict): mmpretrain backbone config.
        neck (dict, optional): Neck that pools the last feature map into
            (B, C) vectors; None uses the backbone output as is.
        logit_scale (float): Fixed factor of the cosine logits.
        image_size (int): Input resolution.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, backbone: dict,
                 neck: Optional[dict] = dict(type='GlobalAveragePooling'),
                 logit_scale: float = 100.0, image_size: int = 224,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.register_buffer('log_logit_scale',
                             torch.tensor(math.log(logit_scale)))
        self.image_size = (image_size, image_size)
        was_training = self.training
        self.eval()
        with torch.no_grad():
            probe = self.encode_image(torch.zeros(1, 3, image_size,
                                                  image_size))
        self.train(was_training)
        if probe.dim() != 2:
            raise ValueError(
                f'BackboneStudent: features of shape {tuple(probe.shape)}; '
                'add a neck that pools them into (B, C) vectors')
        self.embed_dim = probe.shape[1]

    @property
    def logit_scale(self) -> torch.Tensor:
        """Tensor: Factor of the cosine logits."""
        return self.log_logit_scale.exp()

    def encode_image(self, images: torch.Tensor,
                     normalize: bool = False) -> torch.Tensor:
        """(B, embed_dim) features of (B, 3, H, W) normalised images."""
        features = self.backbone(images)
        if self.neck is not None:
            features = self.neck(features)
        if isinstance(features, (tuple, list)):
            features = features[-1]
        if isinstance(features, (tuple, list)):
            # Vision transformers return (patch tokens, class token).
            features = features[-1]
        return nn.functional.normalize(features, dim=-1) if normalize \
            else features
