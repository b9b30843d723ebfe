"""prefopt: preference optimization that measures DPO's 3D-properties on every run.

The CLI (`prefopt dpo --recipe R`) and the Python API (`prefopt.train(R)`, `prefopt.generate`, `prefopt.judge`,
`prefopt.load`, `prefopt.run`; see prefopt/api.py) run the same code. The API is imported on first use, so
`import prefopt` stays light.
"""

__version__ = "0.1.0"
API = ("train", "generate", "judge", "load", "run", "accuracy")


def __getattr__(name: str):
    if name in API:
        from prefopt import api

        return getattr(api, name)
    raise AttributeError(f"module 'prefopt' has no attribute {name!r}")
