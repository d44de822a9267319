"""The class names and teacher text features a distiller classifies with."""
import json
from typing import Optional, Sequence, Tuple

import torch
from mmengine.logging import MMLogger

from mmpromptkd.utils.class_name_keys import (normalize_class_name,
                                              repeated_class_names)
from mmpromptkd.utils.differences import first_difference
from mmpromptkd.utils.state_dict_check import CheckpointMismatchError
from ..clip.class_prompts import encode_class_names
from ..utils.teacher_provenance import (check_recorded_teacher,
                                        check_trained_teacher,
                                        describe_classes, same_teacher,
                                        teacher_record, untrained_reason)


class ClassTextTable:
    """The class names and teacher text features, a mixin of
    :class:`PromptKDDistiller`; names and the teacher record are stored as
    UTF-8 JSON bytes so that checkpoints stay tensor-only."""

    def _init_class_text_table(self, text_dim: int,
                               text_batch_size: int) -> None:
        """Register the empty table."""
        self.text_batch_size = text_batch_size
        self.register_buffer('text_features', torch.zeros(0, text_dim))
        for name in ('class_names_utf8', 'text_provenance_utf8'):
            self.register_buffer(name, torch.zeros(0, dtype=torch.uint8))
        self._teacher_identity: Optional[dict] = None
        self._eval_features: Optional[torch.Tensor] = None
        self._eval_class_names: Optional[Tuple[str, ...]] = None

    @property
    def class_names(self) -> Tuple[str, ...]:
        """tuple[str]: Class names of the stored text features."""
        return decode_class_names(self.class_names_utf8)

    @class_names.setter
    def class_names(self, names: Sequence[str]) -> None:
        self.class_names_utf8 = _encode_json(list(names),
                                             self.class_names_utf8.device)

    @property
    def text_features_teacher(self) -> Optional[dict]:
        """dict or None: The record of the stored features' teacher."""
        return _decode_json(
            self.text_provenance_utf8, 'text_provenance_utf8',
            'the record of the teacher of the stored text features',
            lambda v: isinstance(v, dict), 'a JSON object')

    @text_features_teacher.setter
    def text_features_teacher(self, record: Optional[dict]) -> None:
        self.text_provenance_utf8 = torch.zeros(
            0, dtype=torch.uint8) if record is None else _encode_json(
                record, self.text_provenance_utf8.device)

    def teacher_identity(self) -> Optional[dict]:
        """The record of this model's teacher (None without one)."""
        # Computed once: the teacher's text tower may be released later.
        if self._teacher is None:
            return None
        if self._teacher_identity is None:
            self._teacher_identity = teacher_record(self._teacher)
        return self._teacher_identity

    def check_text_features_teacher(self) -> None:
        """Refuse stored text features another teacher made."""
        if not len(self.text_features) or self._teacher is None:
            return
        try:
            same_teacher(self.text_features_teacher, self.teacher_identity(),
                         'the stored text features')
        except CheckpointMismatchError as e:
            if not (self.allow_untrained_teacher
                    and untrained_reason(self._teacher)):
                raise
            MMLogger.get_current_instance().warning(
                f'{e} (allowed: the teacher is untrained and '
                'allow_untrained_teacher=True)')

    @torch.no_grad()
    def compute_text_features(self,
                              class_names: Sequence[str]) -> torch.Tensor:
        """Normalised float teacher text features (C, D) of class names."""
        if self._teacher_has_text:
            check_trained_teacher(self._teacher,
                                  self.allow_untrained_teacher,
                                  'encoding class names')
            source = self._teacher
        elif self.text_encoder is not None:
            source = self.text_encoder
        else:
            raise RuntimeError(
                'text features of new class names need the teacher or its '
                'text encoder (export_student(..., with_text_encoder=True))')
        return encode_class_names(source, class_names, self.text_batch_size)

    @property
    def can_encode_text(self) -> bool:
        """bool: Whether new class names can be encoded."""
        return self._teacher_has_text or self.text_encoder is not None

    @property
    def _teacher_has_text(self) -> bool:
        """Whether there is a teacher with a text tower."""
        return self._teacher is not None and getattr(
            self._teacher, 'has_text_tower', True)

    @staticmethod
    def _check_new_names(names: Sequence[str]) -> Tuple[str, ...]:
        """Checked, normalised class names."""
        names = tuple(names)
        if not names:
            raise ValueError('the class list is empty')
        bad = [n for n in names
               if not isinstance(n, str) or not normalize_class_name(n)]
        if bad:
            raise ValueError(
                f'class names must be non-empty strings, got {bad!r}')
        repeated = repeated_class_names(names)
        if repeated:
            raise ValueError(
                f'{[[names[i] for i in at] for at in repeated.values()]} '
                'appear more than once (names CLIP reads alike are one '
                'class)')
        return tuple(normalize_class_name(n) for n in names)

    def set_class_names(self, class_names: Sequence[str]) -> None:
        """Replace the stored classes by ``class_names``, encoded anew."""
        self._store_encoded(self._check_new_names(class_names))
        self._eval_features = self._eval_class_names = None

    def _store_encoded(self, names: Tuple[str, ...]) -> None:
        """Store the classes ``names`` with features encoded now."""
        self.text_features = self.compute_text_features(names).to(
            self.text_features.device)
        self.class_names = names
        if self._teacher_has_text:
            self.text_features_teacher = self.teacher_identity()

    def select_classes(self, class_names: Sequence[str]) -> None:
        """Classify over ``class_names``; only new names are encoded."""
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
            self.check_text_features_teacher()
            table = torch.cat([table, self.compute_text_features(new).to(
                table.device, table.dtype)])
        order = list(stored) + new
        rows = torch.as_tensor([order.index(n) for n in names],
                               device=table.device)
        self.text_features = table[rows]
        self.class_names = names
        self._eval_features = self._eval_class_names = None

    def add_classes(self, class_names: Sequence[str]) -> None:
        """Append ``class_names``, none stored yet, to the stored classes."""
        names = self._check_new_names(class_names)
        known = sorted(set(names) & set(self.class_names))
        if known:
            raise ValueError(f'{known} are stored classes already')
        self.select_classes(self.class_names + names)

    def prepare_text_features(
            self, class_names: Sequence[str], for_training: bool,
            dataset_name: str = 'the dataset',
            class_indices: Optional[Sequence[int]] = None) -> None:
        """Make the text features of ``class_names`` ready; evaluation on
        other classes uses temporary features, never saved.

        Args:
            class_names (Sequence[str]): The dataset's classes, in order.
            for_training (bool): Whether the features define training.
            dataset_name (str): Dataset name for messages.
            class_indices (Sequence[int], optional): Index of each class in
                the stored class list, for a subset of it.
        """
        names = tuple(class_names)
        logger = MMLogger.get_current_instance()
        self._eval_features = self._eval_class_names = None
        if names == self.class_names and len(self.text_features):
            if for_training:
                self.check_text_features_teacher()
            return
        if len(self.text_features) == 0:
            if not self.can_encode_text:
                raise ValueError(
                    f'no stored text features and no teacher: cannot '
                    f'classify the {len(names)} classes of {dataset_name}')
            self._store_encoded(names)
            logger.info(f'Stored teacher text features of {len(names)} '
                        f'classes of {dataset_name}')
            other_classes = describe_classes(self.text_features_teacher,
                                             names)
            if other_classes:
                logger.warning(other_classes)
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
        mismatch = first_difference(
            [f'"{c}"' for c in self.class_names], [f'"{c}"' for c in names],
            [f'label {i}' for i in range(len(names))], ('stored', 'given'))
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
        self.check_text_features_teacher()
        self._eval_features = self.compute_text_features(names).to(
            self.text_features.device)
        self._eval_class_names = names
        logger.info(f'Evaluating on {len(names)} classes of {dataset_name} '
                    f'with teacher text features computed for them '
                    f'({mismatch})')

    def _text(self, for_training: bool) -> Tuple[torch.Tensor, tuple]:
        """Text features and class names for training or evaluation."""
        text, names = (self.text_features, self.class_names) \
            if for_training or self._eval_features is None \
            else (self._eval_features, self._eval_class_names)
        if len(text) == 0:
            raise RuntimeError(
                'text features are not prepared: add PromptKDTextFeaturesHook '
                'to custom_hooks or call prepare_text_features()')
        return text, names

    def use_cached_text_features(self, class_names: Sequence[str],
                                 features: torch.Tensor,
                                 source: str = 'the teacher cache',
                                 teacher: Optional[dict] = None) -> None:
        """Store the (C, D) text features of ``class_names`` a teacher
        cache (``source``, with the ``teacher`` record) was recorded with;
        refuse other stored features."""
        check_recorded_teacher(teacher, self.allow_untrained_teacher, source)
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
            self.text_features_teacher = teacher
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
def _encode_json(value, device) -> torch.Tensor:
    """``value`` as UTF-8 JSON bytes in a uint8 tensor."""
    data = json.dumps(value).encode('utf-8')
    return torch.tensor(list(data), dtype=torch.uint8, device=device)


def _decode_json(data: Optional[torch.Tensor], key: str, what: str, valid,
                 kind: str):
    """The JSON value in a uint8 tensor, which must be ``valid`` (a
    ``kind``); None for an empty one."""
    if data is None or len(data) == 0:
        return None
    try:
        if data.dtype != torch.uint8 or data.dim() != 1:
            raise ValueError(f'a {data.dtype} tensor of shape '
                             f'{tuple(data.shape)}, not 1-D uint8')
        value = json.loads(bytes(data.tolist()).decode('utf-8'))
        if not valid(value):
            raise ValueError(f'not {kind}')
        return value
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError too
        raise CheckpointMismatchError(
            f'{key} does not hold {what} as UTF-8 JSON ({e})') from e


def decode_class_names(data: Optional[torch.Tensor]) -> Tuple[str, ...]:
    """Class names from their UTF-8 JSON bytes (``class_names_utf8``)."""
    names = _decode_json(
        data, 'class_names_utf8', 'the class names of the stored text '
        'features', lambda v: isinstance(v, list) and all(
            isinstance(n, str) for n in v), 'a JSON list of strings')
    return () if names is None else tuple(names)


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
