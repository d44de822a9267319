"""PromptKD: unsupervised prompt distillation (stages b and c)."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmpretrain.structures import DataSample
from torch import nn

from mmpromptkd.registry import MODELS

# CLIP's normalisation in the 0-255 range of the data pipeline.
CLIP_DATA_PREPROCESSOR = dict(
    type='ClsDataPreprocessor',
    mean=[122.770938, 116.7460125, 104.09373615],
    std=[68.5005327, 66.6321579, 70.32316305],
    to_rgb=True)


@MODELS.register_module()
class PromptKDDistiller(BaseModel):
    """A prompted CLIP student distilled from a frozen prompted CLIP teacher.

    Stage (b): the teacher's normalised text features of *all* classes are
    computed once and stored in the ``text_features`` buffer (with the class
    names), then for every unlabeled batch::

        logits_T = exp(s_T) * normalize(teacher.encode_image(x)) @ t.T
        logits_S = exp(s_S) * normalize(projector(student.encode_image(x))) @ t.T
        loss = distill_loss(logits_S, logits_T)

    Labels are never read. Only the student's prompts and the projector
    train. Stage (c): inference needs only the student, the projector and
    the stored text features, all of which are in the checkpoint; the
    teacher is kept out of the module tree, so it is never written into a
    checkpoint, and can be left out (``teacher=None``) for inference.

    Args:
        student (dict): Config of the student :class:`PromptedCLIP`; its
            text tower is dropped (``text_tower=False``) as it is unused.
        teacher (dict, optional): Config of the frozen teacher
            :class:`PromptedCLIP` (e.g. with ``checkpoint=`` a converted
            official teacher or a stage-(a) checkpoint). Needed to train and
            to compute text features for new classes. Defaults to None.
        projector (dict): Config of the projector neck; ``in_channels`` and
            ``out_channels`` are read from the student and the teacher.
            Without a teacher, ``out_channels`` must be given. Defaults to
            ``dict(type='FeatureProjector')``.
        distill_loss (dict): Config of the logit loss. Defaults to
            ``dict(type='KLLogitLoss', loss_weight=1000.0)``.
        data_preprocessor (dict | nn.Module, optional): Defaults to mmpretrain's
            ``ClsDataPreprocessor`` with CLIP's mean and std.
        text_batch_size (int): Class names encoded per teacher forward when
            the text features are computed. Defaults to 256.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 student: dict,
                 teacher: Optional[dict] = None,
                 projector: dict = dict(type='FeatureProjector'),
                 distill_loss: dict = dict(
                     type='KLLogitLoss', loss_weight=1000.0),
                 data_preprocessor: Optional[dict] = None,
                 text_batch_size: int = 256,
                 init_cfg: Optional[dict] = None) -> None:
        if not isinstance(data_preprocessor, nn.Module):
            # Built here, in our scope, so mmpretrain's preprocessors are
            # found by bare name (mmengine's BaseModel looks in its root).
            data_preprocessor = MODELS.build(data_preprocessor
                                             or CLIP_DATA_PREPROCESSOR)
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        student = dict(student)
        student.setdefault('type', 'PromptedCLIP')
        student.setdefault('text_tower', False)
        self.student = MODELS.build(student)

        teacher_model = None
        projector = dict(projector)
        if teacher is not None:
            teacher = dict(teacher)
            teacher.setdefault('type', 'PromptedCLIP')
            teacher_model = MODELS.build(teacher)
            teacher_model.requires_grad_(False)
            teacher_model.eval()
            given = projector.get('out_channels', teacher_model.embed_dim)
            if given != teacher_model.embed_dim:
                raise ValueError(
                    f'projector.out_channels={given} does not match the '
                    f'teacher feature dimension {teacher_model.embed_dim}')
            projector['out_channels'] = teacher_model.embed_dim
        elif 'out_channels' not in projector:
            raise ValueError('without a teacher, projector.out_channels (the '
                             'teacher feature dimension) must be given')
        # Not a registered submodule: it is frozen, and must not enter
        # checkpoints, optimizers or DDP. _apply and train() handle it.
        object.__setattr__(self, '_teacher', teacher_model)

        projector.setdefault('in_channels', self.student.embed_dim)
        self.projector = MODELS.build(projector)
        self.distill_loss = MODELS.build(distill_loss)
        self.text_batch_size = text_batch_size
        self.register_buffer('text_features',
                             torch.zeros(0, projector['out_channels']))
        self.class_names: Tuple[str, ...] = ()
        # Features of another class list used for evaluation only (e.g. a
        # cross-dataset target); never saved.
        self._eval_features: Optional[torch.Tensor] = None

    # ------------------------------------------------------------------ #
    @property
    def teacher(self) -> Optional[nn.Module]:
        """PromptedCLIP or None: the frozen teacher."""
        return self._teacher

    def _apply(self, fn, recurse: bool = True):
        super()._apply(fn, recurse)
        if self._teacher is not None:
            self._teacher._apply(fn, recurse)
        if self._eval_features is not None:
            self._eval_features = fn(self._eval_features)
        return self

    def train(self, mode: bool = True) -> 'PromptKDDistiller':
        """Set the mode; the teacher always stays in eval mode."""
        super().train(mode)
        if self._teacher is not None:
            self._teacher.eval()
        return self

    def trainable_parameters(self) -> Dict[str, nn.Parameter]:
        """Parameters that distillation updates, by name."""
        return {
            name: param
            for name, param in self.named_parameters() if param.requires_grad
        }

    # ------------------------------------------------------------------ #
    # Stored text features.
    def get_extra_state(self) -> dict:
        return {'class_names': list(self.class_names)}

    def set_extra_state(self, state: dict) -> None:
        self.class_names = tuple(state.get('class_names', ()))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        stored = state_dict.get(prefix + 'text_features')
        if stored is not None and stored.shape != self.text_features.shape:
            # The class count is only known once features are stored.
            self.text_features = self.text_features.new_empty(stored.shape)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)

    @torch.no_grad()
    def compute_text_features(self, class_names: Sequence[str]) -> torch.Tensor:
        """Normalised teacher text features of ``class_names``.

        Args:
            class_names (Sequence[str]): Class names.

        Returns:
            Tensor: Float tensor of shape (C, teacher embed_dim).
        """
        if self._teacher is None:
            raise RuntimeError('computing text features needs a teacher')
        chunks = [
            self._teacher.encode_text(
                class_names[i:i + self.text_batch_size],
                normalize=True).float()
            for i in range(0, len(class_names), self.text_batch_size)
        ]
        return torch.cat(chunks)

    def prepare_text_features(self,
                              class_names: Sequence[str],
                              for_training: bool,
                              dataset_name: str = 'the dataset') -> None:
        """Make the text features of ``class_names`` ready.

        For training, the stored features must be empty (they are computed
        once with the teacher) or belong to exactly these classes. For
        evaluation, stored features of the same classes are used; other
        classes get temporary teacher features, which are never saved.

        Args:
            class_names (Sequence[str]): Classes of the dataset, in label
                order.
            for_training (bool): Whether the features define training.
            dataset_name (str): Dataset name for messages.
        """
        names = tuple(class_names)
        logger = MMLogger.get_current_instance()
        self._eval_features = None
        if names == self.class_names and len(self.text_features):
            return
        if len(self.text_features) == 0:
            if self._teacher is None:
                raise ValueError(
                    f'no stored text features and no teacher: cannot '
                    f'classify the {len(names)} classes of {dataset_name}')
            self.text_features = self.compute_text_features(names).to(
                self.text_features.device)
            self.class_names = names
            logger.info(f'Stored teacher text features of {len(names)} '
                        f'classes of {dataset_name}')
            return
        mismatch = _describe_mismatch(self.class_names, names)
        if for_training or self._teacher is None:
            raise ValueError(
                f'the stored text features are for {len(self.class_names)} '
                f'classes but {dataset_name} has {len(names)} classes '
                f'({mismatch}).' +
                ('' if for_training else
                 ' Give a teacher to compute features for new classes.'))
        self._eval_features = self.compute_text_features(names).to(
            self.text_features.device)
        logger.info(f'Evaluating on {len(names)} classes of {dataset_name} '
                    f'with teacher text features computed for them '
                    f'({mismatch})')

    # ------------------------------------------------------------------ #
    def _text(self, for_training: bool) -> torch.Tensor:
        text = self.text_features if (
            for_training or self._eval_features is None) else \
            self._eval_features
        if len(text) == 0:
            raise RuntimeError(
                'text features are not prepared: add PromptKDTextFeaturesHook '
                'to custom_hooks or call prepare_text_features()')
        return text

    def student_logits(self, inputs: torch.Tensor,
                       text_features: torch.Tensor) -> torch.Tensor:
        """Student logits against (teacher) text features.

        Args:
            inputs (Tensor): Normalised images (B, 3, H, W).
            text_features (Tensor): Normalised features (C, D).

        Returns:
            Tensor: Logits (B, C).
        """
        features = self.student.encode_image(inputs).float()
        features = F.normalize(self.projector(features), dim=-1)
        return self.student.logit_scale.float() * features @ text_features.t()

    @torch.no_grad()
    def teacher_logits(self, inputs: torch.Tensor,
                       text_features: torch.Tensor) -> torch.Tensor:
        """Frozen teacher logits (no gradient).

        Args:
            inputs (Tensor): Normalised images (B, 3, H, W); resized to the
                teacher's resolution when it differs.
            text_features (Tensor): Normalised features (C, D).

        Returns:
            Tensor: Logits (B, C).
        """
        if self._teacher is None:
            raise RuntimeError('training needs a teacher')
        if tuple(inputs.shape[-2:]) != self._teacher.image_size:
            inputs = F.interpolate(
                inputs, size=self._teacher.image_size, mode='bicubic',
                align_corners=False)
        features = self._teacher.encode_image(inputs, normalize=True).float()
        return self._teacher.logit_scale.float() * features @ \
            text_features.t()

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor') -> Union[Dict[str, torch.Tensor],
                                               List[DataSample],
                                               torch.Tensor]:
        """Run in 'loss', 'predict' or 'tensor' mode.

        Args:
            inputs (Tensor): Normalised images (B, 3, H, W).
            data_samples (list[DataSample], optional): Only used in
                'predict' mode, to attach predictions; 'loss' mode never
                reads them (distillation uses no labels).
            mode (str): 'loss', 'predict' or 'tensor'. Defaults to 'tensor'.

        Returns:
            dict | list | Tensor: Losses, DataSamples with ``pred_score``
            over all classes, or student logits.
        """
        if mode == 'loss':
            return self.loss(inputs)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.student_logits(inputs, self._text(False))
        raise RuntimeError(f'Invalid mode "{mode}"; expected loss, predict '
                           'or tensor')

    def loss(self, inputs: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Distillation loss of an unlabeled batch.

        Args:
            inputs (Tensor): Normalised images (B, 3, H, W).

        Returns:
            dict[str, Tensor]: ``{'loss_kd': loss}``.
        """
        text = self._text(True)
        teacher = self.teacher_logits(inputs, text)
        student = self.student_logits(inputs, text)
        return dict(loss_kd=self.distill_loss(student, teacher))

    @torch.no_grad()
    def predict(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None
                ) -> List[DataSample]:
        """Class scores over all classes from the student alone.

        Args:
            inputs (Tensor): Normalised images (B, 3, H, W).
            data_samples (list[DataSample], optional): Samples to attach the
                predictions to. Defaults to None.

        Returns:
            list[DataSample]: With ``pred_score`` (softmax over all classes)
            and ``pred_label``.
        """
        scores = self.student_logits(inputs, self._text(False)).softmax(-1)
        labels = scores.argmax(dim=-1)
        if data_samples is None:
            data_samples = [DataSample() for _ in range(len(scores))]
        for sample, score, label in zip(data_samples, scores, labels):
            sample.set_pred_score(score).set_pred_label(label)
        return data_samples


def _describe_mismatch(stored: Sequence[str], given: Sequence[str]) -> str:
    for i, (a, b) in enumerate(zip(stored, given)):
        if a != b:
            return f'first difference at label {i}: "{a}" vs "{b}"'
    return f'{len(stored)} vs {len(given)} classes'
