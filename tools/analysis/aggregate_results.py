"""Mean and sample std of base, novel and HM per dataset over seeds, then an
``Average`` row. ``HM`` averages the per-seed HMs; ``HM(means)``, the HM of
the row's Base and Novel, is how papers average: compare with it."""
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
#: Tried next: a run without a seed folder, named by its file's folder (the
#: demo's ``student/results.json``), counts as one seed.
UNSEEDED_PATTERN = r'(?P<dataset>[^/]+)/[^/]+$'
DEFAULT_PREFIX = 'b2n'
FORMATS = ('table', 'markdown', 'csv')


@dataclass
class Row:
    """One line of the summary (no ``num_seeds`` or stds for ``Average``)."""
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
    return 2 * base * novel / (base + novel) if base + novel > 0 else 0.0


def expand_paths(patterns: Iterable[str]) -> List[str]:
    """The files of paths or glob patterns, in order, without duplicates."""
    paths: List[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True))
        if not matches:
            raise FileNotFoundError(f'No result file matches {pattern!r}.')
        paths += matches
    return list(dict.fromkeys(paths))


def load_metrics(path: str) -> Dict[str, float]:
    """The numeric entries of a JSON object file."""
    with open(path, encoding='utf-8') as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{path} is not a JSON file: {e}') from e
    if not isinstance(data, dict):
        raise ValueError(f'{path} must hold a JSON object of metrics, got '
                         f'{type(data).__name__}.')
    return {k: float(v) for k, v in data.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _lookup(metrics: Dict[str, float], name: str,
            prefix: str) -> Optional[float]:
    return metrics.get(f'{prefix}/{name}' if prefix else name,
                       metrics.get(name))


def group_results(paths: Sequence[str],
                  pattern: str = DEFAULT_PATTERN,
                  prefix: str = DEFAULT_PREFIX
                  ) -> Dict[str, Dict[int, Dict[str, float]]]:
    """Read result files and group them by dataset and seed.

    Args:
        paths (Sequence[str]): Result JSON files.
        pattern (str): Regular expression with the groups dataset [, seed].
        prefix (str): Metric name prefix: ``'{prefix}/base'``, then ``base``.

    Returns:
        dict: ``{dataset: {seed or None: {'base', 'novel', 'hm'}}}``.
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
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), std


def summarise(groups: Dict[str, Dict[int, Dict[str, float]]]) -> List[Row]:
    """One row per dataset of :func:`group_results`, then ``Average``."""
    rows: List[Row] = []
    for dataset, seeds in groups.items():
        runs = [seeds[s] for s in sorted(seeds)]
        (base, base_std), (novel, novel_std), (hm, hm_std) = (
            _mean_std([r[k] for r in runs]) for k in ('base', 'novel', 'hm'))
        rows.append(
            Row(dataset, len(runs), base, novel, hm,
                harmonic_mean(base, novel), base_std, novel_std, hm_std))
    if rows:
        base, novel, hm = (statistics.fmean(getattr(r, k) for r in rows)
                           for k in ('base', 'novel', 'hm'))
        rows.append(
            Row('Average', None, base, novel, hm,
                harmonic_mean(base, novel)))
    return rows


def _cell(mean: float, std: Optional[float]) -> str:
    return f'{mean:.2f}' if std is None else f'{mean:.2f} ± {std:.2f}'


def format_rows(rows: Sequence[Row], fmt: str = 'table') -> str:
    """The rows of :func:`summarise` as ``fmt`` (one of FORMATS)."""
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
        r.name, '-' if r.num_seeds is None else str(r.num_seeds),
        _cell(r.base, r.base_std), _cell(r.novel, r.novel_std),
        _cell(r.hm, r.hm_std), f'{r.hm_of_means:.2f}'
    ] for r in rows]
    if fmt == 'markdown':
        lines = ['| ' + ' | '.join(header) + ' |',
                 '|' + '|'.join(['---'] + [':---:'] * 5) + '|']
        lines += ['| ' + ' | '.join(cells) + ' |' for cells in body]
        return '\n'.join(lines) + '\n'

    widths = [max(map(len, column)) for column in zip(header, *body)]

    def render(cells: List[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return '  '.join([first] + rest).rstrip()

    rule = '-' * len(render(header))
    lines = [render(header), rule] + [render(c) for c in body[:-1]]
    if body:
        lines += [rule, render(body[-1])]
    return '\n'.join(lines) + '\n'


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description='Average base-to-novel results over seeds and datasets.')
    parser.add_argument(
        'files', nargs='+',
        help='result JSON files or glob patterns (quote them), each a flat '
        'dict of metrics')
    parser.add_argument(
        '--pattern', default=DEFAULT_PATTERN,
        help='regular expression with the named group "dataset" and '
        'optionally "seed", searched in each path (default: '
        f'{DEFAULT_PATTERN}, and for a path without a seed folder '
        f'{UNSEEDED_PATTERN})')
    parser.add_argument(
        '--prefix', default=DEFAULT_PREFIX,
        help='metric name prefix, e.g. "b2n" for "b2n/base" (default: b2n)')
    parser.add_argument(
        '--format', choices=FORMATS, default='table', help='output format')
    args = parser.parse_args(argv)
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
