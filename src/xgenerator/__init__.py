"""XGenerator: train, track and serve XGBoost models asynchronously."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("xgenerator")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
