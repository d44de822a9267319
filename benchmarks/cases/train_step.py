"""Case 1: a step with stored versus recomputed teacher text features."""
from typing import Any, Dict

from ..common import (Bench, class_names, print_table, set_classes)


# 1. Stored versus recomputed text features.
def bench_train_step(bench: Bench) -> Dict[str, Any]:
    """Step time with stored versus per-step recomputed text features."""
    model, out, rows = bench.model, {}, []
    for num in bench.args.classes:
        names = class_names(num, bench.args.class_names)
        store_s = set_classes(model, names)
        timed = bench.time_steps(
            dict(stored={}, recompute=dict(recompute_names=names)))
        stored, recompute = timed['stored'], timed['recompute']
        saving = recompute['median_ms'] - stored['median_ms']
        fig = dict(
            stored=stored,
            recompute=recompute,
            speedup=recompute['median_ms'] / stored['median_ms'],
            store_once_ms=store_s * 1e3,
            break_even_steps=(store_s * 1e3 / saving if saving > 0 else None))
        out[str(num)] = fig
        rows.append([
            num, stored['median_ms'], recompute['median_ms'],
            f'{fig["speedup"]:.2f}x', stored['img_s'], recompute['img_s'],
            fig['store_once_ms'], fig['break_even_steps'] or '-'
        ])
    print_table(
        '1. Training step: stored vs recomputed teacher text features', [
            'classes', 'stored ms', 'recompute ms', 'ratio', 'stored img/s',
            'recompute img/s', 'store once ms', 'break-even steps'
        ], rows, [
            f'batch {bench.args.batch_size}; forward + backward + SGD step, '
            'teacher frozen; ratio = recompute / stored',
            'store once: computing the stored features (tokenising included), '
            'paid once per run; break-even: steps after which storing has '
            'paid for itself'
        ])
    return out
