"""PromptKD: unsupervised prompt distillation (stages b and c)."""
import json
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmpretrain.structures import DataSample
from torch import nn

from mmpromptkd.registry import MODELS
from mmpromptkd.utils.state_dict_check import (CheckpointMismatchError,
                                               check_state_dict)
from ..clip.data_preprocessor import DISTILL_DATA_PREPROCESSOR
from ..utils import (check_image_size, fill_frozen_weights,
                     logits_to_data_samples)


@MODELS.register_module()
class PromptKDDistiller(BaseModel):
    """A prompted CLIP student distilled from a frozen prompted CLIP teacher.

    Stage (b): the teacher's normalised text features of *all* classes are
    computed once and stored in the ``text_features`` buffer (with the class
    names), then for every unlabeled batch::

        logits_T = exp(s_T) * normalize(teacher.encode_image(x)) @ t.T
        logits_S = exp(s_S) * normalize(
            projector(student.encode_image(x))) @ t.T
        loss = distill_loss(logits_S, logits_T)

    Labels are never read (the default data preprocessor drops the
    samples in training). Only the student's prompts and the projector
    train. Stage (c): inference needs only the student, the projector and
    the stored text features, all of which are in the checkpoint; the
    teacher is kept out of the module tree, so it is never written into a
    checkpoint, and can be left out (``teacher=None``) for inference.

    Ablations of the paper are options: ``distill_target='features'``
    distils projected image features with a feature loss (L1 / MSE) instead
    of logits, ``shared_text_features=False`` gives the student its own
    prompted text encoder (no projector; its logits come from its own text
    features), a student with ``vision_prompt_depth=0`` trains the projector
    only, and ``freeze_clip=False`` fine-tunes the student's image encoder.

    Args:
        student (dict): Config of the student: a :class:`PromptedCLIP`
            (default type; its text tower is dropped unless
            ``shared_text_features=False``) or any module with the same
            image interface, such as :class:`BackboneStudent`.
        teacher (dict, optional): Config of the frozen teacher
            :class:`PromptedCLIP` (e.g. with ``checkpoint=`` a converted
            official teacher or a stage-(a) checkpoint). Needed to train and
            to compute text features for new classes. Defaults to None.
        projector (dict): Config of the projector neck; ``in_channels`` and
            ``out_channels`` are read from the student and the teacher.
            Without a teacher, ``out_channels`` must be given. Defaults to
            ``dict(type='FeatureProjector')``.
        distill_loss (dict): Config of the loss. Defaults to
            ``dict(type='KLLogitLoss', loss_weight=1000.0)``.
        distill_target (str): 'logits' (the method) or 'features' (feature
            distillation between projected student and teacher image
            features). Defaults to 'logits'.
        shared_text_features (bool): Classify with the teacher's stored text
            features (the method). False uses the student's own prompted
            text encoder. Defaults to True.
        data_preprocessor (dict | nn.Module, optional): Defaults to
            :class:`LabelFreeDataPreprocessor` (mmpretrain's
            ``ClsDataPreprocessor`` that passes no data samples in
            training) with CLIP's mean and std.
        text_batch_size (int): Class names encoded per teacher forward when
            the text features are computed. Defaults to 256.
        text_encoder (dict, optional): Config of a text-only
            :class:`PromptedCLIP` (``image_tower=False``): the teacher's
            prompted text tower, which an open-vocabulary export carries
            instead of the teacher to encode new class names
            (:meth:`set_class_names`, :meth:`add_classes`). Only without a
            teacher; frozen. Defaults to None.
        reference_fp16 (bool): The official code's pure-fp16 training
            (``PREC: fp16``): passed on to the student, the teacher and the
            projector (fp16 linear weights updated in fp16, layer norms and
            BatchNorm in fp32, see :class:`PromptedCLIP`), and the student
            and teacher logits are computed in fp16 as there; the loss is
            computed in fp32 from them. Defaults to False.
        release_teacher_text_tower (bool): Free the teacher's text tower
            and text prompts once the training features are stored (for
            ViT-L/14, 123.7 M parameters). Evaluation on other classes and
            ``export_student(with_text_encoder=True)`` then need a fresh
            teacher. Defaults to False.
        predict_teacher (bool): In 'predict' mode, also attach the teacher's
            softmax scores to each sample as ``teacher_score`` (when the
            teacher is there), for :class:`TeacherStudentAgreement` on
            images without labels. Defaults to False.
        compile (bool | dict): Compile the student's and the teacher's image
            encoders with ``torch.compile`` (a dict gives its options, e.g.
            ``dict(mode='max-autotune')``), as mmengine's ``compile`` does
            for a whole ``train_step``; the modules, their parameters and
            checkpoints stay as they are. Defaults to False.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 student: dict,
                 teacher: Optional[dict] = None,
                 projector: Optional[dict] = dict(type='FeatureProjector'),
                 distill_loss: dict = dict(
                     type='KLLogitLoss', loss_weight=1000.0),
                 distill_target: str = 'logits',
                 shared_text_features: bool = True,
                 data_preprocessor: Optional[dict] = None,
                 text_batch_size: int = 256,
                 text_encoder: Optional[dict] = None,
                 reference_fp16: bool = False,
                 release_teacher_text_tower: bool = False,
                 predict_teacher: bool = False,
                 compile: Union[bool, dict] = False,
                 init_cfg: Optional[dict] = None) -> None:
        if not isinstance(data_preprocessor, nn.Module):
            # Built here, in our scope, so mmpretrain's preprocessors are
            # found by bare name (mmengine's BaseModel looks in its root).
            data_preprocessor = MODELS.build(data_preprocessor
                                             or DISTILL_DATA_PREPROCESSOR)
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if distill_target not in ('logits', 'features'):
            raise ValueError(f"distill_target must be 'logits' or "
                             f"'features', got {distill_target!r}")
        if distill_target == 'features' and not shared_text_features:
            raise ValueError('feature distillation needs the projector and '
                             'the shared text features')
        self.distill_target = distill_target
        self.shared_text_features = shared_text_features
        self.reference_fp16 = reference_fp16
        self.predict_teacher = predict_teacher
        self.release_teacher_text_tower = release_teacher_text_tower
        if reference_fp16:
            student = dict(student, reference_fp16=True)
            teacher = None if teacher is None else dict(
                teacher, reference_fp16=True)
            projector = None if projector is None else dict(
                projector, reference_fp16=True)
        student = dict(student)
        student.setdefault('type', 'PromptedCLIP')
        if student['type'] in ('PromptedCLIP', 'mmpromptkd.PromptedCLIP'):
            student.setdefault('text_tower', not shared_text_features)
        self.student = MODELS.build(student)

        teacher_model = None
        if teacher is not None:
            teacher = dict(teacher)
            teacher.setdefault('type', 'PromptedCLIP')
            # Built on a fork of the random generator: the trainable
            # parameters built after it (the projector) start the same with
            # any teacher, or none (a run on cached teacher logits).
            with torch.random.fork_rng(devices=[]):
                teacher_model = MODELS.build(teacher)
            teacher_model.requires_grad_(False)
            teacher_model.eval()
        # Not a registered submodule: it is frozen, and must not enter
        # checkpoints, optimizers or DDP. _apply and train() handle it.
        object.__setattr__(self, '_teacher', teacher_model)
        self.text_encoder = None
        if text_encoder is not None:
            if teacher_model is not None:
                raise ValueError('text_encoder replaces the teacher in an '
                                 'exported student: give one of them')
            text_encoder = dict(text_encoder)
            text_encoder.setdefault('type', 'PromptedCLIP')
            # A registered submodule: exported with the student.
            self.text_encoder = MODELS.build(text_encoder)
            self.text_encoder.requires_grad_(False)

        if shared_text_features:
            if projector is None:
                raise ValueError('the shared text features need a projector '
                                 'from the student to the teacher dimension')
            projector = dict(projector)
            if teacher_model is not None:
                given = projector.get('out_channels', teacher_model.embed_dim)
                if given != teacher_model.embed_dim:
                    raise ValueError(
                        f'projector.out_channels={given} does not match the '
                        f'teacher feature dimension {teacher_model.embed_dim}')
                projector['out_channels'] = teacher_model.embed_dim
            elif 'out_channels' not in projector:
                raise ValueError('without a teacher, projector.out_channels '
                                 '(the teacher feature dimension) must be '
                                 'given')
            projector.setdefault('in_channels', self.student.embed_dim)
            self.projector = MODELS.build(projector)
            text_dim = projector['out_channels']
        else:
            if projector is not None:
                raise ValueError('shared_text_features=False classifies with '
                                 "the student's own text features: set "
                                 'projector=None')
            self.projector = None
            text_dim = (
                teacher_model.embed_dim if teacher_model is not None else 0)
        if self.text_encoder is not None and \
                self.text_encoder.embed_dim != text_dim:
            raise ValueError(
                f'text_encoder gives {self.text_encoder.embed_dim}-d '
                f'features; the projector maps to {text_dim}')
        self.distill_loss = MODELS.build(distill_loss)
        self.text_batch_size = text_batch_size
        self.register_buffer('text_features', torch.zeros(0, text_dim))
        # The class names of the stored features, as UTF-8 JSON bytes: a
        # tensor, so that checkpoints stay tensor-only and mmengine can
        # broadcast the state dict in distributed runs.
        self.register_buffer('class_names_utf8',
                             torch.zeros(0, dtype=torch.uint8))
        # Features and names of another class list used for evaluation only
        # (e.g. a cross-dataset target); never saved.
        self._eval_features: Optional[torch.Tensor] = None
        self._eval_class_names: Optional[Tuple[str, ...]] = None
        if not isinstance(compile, (bool, dict)):
            raise TypeError(f'compile must be a bool or a dict of '
                            f'torch.compile options, got {compile!r}')
        self.compile_options = (dict(compile) if isinstance(compile, dict)
                                else {} if compile else None)
        self._compiled: Dict[str, object] = {}

    def _image_encoder(self, which: str):
        """``encode_image`` of the student or teacher, compiled if asked."""
        model = self.student if which == 'student' else self._teacher
        if self.compile_options is None:
            return model.encode_image
        if which not in self._compiled:
            self._compiled[which] = torch.compile(model.encode_image,
                                                  **self.compile_options)
        return self._compiled[which]

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
    @property
    def class_names(self) -> Tuple[str, ...]:
        """tuple[str]: Class names of the stored text features."""
        return self._decode_class_names(self.class_names_utf8)

    @staticmethod
    def _decode_class_names(data: Optional[torch.Tensor]) -> Tuple[str, ...]:
        """Class names from their UTF-8 JSON bytes (a uint8 tensor).

        Raises:
            CheckpointMismatchError: If the bytes are not a UTF-8 JSON list
                of strings (e.g. a corrupted checkpoint).
        """
        if data is None or len(data) == 0:
            return ()
        try:
            if data.dtype != torch.uint8 or data.dim() != 1:
                raise ValueError(f'a {data.dtype} tensor of shape '
                                 f'{tuple(data.shape)}, not 1-D uint8')
            names = json.loads(bytes(data.tolist()).decode('utf-8'))
            if not (isinstance(names, list)
                    and all(isinstance(n, str) for n in names)):
                raise ValueError('not a JSON list of strings')
        except ValueError as e:  # UnicodeDecodeError and JSONDecodeError too
            raise CheckpointMismatchError(
                f'class_names_utf8 does not hold the class names of the '
                f'stored text features as UTF-8 JSON ({e})') from e
        return tuple(names)

    @class_names.setter
    def class_names(self, names: Sequence[str]) -> None:
        data = json.dumps(list(names)).encode('utf-8')
        self.class_names_utf8 = torch.tensor(
            list(data), dtype=torch.uint8, device=self.class_names_utf8.device)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        # mmengine's load_from / tools/test.py load with strict=False, which
        # would warn and then evaluate a model that is not what training
        # produced: everything training produces must be in the checkpoint,
        # with this model's shapes and finite values (stored features may
        # be missing: the teacher computes them, e.g. for converted
        # students; their class count is only known from the file).
        if any(k.startswith(prefix + 'prompted_clip.') for k in state_dict):
            raise CheckpointMismatchError(
                'the checkpoint is a stage-(a) teacher checkpoint (its keys '
                "start with 'prompted_clip.'), not one of a distiller: give "
                'it as the teacher, --cfg-options '
                'model.teacher.checkpoint=PATH. Nothing was loaded.')
        own = {prefix + k: v for k, v in self.state_dict().items()}
        required = [prefix + name for name in self.trainable_parameters()]
        if self.projector is not None:
            required += [
                f'{prefix}projector.{name}'
                for name, _ in self.projector.named_buffers()
            ]
        names = state_dict.get(prefix + 'class_names_utf8')
        features = state_dict.get(prefix + 'text_features')
        if features is not None or names is not None:
            # Stored features come with their class names, one row each.
            required += [prefix + 'text_features', prefix + 'class_names_utf8']
            try:
                count = len(self._decode_class_names(names))
            except CheckpointMismatchError as e:
                raise CheckpointMismatchError(
                    f'the checkpoint: {e}. Nothing was loaded.') from e
            width = own[prefix + 'text_features'].shape[1]
            if width == 0 and features is not None:
                # No teacher and no projector (a student with its own text
                # features, exported): the stored teacher features' width.
                width = features.shape[1]
            own[prefix + 'text_features'] = torch.empty(count, width)
            if names is not None:
                own[prefix + 'class_names_utf8'] = names
        check_state_dict(
            own, {
                k: v
                for k, v in state_dict.items() if k.startswith(prefix)
            },
            None,
            required=required,
            model=f'this {type(self).__name__}')
        for name in ('text_features', 'class_names_utf8'):
            stored = state_dict.get(prefix + name)
            buffer = getattr(self, name)
            if stored is not None and stored.shape != buffer.shape:
                setattr(self, name, buffer.new_empty(stored.shape))
        # Training checkpoints leave out the frozen weights: they come from
        # the config's weight source (the checkpoint's fingerprint of them
        # is checked by the loaders that read its meta).
        fill_frozen_weights(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)

    @torch.no_grad()
    def compute_text_features(self,
                              class_names: Sequence[str]) -> torch.Tensor:
        """Normalised teacher text features of ``class_names``.

        Args:
            class_names (Sequence[str]): Class names.

        Returns:
            Tensor: Float tensor of shape (C, teacher embed_dim).
        """
        teacher = self._text_source()
        chunks = [
            teacher.encode_text(
                class_names[i:i + self.text_batch_size],
                normalize=True).float()
            for i in range(0, len(class_names), self.text_batch_size)
        ]
        return torch.cat(chunks)

    @property
    def can_encode_text(self) -> bool:
        """bool: Whether text features of new class names can be computed
        (a teacher, or the text encoder of an open-vocabulary export)."""
        return self._teacher_has_text or self.text_encoder is not None

    @property
    def _teacher_has_text(self) -> bool:
        return self._teacher is not None and getattr(
            self._teacher, 'has_text_tower', True)

    def _text_source(self) -> nn.Module:
        if self._teacher_has_text:
            return self._teacher
        if self.text_encoder is not None:
            return self.text_encoder
        raise RuntimeError(
            'text features of new class names need the teacher or its text '
            'encoder (export_student(..., with_text_encoder=True))')

    @staticmethod
    def _check_new_names(names: Sequence[str]) -> Tuple[str, ...]:
        names = tuple(names)
        if not names:
            raise ValueError('the class list is empty')
        bad = [n for n in names if not isinstance(n, str) or not n.strip()]
        if bad:
            raise ValueError(
                f'class names must be non-empty strings, got {bad!r}')
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f'{duplicates} appear more than once')
        return names

    def set_class_names(self, class_names: Sequence[str]) -> None:
        """Replace the stored classes by ``class_names``.

        Their teacher text features are computed by the teacher or by the
        text encoder of an open-vocabulary export; predictions, exports and
        inferencers then use them.

        Args:
            class_names (Sequence[str]): The new class list, in label
                order: non-empty, no duplicates, each name within the text
                context.
        """
        names = self._check_new_names(class_names)
        features = self.compute_text_features(names)
        self.text_features = features.to(self.text_features.device)
        self.class_names = names
        self._eval_features = None
        self._eval_class_names = None

    def select_classes(self, class_names: Sequence[str]) -> None:
        """Classify over ``class_names`` from now on.

        Stored classes keep their stored rows, unchanged (no text encoder
        needed for them); only new names are encoded, as in
        :meth:`set_class_names`.

        Args:
            class_names (Sequence[str]): Class list, in label order.
        """
        names = self._check_new_names(class_names)
        stored = self.class_names
        new = [n for n in names if n not in stored]
        if new and not self.can_encode_text:
            raise ValueError(
                f'{new} are not among the {len(stored)} stored classes; new '
                'classes need the teacher or an open-vocabulary export '
                '(export_student.py --with-text-encoder)')
        table = self.text_features
        if new:
            table = torch.cat([
                table,
                self.compute_text_features(new).to(table.device, table.dtype)
            ])
        order = list(stored) + new
        rows = torch.as_tensor([order.index(n) for n in names],
                               device=table.device)
        self.text_features = table[rows]
        self.class_names = names
        self._eval_features = None
        self._eval_class_names = None

    def add_classes(self, class_names: Sequence[str]) -> None:
        """Append ``class_names`` to the stored classes (see
        :meth:`select_classes`); the stored rows are kept as they are.

        Args:
            class_names (Sequence[str]): New names, none already stored.
        """
        names = self._check_new_names(class_names)
        known = sorted(set(names) & set(self.class_names))
        if known:
            raise ValueError(f'{known} are stored classes already')
        self.select_classes(self.class_names + names)

    def prepare_text_features(
            self,
            class_names: Sequence[str],
            for_training: bool,
            dataset_name: str = 'the dataset',
            class_indices: Optional[Sequence[int]] = None) -> None:
        """Make the text features of ``class_names`` ready.

        For training, the stored features must be empty (they are computed
        once with the teacher) or belong to exactly these classes. For
        evaluation, stored features of the same classes are used; a subset
        of the stored classes (``class_indices``, e.g. the 200 classes of
        ImageNet-A among ImageNet's 1000) selects their rows; other classes
        get temporary teacher features. Evaluation features are never saved.

        Args:
            class_names (Sequence[str]): Classes of the dataset, in label
                order.
            for_training (bool): Whether the features define training.
            dataset_name (str): Dataset name for messages.
            class_indices (Sequence[int], optional): Index of each class in
                the stored class list, when the dataset is a subset of it.
                Defaults to None.
        """
        names = tuple(class_names)
        logger = MMLogger.get_current_instance()
        self._eval_features = None
        self._eval_class_names = None
        if names == self.class_names and len(self.text_features):
            return
        if len(self.text_features) == 0:
            if not self.can_encode_text:
                raise ValueError(
                    f'no stored text features and no teacher: cannot '
                    f'classify the {len(names)} classes of {dataset_name}')
            self.text_features = self.compute_text_features(names).to(
                self.text_features.device)
            self.class_names = names
            logger.info(f'Stored teacher text features of {len(names)} '
                        f'classes of {dataset_name}')
            if for_training and self.release_teacher_text_tower and \
                    self._teacher_has_text:
                self._teacher.release_text_tower()
                logger.info('Released the teacher\'s text tower '
                            '(release_teacher_text_tower=True)')
            return
        if not for_training and class_indices is not None and all(
                0 <= i < len(self.class_names)
                for i in class_indices) and tuple(
                    self.class_names[i] for i in class_indices) == names:
            index = torch.as_tensor(
                list(class_indices), device=self.text_features.device)
            self._eval_features = self.text_features[index]
            self._eval_class_names = names
            logger.info(f'Evaluating on {len(names)} of the '
                        f'{len(self.class_names)} stored classes '
                        f'({dataset_name})')
            return
        near = _near_misses(self.class_names, names)
        if near:
            raise ValueError(
                f'the class names of {dataset_name} differ from those of the '
                f'stored text features only in whitespace or case '
                f'({near}); features for such names would be recomputed '
                'and change the results. Correct the class names (or the '
                'stored ones) so that they are identical.')
        mismatch = _describe_mismatch(self.class_names, names)
        if for_training or not self.can_encode_text:
            raise ValueError(
                f'the stored text features are for {len(self.class_names)} '
                f'classes but {dataset_name} has {len(names)} classes '
                f'({mismatch}).' +
                ('' if for_training else
                 ' Give a teacher to compute features for new classes' +
                 (' (its text tower was released: set model.'
                  'release_teacher_text_tower=False).'
                  if self._teacher is not None else '.')))
        self._eval_features = self.compute_text_features(names).to(
            self.text_features.device)
        self._eval_class_names = names
        logger.info(f'Evaluating on {len(names)} classes of {dataset_name} '
                    f'with teacher text features computed for them '
                    f'({mismatch})')

    # ------------------------------------------------------------------ #
    def _text(self, for_training: bool) -> Tuple[torch.Tensor, tuple]:
        """Text features and class names for training or evaluation."""
        if for_training or self._eval_features is None:
            text, names = self.text_features, self.class_names
        else:
            text, names = self._eval_features, self._eval_class_names
        if len(text) == 0:
            raise RuntimeError(
                'text features are not prepared: add PromptKDTextFeaturesHook '
                'to custom_hooks or call prepare_text_features()')
        return text, names

    @property
    def _feature_dtype(self) -> torch.dtype:
        """The dtype of the features and logits the losses see."""
        return torch.float16 if self.reference_fp16 else torch.float32

    def student_features(self, inputs: torch.Tensor) -> torch.Tensor:
        """Normalised, projected student image features (B, D_teacher).

        Args:
            inputs (Tensor): Normalised images (B, 3, H, W).

        Returns:
            Tensor: Features in the teacher's space.
        """
        features = self._image_encoder('student')(inputs).to(
            self._feature_dtype)
        return F.normalize(self.projector(features), dim=-1)

    def student_logits(self,
                       inputs: torch.Tensor,
                       for_training: bool = False) -> torch.Tensor:
        """Student logits over the training or the evaluation classes.

        With shared text features, ``exp(s_S) * student_features @ t.T``
        with the teacher's text features ``t``; otherwise cosine logits with
        the student's own prompted text features of the class names.

        Args:
            inputs (Tensor): Normalised images (B, 3, H, W).
            for_training (bool): Use the training classes. Defaults to False.

        Returns:
            Tensor: Logits (B, C).
        """
        text, names = self._text(for_training)
        scale = self.student.logit_scale.float()
        if self.shared_text_features:
            features = self.student_features(inputs)
            return scale * features @ text.t().to(features.dtype)
        image = F.normalize(self._image_encoder('student')(inputs).float(),
                            dim=-1)
        own_text = self.student.encode_text(names, normalize=True).float()
        return scale * image @ own_text.t()

    @torch.no_grad()
    def teacher_features(self, inputs: torch.Tensor) -> torch.Tensor:
        """Normalised teacher image features (no gradient).

        Args:
            inputs (Tensor): Normalised images (B, 3, H, W); resized to the
                teacher's resolution when it differs.

        Returns:
            Tensor: Features (B, D_teacher).
        """
        self._require_teacher()
        if tuple(inputs.shape[-2:]) != tuple(self._teacher.image_size):
            inputs = F.interpolate(
                inputs,
                size=self._teacher.image_size,
                mode='bicubic',
                align_corners=False)
        features = self._image_encoder('teacher')(inputs)
        return F.normalize(features, dim=-1).to(self._feature_dtype)

    @torch.no_grad()
    def teacher_logits(self, inputs: torch.Tensor,
                       text_features: torch.Tensor) -> torch.Tensor:
        """Frozen teacher logits ``exp(s_T) * v_T @ t.T`` (no gradient).

        Args:
            inputs (Tensor): Normalised images (B, 3, H, W).
            text_features (Tensor): Normalised features (C, D).

        Returns:
            Tensor: Logits (B, C).
        """
        features = self.teacher_features(inputs)
        return self._require_teacher().logit_scale.float() * \
            features @ text_features.t().to(features.dtype)

    def extract_feat(
        self,
        inputs: torch.Tensor,
        stage: str = 'student'
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """Image features, as mmpretrain's classifiers extract them.

        FLOP counters (mmpretrain's ``get_flops.py``) count this method:
        'student' is what an inference costs (the student and the
        projector; the product with the stored text features adds only
        ``C * D`` multiply-adds per image), 'distill' what a training step
        computes forward (the frozen teacher's image features as well).

        Args:
            inputs (Tensor): Normalised images (B, 3, H, W).
            stage (str): 'student' or 'distill'. Defaults to 'student'.

        Returns:
            Tensor | tuple[Tensor, Tensor]: Normalised, projected student
            features (B, D_teacher); for 'distill', the teacher's features
            and the student's.
        """
        if stage not in ('student', 'distill'):
            raise ValueError(
                f"stage must be 'student' or 'distill', got {stage!r}")
        if self.projector is None:  # the student's own text features
            student = F.normalize(self._image_encoder('student')(inputs),
                                  dim=-1)
        else:
            student = self.student_features(inputs)
        if stage == 'student':
            return student
        return self.teacher_features(inputs), student

    def _require_teacher(self) -> nn.Module:
        if self._teacher is None:
            raise RuntimeError('training needs a teacher (this model was '
                               'built with teacher=None)')
        return self._teacher

    def forward(
        self,
        inputs: torch.Tensor,
        data_samples: Optional[List[DataSample]] = None,
        mode: str = 'tensor'
    ) -> Union[Dict[str, torch.Tensor], List[DataSample], torch.Tensor]:
        """Run in 'loss', 'predict' or 'tensor' mode.

        Args:
            inputs (Tensor): Normalised images (B, 3, H, W).
            data_samples (list[DataSample], optional): In 'predict' mode,
                the samples to attach predictions to; in 'loss' mode, only
                their cached ``teacher_logits`` are read (distillation uses
                no labels).
            mode (str): 'loss', 'predict' or 'tensor'. Defaults to 'tensor'.

        Returns:
            dict | list | Tensor: Losses, DataSamples with ``pred_score``
            over all classes, or student logits.
        """
        size = getattr(self.student, 'image_size', None)
        if size is not None:  # CNN students take any size
            check_image_size(inputs, size, data_samples)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.student_logits(inputs)
        raise RuntimeError(f'Invalid mode "{mode}"; expected loss, predict '
                           'or tensor')

    def loss(
        self,
        inputs: torch.Tensor,
        data_samples: Optional[List[DataSample]] = None
    ) -> Dict[str, torch.Tensor]:
        """Distillation loss of an unlabeled batch (labels are never read).

        Args:
            inputs (Tensor): Normalised images (B, 3, H, W).
            data_samples (list[DataSample], optional): Samples with the
                teacher's logits of these images (``teacher_logits``, from a
                :class:`TeacherCachedDataset`), used instead of running the
                teacher. Defaults to None.

        Returns:
            dict[str, Tensor]: ``{'loss_kd': loss}``.
        """
        cached = self._cached_teacher_logits(inputs, data_samples)
        if self.distill_target == 'features':
            if cached is not None:
                raise ValueError('a teacher cache holds logits: it cannot '
                                 "train distill_target='features'")
            teacher = self.teacher_features(inputs)
            student = self.student_features(inputs)
        else:
            text = self._text(True)[0]
            teacher = cached if cached is not None else \
                self.teacher_logits(inputs, text)
            student = self.student_logits(inputs, for_training=True)
        return dict(loss_kd=self.distill_loss(student, teacher))

    def _cached_teacher_logits(
            self, inputs: torch.Tensor,
            data_samples: Optional[List[DataSample]]
    ) -> Optional[torch.Tensor]:
        """The batch's cached teacher logits (B, C), or None."""
        # Only samples of the preprocessor's making are looked into.
        if not data_samples or not isinstance(data_samples[0], DataSample) \
                or 'teacher_logits' not in data_samples[0]:
            return None
        logits = torch.stack([s.teacher_logits for s in data_samples]).to(
            inputs.device, self._feature_dtype)
        classes = len(self._text(True)[0])
        if logits.shape != (len(inputs), classes):
            raise ValueError(
                f'cached teacher logits of shape {tuple(logits.shape)} for a '
                f'batch of {len(inputs)} images over {classes} classes')
        return logits

    def use_cached_text_features(self, class_names: Sequence[str],
                                 features: torch.Tensor,
                                 source: str = 'the teacher cache') -> None:
        """Store the text features a teacher cache was recorded with.

        A run on cached teacher logits needs the same text features as the
        teacher that made them, and then no teacher. Features stored
        already (a resume, or computed by a configured teacher) must be
        these, to float rounding.

        Args:
            class_names (Sequence[str]): Classes of the features.
            features (Tensor): The cache's text features (C, D).
            source (str): Where they come from, for messages.
        """
        names = tuple(class_names)
        features = features.to(self.text_features.device,
                               self.text_features.dtype)
        if len(self.text_features) == 0 and self.can_encode_text:
            self.prepare_text_features(names, True, source)
        if len(self.text_features) == 0:
            if features.shape[1] != self.text_features.shape[1]:
                raise ValueError(
                    f'{source} holds {features.shape[1]}-d text features; '
                    f'the projector maps to {self.text_features.shape[1]}')
            self.text_features = features.clone()
            self.class_names = names
            MMLogger.get_current_instance().info(
                f'Stored the text features of {len(names)} classes from '
                f'{source}')
            return
        if names != self.class_names or \
                self.text_features.shape != features.shape or \
                not torch.allclose(self.text_features, features, atol=1e-5):
            raise ValueError(
                f'the stored text features ({len(self.class_names)} '
                f'classes) are not those {source} was recorded with: its '
                'logits belong to another teacher')

    @torch.no_grad()
    def predict(
            self,
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
            and ``pred_label``; also ``teacher_score`` with
            ``predict_teacher=True`` and a teacher.
        """
        samples = logits_to_data_samples(
            self.student_logits(inputs), data_samples)
        if self.predict_teacher and self._teacher is not None:
            teacher = self.teacher_logits(inputs,
                                          self._text(False)[0]).softmax(-1)
            for sample, score in zip(samples, teacher):
                sample.set_field(score, 'teacher_score')
        return samples


def _near_misses(stored: Sequence[str], given: Sequence[str]) -> str:
    """Pairs of names that differ only in whitespace or case, if all do."""
    if len(stored) != len(given):
        return ''

    def norm(name: str) -> str:
        return ' '.join(name.split()).casefold()

    pairs = [(a, b) for a, b in zip(stored, given) if a != b]
    if not pairs or any(norm(a) != norm(b) for a, b in pairs):
        return ''
    shown = ', '.join(f'label {stored.index(a)}: stored {a!r} vs {b!r}'
                      for a, b in pairs[:5])
    return shown + (f' and {len(pairs) - 5} more' if len(pairs) > 5 else '')


def _describe_mismatch(stored: Sequence[str], given: Sequence[str]) -> str:
    for i, (a, b) in enumerate(zip(stored, given)):
        if a != b:
            return f'first difference at label {i}: "{a}" vs "{b}"'
    return f'{len(stored)} vs {len(given)} classes'
