"""Tunnel status: AWS's maintenance and provisioning status of each tunnel, and what it negotiated."""
