"""CloudWatch Logs: the tunnels' IKE and BGP logs, read once each, parsed, and kept."""
