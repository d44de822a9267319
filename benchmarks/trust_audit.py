"""Run the trust trials and print what happened to each kind of attack.

Exit status 1 if any trial failed; see docs/guarantees.md."""
import argparse
import os.path as osp
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter

from benchmarks.common import REPO_ROOT, markdown_table

CODE, WRONG, LOST = 'code executed or network', 'silent wrong', 'data lost'
HANG, BARE = 'hang', 'bare traceback'
# Test file (under tests/) -> (area, what a failing trial means, {word in
# the test name: what a failing trial with it means instead}).
TRIALS = {f'tests/test_{path}.py': trial for path, trial in [
    ('reliability/test_code_from_data',
     ('stored configs, URLs, TorchScript opcodes', CODE, {})),
    ('reliability/test_safe_loading_everywhere',
     ('pickled code at every checkpoint entry point', CODE, {})),
    ('utils/test_safe_globals',
     ('allowlisted objects in checkpoints', CODE, {})),
    ('utils/test_stored_config',
     ('stored model configs (walk, keys, towers)', CODE,
      {'alias': HANG, 'deep': HANG, 'cycle': HANG, 'bounded': HANG,
       'signature': BARE})),
    ('reliability/test_untrained_model_refused',
     ('checkpoints that do not fit, class names, image sizes', WRONG, {})),
    ('models/test_untrained_teacher',
     ('teachers with untrained prompts', WRONG, {})),
    ('teacher_cache/test_logit_cache', ('teacher cache arrays', WRONG, {})),
    ('datasets/test_class_names', ('class-name files', WRONG, {})),
    ('datasets/test_unlabeled_images',
     ('unlabeled folders and file lists', WRONG, {'utf8': BARE})),
    ('datasets/test_image_size_limit',
     ('images that declare giant sizes', HANG, {})),
    ('engine/test_non_finite_loss_hook',
     ('non-finite losses and weights', WRONG, {})),
    ('tools/test_cfg_options', ('mistyped --cfg-options', WRONG, {})),
    ('engine/test_safe_checkpoint_hook',
     ('disk full, rotation, stale temporaries', LOST, {})),
    ('fileio/test_own_temporaries',
     ('temporaries of the package only', LOST, {})),
    ('tools/test_work_dir_lock',
     ('two runs in one work dir, dangling links', LOST, {})),
    ('tools/test_outputs_are_kept',
     ('outputs of train / test / infer', LOST, {})),
    ('tools/test_export_inference', ('export over existing files', LOST, {})),
    ('reliability/test_teacher_identity',
     ('teacher identity: frozen CLIP, trained prompts, records', WRONG, {})),
    ('reliability/test_no_hub_names',
     ('hub names in sources and stored configs', CODE, {})),
    ('models/test_tokenizer_files',
     ('tokenizer.json settings and engine failures', WRONG,
      {'panic': BARE, 'non_': BARE, 'beyond': BARE, 'no_side': BARE})),
    ('tools/test_writers_stay_put',
     ('where the dry run and the tools write', LOST,
      {'hang': HANG, 'by_name': BARE})),
    ('tools/test_export_families',
     ('what export writes, load reads', BARE, {})),
]}
PAYLOAD_CHECKS = ('_live', '_loses_one')
#: A passing trial whose name says the input is served, not refused.
HANDLED = ('passes', 'works', 'comes_back', 'survives', 'left_alone',
           'keeps', 'configurable', 'opens', 'allows', 'needs_no',
           'not_utf8', 'stable', 'builds_no', 'keep_', 'round_trips')
COLUMNS = (WRONG, CODE, LOST, HANG, BARE)


def outcome(path: str, name: str, failed: bool) -> str:
    """The column a trial of test file ``path`` named ``name`` counts in:
    'clear errors' or 'handled' when it passed, else what failing means."""
    if not failed:
        return 'handled' if any(w in name for w in HANDLED) else \
            'clear errors'
    _, meaning, by_word = TRIALS[path]
    return next((m for w, m in by_word.items() if w in name), meaning)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('-m', dest='marker', help='pytest marker expression')
    args = parser.parse_args(argv)
    rows = {path: Counter() for path in TRIALS}
    modules = {osp.basename(path)[:-3]: path for path in TRIALS}
    with tempfile.TemporaryDirectory() as tmp:
        report = osp.join(tmp, 'report.xml')
        subprocess.run([sys.executable, '-m', 'pytest', *TRIALS, '-q', '-p',
                        'no:cacheprovider', f'--junitxml={report}'] +
                       ['-m', args.marker] * bool(args.marker),
                       cwd=REPO_ROOT, stdout=subprocess.DEVNULL)
        cases = list(ET.parse(report).getroot().iter('testcase'))
    for case in cases:
        name = case.get('name', '')
        path = next((modules[m] for m in case.get('classname', '').split('.')
                     if m in modules), None)
        if not path or case.find('skipped') is not None:
            continue
        failed = case.find('failure') is not None or \
            case.find('error') is not None
        if any(mark in name for mark in PAYLOAD_CHECKS):
            rows[path]['payload checks'] += 1
            rows[path]['payloads not live'] += failed
        elif not path.endswith('test_export_inference.py') or \
                'overwrite' in name:  # that file's trials: the overwrites
            rows[path]['trials'] += 1
            rows[path][outcome(path, name, failed)] += 1
    passed = ('trials', 'clear errors', 'handled')
    total = sum(rows.values(), Counter())
    print(markdown_table(
        ('area', ) + passed + COLUMNS + ('live payload checks', ),
        [[TRIALS[path][0], *(counts[c] for c in passed + COLUMNS),
          counts['payload checks']] for path, counts in rows.items()] +
        [['**all**'] + [f'**{total[c]}**' for c in passed + COLUMNS +
                        ('payload checks', )]]))
    return 1 if sum(total[c] for c in COLUMNS) + total['payloads not live'] \
        else 0
