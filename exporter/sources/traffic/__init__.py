"""Traffic: CloudWatch's TunnelDataIn/Out per tunnel, counted exactly across restarts, and what it says."""
