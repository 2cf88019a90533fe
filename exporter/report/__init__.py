"""The ``report`` command: each connection's SLA figures over a month (or any range), read from a
Prometheus-compatible API (Prometheus, Thanos, Mimir, VictoriaMetrics) through the recording rules of
``series``, or the raw counters when the rules are not there."""
