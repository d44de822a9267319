"""A teacher's identity: where its prompts come from, whether they were
trained, and the one record of it that every artifact carries.

Prompts are trained when loaded from a stage-(a) checkpoint written after
at least one optimizer step, on the teacher's frozen CLIP weights, and not
all zero; using an untrained prompted teacher is refused unless
``allow_untrained_teacher=True``.
"""
import hashlib
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from mmpromptkd.utils.state_dict_check import CheckpointMismatchError
from .frozen_weights import (FROZEN_WEIGHTS_META, check_frozen_weights,
                             tensors_record)

__all__ = [
    'PromptSource', 'UntrainedTeacherError', 'check_recorded_teacher',
    'check_trained_teacher', 'describe_classes', 'prompt_source',
    'same_teacher', 'settle', 'teacher_record', 'untrained_reason'
]


class UntrainedTeacherError(ValueError):
    """A prompted teacher whose prompts were never trained would be used."""


@dataclass(frozen=True)
class PromptSource:
    """The stage-(a) file a model's prompts were loaded from.

    Attributes:
        checkpoint (str): The file.
        iter (int, optional): Training iterations it records (``meta.iter``;
            None for a bare state dict).
        classes (tuple[str], optional): The classes it was trained on
            (``meta.dataset_meta.classes``), if recorded.
        untrained (str, optional): Why its prompts are not trained ones;
            None when they are.
    """
    checkpoint: str
    iter: Optional[int] = None
    classes: Optional[Tuple[str, ...]] = None
    untrained: Optional[str] = None


def _prompts(model: nn.Module) -> Dict[str, torch.Tensor]:
    """A teacher's parameters outside its ``clip`` module (prompts, maps)."""
    return {
        name: param
        for name, param in model.named_parameters()
        if 'clip' not in name.split('.')
    }


def _frozen_clip(model: nn.Module) -> Dict[str, torch.Tensor]:
    """A teacher's parameters inside its ``clip`` module."""
    return {
        name: param
        for name, param in model.named_parameters()
        if 'clip' in name.split('.')
    }


def prompt_source(model: nn.Module, path: str, meta: dict,
                  holds_clip_weights: bool) -> PromptSource:
    """Check a stage-(a) file against the model about to load it: without
    CLIP weights it must have been trained on the model's frozen CLIP.

    Args:
        model (nn.Module): The model (its CLIP built, prompts initial).
        path (str): The file, for messages.
        meta (dict): The file's ``meta`` (empty for a bare state dict).
        holds_clip_weights (bool): Whether the file replaces the CLIP
            weights (then they need no fingerprint).

    Returns:
        PromptSource: What the file records.

    Raises:
        CheckpointMismatchError: If it was trained on other frozen weights.
    """
    if not holds_clip_weights:
        check_frozen_weights(model, meta.get(FROZEN_WEIGHTS_META), path)
    step = meta.get('iter')
    step = step if isinstance(step, int) else None
    classes = (meta.get('dataset_meta') or {}).get('classes')
    if not (isinstance(classes, (list, tuple))
            and all(isinstance(c, str) for c in classes)):
        classes = None
    return PromptSource(path, step, None if classes is None else
                        tuple(classes))


def settle(model: nn.Module, source: PromptSource) -> PromptSource:
    """``source``, with why the prompts just loaded are untrained, if so.

    Args:
        model (nn.Module): The model, after loading the file.
        source (PromptSource): From :func:`prompt_source`.

    Returns:
        PromptSource: ``source`` with ``untrained`` set where the file was
        saved before the first optimizer step or its prompts are all zero.
    """
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
    """Why the teacher's prompts are not trained ones, or None.

    Args:
        teacher (nn.Module): A :class:`PromptedCLIP` or a stage-(a)
            classifier (both declare ``prompt_source``).

    Returns:
        str or None: The reason, for messages; None when the teacher has
        no prompts or trained ones.
    """
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
    """Refuse a teacher with untrained prompts, unless ``allowed``.

    Args:
        teacher (nn.Module, optional): The teacher (None: nothing to check).
        allowed (bool): ``allow_untrained_teacher`` of the distiller.
        action (str): What would use it, for the message.

    Raises:
        UntrainedTeacherError: Naming why and both ways out.
    """
    if teacher is None or allowed:
        return
    reason = untrained_reason(teacher)
    if reason:
        raise UntrainedTeacherError(
            f'{action} needs a trained teacher, but {reason}: {_WAYS_OUT}')


def check_recorded_teacher(record: Optional[dict], allowed: bool,
                           source: str) -> None:
    """Refuse what an untrained teacher made, unless ``allowed``.

    Args:
        record (dict, optional): Its :func:`teacher_record`.
        allowed (bool): ``allow_untrained_teacher`` of the distiller.
        source (str): What holds the record, for the message.

    Raises:
        UntrainedTeacherError: If the record says the prompts were untrained.
    """
    if allowed or not isinstance(record, dict):
        return
    if record.get('trained_prompts') is not True:
        raise UntrainedTeacherError(
            f'{source} was recorded from a teacher whose prompts were never '
            f'trained (trained_prompts: {record.get("trained_prompts")}): '
            'record it from a trained teacher, or set '
            'model.allow_untrained_teacher=True to use it on purpose')


def teacher_record(teacher: Optional[nn.Module]) -> Optional[dict]:
    """The teacher's identity, as caches, checkpoints and exports record it.

    Args:
        teacher (nn.Module, optional): The teacher.

    Returns:
        dict or None: ``type``, ``checkpoint``, ``iter``, ``classes``,
        ``trained_prompts``, the SHA-256 fingerprints ``frozen_sha256``,
        ``prompts_sha256`` and ``sha256`` (of both, which consumers
        compare), ``tensors`` and ``elements``. None without a teacher.
    """
    if teacher is None:
        return None
    members = getattr(teacher, 'members', None)
    if members is not None:
        return ensemble_record(teacher.combination.record(),
                               [teacher_record(m) for m in members])
    source = getattr(teacher, 'prompt_source', None)
    frozen = tensors_record(_frozen_clip(teacher))
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
    """The record of a teacher ensemble: its members' records and how they
    are combined, fingerprinted together.

    Args:
        combination (dict): The mixing settings.
        members (list[dict]): The members' records, in order.

    Returns:
        dict: The ensemble's record.
    """
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
    """Refuse ``what`` made by another teacher than ``current``.

    Args:
        stored (dict, optional): The record kept with it (None or empty:
            not recorded, nothing to compare).
        current (dict, optional): The record of the teacher at hand (None:
            no teacher, nothing to compare).
        what (str): What was made, for the message.
        source (str, optional): The checkpoint it came with.

    Raises:
        CheckpointMismatchError: If the fingerprints differ.
    """
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
    """How a teacher's training classes relate to ``names``, or ''.

    Args:
        record (dict, optional): The teacher's record.
        names (Sequence[str]): The classes it is used on.

    Returns:
        str: A sentence for the log when the teacher was trained on classes
        outside ``names``, else ''.
    """
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
