"""avdf benchmark: protocols, metrics, evaluation, leaderboard, submissions and the CLI."""
