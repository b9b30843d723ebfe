"""prefopt: preference optimization that measures DPO's 3D-properties on every run."""

__version__ = "0.1.0"
