"""The helpers module of the unlabeled-data tests sits next to this file."""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
