"""Files the harness publishes (records, pages, figures, suggestions) get the mode an
ordinary `open()` would give them: 0666 less the process umask (0644 by default), so a
group sharing a registry can read them. `tempfile.mkstemp`, used for atomic writes, creates
files 0600 and a rename keeps that mode; `publish_mode` undoes it."""

from __future__ import annotations

import os


def umask() -> int:
    """The process umask, read without changing it (Linux: /proc/self/status)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it, and put it back at once
    os.umask(mask)
    return mask


def publish_mode(fd: int) -> None:
    """Give an open temporary file the mode a newly created file would have."""
    os.fchmod(fd, 0o666 & ~umask())
