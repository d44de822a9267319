"""Aggregate base-to-novel results over seeds and datasets.

Reads metric JSON files (flat dicts such as ``{"b2n/base": 84.1,
"b2n/novel": 77.3, "b2n/hm": 80.6, "b2n/all": 70.2}``, as dumped by
``tools/test.py``), groups them by dataset and seed using a regular
expression on the file path, and prints per dataset the mean and sample
standard deviation (``ddof=1``; 0 for a single seed) over seeds of the base,
novel and HM accuracies, followed by an ``Average`` row over datasets.

Two HM columns are printed because the literature uses both:

- ``HM``: per dataset, the mean (and std) over seeds of the per-seed HM;
  in the ``Average`` row, the mean of the per-dataset ``HM`` values.
- ``HM(means)``: the harmonic mean of the ``Base`` and ``Novel`` values of
  the same row. In the ``Average`` row this is the HM of the averaged base
  and novel accuracies, which is how papers (CoCoOp, PromptSRC, PromptKD)
  compute their average HM; compare published averages with this column.

The ``Average`` row's ``Base`` and ``Novel`` are the means of the
per-dataset means; it has no standard deviations.

Example::

    python tools/analysis/aggregate_results.py \\
        'work_dirs/b2n/*/seed*/metrics.json' --format markdown
"""
import argparse
import csv
import glob
import io
import json
import os
import re
import statistics
import sys
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

DEFAULT_PATTERN = r'(?P<dataset>[^/]+)/seed(?P<seed>\d+)'
#: Tried when the default pattern does not match a path: a run without a
#: seed folder, named by the folder of its file (e.g. the demo's
#: ``student/results.json``); it counts as one seed.
UNSEEDED_PATTERN = r'(?P<dataset>[^/]+)/[^/]+$'
DEFAULT_PREFIX = 'b2n'
FORMATS = ('table', 'markdown', 'csv')


@dataclass
class Row:
    """One line of the summary.

    Args:
        name (str): Dataset name, or ``'Average'``.
        num_seeds (int, optional): Number of seeds; None for ``Average``.
        base (float): Mean base accuracy.
        novel (float): Mean novel accuracy.
        hm (float): Mean of the HM values (see the module docstring).
        hm_of_means (float): HM of ``base`` and ``novel``.
        base_std (float, optional): Std of base over seeds. Defaults to None.
        novel_std (float, optional): Std of novel over seeds.
            Defaults to None.
        hm_std (float, optional): Std of HM over seeds. Defaults to None.
    """
    name: str
    num_seeds: Optional[int]
    base: float
    novel: float
    hm: float
    hm_of_means: float
    base_std: Optional[float] = None
    novel_std: Optional[float] = None
    hm_std: Optional[float] = None


def harmonic_mean(base: float, novel: float) -> float:
    """``2 * base * novel / (base + novel)``, 0 when both are 0."""
    return 2 * base * novel / (base + novel) if base + novel > 0 else 0.0


def expand_paths(patterns: Iterable[str]) -> List[str]:
    """Expand file names and glob patterns, keeping the given order.

    Matches of one pattern are sorted; duplicates are dropped.

    Args:
        patterns (Iterable[str]): File paths or glob patterns (``**`` is
            recursive).

    Returns:
        list[str]: The existing files.

    Raises:
        FileNotFoundError: If a pattern matches no file.
    """
    paths: List[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True))
        if not matches:
            raise FileNotFoundError(f'No result file matches {pattern!r}.')
        for path in matches:
            if path not in paths:
                paths.append(path)
    return paths


def load_metrics(path: str) -> Dict[str, float]:
    """Load one flat metrics dict from a JSON file.

    Args:
        path (str): Path of the JSON file.

    Returns:
        dict[str, float]: The numeric entries of the file.

    Raises:
        ValueError: If the file does not hold a JSON object.
    """
    with open(path, encoding='utf-8') as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{path} is not a JSON file: {e}') from e
    if not isinstance(data, dict):
        raise ValueError(f'{path} must hold a JSON object of metrics, got '
                         f'{type(data).__name__}.')
    return {
        k: float(v)
        for k, v in data.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def _lookup(metrics: Dict[str, float], name: str,
            prefix: str) -> Optional[float]:
    """Find ``prefix/name`` (or bare ``name``) in ``metrics``."""
    for key in (f'{prefix}/{name}' if prefix else name, name):
        if key in metrics:
            return metrics[key]
    return None


def group_results(paths: Sequence[str],
                  pattern: str = DEFAULT_PATTERN,
                  prefix: str = DEFAULT_PREFIX
                  ) -> Dict[str, Dict[int, Dict[str, float]]]:
    """Read result files and group them by dataset and seed.

    Args:
        paths (Sequence[str]): Result JSON files.
        pattern (str): Regular expression searched in each path (with ``/``
            as separator) with the named group ``dataset`` and optionally
            ``seed`` (a path without a seed counts as one seed). With the
            default, a path it does not match is tried with
            ``UNSEEDED_PATTERN``. Defaults to ``DEFAULT_PATTERN``.
        prefix (str): Metric name prefix; ``'{prefix}/base'`` is looked up
            first, then ``'base'``. Defaults to ``'b2n'``.

    Returns:
        dict[str, dict[int | None, dict[str, float]]]: ``{dataset: {seed:
        {'base':
        .., 'novel': .., 'hm': ..}}}``, datasets in order of first
        appearance. A missing ``hm`` is computed from base and novel.

    Raises:
        ValueError: If the pattern lacks a group, a path does not match, a
            metric is missing, or a (dataset, seed) pair appears twice.
    """
    regexes = [re.compile(pattern)]
    if 'dataset' not in regexes[0].groupindex:
        raise ValueError(f'pattern must define the named group "dataset" '
                         f'(and may define "seed"): {pattern!r}.')
    if pattern == DEFAULT_PATTERN:
        regexes.append(re.compile(UNSEEDED_PATTERN))
    groups: Dict[str, Dict[Optional[int], Dict[str, float]]] = {}
    for path in paths:
        posix = path.replace(os.sep, '/')
        match = next(
            (m for m in (r.search(posix) for r in regexes) if m), None)
        if match is None:
            raise ValueError(f'{path!r} does not match pattern {pattern!r}.')
        dataset = match.group('dataset')
        seed = match.groupdict().get('seed')
        seed = None if seed is None else int(seed)
        metrics = load_metrics(path)
        base = _lookup(metrics, 'base', prefix)
        novel = _lookup(metrics, 'novel', prefix)
        if base is None or novel is None:
            raise ValueError(
                f'{path} lacks base/novel accuracies (looked for '
                f'{prefix + "/" if prefix else ""}base and .../novel); '
                f'keys: {sorted(metrics)}.')
        hm = _lookup(metrics, 'hm', prefix)
        if hm is None:
            hm = harmonic_mean(base, novel)
        seeds = groups.setdefault(dataset, {})
        if seeds and (seed is None) != (None in seeds):
            raise ValueError(
                f'dataset {dataset!r} has result files with and without a '
                f'seed; {path} is one of them.')
        if seed in seeds:
            raise ValueError(
                f'Two result files for dataset {dataset!r} seed {seed}; '
                f'the second is {path}.')
        seeds[seed] = dict(base=base, novel=novel, hm=hm)
    return groups


def _mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample std (``ddof=1``; 0 for a single value)."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), std


def summarise(groups: Dict[str, Dict[int, Dict[str, float]]]) -> List[Row]:
    """Compute the per-dataset rows and the ``Average`` row.

    Args:
        groups (dict): Output of :func:`group_results`.

    Returns:
        list[Row]: One row per dataset, then ``Average`` (only when there are
        datasets).
    """
    rows: List[Row] = []
    for dataset, seeds in groups.items():
        runs = [seeds[s] for s in sorted(seeds)]
        base, base_std = _mean_std([r['base'] for r in runs])
        novel, novel_std = _mean_std([r['novel'] for r in runs])
        hm, hm_std = _mean_std([r['hm'] for r in runs])
        rows.append(
            Row(dataset, len(runs), base, novel, hm,
                harmonic_mean(base, novel), base_std, novel_std, hm_std))
    if rows:
        base = statistics.fmean(r.base for r in rows)
        novel = statistics.fmean(r.novel for r in rows)
        hm = statistics.fmean(r.hm for r in rows)
        rows.append(
            Row('Average', None, base, novel, hm,
                harmonic_mean(base, novel)))
    return rows


def _cell(mean: float, std: Optional[float]) -> str:
    return f'{mean:.2f}' if std is None else f'{mean:.2f} ± {std:.2f}'


def format_rows(rows: Sequence[Row], fmt: str = 'table') -> str:
    """Render the summary.

    Args:
        rows (Sequence[Row]): Output of :func:`summarise`.
        fmt (str): ``'table'`` (aligned text), ``'markdown'`` or ``'csv'``
            (means and stds in separate columns, empty stds in the
            ``Average`` row). Defaults to ``'table'``.

    Returns:
        str: The rendered text, ending with a newline.
    """
    if fmt not in FORMATS:
        raise ValueError(f'fmt must be one of {FORMATS}, got {fmt!r}.')
    if fmt == 'csv':
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator='\n')
        columns = ('base', 'base_std', 'novel', 'novel_std', 'hm', 'hm_std',
                   'hm_of_means')
        writer.writerow(['dataset', 'num_seeds', *columns])
        for r in rows:
            writer.writerow(
                [r.name, '' if r.num_seeds is None else r.num_seeds] +
                ['' if getattr(r, c) is None else f'{getattr(r, c):.4f}'
                 for c in columns])
        return buf.getvalue()

    header = ['Dataset', 'Seeds', 'Base', 'Novel', 'HM', 'HM(means)']
    body = [[
        r.name,
        '-' if r.num_seeds is None else str(r.num_seeds),
        _cell(r.base, r.base_std),
        _cell(r.novel, r.novel_std),
        _cell(r.hm, r.hm_std),
        f'{r.hm_of_means:.2f}',
    ] for r in rows]
    if fmt == 'markdown':
        lines = ['| ' + ' | '.join(header) + ' |',
                 '|' + '|'.join(['---'] + [':---:'] * 5) + '|']
        lines += ['| ' + ' | '.join(cells) + ' |' for cells in body]
        return '\n'.join(lines) + '\n'

    widths = [
        max(len(line[i]) for line in [header] + body)
        for i in range(len(header))
    ]

    def render(cells: List[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return '  '.join([first] + rest).rstrip()

    rule = '-' * len(render(header))
    lines = [render(header), rule] + [render(c) for c in body[:-1]]
    if body:
        lines += [rule, render(body[-1])]
    return '\n'.join(lines) + '\n'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse command-line arguments."""
    parser = argparse.ArgumentParser(
        description='Average base-to-novel results over seeds and datasets.')
    parser.add_argument(
        'files',
        nargs='+',
        help='result JSON files or glob patterns (quote them), each a flat '
        'dict of metrics')
    parser.add_argument(
        '--pattern',
        default=DEFAULT_PATTERN,
        help='regular expression with the named group "dataset" and '
        'optionally "seed", searched in each path (default: '
        f'{DEFAULT_PATTERN}, and for a path without a seed folder '
        f'{UNSEEDED_PATTERN})')
    parser.add_argument(
        '--prefix',
        default=DEFAULT_PREFIX,
        help='metric name prefix, e.g. "b2n" for "b2n/base" (default: b2n)')
    parser.add_argument(
        '--format', choices=FORMATS, default='table', help='output format')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line tool."""
    args = parse_args(argv)
    try:
        paths = expand_paths(args.files)
        groups = group_results(paths, args.pattern, args.prefix)
    except (FileNotFoundError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    sys.stdout.write(format_rows(summarise(groups), args.format))
    return 0


if __name__ == '__main__':
    sys.exit(main())
