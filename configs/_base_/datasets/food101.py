# Food101 in CoOp format (see docs/datasets.md for the folder layout).
_base_ = ['./coop_b2n.py']

dataset_type = 'CoOpFood101'
train_dataloader = dict(dataset=dict(type=dataset_type))
val_dataloader = dict(dataset=dict(type=dataset_type))
test_dataloader = dict(dataset=dict(type=dataset_type))
