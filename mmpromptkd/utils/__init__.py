from .checkpoint_io import (is_remote_path, is_torchscript_archive,
                            load_checkpoint_file, raise_remote_refused,
                            read_torchscript_state_dict, save_checkpoint_file)
from .launch import (add_training_hooks, build_runner, check_work_dir_is_free,
                     close_distributed, enable_amp, find_existing_checkpoints,
                     lock_work_dir, naming_the_checkpoint, resolve_work_dir,
                     set_dataloader_defaults, setup_cpu_distributed)

__all__ = [
    'is_remote_path', 'is_torchscript_archive', 'load_checkpoint_file',
    'raise_remote_refused',
    'read_torchscript_state_dict', 'save_checkpoint_file',
    'add_training_hooks', 'build_runner', 'check_work_dir_is_free',
    'close_distributed',
    'enable_amp', 'find_existing_checkpoints', 'lock_work_dir',
    'naming_the_checkpoint',
    'resolve_work_dir',
    'set_dataloader_defaults', 'setup_cpu_distributed'
]
