"""Table, chart and Markdown of the synthetic base-to-novel benchmark.

Shared by ``synthetic_b2n.py`` and the studies built on it.
"""
import math
import os
import os.path as osp
import shlex
import statistics
from typing import Dict, List, Sequence, Tuple

from benchmarks.b2n.rows import ROWS

METRICS = ('base', 'novel', 'hm')
# Where --update-readme puts the table.
README_BEGIN = '<!-- synthetic-b2n-table:begin -->'
README_END = '<!-- synthetic-b2n-table:end -->'


def summarise(
    results: Dict[str, Dict[int, dict]]
) -> List[Tuple[str, Dict[str, Tuple[float, float]]]]:
    """Mean and sample std (ddof=1; 0 for one seed) of every metric.

    Returns:
        list: ``[(row key, {metric: (mean, std)})]`` in row order.
    """
    rows = []
    for key, per_seed in results.items():
        if not per_seed:
            continue
        stats = {}
        for m in METRICS:
            values = [r[m] for r in per_seed.values()]
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            stats[m] = (statistics.fmean(values), std)
        rows.append((key, stats))
    return rows


def mean_std_cells(stats: Dict[str, Tuple[float, float]]) -> List[str]:
    """``mean ± std`` of base, novel and HM, as table cells."""
    return [f'{stats[m][0]:.2f} ± {stats[m][1]:.2f}' for m in METRICS]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A Markdown table of ``header`` and ``rows`` (lists of cells)."""
    lines = ['| ' + ' | '.join(map(str, r)) + ' |' for r in [header, *rows]]
    lines.insert(1, '|' + '---|' * len(header))
    return '\n'.join(lines)


def format_table(summary, num_seeds: int) -> str:
    """A Markdown table of the summary."""
    return markdown_table(['method', 'base', 'novel', 'HM'],
                          [[ROWS[key].label, *mean_std_cells(stats)]
                           for key, stats in summary])


def write_png(summary, path: str, title: str) -> None:
    """Grouped bar chart (base / novel / HM) with std error bars."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np

    labels = [ROWS[k].label for k, _ in summary]
    x = np.arange(len(labels))
    width = 0.27
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(labels) + 2), 4.8))
    for i, m in enumerate(METRICS):
        means = [s[m][0] for _, s in summary]
        stds = [s[m][1] for _, s in summary]
        ax.bar(
            x + (i - 1) * width,
            means,
            width,
            yerr=stds,
            capsize=2,
            label={'hm': 'HM'}.get(m, m))
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=35, ha='right', fontsize=8)
    ax.set_ylabel('accuracy (%)')
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis='y', alpha=0.3)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# Orderings of HM reported in the paper (ImageNet ablations, Tab. 6-7):
# (better row, worse row, what it shows).
PAPER_ORDERINGS = (
    ('promptkd', 'student_zs', 'distilled student > zero-shot student'),
    ('promptkd', 'student_labels',
     'distilled student > student trained with labels'),
    ('promptkd', 'feature_l1', 'logit KL > feature L1'),
    ('promptkd', 'feature_mse', 'logit KL > feature MSE'),
    ('promptkd', 'wo_shared_text',
     "shared teacher text features > student's own text encoder"),
    ('promptkd', 'projector_only', 'prompts + projector > projector only'),
    ('promptkd', 'full_finetune', 'prompts + projector > full fine-tune'),
    ('teacher_promptsrc', 'promptkd', 'teacher > its student'),
    # The same premises across CLIP families.
    ('siglip_teacher', 'student_zs',
     'distilled student > zero-shot student (SigLIP-style teacher)'),
    ('siglip_student', 'siglip_zs',
     'distilled student > zero-shot student (SigLIP-style student)'),
    ('siglip_promptsrc', 'siglip_teacher',
     'teacher > its student (SigLIP-style teacher)'),
    ('teacher_promptsrc', 'siglip_student',
     'teacher > its student (SigLIP-style student)'),
)
# Smallest HM difference counted as an ordering: about twice the binomial
# std of an HM measured on 1,000 + 1,000 test images (the default split).
MIN_MARGIN = 2.0
NOTES_MARKER = '<!-- notes: kept when the file is generated again -->'


def ordering_margin(std_better: float, std_worse: float,
                    num_seeds: int) -> float:
    """HM difference needed before an ordering counts as reproduced.

    Twice the standard error of the difference of two means over
    ``num_seeds`` seeds, ``2 * sqrt((s1^2 + s2^2) / n)``, and at least
    ``MIN_MARGIN`` (test-set sampling noise, which the seeds do not vary).

    Args:
        std_better (float): Sample std of one row's HM over seeds.
        std_worse (float): Sample std of the other row's HM.
        num_seeds (int): Number of seeds behind each mean.

    Returns:
        float: The margin in HM points.
    """
    standard_error = math.sqrt(
        (std_better**2 + std_worse**2) / max(num_seeds, 1))
    return max(2.0 * standard_error, MIN_MARGIN)


def check_orderings(summary, num_seeds: int) -> List[str]:
    """Markdown lines: which of the paper's HM orderings hold here.

    An ordering counts as reproduced when the mean HM difference exceeds
    :func:`ordering_margin`, reversed when it is below minus the margin.

    Args:
        summary (list): ``(row key, {metric: (mean, std)})`` pairs.
        num_seeds (int): Number of seeds behind each mean.

    Returns:
        list[str]: Table lines (empty when no ordering's rows ran).
    """
    stats = dict(summary)
    lines = []
    for better, worse, what in PAPER_ORDERINGS:
        if better not in stats or worse not in stats:
            continue
        (hm_b, std_b), (hm_w, std_w) = stats[better]['hm'], \
            stats[worse]['hm']
        diff = hm_b - hm_w
        margin = ordering_margin(std_b, std_w, num_seeds)
        verdict = ('yes' if diff > margin else
                   'no (reversed)' if diff < -margin else 'within noise')
        lines.append(f'| {what} | {diff:+.2f} | {margin:.2f} | {verdict} |')
    if lines:
        lines = [
            '| paper ordering (HM) | difference | margin | '
            'reproduced |', '|---|---|---|---|'
        ] + lines
    return lines


def command_line(argv: Sequence[str],
                 script: str = 'synthetic_b2n.py') -> str:
    """The command of the study ``script`` through the entry point."""
    name = osp.splitext(osp.basename(script))[0]
    return ' '.join(['python -m benchmarks', name] +
                    [shlex.quote(a) for a in argv])


def write_markdown(path: str, lines: List[str]) -> None:
    """Write generated Markdown lines, keeping what was written by hand
    below :data:`NOTES_MARKER` in an earlier version of the file."""
    notes = [NOTES_MARKER, '']
    if osp.isfile(path):
        with open(path) as f:
            old = f.read()
        if NOTES_MARKER in old:
            notes = [old[old.index(NOTES_MARKER):].rstrip('\n'), '']
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        f.write('\n'.join(lines + notes))


def read_readme(path: str) -> Tuple[str, int, int]:
    """Text of a Markdown file and the span of its benchmark table markers."""
    with open(path) as f:
        text = f.read()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(
            f'{path}: expected the markers {README_BEGIN} and then '
            f'{README_END} around the table to replace')
    return text, begin, end + len(README_END)


def update_readme(path: str, table: str, argv: Sequence[str]) -> None:
    """Replace the benchmark table between the markers of a Markdown file.

    Args:
        path (str): The file, e.g. ``README.md``; must contain
            ``README_BEGIN`` followed by ``README_END``.
        table (str): The Markdown table.
        argv (Sequence[str]): The benchmark's arguments, quoted above it.
    """
    text, begin, end = read_readme(path)
    block = '\n'.join([
        README_BEGIN, f'<!-- generated by: {command_line(argv)} -->', '',
        table, '', README_END
    ])
    with open(path, 'w') as f:
        f.write(text[:begin] + block + text[end:])
