"""From a snapshot to /metrics: the metric contract, the renderer, the live metrics."""
