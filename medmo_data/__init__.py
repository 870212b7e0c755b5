"""medmo-data: the 45 MedMO sources as clean, sharded WebDataset tars in one chat schema."""

__version__ = "0.1.0"
