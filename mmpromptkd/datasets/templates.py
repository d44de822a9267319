"""Text prompt templates for CLIP classifiers.

Every template holds exactly one ``{}``, the place of the class name (with
``_`` written as a space).

* :data:`IMAGENET_TEMPLATES`: the 60 hand-written ImageNet prompts that
  PromptSRC averages into its frozen zero-shot text features: 60 of the 80
  prompts published with CLIP, in PromptSRC's order (led by ``"a photo of a
  {}."``).
* :data:`DATASET_TEMPLATES`: CoOp's single hand-written prompt per dataset,
  keyed by the dataset class name of :mod:`mmpromptkd.datasets` (the name a
  ``PromptKDTextFeaturesHook`` reports).
"""
from typing import Dict, Tuple

__all__ = [
    'IMAGENET_TEMPLATES', 'DATASET_TEMPLATES', 'DEFAULT_TEMPLATE',
    'get_dataset_template', 'check_template', 'fill_template'
]

#: The zero-shot CLIP prompt of PromptKD's teachers.
DEFAULT_TEMPLATE = 'a photo of a {}.'

IMAGENET_TEMPLATES: Tuple[str, ...] = (
    'a photo of a {}.',
    'a bad photo of a {}.',
    'a photo of many {}.',
    'a sculpture of a {}.',
    'a photo of the hard to see {}.',
    'a low resolution photo of the {}.',
    'a rendering of a {}.',
    'graffiti of a {}.',
    'a bad photo of the {}.',
    'a cropped photo of the {}.',
    'a tattoo of a {}.',
    'the embroidered {}.',
    'a photo of a hard to see {}.',
    'a bright photo of a {}.',
    'a photo of a clean {}.',
    'a photo of a dirty {}.',
    'a dark photo of the {}.',
    'a drawing of a {}.',
    'a photo of my {}.',
    'the plastic {}.',
    'a photo of the cool {}.',
    'a close-up photo of a {}.',
    'a black and white photo of the {}.',
    'a painting of the {}.',
    'a painting of a {}.',
    'a pixelated photo of the {}.',
    'a sculpture of the {}.',
    'a bright photo of the {}.',
    'a cropped photo of a {}.',
    'a plastic {}.',
    'a photo of the dirty {}.',
    'a jpeg corrupted photo of a {}.',
    'a blurry photo of the {}.',
    'a photo of the {}.',
    'a good photo of the {}.',
    'a rendering of the {}.',
    'a {} in a video game.',
    'a photo of one {}.',
    'a doodle of a {}.',
    'a close-up photo of the {}.',
    'the origami {}.',
    'the {} in a video game.',
    'a sketch of a {}.',
    'a doodle of the {}.',
    'a origami {}.',
    'a low resolution photo of a {}.',
    'the toy {}.',
    'a rendition of the {}.',
    'a photo of the clean {}.',
    'a photo of a large {}.',
    'a rendition of a {}.',
    'a photo of a nice {}.',
    'a photo of a weird {}.',
    'a blurry photo of a {}.',
    'a cartoon {}.',
    'art of a {}.',
    'a sketch of the {}.',
    'a embroidered {}.',
    'a pixelated photo of a {}.',
    'itap of the {}.',
)

DATASET_TEMPLATES: Dict[str, str] = {
    'OxfordPets': 'a photo of a {}, a type of pet.',
    'OxfordFlowers': 'a photo of a {}, a type of flower.',
    'FGVCAircraft': 'a photo of a {}, a type of aircraft.',
    'DTD': '{} texture.',
    'EuroSAT': 'a centered satellite photo of {}.',
    'StanfordCars': 'a photo of a {}.',
    'Food101': 'a photo of {}, a type of food.',
    'SUN397': 'a photo of a {}.',
    'Caltech101': 'a photo of a {}.',
    'UCF101': 'a photo of a person doing {}.',
    'ImageNet': 'a photo of a {}.',
    'ImageNetSketch': 'a photo of a {}.',
    'ImageNetV2': 'a photo of a {}.',
    'ImageNetA': 'a photo of a {}.',
    'ImageNetR': 'a photo of a {}.',
    'SyntheticShapes': 'a photo of a {}.',
}


def check_template(template: str) -> str:
    """Check that a template has exactly one ``{}``.

    Args:
        template (str): The template.

    Returns:
        str: The template.

    Raises:
        ValueError: If it has no or several ``{}``.
    """
    if not isinstance(template, str) or template.count('{}') != 1:
        raise ValueError(f'a prompt template needs exactly one "{{}}" for the '
                         f'class name, got {template!r}')
    return template


def fill_template(template: str, class_name: str) -> str:
    """The prompt of one class.

    ``str.format`` is not used, so class names may contain braces.

    Args:
        template (str): Template with one ``{}``.
        class_name (str): Class name; ``_`` becomes a space.

    Returns:
        str: The prompt, e.g. ``"a photo of a sea lion."``.
    """
    return check_template(template).replace('{}',
                                            class_name.replace('_', ' '))


def get_dataset_template(dataset: str) -> str:
    """CoOp's hand-written prompt of a dataset.

    Args:
        dataset (str): Dataset class name, e.g. ``'DTD'``.

    Returns:
        str: Its template, e.g. ``'{} texture.'``.

    Raises:
        KeyError: For a dataset without a template; the message lists the
            known ones.
    """
    try:
        return DATASET_TEMPLATES[dataset]
    except KeyError:
        raise KeyError(f'no prompt template for dataset {dataset!r}; known: '
                       f'{sorted(DATASET_TEMPLATES)}') from None
