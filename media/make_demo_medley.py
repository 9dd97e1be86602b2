"""A medley of the demo recordings, for the example report (docs/report-example.png).

    .venv/bin/python media/make_demo_medley.py /tmp/medley.wav
    .venv/bin/appliance simulate --audio /tmp/medley.wav --log /tmp/medley.jsonl
    .venv/bin/appliance report /tmp/medley.jsonl --out docs/report-example.png

Room noise, then baroque, classical, ragtime and jazz, then room noise again: the film starts
with the baroque, the overlays follow the styles, and the decision falls in the jazz.
"""

from __future__ import annotations

import sys
import wave
from pathlib import Path

import numpy as np

from appliance.audio import open_source

RATE = 16000
AUDIO = Path(__file__).resolve().parent / "demo" / "audio"
PARTS = [("room_noise", 5), ("baroque", 20), ("classical", 15), ("ragtime", 15), ("jazz", 35),
         ("room_noise", 15)]


def main(out: str) -> None:
    chunks = []
    for name, seconds in PARTS:
        src = open_source(f"file:{AUDIO / f'{name}.flac'}", rate=RATE)
        chunks.append(src.read(seconds * RATE))
        src.close()
    pcm = (np.clip(np.concatenate(chunks), -1, 1) * 32767).astype("<i2")
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    print(f"{out}: {len(pcm) / RATE:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "medley.wav")
