"""Grafana dashboards: grafanalib sources (``*.dashboard.py``) and the JSON built from them."""
