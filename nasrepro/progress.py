"""Progress you can watch and decisions you can read while a trial runs.

Every long stage (search steps, PT/PT-Mag tuning and each decision, retraining, loading
or hashing a benchmark file) reports through a `Bar`:

- on an interactive terminal, one line redrawn in place with count, rate and ETA;
- anywhere else (a log file, a pipe, torchrun workers, Ray tasks), a plain timestamped log
  line at most every `NASREPRO_PROGRESS_INTERVAL` seconds (default 5).

Only rank 0 of a data-parallel job reports. Lines go through the `nasrepro` logger
(timestamps; `-q` keeps warnings only, `-v` adds debug lines). Decisions taken during a
stage (a PT decision, a tuning epoch) go to `event`, which the running trial routes to
MLflow as they happen (`trial_scope`).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO, TypeVar

LOGGER = logging.getLogger("nasrepro")
LEVEL_ENV = "NASREPRO_LOG_LEVEL"  # inherited by worker processes, torchrun ranks
INTERVAL_ENV = "NASREPRO_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 5.0
DATEFMT = "%Y-%m-%d %H:%M:%S"
# Libraries whose INFO lines are not ours to print (MLflow's "Creating initial MLflow
# database tables...", alembic migrations, Optuna's per-trial lines).
QUIET_LOGGERS = ("mlflow", "alembic", "optuna", "urllib3", "git")
# Loggers whose errors reach the CLI as exceptions it reports in one line: MLflow's database
# layer logs a traceback for each SQLAlchemy error it raises again (a full disk: ~60 lines).
SILENT_LOGGERS = ("mlflow.store.db.utils",)

T = TypeVar("T")
Sink = Callable[[str, dict[str, Any]], None]

_label: contextvars.ContextVar[str] = contextvars.ContextVar("nasrepro_label", default="")
_sink: contextvars.ContextVar[Sink | None] = contextvars.ContextVar("nasrepro_sink", default=None)
_bars: list[Bar] = []  # open bars, innermost last (a terminal shows the innermost)
_lock = threading.Lock()


# --------------------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------------------


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that clears the terminal bar before a line and redraws it after.
    Without a fixed stream it writes to whatever `sys.stderr` is at the time (pytest
    swaps it per test; a handler holding an old one would write to a closed file)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self.fixed = stream is not None

    def emit(self, record: logging.LogRecord) -> None:
        if not self.fixed:
            self.stream = sys.stderr
        with _lock:
            bar = _bars[-1] if _bars and _bars[-1].tty else None
            if bar is not None:
                bar.clear()
            super().emit(record)
            if bar is not None:
                bar.draw(force=True)


def verbosity_level(verbosity: int) -> int:
    """-q (-1) → WARNING, default (0) → INFO, -v (1 or more) → DEBUG."""
    if verbosity < 0:
        return logging.WARNING
    return logging.DEBUG if verbosity > 0 else logging.INFO


def configure(verbosity: int = 0, stream: TextIO | None = None) -> None:
    """Timestamped lines of the `nasrepro` logger on stderr at the given verbosity; the
    level is exported so worker processes and torchrun ranks log the same way."""
    level = verbosity_level(verbosity)
    os.environ[LEVEL_ENV] = logging.getLevelName(level)
    _install(level, stream)


def _install(level: int, stream: TextIO | None = None) -> None:
    handler = _Handler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", DATEFMT))
    LOGGER.handlers = [handler]
    LOGGER.setLevel(level)
    LOGGER.propagate = False
    quiet_libraries()


def quiet_libraries() -> None:
    """Keep other libraries' INFO lines out of the output (called again after importing
    mlflow, which sets its own logger to INFO on import)."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in SILENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _ensure_configured() -> None:
    if not LOGGER.handlers:  # a worker process: the level its parent exported
        level = logging.getLevelName(os.environ.get(LEVEL_ENV, "INFO"))
        _install(level if isinstance(level, int) else logging.INFO)


def emit(line: str, level: int = logging.INFO) -> None:
    """Log one line (the `progress` callback of the runner, trials and evaluators)."""
    _ensure_configured()
    LOGGER.log(level, line)


# --------------------------------------------------------------------------------------
# Trial scope: a label for every line, a sink for decisions
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def trial_scope(label: str, sink: Sink | None = None) -> Iterator[None]:
    """Inside it, bars are prefixed with `label` and `event`s reach `sink` (MLflow)."""
    t1, t2 = _label.set(label), _sink.set(sink)
    depth = len(_bars)
    try:
        yield
    finally:
        for bar in _bars[depth:][::-1]:  # left open by an exception inside a stage
            bar.close()
        _label.reset(t1)
        _sink.reset(t2)


def event(kind: str, payload: dict[str, Any], message: str | None = None) -> None:
    """A decision as it happens: logged (when `message`) and passed to the trial's sink."""
    if message is not None and is_main_rank():
        emit(_prefixed(message))
    sink = _sink.get()
    if sink is not None:
        sink(kind, payload)


def _prefixed(text: str) -> str:
    label = _label.get()
    return f"{label} {text}" if label else text


def is_main_rank() -> bool:
    """False on ranks other than 0 of torchrun (RANK) — they stay silent."""
    try:
        return int(os.environ.get("RANK", "0")) == 0
    except ValueError:
        return True


def _interactive(stream: TextIO) -> bool:
    if "TORCHELASTIC_RUN_ID" in os.environ or "RAY_JOB_ID" in os.environ:
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _interval() -> float:
    try:
        value = float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL))
    except ValueError:
        return DEFAULT_INTERVAL
    return value if value > 0 else DEFAULT_INTERVAL


# --------------------------------------------------------------------------------------
# Bars
# --------------------------------------------------------------------------------------


def format_seconds(seconds: float) -> str:
    """`42s`, `3m05s`, `2h07m`."""
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class Bar:
    """Progress of one stage: `update(n)` after each unit of work, `close()` at the end.

    `total` None when unknown (then no percentage or ETA). `clock` and `stream` are for
    tests. Use as a context manager, or `iterate(items)` to count the items consumed.
    """

    WIDTH = 24
    REDRAW = 0.2  # seconds between terminal redraws

    def __init__(
        self,
        desc: str,
        total: int | None = None,
        unit: str = "step",
        *,
        stream: TextIO | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _ensure_configured()
        self.desc = _prefixed(desc)
        self.total = total
        self.unit = unit
        self.clock = clock
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = is_main_rank() and LOGGER.isEnabledFor(logging.INFO)
        self.tty = self.enabled and _interactive(self.stream)
        self.interval = _interval() if interval is None else interval
        self.done = 0
        self.start = clock()
        self._last = self.start
        self.closed = False
        if self.enabled:
            with _lock:
                _bars.append(self)
            if self.tty:
                self.draw(force=True)

    # -- what is shown -----------------------------------------------------------------
    def status(self) -> str:
        """`120/800 steps (15%), 3.2 steps/s, ETA 3m32s, 37s elapsed`."""
        elapsed = self.clock() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        units = self.unit + ("es" if self.unit.endswith(("s", "sh", "ch", "x")) else "s")
        if self.total:
            pct = 100.0 * self.done / self.total
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            return (
                f"{self.done}/{self.total} {units} ({pct:.0f}%), {rate:.3g} {units}/s, "
                f"ETA {format_seconds(eta)}, {format_seconds(elapsed)} elapsed"
            )
        return f"{self.done} {units}, {rate:.3g} {units}/s, {format_seconds(elapsed)} elapsed"

    def clear(self) -> None:
        self.stream.write("\r\033[K")

    def draw(self, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._last < self.REDRAW:
            return
        self._last = now
        frac = min(self.done / self.total, 1.0) if self.total else 0.0
        filled = int(frac * self.WIDTH)
        bar = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] " if self.total else ""
        self.stream.write(f"\r\033[K{self.desc} {bar}{self.status()}")
        self.stream.flush()

    # -- counting ----------------------------------------------------------------------
    def update(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled or self.closed:
            return
        if self.tty:
            with _lock:
                if _bars and _bars[-1] is self:
                    self.draw()
        elif self.clock() - self._last >= self.interval:
            self._last = self.clock()
            LOGGER.info(f"{self.desc}: {self.status()}")

    def iterate(self, items: Iterable[T]) -> Iterator[T]:
        """Yield `items`, counting one unit each time the consumer asks for the next (so
        a consumer that breaks early is not counted for the item it did not process)."""
        first = True
        for item in items:
            if not first:
                self.update()
            first = False
            yield item
        if not first:
            self.update()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if not self.enabled:
            return
        with _lock:
            if self in _bars:
                _bars.remove(self)
            if self.tty:
                self.clear()
                self.stream.flush()
        LOGGER.debug(f"{self.desc}: done, {self.status()}")
        if self.tty and _bars and _bars[-1].tty:
            with _lock:
                _bars[-1].draw(force=True)

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tick(n: int = 1) -> None:
    """Advance the innermost open bar (the stage's loop need not hold it)."""
    if _bars:
        _bars[-1].update(n)


@contextlib.contextmanager
def heartbeat(desc: str, interval: float | None = None) -> Iterator[None]:
    """For a step whose progress cannot be counted (unpickling a benchmark file): a line
    with the elapsed time every interval until it returns, and one when it is done. A step
    shorter than one interval prints nothing (an error stays the one line it is)."""
    _ensure_configured()
    every = _interval() if interval is None else interval
    label = _prefixed(desc)
    stop = threading.Event()
    start = time.monotonic()
    announced = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            announced.set()
            LOGGER.info(f"{label}: still working, {format_seconds(time.monotonic() - start)}")

    thread = None
    if is_main_rank():
        thread = threading.Thread(target=beat, daemon=True)
        thread.start()
    ok = False
    try:
        yield
        ok = True
    finally:
        stop.set()
        if thread is not None:
            thread.join()
            if ok and announced.is_set():
                LOGGER.info(f"{label}: done in {format_seconds(time.monotonic() - start)}")
