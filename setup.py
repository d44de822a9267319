"""Installation script of mmpromptkd."""
import os.path as osp

from setuptools import find_packages, setup


def get_version() -> str:
    """Read ``__version__`` from ``mmpromptkd/version.py`` without importing."""
    namespace = {}
    with open(osp.join(osp.dirname(__file__), 'mmpromptkd', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), namespace)
    return namespace['__version__']


setup(
    name='mmpromptkd',
    version=get_version(),
    description='PromptKD (unsupervised prompt distillation for '
    'vision-language models) for OpenMMLab',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'docs')),
    include_package_data=True,
    python_requires='>=3.9',
    install_requires=[
        'torch>=2.1',
        'torchvision',
        'mmengine>=0.10.7,<1',
        'mmcv-lite>=2.0',
        'mmpretrain>=1.2,<2',
        'open_clip_torch>=3.3,<4',
        'ftfy',
        'regex',
        'filelock>=3.0',
        'numpy',
        'Pillow',
    ],
    extras_require={
        'tests': ['pytest', 'hypothesis', 'flake8==7.5.0'],
        # For vis_backends=[dict(type='TensorboardVisBackend')].
        'tensorboard': ['tensorboard'],
    },
    license='Apache License 2.0',
    zip_safe=False,
)
