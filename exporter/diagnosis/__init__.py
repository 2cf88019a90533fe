"""From a snapshot to findings: the rules, the catalogue, the selector check, the report."""
