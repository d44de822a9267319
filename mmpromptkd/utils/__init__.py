from .checkpoint_io import (SAFE_GLOBALS, SAFE_SCHEME, is_complete_checkpoint,
                            is_remote_path, is_torchscript_archive,
                            load_checkpoint_file, load_from_local,
                            raise_remote_refused, read_state_dict,
                            read_torchscript_state_dict,
                            save_checkpoint_file)
from .cpu_threads import available_cpus, choose_cpu_threads

__all__ = [
    'SAFE_GLOBALS', 'SAFE_SCHEME', 'is_complete_checkpoint', 'is_remote_path',
    'is_torchscript_archive', 'load_checkpoint_file', 'load_from_local',
    'raise_remote_refused', 'read_state_dict', 'read_torchscript_state_dict',
    'save_checkpoint_file', 'available_cpus', 'choose_cpu_threads'
]
