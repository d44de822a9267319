"""Text prompt templates (one ``{}`` for the class name): PromptSRC's 60
ImageNet prompts and CoOp's prompt per dataset."""
from typing import Dict, Tuple

from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

#: The zero-shot CLIP prompt of PromptKD's teachers.
DEFAULT_TEMPLATE = 'a photo of a {}.'

# open_clip's 80 prompts published with CLIP, as templates.
_OPENAI_IMAGENET_TEMPLATES = tuple(
    template('{}') for template in OPENAI_IMAGENET_TEMPLATES)
# PromptSRC's 60: the first 60 of them, led by "a photo of a {}.".
IMAGENET_TEMPLATES: Tuple[str, ...] = (DEFAULT_TEMPLATE, ) + tuple(
    t for t in _OPENAI_IMAGENET_TEMPLATES[:60] if t != DEFAULT_TEMPLATE)

DATASET_TEMPLATES: Dict[str, str] = {
    'CoOpOxfordPets': 'a photo of a {}, a type of pet.',
    'CoOpOxfordFlowers': 'a photo of a {}, a type of flower.',
    'CoOpFGVCAircraft': 'a photo of a {}, a type of aircraft.',
    'CoOpDTD': '{} texture.',
    'CoOpEuroSAT': 'a centered satellite photo of {}.',
    'CoOpStanfordCars': 'a photo of a {}.',
    'CoOpFood101': 'a photo of {}, a type of food.',
    'CoOpSUN397': 'a photo of a {}.',
    'CoOpCaltech101': 'a photo of a {}.',
    'CoOpUCF101': 'a photo of a person doing {}.',
    'CoOpImageNet': 'a photo of a {}.',
    'CoOpImageNetSketch': 'a photo of a {}.',
    'CoOpImageNetV2': 'a photo of a {}.',
    'CoOpImageNetA': 'a photo of a {}.',
    'CoOpImageNetR': 'a photo of a {}.',
    'SyntheticShapes': 'a photo of a {}.',
}


def check_template(template: str) -> str:
    """``template``, refused unless it has exactly one ``{}``."""
    if not isinstance(template, str) or template.count('{}') != 1:
        raise ValueError(f'a prompt template needs exactly one "{{}}" for the '
                         f'class name, got {template!r}')
    return template


def get_dataset_template(dataset: str) -> str:
    """CoOp's hand-written template of a dataset class, e.g. 'CoOpDTD'."""
    try:
        return DATASET_TEMPLATES[dataset]
    except KeyError:
        raise KeyError(f'no prompt template for dataset {dataset!r}; known: '
                       f'{sorted(DATASET_TEMPLATES)}') from None
