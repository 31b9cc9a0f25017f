"""Shared by the example workers: note this process in $RECORD_DIR (if set).

Tests read the files to learn which pid holds which slot; outside tests the
variable is unset and nothing is written.
"""
from __future__ import annotations

import json
import os
import time


def record(event: str = "start", **extra: object) -> None:
    directory = os.environ.get("RECORD_DIR")
    if not directory:
        return
    data = {"event": event, "slot": os.environ.get("PODSUP_WORKER_ID"), "pid": os.getpid(),
            "pgid": os.getpgid(0), "workers": os.environ.get("PODSUP_WORKERS"), "time": time.time()}
    data.update(extra)
    path = os.path.join(directory, f"{event}.{os.getpid()}.json")
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(path + ".tmp", path)  # readers never see a half-written file
