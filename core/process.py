"""Is a worker process still running? One portable answer for jobs and run folders.

psutil reads the process table on Linux, macOS and Windows alike; a zombie (exited, not yet
reaped) counts as gone, and a ``marker`` guards against a reused PID: the process must still
have it in its command line (a job's run name), or it is some other program now.
"""

from __future__ import annotations

import psutil


def pid_alive(pid: int | None, marker: str | None = None) -> bool:
    if not pid:
        return False
    try:
        proc = psutil.Process(int(pid))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if marker is None:
            return True
        return any(marker in part for part in proc.cmdline())
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # someone else's process: alive, but not ours
        return marker is None
    except (ValueError, OverflowError):
        return False
