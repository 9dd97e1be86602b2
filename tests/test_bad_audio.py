"""Audio files that are empty, cut short, of odd rates or channel counts, or not audio at
all: `classify` and `simulate` say what is wrong in words and exit non-zero; the daemon's
file source takes them as "no input" and the film plays on."""

from __future__ import annotations

import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _wav(path: Path, rate: int, channels: int, seconds: float) -> Path:
    n = int(rate * seconds)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes((np.random.default_rng(0).normal(0, 3000, n * channels))
                      .astype("<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """name -> (file, words the complaint must contain)."""
    d = tmp_path_factory.mktemp("bad_audio")
    (d / "empty.wav").write_bytes(b"")
    (d / "text.flac").write_text("this is a shopping list, not a recording\n")
    ok = _wav(d / "ok.wav", 16000, 1, 4.0).read_bytes()
    (d / "header_only.wav").write_bytes(ok[:30])
    flac = d / "ok.flac"
    subprocess.run([sys.executable, "-c", f"""
import av, numpy as np
with av.open({str(flac)!r}, 'w') as c:
    s = c.add_stream('flac', rate=16000, layout='mono')
    x = (np.sin(np.arange(16000 * 20) * 0.1) * 3000).astype('<i2')[None]
    for i in range(0, x.shape[1], 4000):
        f = av.AudioFrame.from_ndarray(x[:, i:i + 4000], format='s16', layout='mono')
        f.rate = 16000
        for p in s.encode(f): c.mux(p)
    for p in s.encode(None): c.mux(p)
"""], check=True)
    (d / "cut.flac").write_bytes(flac.read_bytes()[: flac.stat().st_size // 4])
    return {
        "empty": (d / "empty.wav", "empty"),
        "not audio": (d / "text.flac", "not an audio file"),
        "header only": (d / "header_only.wav", "not an audio file"),
        "cut short": (d / "cut.flac", "cut short"),
        "too short": (_wav(d / "blip.wav", 16000, 1, 0.01), "too short"),
        "1 kHz": (_wav(d / "phone.wav", 1000, 1, 4.0), "1000 Hz is too low"),
        "40 channels": (_wav(d / "ch40.wav", 16000, 40, 1.0), "40 channels"),
    }


def _appliance(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=300)


def test_classify_says_what_is_wrong_with_each_file_and_exits_non_zero(bad):
    r = _appliance("classify", *[str(p) for p, _ in bad.values()])
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "Errno" not in r.stderr, r.stderr
    for name, (path, words) in bad.items():
        line = next((x for x in r.stderr.splitlines() if str(path) in x), "")
        assert words in line, f"{name}: {line!r}\n{r.stderr}"


@pytest.mark.parametrize("name", ["not audio", "cut short", "1 kHz"])
def test_simulate_says_what_is_wrong_and_exits_non_zero(bad, name):
    path, words = bad[name]
    r = _appliance("simulate", "--audio", str(path))
    assert r.returncode != 0 and words in r.stderr, r.stdout + r.stderr
    assert "Traceback" not in r.stderr


def test_the_daemon_takes_a_bad_file_as_no_input_and_plays_on(bad, tmp_path, band_bundle):
    from tests.conftest import make_tiny_show
    from tests.test_daemon import Daemon

    make_tiny_show(tmp_path / "show")
    (tmp_path / "appliance.toml").write_text(f"""\
[audio]
source = "file:{bad['not audio'][0]}"
[listen]
engine = "{band_bundle}"
[show]
path = "{tmp_path / 'show'}"
[display]
output = "offscreen"
[service]
events_dir = "{tmp_path / 'events'}"
control_socket = ""
metrics_file = "{tmp_path / 'metrics.prom'}"
""")
    (tmp_path / "d").mkdir()
    d = Daemon(tmp_path / "appliance.toml", tmp_path / "d", WATCHDOG_USEC="2000000",
               WATCHDOG_PID="")
    try:
        ready = d.wait_for("READY=1", timeout=60)
        d.collect(3.0)
        msgs = [m for t, m in d.messages if t > ready]
        status = [m for _, m in d.messages if m.startswith("STATUS=")]
        assert status and "input no input: " in status[0] and "not an audio file" in status[0]
        assert msgs.count("WATCHDOG=1") >= 2  # the capture loop counts as alive: no restart
        rc, _ = d.stop()
    finally:
        log = d.close()
    assert rc == 0 and "Traceback" not in log
