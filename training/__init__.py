"""The training recipe: corpus -> performances -> audio -> windows -> network -> bundle."""

from __future__ import annotations

import hashlib
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


def hash_share(text: str) -> float:
    """A share in [0, 1] fixed by ``text`` (SHA-1): splits and subsets by name stay the same
    on every machine and run, whole works at a time."""
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
