"""The seeded chaos run of the whole local pipeline (bench/chaos/run.py)."""
