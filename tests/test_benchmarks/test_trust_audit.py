"""``python -m benchmarks trust_audit``: what each trial counts as."""
from pathlib import Path

from benchmarks.trust_audit import TRIALS, outcome

REPO = Path(__file__).resolve().parents[2]


def test_every_trial_file_exists():
    missing = [path for path in TRIALS if not (REPO / path).is_file()]
    assert not missing


def test_a_trial_counts_by_its_outcome_and_name():
    configs = 'tests/test_utils/test_stored_config.py'
    assert outcome(configs, 'test_no_file_is_named[x]', False) == \
        'clear errors'
    assert outcome(configs, 'test_a_plain_config_passes', False) == 'handled'
    assert outcome(configs, 'test_no_file_is_named[x]', True) == \
        'code executed or network'
    assert outcome(configs, 'test_aliasing_is_refused_at_once', True) == \
        'hang'
    assert outcome(configs, 'test_keys_are_checked_against_the_signature',
                   True) == 'bare traceback'
    assert outcome('tests/test_fileio/test_own_temporaries.py',
                   'test_a_users_hidden_file_of_that_form_survives',
                   True) == 'data lost'
