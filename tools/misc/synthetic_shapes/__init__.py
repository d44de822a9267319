"""A deterministic synthetic image domain in CoOp format; see
docs/synthetic_shapes.md."""
from .names import (CAPTION_TEMPLATES, CLASSNAMES_FILE, COLOUR_RGB, COLOURS,
                    DOMAINS, FORMAT_VERSION, IMAGE_DIR, MARKER_FILE,
                    MAX_CLASSES, MIN_CLASSES, PATTERNS, SHAPES, SPLIT_FILE,
                    SPLITS, class_folder, list_class_names,
                    parse_class_name, split_base_novel)
from .render import (generate_caption_pairs, iter_caption_pairs,
                     make_caption, render_image)
from .writers import (UNLABELED_CLASSES_FILE, generate_coop_dataset,
                      generate_unlabeled_images)

__all__ = [
    'COLOURS', 'COLOUR_RGB', 'PATTERNS', 'SHAPES', 'CAPTION_TEMPLATES',
    'DOMAINS', 'SPLITS', 'MIN_CLASSES', 'MAX_CLASSES', 'IMAGE_DIR',
    'SPLIT_FILE', 'CLASSNAMES_FILE', 'MARKER_FILE', 'FORMAT_VERSION',
    'UNLABELED_CLASSES_FILE', 'list_class_names',
    'split_base_novel', 'parse_class_name', 'class_folder', 'render_image',
    'make_caption', 'iter_caption_pairs', 'generate_caption_pairs',
    'generate_coop_dataset', 'generate_unlabeled_images'
]
