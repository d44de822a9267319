_base_ = ['./promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet.py']

# Domain generalisation: evaluate the ImageNet student on ImageNetA with
#   python tools/test.py THIS_CONFIG work_dirs/<imagenet run>/epoch_20.pth
# Its classes are a subset of ImageNet's: the stored features are used,
# no teacher is needed.
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        _scope_='mmpromptkd',
        type='CoOpImageNetA',
        data_root='data/',
        split='test',
        pipeline={{_base_.test_pipeline}}))
