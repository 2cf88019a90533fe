"""What the exporter reads from AWS: sessions and per-region isolation, EC2, CloudWatch Logs."""
