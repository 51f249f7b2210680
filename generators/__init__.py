"""avdf generators: the Generator interface, built-in CPU forgers, external adapters and recipes."""
