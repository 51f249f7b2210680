"""Page templates shipped with the package (``leaderboard.html``); read with ``importlib.resources``."""
