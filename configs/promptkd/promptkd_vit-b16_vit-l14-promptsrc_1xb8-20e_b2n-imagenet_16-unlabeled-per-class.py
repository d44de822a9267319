_base_ = ['./promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet.py']

# Fewer unlabeled images: 16 per class of the train split, drawn
# deterministically with the run's seed.
train_dataloader = dict(dataset=dict(num_shots=16))
