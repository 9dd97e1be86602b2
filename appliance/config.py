"""The box's one config file (/etc/appliance/appliance.toml).

Every key has a built-in default, so the demo runs with no file at all. The file is checked
against :data:`SCHEMA` with :func:`appliance.schema.validate`: every problem is reported at
once, and a bad value falls back to its default so the box still comes up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.schema import Field, Problem, Schema, validate

DEFAULT_PATH = Path("/etc/appliance/appliance.toml")
DEFAULT_ENGINE_NAME = "current"
"""The shipped engine bundle: ``engines/current`` beside the ``appliance`` package."""
DEMO_SHOW = Path("media") / "demo"


def _check_source(value: str) -> str | None:
    scheme, sep, rest = value.partition(":")
    if not sep or scheme not in ("alsa", "file"):
        return f"expected 'alsa:DEVICE' or 'file:PATH', got {value!r}"
    if not rest:
        return f"'{scheme}:' needs a {'device' if scheme == 'alsa' else 'file path'} after it"
    return None


SCHEMA: Schema = {
    "audio": {
        "source": Field("str", "alsa:default", "alsa:DEVICE or file:PATH",
                        check=_check_source),
        "rate": Field("int", 48000, "device sample rate (Hz)", minimum=8000, maximum=192000),
        "channels": Field("int", 1, "channels captured (mixed to mono)", minimum=1, maximum=32),
        "period_frames": Field("int", 1024, "ALSA period size (frames)",
                               minimum=32, maximum=65536),
        "format": Field("str", "S16_LE", "ALSA sample format", choices=("S16_LE", "S32_LE")),
    },
    "listen": {
        "engine": Field("path", "", "a bundle folder to run instead of the store's current "
                        "engine; empty = the store"),
        "backend": Field("str", "auto", "inference backend",
                         choices=("auto", "tensorrt", "onnxruntime")),
        "threads": Field("int", 1, "CPU threads for inference", minimum=1, maximum=64),
        "store": Field("path", "/var/lib/appliance/engines",
                       "the engine store (installed bundles, current and previous)"),
        "trusted_keys": Field("path", "/etc/appliance/trusted_keys",
                              "folder of ed25519 public keys (*.pub) whose bundles are accepted"),
        "allow_unsigned": Field("bool", False, "accept bundles that carry no signature "
                                "(development only; a box refuses them)"),
        "max_bundle_mb": Field("int", 256, "largest bundle an install unpacks (tar bomb guard)",
                               minimum=1, maximum=16384),
    },
    "show": {
        "path": Field("path", "", "show folder; empty = the demo show"),
    },
    "display": {
        "output": Field("str", "auto", "where the film goes",
                        choices=("auto", "kms", "window", "offscreen")),
        "record": Field("path", "", "also record the output to this MP4; empty = don't"),
        "compositor": Field("str", "software", "what lays the film's layers together",
                            choices=("software", "gpu", "auto")),
    },
    "service": {
        "events_dir": Field("path", "/var/lib/appliance/events",
                            "show events: one JSON-lines file per show, rotated"),
        "events_max_kb": Field("int", 16384, "rotate a show's events file at this size (KiB)",
                               minimum=1, maximum=1048576),
        "events_keep": Field("int", 8, "rotated events files kept per show (oldest removed)",
                             minimum=0, maximum=1000),
        "safe_mode_after": Field("int", 5, "failed starts within safe_mode_window_s before "
                                 "safe mode (film without listening); 0 = never",
                                 minimum=0, maximum=1000),
        "safe_mode_window_s": Field("float", 600.0, "how recent a failed start must be to count",
                                    minimum=10, maximum=86400),
        "log_level": Field("str", "info", "log verbosity",
                           choices=("debug", "info", "warning", "error")),
        "control_socket": Field("path", "/run/appliance/control.sock",
                                "local socket for status and reload (no network port); "
                                "empty = none"),
        "control_group": Field("str", "appliance-admin",
                               "group that may use the control socket (mode 0660)"),
        "metrics_file": Field("path", "/var/lib/appliance/metrics/appliance.prom",
                              "Prometheus text-format metrics for node_exporter's textfile "
                              "collector (no network port); empty = none"),
    },
}


@dataclass(frozen=True)
class AudioConfig:
    source: str = "alsa:default"
    rate: int = 48000
    channels: int = 1
    period_frames: int = 1024
    format: str = "S16_LE"


@dataclass(frozen=True)
class ListenConfig:
    engine: Path | None  # a bundle folder given explicitly; None = the store's current engine
    backend: str = "auto"
    threads: int = 1
    store: Path = Path("/var/lib/appliance/engines")
    trusted_keys: Path = Path("/etc/appliance/trusted_keys")
    allow_unsigned: bool = False
    max_bundle_mb: int = 256


@dataclass(frozen=True)
class ShowConfig:
    path: Path  # resolved: the demo show when the file leaves it empty


@dataclass(frozen=True)
class DisplayConfig:
    output: str = "auto"
    record: Path | None = None
    compositor: str = "software"  # software (pygame blits) | gpu (SDL renderer) | auto


@dataclass(frozen=True)
class ServiceConfig:
    events_dir: Path = Path("/var/lib/appliance/events")
    log_level: str = "info"
    control_socket: Path | None = Path("/run/appliance/control.sock")
    control_group: str = "appliance-admin"
    events_max_kb: int = 16384
    events_keep: int = 8
    safe_mode_after: int = 5
    safe_mode_window_s: float = 600.0
    metrics_file: Path | None = Path("/var/lib/appliance/metrics/appliance.prom")


@dataclass(frozen=True)
class Config:
    audio: AudioConfig
    listen: ListenConfig
    show: ShowConfig
    display: DisplayConfig
    service: ServiceConfig
    source: Path | None = None  # the file these values came from; None = built-in defaults


def repo_root() -> Path:
    """The folder holding ``appliance/``, ``engines/``, ``media/`` (/opt/appliance on the box)."""
    return Path(__file__).resolve().parent.parent


def default_engine_dir() -> Path:
    return repo_root() / "engines" / DEFAULT_ENGINE_NAME


def demo_show_dir() -> Path:
    return repo_root() / DEMO_SHOW


def _resolve(value: Any, base: Path) -> Path | None:
    """Empty -> None; relative paths are taken relative to the config file's folder."""
    if value in ("", None):
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


def _resolve_default(values: dict[str, dict[str, Any]], section: str, key: str,
                     base: Path) -> Path:
    """A path key that is never "not set": empty means the schema's default."""
    return _resolve(values[section][key], base) or Path(SCHEMA[section][key].default)


def config_from_values(values: dict[str, dict[str, Any]], base: Path,
                       source: Path | None = None) -> Config:
    """Build the dataclass tree from validated values, resolving defaults and relative paths."""
    audio, listen, show = values["audio"], values["listen"], values["show"]
    display, service = values["display"], values["service"]
    audio_source = audio["source"]
    if audio_source.startswith("file:"):
        audio_source = f"file:{_resolve(audio_source[5:], base)}"
    return Config(
        audio=AudioConfig(audio_source, audio["rate"], audio["channels"],
                          audio["period_frames"], audio["format"]),
        listen=ListenConfig(_resolve(listen["engine"], base), listen["backend"],
                            listen["threads"], _resolve_default(values, "listen", "store", base),
                            _resolve_default(values, "listen", "trusted_keys", base),
                            listen["allow_unsigned"], listen["max_bundle_mb"]),
        show=ShowConfig(_resolve(show["path"], base) or demo_show_dir()),
        display=DisplayConfig(display["output"], _resolve(display["record"], base),
                              display["compositor"]),
        service=ServiceConfig(_resolve_default(values, "service", "events_dir", base),
                              service["log_level"], _resolve(service["control_socket"], base),
                              service["control_group"], service["events_max_kb"],
                              service["events_keep"],
                              metrics_file=_resolve(service["metrics_file"], base),
                              safe_mode_after=service["safe_mode_after"],
                              safe_mode_window_s=service["safe_mode_window_s"]),
        source=source,
    )


def default_config() -> Config:
    """The built-in defaults: the demo show, the shipped engine, the default ALSA device."""
    values, _ = validate("", SCHEMA, "defaults")
    return config_from_values(values, Path.cwd())


def load_config(path: Path | None = None) -> tuple[Config, list[Problem]]:
    """Read the config file; never raises for a bad file — problems come back as a list.

    ``path=None`` means the default path, which may be missing (built-in defaults are used).
    A path given explicitly that does not exist is a problem (probably a typo on the command
    line), and the defaults are used.
    """
    explicit = path is not None
    path = Path(path) if path is not None else DEFAULT_PATH
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if not explicit:
            return default_config(), []
        return default_config(), [Problem(name, None, "", "config file not found")]
    except (OSError, UnicodeDecodeError) as error:
        return default_config(), [Problem(name, None, "", f"cannot read config file: {error}")]
    values, problems = validate(text, SCHEMA, name)
    return config_from_values(values, path.resolve().parent, source=path), problems
