"""History: the tunnels' state changes, downtime and the connections' availability, counted exactly across
restarts from EC2's LastStatusChange (and the BGP log, and the status pass's maintenance), for trends and the SLA."""
