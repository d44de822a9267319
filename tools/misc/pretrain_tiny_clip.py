"""Contrastive pre-training of the tiny CLIPs (teacher, student, SigLIP-style)
on the shifted 'pretrain' domain of the synthetic shapes; the command that
made them and their outputs: ``checkpoints/tiny_clip/README.md``.
"""
import argparse
import hashlib
import math
import os
import os.path as osp
import re
import shutil
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from torch import nn

_REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
for _path in (_REPO_ROOT, osp.dirname(osp.abspath(__file__))):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import synthetic_shapes as shapes  # noqa: E402
from mmpromptkd.fileio import atomic_write, temporary_path  # noqa: E402
from mmpromptkd.models.clip.tiny_timm_vit import \
    register_tiny_shapes_vit  # noqa: E402

DEFAULT_MODEL_CFG = osp.join(_REPO_ROOT, 'configs', '_base_', 'models',
                             'promptkd_tiny-clip.py')
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MAX_LOGIT_SCALE = 100.0
# The config variable of each model and its output file.
MODELS = {
    'teacher': ('tiny_teacher_clip', 'tiny_clip_teacher.pth'),
    'student': ('tiny_student_clip', 'tiny_clip_student.pth'),
    'siglip': ('tiny_siglip_clip', 'tiny_siglip_clip.pth'),
}
# SigLIP's initial logit scale (the bias comes from the model config).
SIGLIP_INIT_LOGIT_SCALE = 10.0
SUMS_FILE = 'SHA256SUMS'
EVAL_PROMPT = 'a photo of a {}.'

_CLASS_RE = re.compile(r'\b({})\s+({})\s+({})\b'.format(
    '|'.join(shapes.COLOURS), '|'.join(shapes.PATTERNS),
    '|'.join(shapes.SHAPES)))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Contrastively pre-train the tiny teacher / student '
        'CLIPs on the shifted synthetic-shapes domain.')
    add = parser.add_argument
    add('--out-dir', default=osp.join('work_dirs', 'tiny_clip'),
        help='where the .pth files and SHA256SUMS are written (default: '
        'work_dirs/tiny_clip; the shipped weights are checkpoints/tiny_clip)')
    add('--force', action='store_true',
        help='replace existing .pth files and SHA256SUMS in --out-dir')
    add('--which', choices=('teacher', 'student', 'both', 'siglip'),
        default='both',
        help='both = teacher and student; siglip = the second-family '
        'model (timm tower, sigmoid loss)')
    add('--model-cfg', default=DEFAULT_MODEL_CFG,
        help='python config file defining tiny_teacher_clip, '
        'tiny_student_clip and tiny_siglip_clip (open_clip config dicts)')
    add('--steps', type=int, default=None,
        help='optimisation steps of each model (default: per model, see '
        '--teacher-steps / --student-steps)')
    add('--teacher-steps', type=int, default=500)
    add('--student-steps', type=int, default=200)
    add('--siglip-steps', type=int, default=400)
    add('--batch-size', type=int, default=128,
        help='pairs per step; every pair of a batch has a different class, '
        f'so at most {shapes.MAX_CLASSES}')
    add('--lr', type=float, default=1e-3)
    add('--weight-decay', type=float, default=0.05)
    add('--warmup-frac', type=float, default=0.05,
        help='fraction of the steps with a linear learning-rate warm-up')
    add('--images-per-class', type=int, default=48,
        help='pre-training images rendered per class (cached as uint8)')
    add('--seed', type=int, default=0)
    add('--threads', type=int, default=1,
        help='torch intra-op threads (1 was faster than 2 on the 2-core '
        'machine these weights were made on; results depend on it)')
    add('--eval-per-class', type=int, default=50,
        help='target-domain test images per class for the zero-shot report '
        '(50 = the test split of the default dataset; 0 skips it)')
    add('--eval-classes', type=int, default=40)
    add('--log-interval', type=int, default=50)
    args = parser.parse_args(argv)
    if not 1 <= args.batch_size <= shapes.MAX_CLASSES:
        parser.error(f'--batch-size must be in [1, {shapes.MAX_CLASSES}]')
    for name in ('steps', 'teacher_steps', 'student_steps', 'siglip_steps'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} must be positive')
    if args.images_per_class < 1 or args.seed < 0 or args.threads < 1:
        parser.error('--images-per-class and --threads must be positive '
                     'and --seed non-negative')
    return args


def load_model_cfgs(path: str, which: Sequence[str]) -> Dict[str, dict]:
    """Model config dicts (by keys of :data:`MODELS`) from a python config."""
    from mmengine import Config
    cfg = Config.fromfile(path)
    out = {}
    for name in which:
        var = MODELS[name][0]
        if var not in cfg:
            raise KeyError(f'{path}: no variable {var}')
        out[name] = cfg[var].to_dict() if hasattr(cfg[var], 'to_dict') \
            else dict(cfg[var])
    return out


def images_to_uint8(images: Sequence) -> torch.Tensor:
    """Stack PIL RGB images into a uint8 tensor of shape (N, 3, H, W)."""
    array = np.stack([np.asarray(im.convert('RGB')) for im in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) to CLIP-normalised float32."""
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


class CaptionData:
    """Pre-training pairs in memory; batches of distinct classes (no false
    negatives in InfoNCE)."""

    def __init__(self, images_per_class: int, image_size: int,
                 seed: int) -> None:
        num = images_per_class * shapes.MAX_CLASSES
        pairs = list(shapes.iter_caption_pairs(num, image_size=image_size,
                                               seed=seed))
        self.images = images_to_uint8([image for image, _ in pairs])
        captions = [caption for _, caption in pairs]
        # Every caption template holds the class name.
        classes = [' '.join(_CLASS_RE.search(c).groups()) for c in captions]
        self.class_names = sorted(set(classes))
        index = {name: i for i, name in enumerate(self.class_names)}
        labels = torch.tensor([index[c] for c in classes])
        self.by_class = [
            torch.nonzero(labels == c).flatten()
            for c in range(len(self.class_names))
        ]
        unique = sorted(set(captions))
        caption_index = {c: i for i, c in enumerate(unique)}
        self.caption_ids = torch.tensor([caption_index[c] for c in captions])
        self.captions = unique

    def batch(self, rng: np.random.Generator,
              batch_size: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Normalised images, turned or flipped, and their caption ids
        (shapes are drawn at any rotation, so a turn keeps the label)."""
        classes = rng.permutation(len(self.by_class))[:batch_size]
        picks = [
            int(self.by_class[c][rng.integers(len(self.by_class[c]))])
            for c in classes
        ]
        images = self.images[picks]
        turns = rng.integers(4, size=batch_size)
        flips = rng.integers(2, size=batch_size)
        out = images.clone()
        for i in range(batch_size):
            image = torch.rot90(images[i], int(turns[i]), dims=(1, 2))
            out[i] = image.flip(2) if flips[i] else image
        return normalize_images(out), self.caption_ids[picks]


def build_model(model_cfg: dict) -> nn.Module:
    """An open_clip ``CLIP`` with QuickGELU."""
    register_tiny_shapes_vit(model_cfg['vision_cfg'].get('timm_model_name'))
    return open_clip.CLIP(
        embed_dim=model_cfg['embed_dim'],
        vision_cfg=dict(model_cfg['vision_cfg']),
        text_cfg=dict(model_cfg['text_cfg']),
        init_logit_bias=model_cfg.get('init_logit_bias'),
        quick_gelu=True)


class CompactText(nn.Module):
    """Text tower over the few token ids the captions use: exact (no other
    row gets a gradient), it saves a dense AdamW update of the whole table.
    """

    def __init__(self, model: nn.Module, captions: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        tokens = open_clip.tokenize(
            list(captions), context_length=model.context_length)
        if model.attn_mask is not None and model.text_pool_type == 'argmax':
            # The end token has the largest id; nothing after it can reach
            # it through the causal mask.
            self.length = int(tokens.argmax(dim=-1).max()) + 1
        else:
            self.length = model.context_length
        tokens = tokens[:, :self.length]
        vocab = torch.unique(tokens)
        lookup = torch.full((model.vocab_size, ), -1, dtype=torch.long)
        lookup[vocab] = torch.arange(len(vocab))
        self.register_buffer('vocab', vocab)
        self.register_buffer('tokens', tokens)
        self.register_buffer('compact_tokens', lookup[tokens])
        self.table = nn.Parameter(
            model.token_embedding.weight.detach()[vocab].clone())

    def forward(self, caption_ids: torch.Tensor) -> torch.Tensor:
        model = self.model
        x = F.embedding(self.compact_tokens[caption_ids], self.table)
        x = x + model.positional_embedding[:self.length]
        mask = model.attn_mask
        if mask is not None:
            mask = mask[:self.length, :self.length]
        x = model.ln_final(model.transformer(x, attn_mask=mask))
        x = open_clip.transformer.text_global_pool(
            x, self.tokens[caption_ids], model.text_pool_type)
        if isinstance(model.text_projection, nn.Linear):
            return model.text_projection(x)
        return x @ model.text_projection

    @torch.no_grad()
    def write_back(self) -> None:
        """Put the trained rows into the full table, zeros elsewhere (rows
        never trained; zeros keep the file compressible)."""
        weight = self.model.token_embedding.weight
        weight.zero_()
        weight[self.vocab] = self.table


def param_groups(module: nn.Module, weight_decay: float) -> List[dict]:
    """AdamW groups: decay weight matrices only, not embeddings, as CLIP."""
    decay, no_decay = [], []
    for name, param in module.named_parameters():
        if param.requires_grad:
            embedding = 'embedding' in name or name.endswith('table')
            group = decay if param.ndim >= 2 and not embedding else no_decay
            group.append(param)
    return [dict(params=decay, weight_decay=weight_decay),
            dict(params=no_decay, weight_decay=0.0)]


def cosine_with_warmup(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear warm-up, then cosine decay to 0."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def clip_loss(image_features: torch.Tensor, text_features: torch.Tensor,
              logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of matching pairs."""
    image_features = F.normalize(image_features, dim=-1)
    text_features = F.normalize(text_features, dim=-1)
    logits = logit_scale.exp() * image_features @ text_features.t()
    target = torch.arange(logits.shape[0])
    return 0.5 * (F.cross_entropy(logits, target) +
                  F.cross_entropy(logits.t(), target))


def sigmoid_loss(image_features: torch.Tensor,
                 text_features: torch.Tensor, logit_scale: torch.Tensor,
                 logit_bias: torch.Tensor) -> torch.Tensor:
    """SigLIP's pairwise sigmoid loss (open_clip's, on one process)."""
    return open_clip.loss.SigLipLoss()(
        F.normalize(image_features, dim=-1),
        F.normalize(text_features, dim=-1), logit_scale.exp(), logit_bias)


def train_model(model_cfg: dict, data: CaptionData, steps: int,
                args: argparse.Namespace, name: str) -> nn.Module:
    """Pre-train one CLIP from scratch, depending on ``args.seed`` only."""
    torch.manual_seed(args.seed)
    model = build_model(model_cfg)
    text = CompactText(model, data.captions)
    sigmoid = model.logit_bias is not None
    if sigmoid:
        with torch.no_grad():
            model.logit_scale.fill_(math.log(SIGLIP_INIT_LOGIT_SCALE))
    # The full table is replaced by text.table during training.
    model.token_embedding.weight.requires_grad_(False)
    model.train()
    optimizer = torch.optim.AdamW(param_groups(text, args.weight_decay),
                                  lr=args.lr, betas=(0.9, 0.98), eps=1e-6)
    warmup = max(1, round(args.warmup_frac * steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: cosine_with_warmup(s, steps, warmup))
    rng = np.random.default_rng([args.seed, 7])
    params = sum(p.numel() for p in model.parameters())
    print(f'[{name}] {params / 1e6:.2f} M parameters '
          f'({text.vocab.numel()} token rows trained), {steps} steps of '
          f'{args.batch_size} pairs', flush=True)
    start = time.time()
    running = 0.0
    for step in range(steps):
        images, caption_ids = data.batch(rng, args.batch_size)
        image_features = model.encode_image(images)
        text_features = text(caption_ids)
        if sigmoid:
            loss = sigmoid_loss(image_features, text_features,
                                model.logit_scale, model.logit_bias)
        else:
            loss = clip_loss(image_features, text_features,
                             model.logit_scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(text.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(MAX_LOGIT_SCALE))
        running += loss.item()
        if (step + 1) % args.log_interval == 0 or step + 1 == steps:
            count = (step % args.log_interval) + 1
            print(f'[{name}] step {step + 1}/{steps} '
                  f'loss {running / count:.4f} '
                  f'scale {model.logit_scale.exp().item():.1f} '
                  f'lr {scheduler.get_last_lr()[0]:.2e} '
                  f'{time.time() - start:.0f}s', flush=True)
            running = 0.0
    text.write_back()
    model.token_embedding.weight.requires_grad_(True)
    check_text_equivalence(model, text)
    return model.eval()


@torch.no_grad()
def check_text_equivalence(model: nn.Module, text: CompactText) -> None:
    """The training text path must equal ``CLIP.encode_text`` exactly."""
    model.eval()
    ids = torch.arange(min(8, text.compact_tokens.shape[0]))
    tokens = torch.zeros(len(ids), model.context_length, dtype=torch.long)
    tokens[:, :text.length] = text.tokens[ids]
    expected = model.encode_text(tokens)
    got = text(ids)
    if not torch.allclose(got, expected, atol=1e-5, rtol=1e-4):
        raise RuntimeError('the truncated training text path differs from '
                           'CLIP.encode_text')


@torch.no_grad()
def zero_shot_report(model: nn.Module, images: torch.Tensor,
                     labels: torch.Tensor,
                     class_names: Sequence[str]) -> Dict[str, float]:
    """Zero-shot accuracy (%): base and novel among their own half's
    prompts, HM, and ``all`` over every class."""
    model.eval()
    tokens = open_clip.tokenize([EVAL_PROMPT.format(n) for n in class_names],
                                context_length=model.context_length)
    text = F.normalize(model.encode_text(tokens), dim=-1)
    image = torch.cat([
        F.normalize(model.encode_image(chunk), dim=-1)
        for chunk in images.split(256)
    ])
    logits = image @ text.t()
    n_base = math.ceil(len(class_names) / 2)
    base = labels < n_base
    acc_base = (logits[base, :n_base].argmax(1) == labels[base]).float()
    acc_novel = (logits[~base, n_base:].argmax(1) + n_base ==
                 labels[~base]).float()
    acc_all = (logits.argmax(1) == labels).float()
    b, n = 100 * acc_base.mean().item(), 100 * acc_novel.mean().item()
    hm = 2 * b * n / (b + n) if b + n > 0 else 0.0
    return dict(base=b, novel=n, hm=hm, all=100 * acc_all.mean().item())


def main(argv: Optional[List[str]] = None) -> Dict[str, dict]:
    args = parse_args(argv)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _run(args)
    finally:
        torch.set_num_threads(previous_threads)


def _run(args: argparse.Namespace) -> Dict[str, dict]:
    total_start = time.time()
    which = ['teacher', 'student'] if args.which == 'both' else [args.which]
    cfgs = load_model_cfgs(args.model_cfg, which)
    image_size = cfgs[which[0]]['vision_cfg']['image_size']
    if any(cfgs[w]['vision_cfg']['image_size'] != image_size for w in which):
        raise ValueError('teacher and student must share the image size')
    # Refused before any training: files replaced only with --force.
    out_dir = args.out_dir
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise SystemExit(f'--out-dir {out_dir} is a file, not a folder')
    existing = [osp.join(out_dir, n)
                for n in [MODELS[name][1] for name in which] + [SUMS_FILE]
                if osp.lexists(osp.join(out_dir, n))]
    if existing and not args.force:
        raise SystemExit(f'{", ".join(existing)} exist(s); refusing to '
                         'replace (pass --force, or choose another '
                         '--out-dir)')
    os.makedirs(out_dir, exist_ok=True)

    start = time.time()
    data = CaptionData(args.images_per_class, image_size, args.seed)
    print(f'rendered {len(data.images)} pre-training pairs '
          f'({len(data.class_names)} classes, {len(data.captions)} '
          'distinct captions) in '
          f'{time.time() - start:.1f}s', flush=True)

    results = {}
    for name in which:
        steps = args.steps or getattr(args, f'{name}_steps')
        start = time.time()
        model = train_model(cfgs[name], data, steps, args, name)
        seconds = time.time() - start
        path = osp.join(args.out_dir, MODELS[name][1])
        # Whole, through a temporary folder; the same file name, which
        # torch.save gives its archive: the bytes of a plain torch.save.
        tmp = temporary_path(path)
        os.makedirs(tmp)
        try:
            staged = osp.join(tmp, osp.basename(path))
            torch.save({
                k: v.detach().to(torch.float16).contiguous().clone()
                for k, v in model.state_dict().items()
            }, staged)
            os.replace(staged, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        results[name] = dict(path=path, seconds=seconds, steps=steps)
        print(f'[{name}] trained in {seconds:.0f}s, saved {path} '
              f'({osp.getsize(path) / 2**20:.1f} MiB)', flush=True)
    # SHA256SUMS of the .pth files present.
    sums = ''
    for name in sorted(f for _, f in MODELS.values()):
        path = osp.join(args.out_dir, name)
        if osp.isfile(path):
            with open(path, 'rb') as f:
                sums += f'{hashlib.sha256(f.read()).hexdigest()}  {name}\n'
    atomic_write(sums, osp.join(args.out_dir, SUMS_FILE))
    print(f'wrote {osp.join(args.out_dir, SUMS_FILE)}', flush=True)

    if args.eval_per_class > 0:
        # The test split of generate_coop_dataset (seed 0).
        names = shapes.list_class_names(args.eval_classes)
        images = normalize_images(images_to_uint8([
            shapes.render_image(name, image_size, seed=0, split='test',
                                index=i)
            for name in names for i in range(args.eval_per_class)
        ]))
        labels = torch.arange(args.eval_classes).repeat_interleave(
            args.eval_per_class)
        print(f'zero-shot on the target-domain test split '
              f'({args.eval_classes} classes x {args.eval_per_class} images, '
              f'prompt "{EVAL_PROMPT}"):')
        for name in which:
            # As it will be used: rebuilt from the fp16 file.
            model = build_model(cfgs[name])
            state = torch.load(results[name]['path'], map_location='cpu',
                               weights_only=True)
            model.load_state_dict({k: v.float() for k, v in state.items()})
            acc = zero_shot_report(model, images, labels, names)
            results[name].update(acc)
            print(f'  {name:8s} base {acc["base"]:5.1f}  novel '
                  f'{acc["novel"]:5.1f}  HM {acc["hm"]:5.1f}  '
                  f'(all {args.eval_classes}-way {acc["all"]:5.1f})',
                  flush=True)
    print(f'total wall time {time.time() - total_start:.0f}s', flush=True)
    return results


if __name__ == '__main__':
    main()
