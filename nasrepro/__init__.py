"""nasrepro: re-run the claims of the DARTS performance-collapse papers."""

__version__ = "0.1.0"
