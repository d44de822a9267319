"""The input normalisation a model gets, and checks that it is its own."""
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

#: Largest difference on the 0-255 scale still taken as the same value
#: (configs write e.g. 0.48145466 * 255 with fewer digits).
_TOLERANCE = 0.05


def preprocessor_normalization(
        data_preprocessor: nn.Module) -> Tuple[torch.Tensor, torch.Tensor]:
    """The (3,) mean and std (0-255) an image data preprocessor normalises
    with; 0 and 1 where it does not normalise."""
    if getattr(data_preprocessor, '_enable_normalize', False):
        return (data_preprocessor.mean.detach().flatten().float().cpu(),
                data_preprocessor.std.detach().flatten().float().cpu())
    return torch.zeros(3), torch.ones(3)


def _parse_teacher_normalization(
        normalization: dict) -> Tuple[torch.Tensor, torch.Tensor]:
    """``mean`` and ``std`` of a ``teacher_normalization`` setting."""
    if not isinstance(normalization, dict) or \
            set(normalization) != {'mean', 'std'}:
        raise ValueError('teacher_normalization must be dict(mean=[...],'
                         f' std=[...]), got {normalization!r}')
    mean, std = (torch.tensor([float(v) for v in normalization[k]])
                 for k in ('mean', 'std'))
    if mean.shape != (3, ) or std.shape != (3, ) or \
            not bool((std > 0).all()):
        raise ValueError('teacher_normalization: mean and std need 3 '
                         f'values each, std > 0; got {normalization!r}')
    return mean, std


def teacher_input_normalization(data_preprocessor: nn.Module,
                                normalization: Optional[dict]) -> dict:
    """``dict(mean, std)`` (0-255, 4 decimals) the teacher's images get,
    from the ``teacher_normalization`` or else the data preprocessor."""
    values = preprocessor_normalization(data_preprocessor) \
        if normalization is None else \
        _parse_teacher_normalization(normalization)
    return {key: [round(float(v), 4) for v in value]
            for key, value in zip(('mean', 'std'), values)}


def same_normalization(a: dict, b: dict) -> bool:
    """Whether two ``dict(mean, std)`` (0-255 scale) agree to rounding."""
    return all(
        len(a[k]) == len(b[k]) and all(
            abs(float(x) - float(y)) <= _TOLERANCE
            for x, y in zip(a[k], b[k])) for k in ('mean', 'std'))


def check_input_normalization(expected: Optional[Sequence[Sequence[float]]],
                              mean: Sequence[float], std: Sequence[float],
                              model: str, setting: str) -> None:
    """Refuse images normalised otherwise than a model's weights expect
    (a CLIP would give worse numbers, not an error).

    Args:
        expected (Sequence, optional): ``(mean, std)`` (0-1) the weights
            were trained with; None (unknown) passes.
        mean (Sequence[float]): The mean the model gets (0-255).
        std (Sequence[float]): The std the model gets (0-255).
        model (str): The model, for the message (e.g. 'model.student').
        setting (str): The config setting that fixes it.
    """
    if expected is None:
        return
    want = [[round(255 * v, 4) for v in values] for values in expected]
    got = [[round(float(v), 4) for v in values] for values in (mean, std)]
    if same_normalization(dict(mean=want[0], std=want[1]),
                          dict(mean=got[0], std=got[1])):
        return
    raise ValueError(
        f'{model}: its weights were trained on images normalised with '
        f'mean={want[0]} std={want[1]} (0-255 scale) but it would get '
        f'mean={got[0]} std={got[1]}; set {setting}=dict(mean={want[0]}, '
        f'std={want[1]})')


def teacher_input_map(
        data_preprocessor: nn.Module, student: nn.Module,
        teacher: Optional[nn.Module], normalization: Optional[dict]
) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    """``(scale, shift)`` (1, 3, 1, 1) with ``teacher_input = input *
    scale + shift`` (None: alike), after checking both models against their
    ``input_normalization``.

    Args:
        data_preprocessor (nn.Module): The distiller's data preprocessor.
        student (nn.Module): The student.
        teacher (nn.Module, optional): The teacher.
        normalization (dict, optional): The teacher's
            ``dict(mean=..., std=...)`` (0-255); None: the preprocessor's.
    """
    mean, std = preprocessor_normalization(data_preprocessor)
    check_input_normalization(getattr(student, 'input_normalization', None),
                              mean, std, 'model.student',
                              'model.data_preprocessor')
    teacher_mean, teacher_std = (mean, std) if normalization is None else \
        _parse_teacher_normalization(normalization)
    if teacher is not None:
        check_input_normalization(
            getattr(teacher, 'input_normalization', None), teacher_mean,
            teacher_std, 'model.teacher', 'model.teacher_normalization')
    # teacher input = (x * std + mean - teacher_mean) / teacher_std
    scale = std / teacher_std
    shift = (mean - teacher_mean) / teacher_std
    if bool((scale == 1).all() and (shift == 0).all()):
        return None
    return scale.view(1, 3, 1, 1), shift.view(1, 3, 1, 1)


def teacher_view(inputs: torch.Tensor, image_size: Sequence[int],
                 input_map: Optional[Tuple[torch.Tensor, torch.Tensor]]
                 ) -> torch.Tensor:
    """The student's images mapped by ``input_map`` (see
    :func:`teacher_input_map`) and resized (bicubic) to the teacher's."""
    if input_map is not None:
        scale, shift = (t.to(inputs) for t in input_map)
        inputs = inputs * scale + shift
    if tuple(inputs.shape[-2:]) != tuple(image_size):
        inputs = torch.nn.functional.interpolate(
            inputs, size=tuple(image_size), mode='bicubic',
            align_corners=False)
    return inputs
