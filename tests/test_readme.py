"""The README's two set-up commands are exactly what CI runs."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands(text: str) -> list[str]:
    lines = [ln.strip() for ln in text.splitlines()]
    return [ln for ln in lines if ln.startswith(("python3 -m venv", ".venv/bin/python -m pytest"))]


def test_ci_runs_the_readme_commands():
    readme = _commands((ROOT / "README.md").read_text())
    ci = _commands((ROOT / ".ci" / "run").read_text())
    assert len(readme) == 2
    assert readme == ci
    assert "-c constraints.txt" in readme[0] and "--budget smoke" in readme[0]


def test_constraints_pin_the_cpu_torch():
    pins = (ROOT / "constraints.txt").read_text().splitlines()
    assert "torch==2.13.0" in pins
