"""Samples, datasets, readers and validation. Imports nothing of miakit but miakit.errors."""

from miakit.data.readers import load_dataset
from miakit.data.sample import MembershipDataset, Sample
from miakit.data.validate import dataset_warnings

__all__ = ["MembershipDataset", "Sample", "dataset_warnings", "load_dataset"]
