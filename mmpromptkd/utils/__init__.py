from .checkpoint_io import (SAFE_SCHEME, is_complete_checkpoint,
                            is_remote_path, load_checkpoint_file,
                            load_from_local, raise_remote_refused,
                            read_model_checkpoint, save_checkpoint_file)
from .cpu_threads import available_cpus, choose_cpu_threads
from .safe_globals import SAFE_GLOBALS
from .torchscript_reader import (is_torchscript_archive,
                                 read_torchscript_state_dict)

__all__ = ['SAFE_GLOBALS', 'SAFE_SCHEME', 'is_complete_checkpoint',
           'is_remote_path', 'is_torchscript_archive', 'load_checkpoint_file',
           'load_from_local', 'raise_remote_refused', 'read_model_checkpoint',
           'read_torchscript_state_dict', 'save_checkpoint_file',
           'available_cpus', 'choose_cpu_threads']
