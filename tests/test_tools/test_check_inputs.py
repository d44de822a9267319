"""tools/misc/dry_run.py --check-inputs: the real inputs a config needs.

The preflight names every missing input with its config key, its path and
its source, exits with 1 while one is missing and with 0 once all are
there, and builds nothing; a full dry run ends with the same list and says
what it stood in for.
"""
import pytest

from tool_runs import REPO, torch_threads
from tool_scripts import load_tool

DRY_RUN = load_tool('misc/dry_run.py')
MAIN = str(REPO / 'configs' / 'promptkd' /
           'promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-dtd.py')
TINY = str(REPO / 'configs' / 'promptkd' /
           'promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes.py')
SIGLIP2 = str(REPO / 'configs' / 'promptkd' /
              'promptkd_vit-b16_vit-l16-siglip2-256-promptsrc_1xb8-20e_b2n-'
              'imagenet.py')
OPENAI = 'https://openaipublic.azureedge.net/clip/models/'
COOP = 'https://github.com/KaiyangZhou/CoOp/blob/main/DATASETS.md (DTD)'
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _entries(printed: str) -> dict:
    """``{path: (state, key, source line)}`` of the printed list."""
    lines = printed.splitlines()
    entries = {}
    for line, detail in zip(lines, lines[1:]):
        words = line.split(None, 2)
        if len(words) == 3 and words[0] in ('ok', 'missing') and \
                words[1].endswith(':'):
            entries[words[2]] = (words[0], words[1][:-1], detail.strip())
    return entries


@pytest.fixture
def nothing_is_built(monkeypatch):
    """The preflight never builds a CLIP or starts a dry run."""
    from mmpromptkd.models.clip import clip_builder

    def refuse(*args, **kwargs):
        raise AssertionError('the preflight built something')

    monkeypatch.setattr(clip_builder, '_build_open_clip_model', refuse)
    monkeypatch.setattr(DRY_RUN.DryRun, 'run', refuse)


def test_every_missing_input_is_named_with_key_path_and_source(
        tmp_path, monkeypatch, capsys, nothing_is_built):
    monkeypatch.chdir(tmp_path)  # the config's relative paths: all missing
    assert DRY_RUN.main([MAIN, '--check-inputs']) == 1
    printed = capsys.readouterr().out
    entries = _entries(printed)
    expected = {
        'checkpoints/clip/ViT-B-16.pt':
        ('model.student.clip.openai_file', OPENAI),
        'checkpoints/clip/ViT-L-14.pt':
        ('model.teacher.clip.openai_file', OPENAI),
        'checkpoints/promptkd_teachers/dtd.pth':
        ('model.teacher.checkpoint', 'docs/inputs.md#teachers'),
        'data/dtd': ('train_dataloader.dataset.data_root', COOP),
        'data/dtd/images': ('train_dataloader.dataset.data_root', COOP),
        'data/dtd/split_zhou_DescribableTextures.json':
        ('train_dataloader.dataset.data_root', COOP),
    }
    assert set(entries) == set(expected), printed
    for path, (key, source) in expected.items():
        state, printed_key, detail = entries[path]
        assert (state, printed_key) == ('missing', key), printed
        assert source in detail, printed
    # The OpenAI URLs are open_clip's, one per file.
    assert entries['checkpoints/clip/ViT-L-14.pt'][2].endswith(
        'b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/'
        'ViT-L-14.pt')
    last = printed.strip().splitlines()[-1]
    assert last.startswith('inputs missing: 6 of 6 ('), last
    assert 'model.teacher.checkpoint' in last and 'docs/inputs.md' in last
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_an_input_that_exists_is_ok(tmp_path, monkeypatch, capsys,
                                    nothing_is_built):
    monkeypatch.chdir(tmp_path)
    weights = tmp_path / 'weights' / 'ViT-B-16.pt'
    weights.parent.mkdir()
    weights.write_bytes(b'')  # existence only: nothing is opened
    assert DRY_RUN.main([
        MAIN, '--check-inputs', '--cfg-options',
        f'model.student.clip.openai_file={weights}'
    ]) == 1
    printed = capsys.readouterr().out
    state, key, _ = _entries(printed)[str(weights)]
    assert (state, key) == ('ok', 'model.student.clip.openai_file')
    assert printed.strip().splitlines()[-1].startswith(
        'inputs missing: 5 of 6 ')


def test_all_inputs_present_exits_0(shapes_root, capsys, nothing_is_built):
    """The tiny config: its shipped tiny CLIP checkpoints and generated
    data."""
    options = [f'{loader}.dataset.data_root={shapes_root}'
               for loader in LOADERS]
    assert DRY_RUN.main([TINY, '--check-inputs', '--cfg-options',
                         *options]) == 0
    printed = capsys.readouterr().out
    entries = _entries(printed)
    assert {state for state, _, _ in entries.values()} == {'ok'}, printed
    keys = {key for _, key, _ in entries.values()}
    assert {'model.student.clip.checkpoint', 'model.teacher.clip.checkpoint',
            'train_dataloader.dataset.data_root'} <= keys
    assert f'{shapes_root}/split_shapes.json' in entries
    assert printed.strip().splitlines()[-1] == \
        f'inputs ok: all {len(entries)} present'


def test_pretrained_tags_and_tokenizers_resolve_in_the_local_cache(
        tmp_path, monkeypatch, capsys, nothing_is_built):
    """A pretrained tag and a Hugging Face tokenizer are looked up in the
    local cache, offline: missing, then found once the files are there."""
    import huggingface_hub.constants
    cache = tmp_path / 'hub'
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE',
                        str(cache))
    monkeypatch.chdir(tmp_path)
    repo = 'timm/ViT-L-16-SigLIP2-256'
    assert DRY_RUN.main([SIGLIP2, '--check-inputs']) == 1
    printed = capsys.readouterr().out
    by_key = {key: (state, path, detail)
              for path, (state, key, detail) in _entries(printed).items()}
    for key in ('model.teacher.clip.pretrained',
                'model.teacher.clip.text_cfg.hf_tokenizer_name'):
        state, _, detail = by_key[key]
        assert state == 'missing', printed
        assert f'https://huggingface.co/{repo}' in detail, printed

    # The layout huggingface-cli download leaves in the cache.
    folder = cache / f'models--{repo.replace("/", "--")}'
    snapshot = folder / 'snapshots' / ('0' * 40)
    snapshot.mkdir(parents=True)
    (folder / 'refs').mkdir()
    (folder / 'refs' / 'main').write_text('0' * 40)
    for name in ('open_clip_model.safetensors', 'tokenizer.json'):
        (snapshot / name).write_bytes(b'')
    DRY_RUN.main([SIGLIP2, '--check-inputs'])
    entries = _entries(capsys.readouterr().out)
    assert entries[str(snapshot / 'open_clip_model.safetensors')][:2] == \
        ('ok', 'model.teacher.clip.pretrained')
    assert entries[str(snapshot / 'tokenizer.json')][:2] == \
        ('ok', 'model.teacher.clip.text_cfg.hf_tokenizer_name')


@pytest.mark.slow
def test_a_dry_run_ends_with_the_inputs_and_what_it_replaced(
        tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    in_process = [
        f'{loader}.{key}={value}' for loader in LOADERS
        for key, value in (('num_workers', 0), ('persistent_workers', False))
    ]
    with torch_threads(1):
        code = DRY_RUN.main([
            MAIN, '--tiny', '--quick', '--work-dir',
            str(tmp_path / 'dry_run'), '--cfg-options', *in_process
        ])
    printed = capsys.readouterr().out
    assert code == 0, printed
    lines = printed.strip().splitlines()
    assert lines[-1] == (
        f"dry run ok: {MAIN} (on stand-ins: the project's tiny CLIPs, an "
        'untrained teacher (random prompts), generated data; real inputs: '
        '6 of 6 missing, listed above)')
    entries = _entries(printed)
    assert entries['checkpoints/promptkd_teachers/dtd.pth'][:2] == \
        ('missing', 'model.teacher.checkpoint')
    assert len(entries) == 6
