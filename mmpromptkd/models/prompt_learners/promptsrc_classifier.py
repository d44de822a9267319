"""IVLP (independent vision-language prompts) and PromptSRC (IVLP with
self-regulating constraints)."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmpretrain.structures import DataSample

from mmpromptkd.registry import MODELS
from ..clip.templates import IMAGENET_TEMPLATES, check_template
from .base_prompt_classifier import BasePromptClassifier


@MODELS.register_module()
class IVLPClassifier(BasePromptClassifier):
    """Independent deep vision and text prompts, cross-entropy only; the
    defaults are those of the base-to-novel teachers. Arguments are those of
    :class:`BasePromptClassifier`."""

    def __init__(self, clip: dict, vision_prompt_depth: int = 9,
                 text_prompt_depth: int = 9, **kwargs) -> None:
        super().__init__(clip=clip, vision_prompt_depth=vision_prompt_depth,
                         text_prompt_depth=text_prompt_depth, **kwargs)


@MODELS.register_module()
class PromptSRCClassifier(IVLPClassifier):
    r"""Independent vision-language prompts regularised towards frozen CLIP.

    ``L = CE(z, y) + w_t mean|t_p - t_0| + w_v mean|v_p - v_0| +
    KL(z_0 || z)`` with prompted normalised features ``v_p``, ``t_p``, the
    frozen CLIP's image features ``v_0`` and template-ensemble text features
    ``t_0`` (buffer ``zero_shot_text_features``), and cosine logits ``z``,
    ``z_0``. Gaussian prompt aggregation is a hook.

    Args:
        clip (dict): Weight source of the CLIP.
        text_loss_weight (float): ``w_t``.
        image_loss_weight (float): ``w_v``.
        logit_loss (dict): The logit consistency loss, called as
            ``loss(student_logits=z, teacher_logits=z0)``.
        templates (Sequence[str], optional): Templates of ``t_0``; None: the
            60 ImageNet templates.
        normalize_template_features (bool): Normalise each template's
            features before averaging (False: as the reference code).
        **kwargs: Arguments of :class:`IVLPClassifier`.
    """

    def __init__(self, clip: dict, text_loss_weight: float = 25.0,
                 image_loss_weight: float = 10.0,
                 logit_loss: dict = dict(
                     type='KLLogitLoss', loss_weight=1.0, reduction='mean'),
                 templates: Optional[Sequence[str]] = None,
                 normalize_template_features: bool = True, **kwargs) -> None:
        templates = IMAGENET_TEMPLATES if templates is None else templates
        if isinstance(templates, str) or not templates:
            raise ValueError('templates must be a non-empty sequence of '
                             f'templates, got {templates!r}')
        templates = tuple(check_template(t) for t in templates)
        # Bad settings fail before the checkpoint loads (in super().__init__).
        loss = MODELS.build(logit_loss)
        super().__init__(clip=clip, **kwargs)
        self.text_loss_weight = float(text_loss_weight)
        self.image_loss_weight = float(image_loss_weight)
        self.logit_loss = loss
        self.templates: Tuple[str, ...] = templates
        self.normalize_template_features = normalize_template_features
        self.register_buffer('zero_shot_text_features',
                             torch.zeros(0, self.embed_dim), persistent=False)
        self._zero_shot_classes: Tuple[str, ...] = ()

    @torch.no_grad()
    def compute_zero_shot_text_features(
            self, class_names: Sequence[str]) -> torch.Tensor:
        """Normalised frozen template-ensemble text features ``t_0``."""
        features = self.template_text_features(class_names, self.templates)
        if self.normalize_template_features:
            features = F.normalize(features, dim=-1)
        return F.normalize(features.mean(dim=0), dim=-1)

    def _prepare_training(self, class_names: Tuple[str, ...],
                          dataset_name: str = 'the dataset') -> None:
        """Compute ``t_0`` for a new training class list."""
        if class_names == self._zero_shot_classes:
            return
        device = self.zero_shot_text_features.device
        self.zero_shot_text_features = \
            self.compute_zero_shot_text_features(class_names).to(device)
        self._zero_shot_classes = class_names
        MMLogger.get_current_instance().info(
            f'PromptSRCClassifier: frozen text features of '
            f'{len(class_names)} classes of {dataset_name} averaged over '
            f'{len(self.templates)} templates')

    @torch.no_grad()
    def zero_shot_image_features(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised image features ``v_0`` of the frozen, unprompted CLIP."""
        features = self.clip.encode_image(images.to(self.prompted_clip.dtype))
        return F.normalize(features.float(), dim=-1)

    def loss(self, inputs: torch.Tensor,
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """``loss_ce`` plus the self-regulating ``loss_text``, ``loss_image``
        and ``loss_logits``."""
        names = self._train_names()
        # Normally done by prepare_text_features; a no-op after it.
        self._prepare_training(names)
        text = self._class_text_features(names)
        image = self.encode_image(inputs, normalize=True).float()
        scale = self.logit_scale.float()
        logits = scale * image @ text.t()
        labels = self._labels(data_samples, logits.device)
        text_0 = self.zero_shot_text_features.float()
        image_0 = self.zero_shot_image_features(inputs)
        logits_0 = scale * image_0 @ text_0.t()
        return dict(
            loss_ce=F.cross_entropy(logits, labels),
            loss_text=self.text_loss_weight *
            F.l1_loss(text, text_0, reduction='mean'),
            loss_image=self.image_loss_weight *
            F.l1_loss(image, image_0, reduction='mean'),
            loss_logits=self.logit_loss(
                student_logits=logits, teacher_logits=logits_0))
