"""The live reconciler: our candles.v1 against the exchanges' own candles over REST.

A stage of its own, like ingest, jobs and serving: it imports the core (candleflow) only.
"""
