"""A teacher's identity: where its prompts come from, whether they were
trained (loaded from a stage-(a) checkpoint saved after an optimizer step,
not all zero), and the record of it that every artifact carries."""
import hashlib
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from mmpromptkd.utils.state_dict_check import CheckpointMismatchError
from .frozen_weights import (FROZEN_WEIGHTS_META, check_frozen_weights,
                             tensors_record)


class UntrainedTeacherError(ValueError):
    """A prompted teacher whose prompts were never trained would be used."""


@dataclass(frozen=True)
class PromptSource:
    """The stage-(a) file a model's prompts were loaded from.

    Attributes:
        checkpoint (str): The file.
        iter (int, optional): Its ``meta.iter``.
        classes (tuple[str], optional): Its ``meta.dataset_meta.classes``.
        untrained (str, optional): Why its prompts are not trained ones.
    """
    checkpoint: str
    iter: Optional[int] = None
    classes: Optional[Tuple[str, ...]] = None
    untrained: Optional[str] = None


def _prompts(model: nn.Module,
             in_clip: bool = False) -> Dict[str, torch.Tensor]:
    """A teacher's parameters outside (prompts, maps) or in its ``clip``."""
    return {n: p for n, p in model.named_parameters()
            if ('clip' in n.split('.')) == in_clip}


def prompt_source(model: nn.Module, path: str, meta: dict,
                  holds_clip_weights: bool) -> PromptSource:
    """What stage-(a) file ``path`` (with ``meta``) records; a file without
    CLIP weights must have been trained on the model's frozen CLIP."""
    if not holds_clip_weights:
        check_frozen_weights(model, meta.get(FROZEN_WEIGHTS_META), path)
    step = meta.get('iter')
    classes = (meta.get('dataset_meta') or {}).get('classes')
    valid = isinstance(classes, (list, tuple)) and all(
        isinstance(c, str) for c in classes)
    return PromptSource(path, step if isinstance(step, int) else None,
                        tuple(classes) if valid else None)


def settle(model: nn.Module, source: PromptSource) -> PromptSource:
    """``source`` with ``untrained`` set where the file was saved before
    the first optimizer step or the prompts just loaded are all zero."""
    reason = None
    prompts = _prompts(model)
    if source.iter == 0:
        reason = (f'{source.checkpoint} was saved before the first optimizer '
                  'step (meta.iter = 0)')
    elif prompts and all(not p.detach().any() for p in prompts.values()):
        reason = (f'{source.checkpoint} holds prompt tensors that are all '
                  'zero')
    return replace(source, untrained=reason)


def untrained_reason(teacher: nn.Module) -> Optional[str]:
    """Why the teacher's prompts are not trained ones; None when it has
    none or trained ones."""
    members = getattr(teacher, 'members', None)
    if members is not None:  # an ensemble: its first untrained member
        for i, member in enumerate(members):
            reason = untrained_reason(member)
            if reason:
                return f'members[{i}]: {reason}'
        return None
    names: List[str] = list(_prompts(teacher))
    if not names:
        return None
    if teacher.prompt_source is None:
        return (f"the teacher's {len(names)} prompt tensor(s) ({names[0]}, "
                '...) were never trained')
    return teacher.prompt_source.untrained


_WAYS_OUT = ('set model.teacher.checkpoint to its stage-(a) checkpoint '
             '(tools/train.py on a configs/promptsrc config, or a converted '
             'official teacher), or set model.allow_untrained_teacher=True '
             'to use untrained prompts on purpose')


def check_trained_teacher(teacher: Optional[nn.Module], allowed: bool,
                          action: str) -> None:
    """Refuse a teacher with untrained prompts for ``action``, unless
    ``allowed`` (``allow_untrained_teacher``)."""
    if teacher is None or allowed:
        return
    reason = untrained_reason(teacher)
    if reason:
        raise UntrainedTeacherError(
            f'{action} needs a trained teacher, but {reason}: {_WAYS_OUT}')


def check_recorded_teacher(record: Optional[dict], allowed: bool,
                           source: str) -> None:
    """Refuse what ``source`` recorded from an untrained teacher (its
    :func:`teacher_record`), unless ``allowed``."""
    if allowed or not isinstance(record, dict):
        return
    if record.get('trained_prompts') is not True:
        raise UntrainedTeacherError(
            f'{source} was recorded from a teacher whose prompts were never '
            f'trained (trained_prompts: {record.get("trained_prompts")}): '
            'record it from a trained teacher, or set '
            'model.allow_untrained_teacher=True to use it on purpose')


def teacher_record(teacher: Optional[nn.Module]) -> Optional[dict]:
    """The teacher's identity, as caches, checkpoints and exports record it:
    ``type``, ``checkpoint``, ``iter``, ``classes``, ``trained_prompts``,
    SHA-256 fingerprints ``frozen_sha256``, ``prompts_sha256`` and ``sha256``
    (of both, which consumers compare), ``tensors`` and ``elements``."""
    if teacher is None:
        return None
    members = getattr(teacher, 'members', None)
    if members is not None:
        return ensemble_record(teacher.combination.record(),
                               [teacher_record(m) for m in members])
    source = getattr(teacher, 'prompt_source', None)
    frozen = tensors_record(_prompts(teacher, in_clip=True))
    prompts = tensors_record(_prompts(teacher))
    both = hashlib.sha256(
        f'{frozen["sha256"]}:{prompts["sha256"]}'.encode()).hexdigest()
    return dict(
        type=type(teacher).__name__,
        checkpoint=None if source is None else source.checkpoint,
        iter=None if source is None else source.iter,
        classes=None if source is None or source.classes is None else list(
            source.classes),
        trained_prompts=untrained_reason(teacher) is None,
        frozen_sha256=frozen['sha256'],
        prompts_sha256=prompts['sha256'],
        sha256=both,
        tensors=frozen['tensors'] + prompts['tensors'],
        elements=frozen['elements'] + prompts['elements'])


def ensemble_record(combination: dict, members: List[dict]) -> dict:
    """A teacher ensemble's record: its members' records and their mixing
    settings, fingerprinted together."""
    digest = hashlib.sha256(repr(sorted(combination.items())).encode())
    for member in members:
        digest.update(member['sha256'].encode())
    return dict(type='TeacherEnsemble', checkpoint=None, iter=None,
                classes=None,
                trained_prompts=all(m['trained_prompts'] for m in members),
                members=members, combination=combination,
                sha256=digest.hexdigest(),
                tensors=sum(m['tensors'] for m in members),
                elements=sum(m['elements'] for m in members))


def same_teacher(stored: Optional[dict], current: Optional[dict],
                 what: str, source: Optional[str] = None) -> None:
    """Refuse ``what`` (from ``source``) whose ``stored`` teacher record
    differs from the ``current`` one; either missing: nothing to compare."""
    if not stored or not current or stored.get('sha256') == current[
            'sha256']:
        return
    raise CheckpointMismatchError(
        f'{what} come from the teacher {_describe(stored)}, but this '
        f"model's teacher is {_describe(current)}: use the config of the "
        'teacher they were made with, or prepare them again with this '
        'teacher (a new run, without load_from)', source)


def _describe(record: dict) -> str:
    """A teacher record, for messages."""
    sha = record.get('sha256')
    return (f'{record.get("type")} from {record.get("checkpoint")} '
            f'(weights SHA-256 {str(sha)[:16]}...)')


def describe_classes(record: Optional[dict], names: Sequence[str]) -> str:
    """A log sentence when the recorded teacher was trained on classes
    outside ``names``, else ''."""
    classes = (record or {}).get('classes')
    if not classes:
        return ''
    outside = [c for c in classes if c not in set(names)]
    if not outside:
        return ''
    shared = len(classes) - len(outside)
    overlap = 'none of them' if shared == 0 else f'{shared} of them'
    return (f'The teacher ({record.get("checkpoint")}) was trained on '
            f'{len(classes)} classes ({", ".join(classes[:3])}, ...); '
            f'{overlap} among the {len(names)} classes here '
            '(cross-dataset distillation); recorded with its text features')
