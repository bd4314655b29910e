"""Each method declares exactly the keyword arguments its constructor takes, so `validate`
accepts what `run` accepts and nothing else (a new argument must be declared too)."""

from __future__ import annotations

import inspect

from nasrepro import catalog


def test_method_declarations_match_constructors() -> None:
    catalog.load_builtins()
    names = catalog.names("method")
    assert "lambda" in names and "alpha_warmup" in names
    for name in names:
        decl = catalog.declaration("method", name)
        assert decl is not None, f"method {name!r} declares no arguments"
        params = inspect.signature(catalog.get("method", name).__init__).parameters
        taken = {
            p
            for p, v in params.items()
            if p != "self" and v.kind in (v.KEYWORD_ONLY, v.POSITIONAL_OR_KEYWORD)
        }
        assert set(decl.args) == taken, (
            f"method {name!r}: declared {sorted(decl.args)}, constructor takes {sorted(taken)}"
        )
