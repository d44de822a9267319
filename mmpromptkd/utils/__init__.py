from .checkpoint_io import (is_torchscript_archive, load_checkpoint_file,
                            read_torchscript_state_dict, save_checkpoint_file)
from .launch import (EpochSeedHook, add_epoch_seed_hook, build_runner,
                     check_work_dir_is_free, enable_amp, epoch_seed,
                     find_existing_checkpoints, resolve_work_dir,
                     set_dataloader_defaults, setup_cpu_distributed)

__all__ = [
    'is_torchscript_archive', 'load_checkpoint_file',
    'read_torchscript_state_dict', 'save_checkpoint_file', 'EpochSeedHook',
    'add_epoch_seed_hook', 'build_runner', 'check_work_dir_is_free',
    'enable_amp', 'epoch_seed', 'find_existing_checkpoints',
    'resolve_work_dir', 'set_dataloader_defaults', 'setup_cpu_distributed'
]
