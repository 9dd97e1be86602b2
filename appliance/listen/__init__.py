"""Hearing the room: front end, engine, smoothing."""

from __future__ import annotations

from pathlib import Path

from appliance.config import default_engine_dir
from appliance.listen.bundle import Bundle, BundleError, load_bundle
from appliance.listen.engine import open_engine
from appliance.listen.listener import Listener, Smoothing


def open_listener(engine_dir: Path | str | None = None, *, backend: str = "auto",
                  threads: int = 1) -> Listener:
    bundle = load_bundle(Path(engine_dir) if engine_dir else default_engine_dir())
    return Listener(open_engine(bundle, backend, threads=threads))


__all__ = ["Bundle", "BundleError", "Listener", "Smoothing", "default_engine_dir",
           "load_bundle", "open_listener"]
