"""Build-time generators (not installed): alert rules, runbooks, Alertmanager example, promtool cases."""
