"""Cost of a teacher ensemble: training-step time and teacher memory.

A single prompted teacher, and ensembles of it with one and two zero-shot
members of the same architecture (random weights), distil the same student
on the same batch, online and from the members' caches (the samples carry
logits mixed per image as ``TeacherCachedDataset`` mixes them, timed inside
the step; no teacher is needed); their steps are timed interleaved in one
run (so that load drifts hit all alike) and their frozen teachers'
parameter memory is counted. Example::

    python -m benchmarks teacher_ensemble_cost --arch base --batch-size 8

Prints a table (median step ms, ratio to the single teacher, teacher
parameter MiB) and writes it as JSON with ``--out-json``.
"""
import argparse
import copy
import json
from typing import Optional, Sequence

import torch
from mmpretrain.structures import DataSample

from benchmarks.common import (ARCHS, build_distiller, class_names,
                               distiller_cfg, make_optimizer, make_step,
                               print_table, set_classes, time_interleaved)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--arch', choices=ARCHS, default='tiny',
                        help='model sizes (see benchmarks/common.py)')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--classes', type=int, default=100)
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out-json', help='write the figures here')
    return parser.parse_args(argv)


def ensemble_cfg(cfg: dict, members: int) -> dict:
    """``cfg`` with its teacher as the first of ``members`` members; the
    others are zero-shot copies of its architecture."""
    teacher = cfg['teacher']
    zero_shot = dict(type='PromptedCLIP', clip=copy.deepcopy(teacher['clip']))
    return dict(
        copy.deepcopy(cfg),
        teacher=dict(
            type='TeacherEnsemble',
            weighting='confidence',
            members=[dict(teacher=copy.deepcopy(teacher))] +
            [dict(teacher=copy.deepcopy(zero_shot))
             for _ in range(members - 1)]))


def from_caches(model, inputs: torch.Tensor, members: int):
    """A step on cached member logits, mixed per image in the step."""
    from mmpromptkd.models.distillers.teacher_ensemble import \
        EnsembleCombination
    combination = EnsembleCombination.from_config(
        [dict(teacher={}) for _ in range(members)], weighting='confidence')
    with torch.no_grad():
        logits = model.teacher_logits(inputs, model.text_features)
    # Stand-ins for the members' recorded logits (the mix costs the same).
    recorded = [logits + 0.5 * i for i in range(members)]
    samples = [DataSample() for _ in range(len(inputs))]
    step = make_step(model, make_optimizer(model), inputs,
                     data_samples=samples)
    tau = float(model.distill_loss.tau)

    def run() -> torch.Tensor:
        for b, sample in enumerate(samples):
            sample.set_field(
                combination.combine([z[b:b + 1] for z in recorded], tau)[0],
                'teacher_logits')
        return step()

    return run


def teacher_mib(model) -> float:
    """MiB of the frozen teacher's parameters."""
    return sum(p.numel() * p.element_size()
               for p in model.teacher.parameters()) / 2**20


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Time and measure the variants, print the table."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    single = distiller_cfg(args.arch)
    variants = {
        'single teacher': single,
        'ensemble of 2': ensemble_cfg(single, 2),
        'ensemble of 3': ensemble_cfg(single, 3),
    }
    names = class_names(args.classes)
    models, fns = {}, {}
    for label, cfg in variants.items():
        model = build_distiller(cfg, device, args.seed)
        set_classes(model, names)
        models[label] = model
    gen = torch.Generator().manual_seed(args.seed)
    size = tuple(models['single teacher'].student.image_size)
    inputs = torch.randn((args.batch_size, 3) + size,
                         generator=gen).to(device)
    for label, model in models.items():
        step = make_step(model, make_optimizer(model), inputs)
        fns[label] = step
    cached = {f'ensemble of {m}, from caches': m for m in (2, 3)}
    for label, members in cached.items():
        fns[label] = from_caches(models['single teacher'], inputs, members)
    stats = time_interleaved(fns, args.iters, args.warmup, device)
    base = stats['single teacher']['median_ms']
    figures, rows = {}, []
    for label in fns:
        model = models.get(label)
        fig = dict(stats[label], ratio=stats[label]['median_ms'] / base,
                   teacher_mib=0.0 if model is None else teacher_mib(model))
        figures[label] = fig
        rows.append([label, fig['median_ms'], f'{fig["ratio"]:.2f}x',
                     fig['teacher_mib']])
    print_table(
        'Teacher ensembles: training step and teacher memory',
        ['teacher', 'step ms (median)', 'ratio', 'teacher MiB'], rows, [
            f'arch {args.arch}, batch {args.batch_size}, {args.classes} '
            f'classes, {args.iters} interleaved steps after {args.warmup} '
            f'warm-up, device {args.device}, torch threads '
            f'{torch.get_num_threads()}',
            'members after the first: zero-shot copies of its architecture '
            '(random weights); forward + backward + SGD step, teachers '
            'frozen'
        ])
    if args.out_json:
        with open(args.out_json, 'x') as f:
            json.dump(dict(args=vars(args), figures=figures), f, indent=2)


if __name__ == '__main__':
    main()
