"""Built-in executor plugins: where the shards of a dataset build run (local processes, Ray)."""
