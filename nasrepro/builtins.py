"""Importing this module registers every built-in component (see nasrepro.catalog)."""

import nasrepro.datasets  # noqa: F401
import nasrepro.evaluate.nb201  # noqa: F401
import nasrepro.methods.darts  # noqa: F401
import nasrepro.select.argmax  # noqa: F401
import nasrepro.spaces.nb201  # noqa: F401
