"""Cost of a teacher ensemble: training-step time and teacher memory.

See docs/teacher_ensembles.md ("Cost")."""
import copy
from typing import Optional, Sequence

import torch
from mmpretrain.structures import DataSample

from benchmarks.common import (arg_parser, build_distiller, class_names,
                               distiller_cfg, make_optimizer, make_step,
                               print_table, random_images, set_classes,
                               time_interleaved, write_json)


def ensemble_cfg(cfg: dict, members: int) -> dict:
    """``cfg`` with an ensemble: its teacher and zero-shot copies."""
    teacher = cfg['teacher']
    zero_shot = dict(type='PromptedCLIP', clip=teacher['clip'])
    return dict(cfg, teacher=dict(
        type='TeacherEnsemble', weighting='confidence',
        members=[dict(teacher=copy.deepcopy(t)) for t in
                 [teacher] + [zero_shot] * (members - 1)]))


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


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Time and measure the variants, print the table."""
    parser = arg_parser(__doc__, arch='tiny', batch_size=8, classes=100,
                        iters=5, warmup=1, device='cpu', threads=None, seed=0)
    parser.add_argument('--out-json', help='write the figures here')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    single = distiller_cfg(args.arch)
    models = {'single teacher': single, 'ensemble of 2': ensemble_cfg(
        single, 2), 'ensemble of 3': ensemble_cfg(single, 3)}
    for label, cfg in models.items():
        models[label] = build_distiller(cfg, device, args.seed)
        set_classes(models[label], class_names(args.classes))
    inputs = random_images(args.batch_size,
                           models['single teacher'].student.image_size,
                           args.seed, device)
    fns = {label: make_step(model, make_optimizer(model), inputs)
           for label, model in models.items()}
    for members in (2, 3):
        fns[f'ensemble of {members}, from caches'] = from_caches(
            models['single teacher'], inputs, members)
    stats = time_interleaved(fns, args.iters, args.warmup, device)
    figures, rows = {}, []
    for label, fig in stats.items():
        model = models.get(label)
        figures[label] = fig = dict(
            fig, ratio=fig['median_ms'] /
            stats['single teacher']['median_ms'],
            # MiB of the frozen teacher's parameters.
            teacher_mib=0.0 if model is None else sum(
                p.numel() * p.element_size()
                for p in model.teacher.parameters()) / 2**20)
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
    write_json(args.out_json, dict(args=vars(args), figures=figures),
               overwrite=False)
