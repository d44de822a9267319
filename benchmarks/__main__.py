"""``python -m benchmarks NAME [ARGS]``: run one study by name."""
import importlib
import sys

#: The studies, by the name the entry point takes (their module names).
STUDIES = (
    'checkpoint_size', 'cpu_threads', 'gpa_scope_effect', 'gpu_check',
    'open_vocabulary_footprint', 'real_memory', 'speed', 'synthetic_b2n',
    'teacher_cache_study', 'teacher_ensemble_cost', 'teacher_text_release',
    'trust_audit', 'unlabeled_images_study')


def main(argv=None) -> int:
    """Run the study named by the first argument with the others."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in STUDIES:
        lines = []
        for name in STUDIES:
            doc = importlib.import_module(f'benchmarks.{name}').__doc__
            lines.append(f'  {name:26s} {doc.strip().splitlines()[0]}')
        given = f'unknown study {argv[0]!r}\n' if argv and argv[0] not in (
            '-h', '--help') else ''
        print(f'{given}usage: python -m benchmarks NAME [ARGS]\n\nstudies:\n'
              + '\n'.join(lines), file=sys.stderr if given else sys.stdout)
        return 2 if given or not argv else 0
    module = importlib.import_module(f'benchmarks.{argv[0]}')
    # The studies parse sys.argv, and name themselves after its first item.
    saved, sys.argv = sys.argv, [f'python -m benchmarks {argv[0]}'] + argv[1:]
    try:
        status = module.main()
    finally:
        sys.argv = saved
    return status if isinstance(status, int) else 0


if __name__ == '__main__':
    sys.exit(main())
