"""Run the trust trials and print what happened to each kind of attack.

Every trial is one test case of the files below: a crafted file, URL,
checkpoint, option or fault given to an entry point, where passing means a
clear error naming the problem, nothing executed and nothing lost. The tests
that only show that a payload is live when left unchecked (``*_live``,
``*_loses_one``) are counted apart. Example::

    python -m benchmarks trust_audit            # all trials
    python -m benchmarks trust_audit -m "not slow"

Prints a markdown table: trials, clear errors, inputs handled correctly,
and the failures by what they mean (silent wrong result, code executed or
network reached, data lost, hang, bare traceback). Exit status 1 if any
trial failed.
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter, OrderedDict

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

# Test file -> (area, what a failing trial means, {word in the test name:
# what a failing trial with it means instead}).
TRIALS = OrderedDict([
    ('tests/test_reliability/test_code_from_data.py',
     ('stored configs, URLs, TorchScript opcodes', 'code executed or network',
      {})),
    ('tests/test_reliability/test_safe_loading_everywhere.py',
     ('pickled code at every checkpoint entry point',
      'code executed or network', {})),
    ('tests/test_utils/test_safe_globals.py',
     ('allowlisted objects in checkpoints', 'code executed or network', {})),
    ('tests/test_utils/test_stored_config.py',
     ('stored model configs (walk, keys, towers)', 'code executed or network',
      {'alias': 'hang', 'deep': 'hang', 'cycle': 'hang', 'bounded': 'hang',
       'signature': 'bare traceback'})),
    ('tests/test_reliability/test_untrained_model_refused.py',
     ('checkpoints that do not fit, class names, image sizes',
      'silent wrong', {})),
    ('tests/test_models/test_untrained_teacher.py',
     ('teachers with untrained prompts', 'silent wrong', {})),
    ('tests/test_teacher_cache/test_logit_cache.py',
     ('teacher cache arrays', 'silent wrong', {})),
    ('tests/test_datasets/test_class_names.py',
     ('class-name files', 'silent wrong', {})),
    ('tests/test_datasets/test_unlabeled_images.py',
     ('unlabeled folders and file lists', 'silent wrong',
      {'utf8': 'bare traceback'})),
    ('tests/test_datasets/test_image_size_limit.py',
     ('images that declare giant sizes', 'hang', {})),
    ('tests/test_engine/test_non_finite_loss_hook.py',
     ('non-finite losses and weights', 'silent wrong', {})),
    ('tests/test_tools/test_cfg_options.py',
     ('mistyped --cfg-options', 'silent wrong', {})),
    ('tests/test_engine/test_safe_checkpoint_hook.py',
     ('disk full, rotation, stale temporaries', 'data lost', {})),
    ('tests/test_fileio/test_own_temporaries.py',
     ('temporaries of the package only', 'data lost', {})),
    ('tests/test_tools/test_work_dir_lock.py',
     ('two runs in one work dir, dangling links', 'data lost', {})),
    ('tests/test_tools/test_outputs_are_kept.py',
     ('outputs of train / test / infer', 'data lost', {})),
    ('tests/test_tools/test_export_inference.py',
     ('export over existing files', 'data lost', {})),
    ('tests/test_reliability/test_teacher_identity.py',
     ('teacher identity: frozen CLIP, trained prompts, records',
      'silent wrong', {})),
    ('tests/test_reliability/test_no_hub_names.py',
     ('hub names in sources and stored configs',
      'code executed or network', {})),
    ('tests/test_models/test_tokenizer_files.py',
     ('tokenizer.json settings and engine failures', 'silent wrong',
      {'panic': 'bare traceback', 'non_': 'bare traceback',
       'beyond': 'bare traceback', 'no_side': 'bare traceback'})),
    ('tests/test_tools/test_writers_stay_put.py',
     ('where the dry run and the tools write', 'data lost',
      {'hang': 'hang', 'by_name': 'bare traceback'})),
    ('tests/test_tools/test_export_families.py',
     ('what export writes, load reads', 'bare traceback', {})),
])
PAYLOAD_CHECKS = ('_live', '_loses_one')
#: A passing trial whose name says the input is served, not refused.
HANDLED = ('passes', 'works', 'comes_back', 'survives', 'left_alone',
           'keeps', 'configurable', 'opens', 'allows', 'needs_no',
           'not_utf8', 'stable', 'builds_no', 'keep_', 'round_trips')
COLUMNS = ('silent wrong', 'code executed or network', 'data lost', 'hang',
           'bare traceback')


def outcome(path: str, name: str, failed: bool) -> str:
    """The column a trial counts in.

    Args:
        path (str): Its test file (a key of :data:`TRIALS`).
        name (str): The test's name (with parameters).
        failed (bool): Whether it failed.

    Returns:
        str: 'clear errors' or 'handled' for a passing trial, else what its
        failure means.
    """
    if not failed:
        return 'handled' if any(w in name for w in HANDLED) else \
            'clear errors'
    _, meaning, by_word = TRIALS[path]
    return next((m for w, m in by_word.items() if w in name), meaning)


def _file_of(case: ET.Element) -> str:
    module = case.get('classname', '').split('.')
    for path in TRIALS:
        if osp.splitext(path)[0].split('/')[-1] in module:
            return path
    return ''


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('-m', dest='marker', help='pytest marker expression')
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        report = osp.join(tmp, 'report.xml')
        cmd = [sys.executable, '-m', 'pytest', *TRIALS, '-q',
               '-p', 'no:cacheprovider', f'--junitxml={report}']
        if args.marker:
            cmd += ['-m', args.marker]
        subprocess.run(cmd, cwd=REPO, env=dict(os.environ),
                       stdout=subprocess.DEVNULL)
        cases = ET.parse(report).getroot().iter('testcase')
        rows = OrderedDict((path, Counter()) for path in TRIALS)
        for case in cases:
            path = _file_of(case)
            if not path or case.find('skipped') is not None:
                continue
            failed = case.find('failure') is not None or \
                case.find('error') is not None
            if any(mark in case.get('name', '') for mark in PAYLOAD_CHECKS):
                rows[path]['payload checks'] += 1
                rows[path]['payloads not live'] += failed
                continue
            if path.endswith('test_export_inference.py') and \
                    'overwrite' not in case.get('name', ''):
                continue  # that file's trials are its overwrite cases
            rows[path]['trials'] += 1
            rows[path][outcome(path, case.get('name', ''), failed)] += 1
    passed = ('trials', 'clear errors', 'handled')
    header = ('area', ) + passed + COLUMNS + ('live payload checks', )
    print('| ' + ' | '.join(header) + ' |')
    print('|' + '---|' * len(header))
    total = Counter()
    for path, counts in rows.items():
        total.update(counts)
        print(f'| {TRIALS[path][0]} | ' + ' | '.join(
            str(counts[c]) for c in passed + COLUMNS) +
            f' | {counts["payload checks"]} |')
    print('| **all** | ' + ' | '.join(
        f'**{total[c]}**' for c in passed + COLUMNS) +
        f' | **{total["payload checks"]}** |')
    bad = sum(total[c] for c in COLUMNS) + total['payloads not live']
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
