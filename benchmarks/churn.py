"""Benchmark: state and memory under connection churn, against the simulated AWS.

    .venv/bin/python benchmarks/churn.py [--rounds 20] [--connections 200]

Each round creates ``connections`` VPN connections whose two tunnels log (IKE and BGP), polls, deletes
them and polls again. With ``logs.retention`` short, the log state of deleted tunnels is forgotten: the
state file, the customer-gateway cache and the exporter's RSS must level off, not grow with every round.
moto runs in a process of its own (it keeps deleted resources), so the RSS is the exporter's. Before
retention existed, 20 rounds of 200 took the state file from 0 to 2.14 MB and RSS from 65 to 98 MiB,
linearly. Run it with PYTHONMALLOC=malloc (as the image does) and without, to compare the allocators.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import rss_mib  # noqa: E402

REGION = "us-east-1"
GROUP = "/aws/vpn/churn"


def _create(round_: int, count: int) -> list[tuple[str, str]]:
    """In moto's process: ``count`` logged connections, each tunnel with one IKE and one BGP event."""
    import boto3
    from moto.ec2.models import ec2_backends

    from exporter.demo.tunnel_logs import stream_name

    ec2, logs = boto3.client("ec2", region_name=REGION), boto3.client("logs", region_name=REGION)
    arn = f"arn:aws:logs:{REGION}:123456789012:log-group:{GROUP}"
    created = []
    for index in range(count):
        cgw = ec2.create_customer_gateway(Type="ipsec.1", PublicIp="203.0.113.1", BgpAsn=65001)
        gateway_id = cgw["CustomerGateway"]["CustomerGatewayId"]
        vgw = ec2.create_vpn_gateway(Type="ipsec.1")["VpnGateway"]["VpnGatewayId"]
        vpn = ec2.create_vpn_connection(Type="ipsec.1", CustomerGatewayId=gateway_id,
                                        VpnGatewayId=vgw)["VpnConnection"]["VpnConnectionId"]
        ips = [f"198.{round_ % 250}.{index // 125}.{index % 125 * 2 + t}" for t in (0, 1)]
        backend = ec2_backends["123456789012"][REGION].vpn_connections[vpn]
        backend.vgw_telemetry = [{"OutsideIpAddress": ip, "Status": "UP", "StatusMessage": "1 BGP ROUTES",
                                  "AcceptedRouteCount": 1} for ip in ips]
        backend.options = {"StaticRoutesOnly": False, "TunnelOptions": [
            {"OutsideIpAddress": ip, "TunnelInsideCidr": "169.254.1.0/30", "LogOptions": {"CloudWatchLogOptions": {
                "LogEnabled": True, "LogGroupArn": arn, "LogOutputFormat": "json", "BgpLogEnabled": True,
                "BgpLogGroupArn": arn, "BgpLogOutputFormat": "json"}}} for ip in ips]}
        at_ms = int(time.time() * 1000) - 2000
        for ip in ips:
            for kind, message in (("ike", {"details": "AWS tunnel is sending DPD R-U-THERE", "dpd_enabled": True}),
                                  ("bgp", {"type": "BGPStatus", "status": "UP", "resource_id": f"{vpn}_{ip}",
                                           "message": {"details": "AWS-side peer BGP session state has changed "
                                                                  "from OpenConfirm to Established"}})):
                stream = stream_name(vpn, ip, kind)
                logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
                logs.put_log_events(logGroupName=GROUP, logStreamName=stream,
                                    logEvents=[{"timestamp": at_ms, "message": json.dumps(message)}])
        created.append((vpn, gateway_id))
    return created


def _simulated_aws(requests, replies) -> None:
    """moto in its own process, creating and deleting connections on request."""
    import boto3
    from moto.server import ThreadedMotoServer

    from exporter.demo import strict_aws
    from exporter.demo.environment import simulated_aws_environment

    strict_aws.install()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(simulated_aws_environment(f"http://{host}:{port}"))
    boto3.client("logs", region_name=REGION).create_log_group(logGroupName=GROUP)
    _create(250, 1)  # one connection that stays, as in a real account: its group's cursor lives on
    replies.put(f"http://{host}:{port}")
    while (request := requests.get()) is not None:
        if request[0] == "create":
            replies.put(_create(*request[1:]))
        else:
            from moto.ec2.models import ec2_backends

            ec2 = boto3.client("ec2", region_name=REGION)
            backend = ec2_backends["123456789012"][REGION]
            for vpn, gateway in request[1]:
                ec2.delete_vpn_connection(VpnConnectionId=vpn)
                ec2.delete_customer_gateway(CustomerGatewayId=gateway)
                # AWS lists a deleted connection for a while, then purges it; moto never does, and its
                # ever longer DescribeVpnConnections would be measured instead of the exporter.
                backend.vpn_connections.pop(vpn, None)
            replies.put(None)
    server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=200)
    args = parser.parse_args()

    from exporter import memory
    from exporter.app import Exporter
    from exporter.config import Config, LogsConfig, Target
    from exporter.demo.environment import simulated_aws_environment

    memory.tune_malloc()  # as the command does

    context = multiprocessing.get_context("spawn")
    requests, replies = context.Queue(), context.Queue()
    aws = context.Process(target=_simulated_aws, args=(requests, replies))
    aws.start()
    os.environ.update(simulated_aws_environment(replies.get()))
    state_dir = Path(tempfile.mkdtemp(prefix="churn-"))
    retention = 1.0
    exporter = Exporter(Config(targets=(Target(regions=(REGION,)),), state_dir=state_dir, poll_timeout=120,
                               logs=LogsConfig(lookback=600.0, overlap=5.0, retention=retention)))
    print(f"python {sys.version.split()[0]}, allocator {os.environ.get('PYTHONMALLOC') or 'pymalloc'} (the image sets "
          f"PYTHONMALLOC=malloc); {args.rounds} rounds of {args.connections} connections (2 tunnels each, "
          f"IKE and BGP logs), created, polled, deleted, polled; logs.retention {retention:.0f} s; moto in its "
          f"own process")
    sizes, rss = [], []
    try:
        for round_ in range(args.rounds):
            requests.put(("create", round_, args.connections))
            created = replies.get()
            exporter.poll_once()
            known = len(exporter.logs._state.tunnels)
            requests.put(("delete", created))
            replies.get()
            time.sleep(retention + 0.1)
            exporter.poll_once()
            sizes.append((state_dir / "logs-state.json").stat().st_size)
            rss.append(rss_mib())
            cached = sum(len(g) for g in exporter.poller._customer_gateways.values())
            print(f"round {round_ + 1:2d}: {known:4d} tunnels in state after the poll; after deletion and retention: "
                  f"state file {sizes[-1] / 1024:5.1f} KiB, {len(exporter.logs._state.tunnels)} tunnels, {cached} "
                  f"cached gateways, exporter RSS {rss[-1]:.0f} MiB")
    finally:
        exporter.stop()
        requests.put(None)
        aws.join(30)
    half = len(rss) // 2
    print(f"state file after the last round {sizes[-1] / 1024:.1f} KiB; exporter RSS {rss[0]:.0f} -> {rss[-1]:.0f} "
          f"MiB, {rss[-1] - rss[half]:+.1f} MiB over the second half of the rounds")
    assert sizes[-1] <= 1.25 * max(sizes[: max(1, len(sizes) // 2)]), "the state file grows with churn"
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
