"""Progress reporting (nasrepro/progress.py): bars on a terminal, timed lines elsewhere,
decisions routed to the trial's sink, and progress during a real PT selection."""

import io
import logging

import pytest

from nasrepro import progress
from nasrepro.progress import Bar, event, format_seconds, tick, trial_scope


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def log_lines(monkeypatch):
    """The `nasrepro` logger's lines (message only), at INFO, on a non-terminal stream."""
    stream = io.StringIO()
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    progress.configure(0, stream)
    yield lambda: [line.split(" ", 2)[2] for line in stream.getvalue().splitlines()]
    progress.configure(0)


def test_format_seconds():
    assert format_seconds(42.4) == "42s"
    assert format_seconds(185) == "3m05s"
    assert format_seconds(7620) == "2h07m"
    assert format_seconds(float("inf")) == "?"


def test_lines_every_interval_with_rate_and_eta(log_lines):
    clock = Clock()
    bar = Bar("search", 100, "step", stream=io.StringIO(), interval=5.0, clock=clock)
    for _ in range(10):  # 10 steps in 4 s: no line yet
        clock.t += 0.4
        bar.update()
    assert log_lines() == []
    clock.t += 1.0  # 11 steps in 5 s = 2.2 steps/s, 89 left = 40.5 s
    bar.update()
    assert log_lines() == ["search: 11/100 steps (11%), 2.2 steps/s, ETA 40s, 5s elapsed"]
    clock.t += 1.0
    bar.update()  # within the interval of the last line
    assert len(log_lines()) == 1
    bar.close()


def test_lines_carry_timestamps_and_quiet_hides_them(monkeypatch):
    stream = io.StringIO()
    monkeypatch.delenv("RANK", raising=False)
    progress.configure(0, stream)
    progress.emit("hello")
    assert stream.getvalue().endswith(" hello\n")
    date, time_ = stream.getvalue().split(" ")[:2]
    assert len(date) == 10 and date[4] == "-" and len(time_) == 8 and time_[2] == ":"
    progress.configure(-1, stream)
    progress.emit("hidden")
    assert Bar("x", 3).enabled is False
    assert "hidden" not in stream.getvalue()
    progress.configure(0)


def test_terminal_bar_redraws_in_place(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    monkeypatch.delenv("RAY_JOB_ID", raising=False)
    tty = Tty()
    progress.configure(0, tty)
    clock = Clock()
    bar = Bar("retrain cifar10", 4, "step", stream=tty, clock=clock)
    assert bar.tty
    for _ in range(4):
        clock.t += 1.0
        bar.update()
    bar.close()
    out = tty.getvalue()
    assert "\r\033[K" in out and "[" + "#" * Bar.WIDTH + "]" in out
    assert "4/4 steps (100%), 1 steps/s, ETA 0s" in out
    progress.configure(0)


def test_other_ranks_are_silent(monkeypatch, log_lines):
    monkeypatch.setenv("RANK", "1")
    clock = Clock()
    bar = Bar("search", 10, stream=io.StringIO(), interval=0.0, clock=clock)
    clock.t = 1.0
    bar.update()
    assert not bar.enabled and log_lines() == []


def test_iterate_counts_consumed_items_only(log_lines):
    bar = Bar("steps", 10, stream=io.StringIO(), interval=1e9)
    for i, _ in enumerate(bar.iterate(range(10))):
        if i == 3:  # the 4th item is fetched but not processed
            break
    assert bar.done == 3
    bar.close()
    whole = Bar("all", 5, stream=io.StringIO(), interval=1e9)
    assert list(whole.iterate(range(5))) == list(range(5)) and whole.done == 5
    whole.close()


def test_tick_advances_innermost_bar_and_scope_closes_leftovers(log_lines):
    with trial_scope("[t]"):
        outer = Bar("outer", 10, stream=io.StringIO(), interval=1e9)
        with Bar("inner", 2, stream=io.StringIO(), interval=1e9) as inner:
            tick()
        tick()
        assert (outer.done, inner.done) == (1, 1)
        assert outer.desc == "[t] outer"
    assert outer.closed  # left open (an exception in a stage): closed with the scope
    tick()
    assert outer.done == 1


def test_events_reach_the_scope_sink_and_the_log(log_lines):
    seen = []
    with trial_scope("[s/e smoke seed 0]", lambda kind, payload: seen.append((kind, payload))):
        event("pt_decision", {"index": 1}, "PT decision 1: cell edge 0 -> none")
    event("pt_decision", {"index": 2})  # outside a trial: no sink, no line
    assert seen == [("pt_decision", {"index": 1})]
    assert log_lines() == ["[s/e smoke seed 0] PT decision 1: cell edge 0 -> none"]


def test_mlflow_info_lines_are_kept_out(log_lines, tmp_path):
    import mlflow  # noqa: F401

    from nasrepro.tracking import Tracker

    logging.getLogger("mlflow").setLevel(logging.INFO)  # what importing mlflow first does
    Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert not logging.getLogger("mlflow").isEnabledFor(logging.INFO)
    assert not logging.getLogger("alembic").isEnabledFor(logging.INFO)


def test_pt_selection_reports_progress_and_decisions(log_lines, monkeypatch):
    """A DARTS-PT selection on a tiny NB201 supernet: the decision bars and the tuning bar
    print lines (interval 0: every update), each decision is logged and sent to the sink."""
    torch = pytest.importorskip("torch")
    from torch import nn

    from nasrepro.datasets import build_search_data
    from nasrepro.search.engine import SearchContext, run_search, seed_everything
    from nasrepro.select.pt import pt
    from nasrepro.spaces import build_space
    from nasrepro.suite import SearchSettings

    monkeypatch.setenv(progress.INTERVAL_ENV, "1e-9")
    seed_everything(0, True)
    settings = SearchSettings(
        epochs=1,
        steps_per_epoch=2,
        batch_size=16,
        image_size=8,
        lr=0.05,
        lr_min=0.001,
        momentum=0.9,
        weight_decay=3e-4,
        arch_lr=3e-4,
        arch_weight_decay=1e-3,
    )
    data = build_search_data(
        "synthetic",
        root=None,
        batch_size=16,
        seed=0,
        image_size=8,
        options={"n": 96, "num_classes": 3},
    )
    space = build_space("nb201")
    net = space.build_supernet(data.num_classes, in_channels=data.in_channels, c=2, n=1)
    ctx = SearchContext(
        supernet=net,
        settings=settings,
        hooks=[],
        device=torch.device("cpu"),
        criterion=nn.CrossEntropyLoss(),
    )
    seen = []
    with trial_scope("[pt test]", lambda kind, payload: seen.append((kind, payload))):
        history = run_search(ctx, data.loader, data.steps_per_epoch)
        pt(space, net, ctx=ctx, data=data, history=history, tune_epochs=2, eval_batches=1)
    lines = log_lines()
    assert any(line.startswith("[pt test] search: ") for line in lines)
    assert any(line.startswith("[pt test] PT tuning: ") and "steps/s" in line for line in lines)
    decision_bars = [line for line in lines if line.startswith("[pt test] PT decision 1 (")]
    assert decision_bars and "batches/s" in decision_bars[0]
    decisions = [p for k, p in seen if k == "pt_decision"]
    assert len(decisions) == 6  # one per NB201 edge
    assert decisions[-1]["index"] == 6 and len(decisions[-1]["decisions"]) == 6
    assert sum(line.count("-> ") for line in lines if "PT decision" in line) == 6
    assert [p["epoch"] for k, p in seen if k == "pt_tuning_epoch"] == [0, 1]
