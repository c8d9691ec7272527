"""Checks of the pipeline's output against an independent source (the exchange's own
kline files): `candleflow reconcile`."""
