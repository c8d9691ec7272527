"""The explainer service: one plain-language explanation per anomaly (Claude, or offline).

Modules: settings (configuration), context (the compact, quoted context of an anomaly),
offline (the deterministic explainer), budget (per-minute/per-day call limits),
metrics (Prometheus), llm (the Claude call: retries, validation, fallback),
explainer (the idempotent core: one call per anomaly_id), service (Kafka + Iceberg loop).
"""
