"""What the README tells a user to run says what it does."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / 'README.md'


def _section(title: str) -> str:
    """The text of the README's ``## title`` section."""
    text = README.read_text()
    start = text.index(f'\n## {title}\n')
    end = text.find('\n## ', start + 1)
    return text[start:end if end != -1 else None]


def test_torch_install_names_the_build_of_each_machine():
    """A CPU-only machine gets torch's CPU build, not PyPI's CUDA one."""
    lines = _section('Install').splitlines()
    installs = [i for i, line in enumerate(lines)
                if line.startswith('pip install torch')]
    assert len(installs) == 2, installs
    gpu, cpu = installs
    assert 'with an NVIDIA GPU' in lines[gpu - 1]
    assert '--index-url' not in lines[gpu]
    assert 'without a GPU' in lines[cpu - 1]
    assert lines[cpu].endswith(
        '--index-url https://download.pytorch.org/whl/cpu')
    # The versions of the two commands are the same.
    assert lines[cpu].startswith(lines[gpu] + ' ')
    # The package installs separately, after the build chosen above.
    assert not any('&&' in lines[i] for i in installs)


def test_no_timings_of_the_test_suite():
    """Suite timings depend on the machine; the README states none."""
    section = _section('Test')
    assert not re.search(
        r'\b\d+(\.\d+)?\s*(s|sec|seconds?|min|minutes?)\b', section), \
        section
