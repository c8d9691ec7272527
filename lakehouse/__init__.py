"""Iceberg lakehouse upkeep: table maintenance through Trino (candleflow lakehouse)."""
