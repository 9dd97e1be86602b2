"""Fault injection for the crash-consistency test only, like the daemon's test stall hook.

``APPLIANCE_TEST_CRASH_AT=N`` kills this process with SIGKILL when it reaches its Nth step
(or the step of that name): the test runs a store command once per N and checks, after
each kill, that the store still opens a complete engine. Never set on a real box.
"""

from __future__ import annotations

import os
import signal
import sys

ENV = "APPLIANCE_TEST_CRASH_AT"
_reached = 0


def step(name: str) -> None:
    """Mark that a store command has reached ``name``; a no-op unless the hook is set."""
    global _reached
    spec = os.environ.get(ENV)
    if not spec:
        return
    _reached += 1
    if spec in (str(_reached), name):
        sys.stderr.write(f"crash hook: SIGKILL at step {_reached} ({name})\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
