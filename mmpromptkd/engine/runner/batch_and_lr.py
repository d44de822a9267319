"""What batch a run trains with and at what lr: a config names the batch of
one process (``1xb8``); 8 processes train with a batch of 64 at the lr set
for 8 unless ``--auto-scale-lr`` scales it."""
from typing import Mapping, Optional, Sequence, Tuple


def _plural(count: int, word: str) -> str:
    if count == 1:
        return f'{count} {word}'
    return f'{count} {word}es' if word.endswith('s') else f'{count} {word}s'


def describe_batch_and_lr(
        batch_size: int, world_size: int, lrs: Sequence[float],
        auto_scale_lr: Optional[Mapping] = None,
        accumulative_counts: int = 1) -> Tuple[str, Optional[str]]:
    """The effective batch and learning rate of a run, and what is amiss.

    Args:
        batch_size (int): ``train_dataloader.batch_size``.
        world_size (int): Number of training processes.
        lrs (Sequence[float]): The parameter groups' lrs, after any scaling.
        auto_scale_lr (Mapping, optional): The config's ``auto_scale_lr``.
        accumulative_counts (int): ``optim_wrapper.accumulative_counts``.

    Returns:
        tuple: The statement (one line) and a warning, or None.
    """
    step_batch = batch_size * world_size
    total = step_batch * accumulative_counts
    distinct = sorted(set(lrs))
    shown = ', '.join(f'{lr:g}' for lr in distinct)
    lr_text = f'lr {shown}' if len(distinct) == 1 else \
        f'lr {shown} (parameter groups)'
    settings = auto_scale_lr or {}
    base = settings.get('base_batch_size')
    enabled = bool(settings.get('enable', False))
    statement = (
        f'Effective batch {total} = {batch_size} per process x '
        f'{_plural(world_size, "process")} x '
        f'{_plural(accumulative_counts, "accumulation step")}; {lr_text}')
    if base is None:
        statement += (' (the config sets no auto_scale_lr.base_batch_size: '
                      'the lr is not scaled)')
    elif enabled:
        statement += (f' (--auto-scale-lr: the config\'s lr for a batch of '
                      f'{base}, times {step_batch}/{base})')
    else:
        statement += (f' (the config\'s, set for a batch of {base}; not '
                      'scaled)')

    warning = None
    if base is not None and not enabled and total != base:
        scaled = ', '.join(f'{lr * step_batch / base:g}' for lr in distinct)
        warning = (
            f'the effective batch {total} differs from '
            f'auto_scale_lr.base_batch_size={base}, the batch the config\'s '
            f'lr is set for, and the lr is not scaled: pass --auto-scale-lr '
            f'to scale it linearly (lr {scaled}), or train with a total '
            f'batch of {base} (train_dataloader.batch_size x processes)')
    if base is not None and accumulative_counts > 1 and \
            (enabled or warning is not None):
        note = (f'auto_scale_lr scales by the batch of one step '
                f'({step_batch}), not counting the {accumulative_counts} '
                'accumulation steps: give base_batch_size divided by them')
        warning = note if warning is None else f'{warning}; {note}'
    return statement, warning
