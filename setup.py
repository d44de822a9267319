"""Installation script of mmpromptkd."""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

#: What OpenMMLab's ``mim`` looks for inside the installed package
#: (``mim train / test / run mmpromptkd ...``, ``mim search``, ``mim list``),
#: and the tiny demo CLIPs that the synthetic-shapes configs load relative
#: to themselves (not the rest of ``checkpoints/``, which holds the user's
#: CLIP files).
MIM_FILES = ('configs', 'tools', 'checkpoints/tiny_clip', 'model-index.yml')


def get_version() -> str:
    """``__version__`` of ``mmpromptkd/version.py``, read without import."""
    namespace = {}
    path = osp.join(osp.dirname(__file__), 'mmpromptkd', 'version.py')
    with open(path) as f:
        exec(compile(f.read(), 'version.py', 'exec'), namespace)
    return namespace['__version__']


TORCH_REQUIREMENT = 'torch>=2.6'

#: OpenMMLab's package manager, for ``mim train / test / search / list``.
#: mim imports ``pkg_resources``, which setuptools 81 removed; openmim
#: 0.3.9 pulls in openxlab, which pins setuptools 60 (below torch's >=77).
MIM_REQUIRES = ['openmim==0.3.8', 'setuptools>=77.0.3,<81']


#: ONNX export (tools/deployment/pytorch2onnx.py: torch's dynamo exporter
#: needs onnxscript) and running the exported graph.
DEPLOY_REQUIRES = ['onnx', 'onnxruntime', 'onnxscript']

#: Unlabeled images streamed from tar shards (UnlabeledShards,
#: tools/misc/images_to_shards.py).
SHARDS_REQUIRES = ['webdataset>=1.0.2,<2']


def add_mim_extension() -> None:
    """Expose :data:`MIM_FILES` as ``mmpromptkd/.mim``.

    An install from a clone (``develop``, ``editable_wheel``) links them, so
    they stay the clone's; building a wheel or an sdist copies them into
    the package. Other commands (e.g. ``egg_info``) leave ``.mim`` alone.
    """
    if {'develop', 'editable_wheel'} & set(sys.argv):
        mode = 'symlink'
    elif {'sdist', 'bdist_wheel', 'build', 'build_py'} & set(sys.argv):
        mode = 'copy'
    else:
        return
    root = osp.dirname(osp.abspath(__file__))
    if not all(osp.exists(osp.join(root, name)) for name in MIM_FILES):
        return  # building from an sdist: .mim was copied into it
    mim_dir = osp.join(root, 'mmpromptkd', '.mim')
    # .mim holds only what an earlier run put there; its links are removed,
    # never followed (they point into the clone).
    if osp.islink(mim_dir):
        os.remove(mim_dir)
    elif osp.isdir(mim_dir):
        shutil.rmtree(mim_dir)
    for name in MIM_FILES:
        src, dst = osp.join(root, name), osp.join(mim_dir, name)
        os.makedirs(osp.dirname(dst), exist_ok=True)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, osp.dirname(dst)), dst)
        elif osp.isdir(src):
            shutil.copytree(
                src, dst, ignore=shutil.ignore_patterns('__pycache__'))
        else:
            shutil.copyfile(src, dst)


add_mim_extension()
setup(
    name='mmpromptkd',
    version=get_version(),
    description='PromptKD (unsupervised prompt distillation for '
    'vision-language models) for OpenMMLab',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=('mmpromptkd', 'mmpromptkd.*')),
    include_package_data=True,
    python_requires='>=3.9',
    install_requires=[
        # The oldest torch with every API the package uses: the
        # torch.serialization.safe_globals context (2.5), torch.export-based
        # ONNX export with dynamic shapes (dynamo=True, 2.6), torch.compile.
        TORCH_REQUIREMENT,
        'torchvision',
        'mmengine>=0.10.7,<1',
        'mmcv-lite>=2.0',
        'mmpretrain>=1.2,<2',
        'open_clip_torch>=3.3,<4',
        # Hugging Face tokenizers (SigLIP, CLIPA, MetaCLIP 2) from their
        # tokenizer.json, without transformers.
        'tokenizers>=0.19',
        'ftfy',
        'regex',
        'filelock>=3.0',
        'numpy',
        'Pillow',
    ],
    extras_require={
        'tests':
        # transformers: open_clip's HFTokenizer, the reference of ours.
        ['pytest', 'pytest-xdist', 'hypothesis', 'flake8==7.5.0',
         'transformers>=4.40',
         *MIM_REQUIRES,
         *DEPLOY_REQUIRES, *SHARDS_REQUIRES],
        'mim': MIM_REQUIRES,
        'deploy': DEPLOY_REQUIRES,
        'shards': SHARDS_REQUIRES,
        # For vis_backends=[dict(type='TensorboardVisBackend')].
        'tensorboard': ['tensorboard'],
    },
    license='Apache License 2.0',
    zip_safe=False,
)
