"""Zero-shot CLIP as a classifier and teacher (nothing to train)."""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmpretrain.structures import DataSample

from mmpromptkd.registry import MODELS
from ..clip.templates import DEFAULT_TEMPLATE, check_template
from .base_prompt_classifier import BasePromptClassifier


@MODELS.register_module()
class ZeroShotCLIPClassifier(BasePromptClassifier):
    """The plain CLIP with one hand-written prompt per class (CoOp's are
    ``DATASET_TEMPLATES``); nothing to train (docs/teachers.md).

    Args:
        clip (dict): Weight source of the CLIP.
        template (str): Prompt template with one ``{}``.
        checkpoint (str, optional): A checkpoint of at most CLIP weights.
        **kwargs: ``save_clip_weights``, ``text_batch_size``,
            ``data_preprocessor``, ``init_cfg`` of
            :class:`BasePromptClassifier`.
    """

    def __init__(self, clip: dict, template: str = DEFAULT_TEMPLATE,
                 checkpoint: Optional[str] = None, **kwargs) -> None:
        unknown = sorted(set(kwargs) - {'save_clip_weights', 'init_cfg',
                                        'text_batch_size',
                                        'data_preprocessor'})
        if unknown:
            raise TypeError(f'ZeroShotCLIPClassifier has no prompts or '
                            f'training; unexpected arguments {unknown}')
        template = check_template(template)
        super().__init__(
            clip=clip, train_subset=None, checkpoint=checkpoint, **kwargs)
        self.template = template

    def encode_text(self, class_names: Sequence[str],
                    normalize: bool = False) -> torch.Tensor:
        """Frozen CLIP features (C, embed_dim) of the filled template."""
        features = self.template_text_features(
            class_names, self.template).to(self.prompted_clip.dtype)
        return F.normalize(features, dim=-1) if normalize else features

    def loss(self, inputs: torch.Tensor,
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """Refused: zero-shot CLIP is not trained."""
        raise RuntimeError(
            'ZeroShotCLIPClassifier has nothing to train: evaluate it with '
            'tools/test.py (docs/teachers.md) or use it as a teacher')
