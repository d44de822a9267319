"""Whether a teacher's prompts were trained, and a record of the teacher.

A prompted teacher built without ``checkpoint=`` has random prompts: its
logits and text features are not the method's teacher. Distilling from it,
recording a cache of it or exporting its text tower is refused unless the
config says so (``PromptKDDistiller(allow_untrained_teacher=True)``). A
teacher without prompts (zero-shot CLIP) needs no checkpoint.
"""
from typing import List, Optional

from torch import nn

from ..utils.frozen_weights import frozen_weights_record

__all__ = [
    'UntrainedTeacherError', 'check_trained_teacher', 'teacher_record',
    'untrained_prompts'
]


class UntrainedTeacherError(ValueError):
    """A prompted teacher whose prompts were never trained would be used."""


def untrained_prompts(teacher: nn.Module) -> List[str]:
    """The teacher's prompt parameters, when none was loaded from a file.

    Args:
        teacher (nn.Module): A :class:`PromptedCLIP` or a stage-(a)
            classifier (both declare ``prompt_checkpoint``); its CLIP
            weights are the parameters under a ``clip`` module, everything
            else is a prompt (or a prompt map).

    Returns:
        list[str]: Names of the prompt parameters if the teacher loaded no
        ``checkpoint``, else an empty list.
    """
    if teacher.prompt_checkpoint is not None:
        return []
    return [
        name for name, _ in teacher.named_parameters()
        if 'clip' not in name.split('.')
    ]


def check_trained_teacher(teacher: Optional[nn.Module], allowed: bool,
                          action: str) -> None:
    """Refuse a teacher with untrained prompts, unless ``allowed``.

    Args:
        teacher (nn.Module, optional): The teacher (None: nothing to check).
        allowed (bool): ``allow_untrained_teacher`` of the distiller.
        action (str): What would use it, for the message.

    Raises:
        UntrainedTeacherError: Naming the prompts and both ways out.
    """
    if teacher is None or allowed:
        return
    names = untrained_prompts(teacher)
    if names:
        raise UntrainedTeacherError(
            f'{action} needs a trained teacher, but the teacher\'s '
            f'{len(names)} prompt tensor(s) ({names[0]}, ...) were never '
            'trained: set model.teacher.checkpoint to its stage-(a) '
            'checkpoint (tools/train.py on a configs/promptsrc config, or '
            'a converted official teacher), or set '
            'model.allow_untrained_teacher=True to use random prompts on '
            'purpose')


def teacher_record(teacher: Optional[nn.Module]) -> Optional[dict]:
    """What a cache or an export records of the teacher it came from.

    Args:
        teacher (nn.Module, optional): The teacher.

    Returns:
        dict or None: ``checkpoint`` (the prompt file, or None),
        ``trained_prompts`` and the SHA-256 fingerprint of all its weights
        (``sha256``, ``tensors``, ``elements``), or None without a teacher.
    """
    if teacher is None:
        return None
    # The teacher is frozen: its fingerprint covers prompts and CLIP.
    return dict(
        checkpoint=teacher.prompt_checkpoint,
        trained_prompts=not untrained_prompts(teacher),
        **frozen_weights_record(teacher))
