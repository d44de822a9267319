"""``--cfg-options`` that keep their values and refuse mistyped keys.

mmengine's ``DictAction`` deletes every space of a value (``load_from=/a/b
v2.pth`` loads ``/a/bv2.pth``), and ``Config.merge_from_dict`` accepts any
key (``randomnes.seed=2`` adds a field nobody reads).
"""
import argparse
import difflib
import inspect
import os
from typing import Any, Dict, List, Optional, Sequence

from mmengine.config import Config

__all__ = ['CfgOptionsAction', 'check_cfg_options', 'parse_run_args']


class CfgOptionsAction(argparse.Action):
    """``KEY=VALUE`` options as mmengine's ``DictAction`` parses them,
    except that values keep their spaces (``key=a b`` gives ``'a b'``)."""

    def __call__(self, parser: argparse.ArgumentParser,
                 namespace: argparse.Namespace, values: Sequence[str],
                 option_string: Optional[str] = None) -> None:
        options = dict(getattr(namespace, self.dest, None) or {})
        for item in values or ():
            key, value = item.split('=', maxsplit=1)
            options[key] = parse_option_value(value)
        setattr(namespace, self.dest, options)


def parse_option_value(val: str) -> Any:
    """The value of one ``KEY=VALUE`` option (see :class:`CfgOptionsAction`).
    """
    val = val.strip()
    if len(val) >= 2 and val[0] == val[-1] and val[0] in '\'"':
        return val[1:-1]
    bracketed = len(val) >= 2 and (val[0], val[-1]) in (('(', ')'),
                                                        ('[', ']'))
    if not bracketed and ',' not in val:
        # An int, float, bool or None where it reads as one.
        for kind in (int, float):
            try:
                return kind(val)
            except ValueError:
                pass
        if val.lower() in ('true', 'false'):
            return val.lower() == 'true'
        return None if val == 'None' else val
    body = val[1:-1] if bracketed else val
    items = [parse_option_value(item) for item in _split_top_level(body)]
    return tuple(items) if bracketed and val[0] == '(' else items


def _split_top_level(text: str) -> List[str]:
    """Split at the commas outside brackets; an empty text gives []."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in '([':
            depth += 1
        elif char in ')]':
            depth -= 1
            if depth < 0:
                raise ValueError(f'unbalanced brackets in {text!r}')
        elif char == ',' and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise ValueError(f'unbalanced brackets in {text!r}')
    if text[start:].strip() or items:
        items.append(text[start:])
    return items


def _closest(name: str, choices) -> str:
    """A 'Did you mean' hint, or ''."""
    match = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return f' Did you mean {match[0]!r}?' if match else ''


def _component(type_name: Any) -> Optional[type]:
    """The class a ``type`` names, from this package's registries."""
    if isinstance(type_name, type):
        return type_name
    if not isinstance(type_name, str):
        return None
    from mmpromptkd import registry
    for name in registry.__all__:
        found = getattr(registry, name).module_dict.get(type_name)
        parent = getattr(registry, name).parent
        while found is None and parent is not None:
            found = parent.module_dict.get(type_name)
            parent = parent.parent
        if found is not None:
            return found
    return None


def _accepted(cls: type) -> Optional[set]:
    """Keyword arguments ``cls`` takes; None if it takes any."""
    from mmengine.hooks import CheckpointHook
    from mmengine.runner import Runner
    names, open_ended = set(), True
    # A subclass that passes **kwargs on takes its parents' arguments too.
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if not open_ended or klass is object:
            break
        if init is None:
            continue
        open_ended = False
        for param in inspect.signature(init).parameters.values():
            if param.kind == param.VAR_KEYWORD:
                open_ended = True
            elif param.name != 'self':
                names.add(param.name)
    if open_ended and issubclass(cls, CheckpointHook):
        # Its other keyword arguments go to Runner.save_checkpoint.
        names |= set(inspect.signature(Runner.save_checkpoint).parameters)
        open_ended = False
    return None if open_ended else names | {'type', '_scope_'}


def check_cfg_options(cfg: Config,
                      options: Dict[str, Any],
                      allow_new_keys: bool = False) -> None:
    """Refuse ``--cfg-options`` keys that the run would never read.

    Args:
        cfg (Config): The config the options are merged into.
        options (dict): The parsed options (dotted keys).
        allow_new_keys (bool): Allow keys that create new fields. Defaults
            to False.

    Raises:
        ValueError: For a key that creates a new top-level field, or that
            gives a registered component an argument it does not take.
    """
    if allow_new_keys:
        return
    for key in options:
        parts = key.split('.')
        if parts[0] not in cfg:
            raise ValueError(
                f'--cfg-options {key}: the config has no field '
                f'{parts[0]!r}, so the option would be ignored.'
                f'{_closest(parts[0], cfg.keys())} (Pass '
                '--cfg-options-new-keys to add new fields.)')
        node = cfg[parts[0]]
        for depth, part in enumerate(parts[1:], start=1):
            if not isinstance(node, dict):
                break
            if part in node:
                node = node[part]
                continue
            cls = _component(node.get('type'))
            accepted = _accepted(cls) if cls is not None else None
            if accepted is not None and part not in accepted:
                where = '.'.join(parts[:depth])
                raise ValueError(
                    f'--cfg-options {key}: {cls.__name__} ({where}) takes '
                    f'no argument {part!r}.{_closest(part, accepted)}')
            break


def parse_run_args(parser: argparse.ArgumentParser, argv: Optional[
        Sequence[str]], example: str) -> argparse.Namespace:
    """Parse ``argv`` with the options ``tools/train.py`` and
    ``tools/test.py`` share added last.

    They are ``--cfg-options`` (its help names ``example``),
    ``--cfg-options-new-keys``, ``--launcher`` and ``--local-rank``, which
    becomes ``LOCAL_RANK`` where that is not set.

    Args:
        parser (argparse.ArgumentParser): The tool's other options.
        argv (Sequence[str], optional): Arguments; defaults to
            ``sys.argv[1:]``.
        example (str): A ``key=value`` option of the tool.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=CfgOptionsAction,
        help='override settings of the config, as key=value pairs merged '
        f'into it, e.g. {example} or key="[a,b]" for lists (quotes '
        'needed); a key the config does not have is an error')
    parser.add_argument(
        '--cfg-options-new-keys',
        action='store_true',
        help='let --cfg-options add fields the config does not have')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or
    # --local_rank (older); torchrun sets LOCAL_RANK instead.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args
