"""The training recipe: corpus -> performances -> audio -> windows -> network -> bundle."""

from __future__ import annotations

import os
from pathlib import Path


def _shared_data() -> Path:
    """The shared corpus: TRAINING_DATA if set, else ``../shared/data`` beside the checkout,
    else the workplace's ``/work/shared/data`` (for a checkout cloned elsewhere, e.g. /tmp)."""
    if os.environ.get("TRAINING_DATA"):
        return Path(os.environ["TRAINING_DATA"])
    beside = Path(__file__).resolve().parents[2] / "shared" / "data"
    return beside if beside.is_dir() else Path("/work/shared/data")


DATA = _shared_data()
