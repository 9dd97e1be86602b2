"""The config file and the schema validator behind it."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import config as config_module
from appliance.config import SCHEMA, load_config, repo_root
from appliance.schema import Field, Problem, render_defaults, validate


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "appliance.toml"
    path.write_text(text)
    return path


def test_no_file_at_the_default_path_gives_the_demo_defaults(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(config_module, "DEFAULT_PATH", tmp_path / "absent.toml")
    config, problems = load_config(None)
    assert problems == []
    assert config.audio.source == "alsa:default" and config.audio.rate == 48000
    assert config.audio.format == "S16_LE" and config.audio.period_frames == 1024
    assert config.listen.engine is None  # the store's current engine
    assert config.listen.store == Path("/var/lib/appliance/engines")
    assert config.listen.trusted_keys == Path("/etc/appliance/trusted_keys")
    assert config.listen.allow_unsigned is False  # a box refuses unsigned engines by default
    assert config.service.control_socket == Path("/run/appliance/control.sock")
    assert config.show.path == repo_root() / "media" / "demo"
    assert config.display.output == "auto" and config.display.record is None
    assert config.service.events_dir == Path("/var/lib/appliance/events")
    assert config.service.log_level == "info"
    assert config.source is None


def test_missing_file_given_explicitly_is_a_problem(tmp_path: Path) -> None:
    config, problems = load_config(tmp_path / "nope.toml")
    assert len(problems) == 1 and "not found" in problems[0].message
    assert config.audio.rate == 48000


def test_values_are_read_and_relative_paths_resolved(tmp_path: Path) -> None:
    path = write(tmp_path, """
[audio]
source = "file:take.flac"
rate = 44100
format = "S32_LE"
[listen]
engine = "/var/lib/appliance/engines/current"
backend = "onnxruntime"
[show]
path = "shows/tonight"
[display]
output = "offscreen"
record = "preview.mp4"
""")
    config, problems = load_config(path)
    assert problems == []
    assert config.audio.source == f"file:{tmp_path / 'take.flac'}"
    assert config.audio.rate == 44100 and config.audio.format == "S32_LE"
    assert config.listen.engine == Path("/var/lib/appliance/engines/current")
    assert config.listen.backend == "onnxruntime"
    assert config.show.path == tmp_path / "shows" / "tonight"
    assert config.display.record == tmp_path / "preview.mp4"
    with pytest.raises(AttributeError):
        config.audio.rate = 1  # type: ignore[misc]


def test_misspelled_key_gets_did_you_mean_and_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "# box config\n\n[audio]\nchannels = 1\nrat = 44100\n")
    config, problems = load_config(path)
    (problem,) = problems
    assert problem.line == 5 and problem.key == "audio.rat"
    assert str(problem) == f"{path}:5: audio.rat: unknown key — did you mean 'audio.rate'?"
    assert config.audio.rate == 48000


def test_key_in_the_wrong_section_is_pointed_to(tmp_path: Path) -> None:
    path = write(tmp_path, "[audio]\noutput = \"kms\"\n")
    (problem,) = load_config(path)[1]
    assert "did you mean 'display.output'?" in problem.message and problem.line == 2


def test_unknown_section_gets_did_you_mean(tmp_path: Path) -> None:
    path = write(tmp_path, "[audio]\n\n[dispaly]\noutput = \"kms\"\n")
    (problem,) = load_config(path)[1]
    assert problem.line == 3 and "did you mean 'display'?" in problem.message


def test_wrong_type_is_said_in_plain_words_and_falls_back(tmp_path: Path) -> None:
    path = write(tmp_path, "[audio]\nrate = \"fast\"\n")
    config, problems = load_config(path)
    assert str(problems[0]).endswith("audio.rate: expected a whole number, got the text 'fast'")
    assert config.audio.rate == 48000


def test_out_of_range_and_not_a_choice(tmp_path: Path) -> None:
    path = write(tmp_path, "[listen]\nthreads = 0\nbackend = \"tensorrtt\"\n")
    config, problems = load_config(path)
    assert [p.line for p in problems] == [2, 3]
    assert "must be between 1 and 64, got 0" in problems[0].message
    assert "must be one of" in problems[1].message
    assert "did you mean 'tensorrt'?" in problems[1].message
    assert config.listen.threads == 1 and config.listen.backend == "auto"


def test_bad_audio_source_scheme(tmp_path: Path) -> None:
    path = write(tmp_path, "[audio]\nsource = \"hw:0\"\n")
    config, problems = load_config(path)
    assert "alsa:DEVICE" in problems[0].message and config.audio.source == "alsa:default"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, """[audio]
rate = 100
chanels = 2
format = "S24_LE"
[display]
output = 3
[service]
log_level = "verbose"
""")
    config, problems = load_config(path)
    assert [(p.line, p.key) for p in problems] == [
        (2, "audio.rate"), (3, "audio.chanels"), (4, "audio.format"),
        (6, "display.output"), (8, "service.log_level"),
    ]
    assert all(p.source == str(path) for p in problems)
    assert config.display.output == "auto"


def test_toml_syntax_error_has_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[audio]\nrate = 48000\nchannels = = 2\n")
    config, problems = load_config(path)
    (problem,) = problems
    assert problem.line == 3 and "not valid TOML" in problem.message
    assert str(problem).startswith(f"{path}:3:")
    assert config.audio.rate == 48000  # all defaults


def test_key_above_any_section_suggests_its_section() -> None:
    _, problems = validate("rate = 44100\n", SCHEMA, "x.toml")
    assert str(problems[0]) == (
        "x.toml:1: rate: unknown setting outside any [section] — did you mean 'audio.rate'?")


def test_list_fields_check_length_and_items() -> None:
    schema = {"show": {"size": Field("list", [1280, 720], length=2, item="int", minimum=16)}}
    values, problems = validate("[show]\nsize = [640, 8]\n", schema, "s.toml")
    assert "at least 16, got 8" in problems[0].message and values["show"]["size"] == [1280, 720]
    _, problems = validate("[show]\nsize = [640]\n", schema, "s.toml")
    assert "a list of 2 whole numbers, got 1 item" in problems[0].message
    values, problems = validate("[show]\nsize = [640, 360]\n", schema, "s.toml")
    assert problems == [] and values["show"]["size"] == [640, 360]


def test_required_key_missing() -> None:
    schema = {"main": {"film": Field("path", "", "the main film", required=True)}}
    _, problems = validate("[main]\n", schema, "show.toml")
    assert problems[0].key == "main.film" and "missing" in problems[0].message
    assert problems[0].line == 1


def test_problem_without_line() -> None:
    assert str(Problem("a.toml", None, "x.y", "bad")) == "a.toml: x.y: bad"


def test_rendered_defaults_validate_cleanly() -> None:
    values, problems = validate(render_defaults(SCHEMA), SCHEMA, "defaults")
    assert problems == []
    assert values["audio"]["rate"] == 48000 and values["service"]["log_level"] == "info"
