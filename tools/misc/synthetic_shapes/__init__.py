"""A deterministic synthetic image domain in CoOp format; see
docs/synthetic_shapes.md."""
from .names import (CAPTION_TEMPLATES, CLASSNAMES_FILE,  # noqa: F401
                    COLOUR_RGB, COLOURS, DOMAINS, FORMAT_VERSION, IMAGE_DIR,
                    MARKER_FILE, MAX_CLASSES, MIN_CLASSES, PATTERNS, SHAPES,
                    SPLIT_FILE, SPLITS, class_folder, list_class_names,
                    parse_class_name, split_base_novel)
from .render import (generate_caption_pairs,  # noqa: F401
                     iter_caption_pairs, make_caption, render_image)
from .writers import (UNLABELED_CLASSES_FILE,  # noqa: F401
                      generate_coop_dataset, generate_unlabeled_images)
