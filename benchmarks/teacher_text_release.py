"""Memory of a training run with the teacher, without its text tower, or none.

Three fresh processes; see docs/performance.md."""
from benchmarks.common import arg_parser, run_snippet

#: One run: build, store the features, train, report memory (MiB).
_RUN = '''
import json, torch
import mmpromptkd
from benchmarks.common import distiller_cfg, status_mib
from mmpromptkd.registry import MODELS
from mmpretrain.structures import DataSample
arch, mode = sys.argv[1:3]
steps, classes = int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(0)
cfg = dict(distiller_cfg(arch), release_teacher_text_tower=mode == 'released')
names = [f'class {i}' for i in range(classes)]
size = cfg['student']['clip']['model_cfg']['vision_cfg']['image_size']
images = torch.randn(2, 3, size, size)
samples, released = None, 0
if mode == 'cached':
    dim = cfg['teacher']['clip']['model_cfg']['embed_dim']
    cfg = dict(cfg, teacher=None, projector=dict(type='FeatureProjector',
                                                 out_channels=dim))
    model = MODELS.build(cfg)
    text = torch.nn.functional.normalize(torch.randn(classes, dim), dim=-1)
    model.use_cached_text_features(names, text)
    samples = [DataSample(teacher_logits=torch.randn(classes))
               for _ in images]
else:
    model = MODELS.build(cfg)
    teacher = sum(p.numel() for p in model.teacher.parameters())
    model.prepare_text_features(names, True)
    released = teacher - sum(p.numel() for p in model.teacher.parameters())
model.train()
params = [p for p in model.parameters() if p.requires_grad]
optimizer = torch.optim.SGD(params, lr=0.005)
for _ in range(steps):
    optimizer.zero_grad()
    model.loss(images, samples)['loss_kd'].backward()
    optimizer.step()
print('RESULT', json.dumps(dict(
    released_params=released, rss_mib=status_mib('VmRSS'),
    peak_mib=status_mib('VmHWM'))))
'''


def main(argv=None) -> dict:
    """Measure the three ways and print the table."""
    args = arg_parser(__doc__, arch='tiny', steps=3,
                      classes=100).parse_args(argv)
    kept, released, cached = (
        run_snippet(_RUN, args.arch, mode, args.steps, args.classes)
        for mode in ('kept', 'released', 'cached'))
    print(f'{args.arch}: {args.steps} training steps (batch 2) after storing '
          f'{args.classes} classes, fresh process each')
    print(f'{"":28s} {"resident MiB":>12s} {"peak MiB":>9s}')
    for name, fig in (('text tower kept', kept), ('released', released),
                      ('no teacher (teacher cache)', cached)):
        print(f'{name:28s} {fig["rss_mib"]:12.1f} {fig["peak_mib"]:9.1f}')
    print(f'released {released["released_params"] / 1e6:.1f} M teacher '
          f'parameters; resident memory '
          f'{kept["rss_mib"] - released["rss_mib"]:.1f} MiB lower '
          f'({kept["rss_mib"] / released["rss_mib"]:.2f}x); without the '
          f'teacher {kept["rss_mib"] - cached["rss_mib"]:.1f} MiB lower '
          f'({kept["rss_mib"] / cached["rss_mib"]:.2f}x)')
    return dict(kept=kept, released=released, cached=cached)
