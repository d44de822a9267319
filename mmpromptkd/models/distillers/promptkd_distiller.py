"""PromptKD: unsupervised prompt distillation (stages b and c)."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmpretrain.structures import DataSample
from torch import nn

from mmpromptkd.compat import MovesUnregisteredMembers
from mmpromptkd.registry import MODELS
from mmpromptkd.utils.state_dict_check import (CheckpointMismatchError,
                                               check_state_dict)
from ..clip.data_preprocessor import DISTILL_DATA_PREPROCESSOR
from .class_text_table import ClassTextTable, decode_class_names
from ..utils.teacher_provenance import check_trained_teacher
from ..utils import (cached_teacher_logits, fill_frozen_weights,
                     logits_to_data_samples, teacher_input_map)
from ..utils.predictions import dispatch_forward
from ..utils.input_normalization import teacher_view
from .teacher_ensemble import TeacherEnsemble


@MODELS.register_module()
class PromptKDDistiller(ClassTextTable, MovesUnregisteredMembers, BaseModel):
    """A prompted CLIP student distilled from a frozen prompted CLIP teacher.

    Stage (b) matches ``exp(s) * normalize(image features) @ t.T`` of the
    student (after the projector) and the teacher over the teacher's stored
    text features ``t`` of all classes; labels are never read. Stage (c)
    needs only the student, projector and stored features; the teacher is
    kept out of the module tree and checkpoints.

    Args:
        student (dict): A :class:`PromptedCLIP` (default) or image encoder.
        teacher (dict, optional): The frozen teacher (to train, new classes).
        projector (dict): The projector neck (channels read from the models).
        distill_loss (dict): The loss config.
        distill_target (str): 'logits' (the method) or 'features'.
        shared_text_features (bool): Classify with the teacher's stored text
            features (the method), else with the student's own text tower.
        data_preprocessor (dict | nn.Module, optional): Default: the
            :class:`LabelFreeDataPreprocessor` with CLIP's mean and std.
        text_batch_size (int): Class names per teacher text forward.
        text_encoder (dict, optional): A frozen text-only teacher tower, in
            place of the teacher in an open-vocabulary export.
        reference_fp16 (bool): The official pure-fp16 training.
        release_teacher_text_tower (bool): Free the teacher's text tower once
            the training features are stored.
        predict_teacher (bool): Add ``teacher_score`` in 'predict' mode.
        compile (bool | dict): ``torch.compile`` the image encoders.
        teacher_normalization (dict, optional): The teacher's own
            ``dict(mean=..., std=...)`` (0-255), where it differs.
        allow_untrained_teacher (bool): Accept untrained teacher prompts.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, student: dict, teacher: Optional[dict] = None,
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
                 teacher_normalization: Optional[dict] = None,
                 allow_untrained_teacher: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        if not isinstance(data_preprocessor, nn.Module):
            # Built in our scope so mmpretrain's preprocessors are found.
            data_preprocessor = MODELS.build(data_preprocessor
                                             or DISTILL_DATA_PREPROCESSOR)
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.register_load_state_dict_pre_hook(prepare_distiller_load)
        if distill_target not in ('logits', 'features'):
            raise ValueError(f"distill_target must be 'logits' or "
                             f"'features', got {distill_target!r}")
        if distill_target == 'features' and not shared_text_features:
            raise ValueError('feature distillation needs the projector and '
                             'the shared text features')
        self.distill_target = distill_target
        self.shared_text_features = shared_text_features
        self.reference_fp16 = reference_fp16
        # The dtype of the features and logits the losses see.
        self._feature_dtype = torch.float16 if reference_fp16 else \
            torch.float32
        self.predict_teacher = predict_teacher
        self.release_teacher_text_tower = release_teacher_text_tower
        self.allow_untrained_teacher = allow_untrained_teacher
        fp16 = dict(reference_fp16=True) if reference_fp16 else {}
        student = {'type': 'PromptedCLIP', **student, **fp16}
        if student['type'] in ('PromptedCLIP', 'mmpromptkd.PromptedCLIP'):
            student.setdefault('text_tower', not shared_text_features)
        self.student = MODELS.build(student)
        teacher_model = None
        if teacher is not None:
            # Built on a fork of the random generator: the trainable
            # parameters built after it (the projector) start the same with
            # any teacher, or none (a run on cached teacher logits).
            with torch.random.fork_rng(devices=[]):
                teacher_model = MODELS.build(
                    {'type': 'PromptedCLIP', **teacher, **fp16})
            teacher_model.requires_grad_(False)
            teacher_model.eval()
        # Not a registered submodule: frozen, it must not enter checkpoints,
        # optimizers or DDP (MovesUnregisteredMembers and train() handle it).
        object.__setattr__(self, '_teacher', teacher_model)
        self.text_encoder = None
        if text_encoder is not None:
            if teacher_model is not None:
                raise ValueError('text_encoder replaces the teacher in an '
                                 'exported student: give one of them')
            # A registered submodule: exported with the student.
            self.text_encoder = MODELS.build(
                {'type': 'PromptedCLIP', **text_encoder})
            self.text_encoder.requires_grad_(False)
        if shared_text_features:
            if projector is None:
                raise ValueError('the shared text features need a projector '
                                 'from the student to the teacher dimension')
            projector = {**projector, **fp16}
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
        # The map from the student's normalised images to the teacher's
        # (None: the same); an ensemble keeps one per member.
        self.teacher_normalization = teacher_normalization
        if isinstance(teacher_model, TeacherEnsemble):
            # Distiller options an ensemble teacher does not take.
            for bad, message in (
                    (distill_target != 'logits', "a TeacherEnsemble teacher "
                     "gives logits: distill_target must be 'logits'"),
                    (teacher_normalization is not None, 'with a '
                     'TeacherEnsemble, each member has its own normalization '
                     '(members[i].normalization); teacher_normalization '
                     'must be None'),
                    (release_teacher_text_tower, 'release_teacher_text_tower'
                     '=True is not supported with a TeacherEnsemble: its '
                     'members encode the class names of every dataset they '
                     'classify'),
                    (compile is not False, 'compile is not supported with a '
                     'TeacherEnsemble teacher yet')):
                if bad:
                    raise ValueError(message)
            teacher_model.bind_inputs(self.data_preprocessor, self.student)
            teacher_model = None  # nothing more to map or compile here
        self._teacher_input_map = teacher_input_map(
            self.data_preprocessor, self.student, teacher_model,
            teacher_normalization)
        self.distill_loss = MODELS.build(distill_loss)
        self._init_class_text_table(text_dim, text_batch_size)
        if not isinstance(compile, (bool, dict)):
            raise TypeError(f'compile must be a bool or a dict of '
                            f'torch.compile options, got {compile!r}')
        # Compiled image encoders by role (torch.compile is lazy).
        self._compiled: Dict[str, object] = {}
        if compile is not False:
            options = compile if isinstance(compile, dict) else {}
            for role, model in (('student', self.student),
                                ('teacher', teacher_model)):
                if model is not None:
                    self._compiled[role] = torch.compile(
                        model.encode_image, **options)

    @property
    def teacher(self) -> Optional[nn.Module]:
        """PromptedCLIP or None: the frozen teacher."""
        return self._teacher

    def unregistered_modules(self) -> List[nn.Module]:
        """The teacher, outside the module tree (it moves with the model)."""
        return [] if self._teacher is None else [self._teacher]

    def apply_to_unregistered_tensors(self, fn) -> None:
        """Apply ``fn`` to the cached evaluation features."""
        if self._eval_features is not None:
            self._eval_features = fn(self._eval_features)

    def train(self, mode: bool = True) -> 'PromptKDDistiller':
        """Set the mode; the teacher always stays in eval mode."""
        super().train(mode)
        if self._teacher is not None:
            self._teacher.eval()
        return self

    def trainable_parameters(self) -> Dict[str, nn.Parameter]:
        """Parameters that distillation updates, by name."""
        return {n: p for n, p in self.named_parameters() if p.requires_grad}

    def student_features(self, inputs: torch.Tensor) -> torch.Tensor:
        """Normalised student image features, projected if there is a
        projector: (B, D_teacher), else (B, D_student)."""
        encode = self._compiled.get('student', self.student.encode_image)
        if self.projector is None:
            return F.normalize(encode(inputs).float(), dim=-1)
        features = encode(inputs).to(self._feature_dtype)
        return F.normalize(self.projector(features), dim=-1)

    def student_logits(self, inputs: torch.Tensor,
                       for_training: bool = False) -> torch.Tensor:
        """Student logits (B, C) over the training or evaluation classes."""
        text, names = self._text(for_training)
        if not self.shared_text_features:
            text = self.student.encode_text(names, normalize=True).float()
        features = self.student_features(inputs)
        return self.student.logit_scale.float() * \
            features @ text.t().to(features.dtype)

    @torch.no_grad()
    def teacher_features(self, inputs: torch.Tensor) -> torch.Tensor:
        """Normalised teacher image features (B, D_teacher); the inputs are
        re-normalised and resized to the teacher's where they differ."""
        teacher = self._require_teacher()
        if isinstance(teacher, TeacherEnsemble):
            raise ValueError('a TeacherEnsemble has one set of image '
                             'features per member: it gives logits '
                             '(teacher_logits), not features')
        inputs = teacher_view(inputs, teacher.image_size,
                              self._teacher_input_map)
        encode = self._compiled.get('teacher', teacher.encode_image)
        return F.normalize(encode(inputs), dim=-1).to(self._feature_dtype)

    @torch.no_grad()
    def teacher_logits(self, inputs: torch.Tensor,
                       text_features: torch.Tensor,
                       class_names: Optional[Sequence[str]] = None
                       ) -> torch.Tensor:
        """Frozen teacher logits ``exp(s_T) * v_T @ t.T`` (B, C), or a
        :class:`TeacherEnsemble`'s combined logits.

        Args:
            inputs (Tensor): Normalised images (B, 3, H, W).
            text_features (Tensor): Normalised features (C, D).
            class_names (Sequence[str], optional): Their classes, which an
                ensemble's other members encode; default: the training ones.
        """
        if isinstance(self._teacher, TeacherEnsemble):
            teacher = self._require_teacher()
            names = self._text(True)[1] if class_names is None else \
                class_names
            tau = float(getattr(self.distill_loss, 'tau', 1.0))
            return teacher.logits(inputs, names, text_features,
                                  tau).to(self._feature_dtype)
        features = self.teacher_features(inputs)
        return self._teacher.logit_scale.float() * \
            features @ text_features.t().to(features.dtype)

    def extract_feat(
        self, inputs: torch.Tensor, stage: str = 'student'
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """Image features as mmpretrain extracts them: the student's for
        'student' (inference), (teacher's, student's) for 'distill'."""
        if stage not in ('student', 'distill'):
            raise ValueError(
                f"stage must be 'student' or 'distill', got {stage!r}")
        student = self.student_features(inputs)
        if stage == 'student':
            return student
        return self.teacher_features(inputs), student

    def _require_teacher(self) -> nn.Module:
        """The teacher, which must be there and trained."""
        if self._teacher is None:
            raise RuntimeError('training needs a teacher (this model was '
                               'built with teacher=None)')
        check_trained_teacher(self._teacher, self.allow_untrained_teacher,
                              'distillation')
        return self._teacher

    def forward(
        self, inputs: torch.Tensor,
        data_samples: Optional[List[DataSample]] = None, mode: str = 'tensor'
    ) -> Union[Dict[str, torch.Tensor], List[DataSample], torch.Tensor]:
        """Losses ('loss'), scored DataSamples ('predict') or student logits
        ('tensor'); 'loss' reads only the samples' cached
        ``teacher_logits``, never labels."""
        # CNN students have no image_size: they take any size.
        return dispatch_forward(self, inputs, data_samples, mode,
                                getattr(self.student, 'image_size', None),
                                self.student_logits)

    def loss(self, inputs: torch.Tensor,
             data_samples: Optional[List[DataSample]] = None
             ) -> Dict[str, torch.Tensor]:
        """``{'loss_kd': loss}`` of an unlabeled batch; cached
        ``teacher_logits`` in the samples replace running the teacher."""
        if self.distill_target == 'features':
            if cached_teacher_logits(data_samples) is not None:
                raise ValueError('a teacher cache holds logits: it cannot '
                                 "train distill_target='features'")
            teacher = self.teacher_features(inputs)
            student = self.student_features(inputs)
        else:
            text, names = self._text(True)
            cached = cached_teacher_logits(data_samples,
                                           (len(inputs), len(text)))
            teacher = self.teacher_logits(inputs, text, names) \
                if cached is None else cached.to(inputs.device,
                                                 self._feature_dtype)
            student = self.student_logits(inputs, for_training=True)
        return dict(loss_kd=self.distill_loss(student, teacher))

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None
                ) -> List[DataSample]:
        """Student ``pred_score``/``pred_label`` over all classes (and the
        teacher's ``teacher_score`` with ``predict_teacher``)."""
        samples = logits_to_data_samples(
            self.student_logits(inputs), data_samples)
        if self.predict_teacher and self._teacher is not None:
            teacher = self.teacher_logits(inputs,
                                          *self._text(False)).softmax(-1)
            for sample, score in zip(samples, teacher):
                sample.set_field(score, 'teacher_score')
        return samples


#: Buffers of JSON bytes, whose length is the stored one.
VARIABLE_LENGTH = ('class_names_utf8', 'text_provenance_utf8')


def prepare_distiller_load(model: nn.Module, state_dict: dict, prefix: str,
                           *load_args) -> None:
    """Load pre-hook: check a distiller's state dict and make ``model``
    ready to load it (mmengine's ``strict=False`` would only warn)."""
    if any(k.startswith(prefix + 'prompted_clip.') for k in state_dict):
        raise CheckpointMismatchError(
            'the checkpoint is a stage-(a) teacher checkpoint (its keys '
            "start with 'prompted_clip.'), not one of a distiller: give "
            'it as the teacher, --cfg-options '
            'model.teacher.checkpoint=PATH. Nothing was loaded.')
    own = {prefix + k: v for k, v in model.state_dict().items()}
    required = [prefix + name for name in model.trainable_parameters()]
    if model.projector is not None:
        required += [f'{prefix}projector.{name}'
                     for name, _ in model.projector.named_buffers()]
    names = state_dict.get(prefix + 'class_names_utf8')
    features = state_dict.get(prefix + 'text_features')
    if features is not None or names is not None:
        # Stored features come with their class names, one row each.
        required += [prefix + 'text_features', prefix + 'class_names_utf8']
        try:
            count = len(decode_class_names(names))
        except CheckpointMismatchError as e:
            raise CheckpointMismatchError(
                f'the checkpoint: {e}. Nothing was loaded.') from e
        width = own[prefix + 'text_features'].shape[1]
        if width == 0 and features is not None:
            # No teacher and no projector (a student with its own text
            # features, exported): the stored teacher features' width.
            width = features.shape[1]
        own[prefix + 'text_features'] = torch.empty(count, width)
    # Variable-length JSON bytes: the stored length is the right one.
    for name in VARIABLE_LENGTH:
        if state_dict.get(prefix + name) is not None:
            own[prefix + name] = state_dict[prefix + name]
    check_state_dict(
        own, {k: v for k, v in state_dict.items() if k.startswith(prefix)},
        None, required=required, model=f'this {type(model).__name__}')
    for name in ('text_features', ) + VARIABLE_LENGTH:
        stored = state_dict.get(prefix + name)
        buffer = getattr(model, name)
        if stored is not None and stored.shape != buffer.shape:
            setattr(model, name, buffer.new_empty(stored.shape))
    # Training checkpoints leave out the frozen weights: they come from the
    # config (the loaders that read the meta check their fingerprint).
    fill_frozen_weights(model, state_dict, prefix)
