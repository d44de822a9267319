"""What the command-line tools share: config options and run set-up.

Only ``tools/*.py`` import this package; the models, datasets and hooks
never do.
"""
from .cfg_options import CfgOptionsAction, check_cfg_options, parse_run_args
from .launch import (build_runner, check_work_dir_is_free, close_distributed,
                     enable_amp, find_existing_checkpoints,
                     hinting_how_to_continue, init_cpu_distributed,
                     lock_work_dir, naming_the_checkpoint, resolve_work_dir,
                     set_dataloader_defaults, setup_cpu_distributed)
from .outputs import new_output, output_beside
from .run_errors import load_config, reporting_run_errors

__all__ = [
    'CfgOptionsAction', 'check_cfg_options', 'build_runner',
    'check_work_dir_is_free', 'close_distributed', 'enable_amp',
    'find_existing_checkpoints', 'hinting_how_to_continue',
    'init_cpu_distributed', 'load_config', 'lock_work_dir',
    'naming_the_checkpoint', 'new_output', 'output_beside', 'parse_run_args',
    'reporting_run_errors', 'resolve_work_dir', 'set_dataloader_defaults',
    'setup_cpu_distributed'
]
