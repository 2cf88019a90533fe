"""The log source's metric families: what the tunnels' own logs say (for tunnels in the current EC2 data only), and
how far behind each log group's reading is."""

from __future__ import annotations

from collections.abc import Iterator

from exporter.contract import (
    LOG_INGESTION_LAG,
    TUNNEL_BGP_LAST_ERROR,
    TUNNEL_BGP_SESSION_STATE,
    TUNNEL_DPD,
    TUNNEL_IKE_PHASE_STATE,
    TUNNEL_LOG_EVENTS,
    TUNNEL_LOG_HAS_EVENTS,
    TUNNEL_LOG_LAST_EVENT,
    TUNNEL_NAT_T,
    TUNNEL_SELECTOR_INFO,
    TUNNEL_SELECTOR_MISMATCH,
)
from exporter.family import Families, Family, current_state, flag, yielding
from exporter.model import SelectorCheck, Snapshot, TunnelLogView
from exporter.sources.logs.parse import BGP_STATES, IKE_STATES


def families(snapshot: Snapshot, failed: list[str]) -> Iterator[Family]:
    family = Families(
        TUNNEL_LOG_EVENTS,
        TUNNEL_SELECTOR_MISMATCH,
        TUNNEL_SELECTOR_INFO,
        TUNNEL_NAT_T,
        TUNNEL_DPD,
        TUNNEL_IKE_PHASE_STATE,
        TUNNEL_LOG_LAST_EVENT,
        TUNNEL_LOG_HAS_EVENTS,
        TUNNEL_BGP_SESSION_STATE,
        TUNNEL_BGP_LAST_ERROR,
    )
    # "No event yet" is only known where the read succeeded: a region whose read failed says nothing.
    read = {(r.account_id, r.region) for r in snapshot.results if r.source == "logs" and r.success}
    isolated = family.isolated(failed)
    for region, connection, tunnel, key in yielding(snapshot.tunnels()):
        view: TunnelLogView | None = snapshot.tunnel_logs.get(key)
        labels = key.labels
        with isolated(f"{connection.vpn_connection_id} {tunnel.outside_ip}"):
            logged = dict(view.last_event) if view is not None else {}
            for kind, destination in (("ike", tunnel.ike_log), ("bgp", tunnel.bgp_log)):
                if destination.enabled and (kind in logged or (region.account_id, region.region) in read):
                    family[TUNNEL_LOG_HAS_EVENTS].add_metric(labels + [kind], flag(kind in logged))
            if view is not None:
                _tunnel_log_rows(family, labels, view, snapshot.selector_checks.get(key))
    yield from family
    yield _lag(snapshot)


def _tunnel_log_rows(family: Families, labels: list[str], view: TunnelLogView, check: SelectorCheck | None) -> None:
    """One tunnel's series from its logs."""
    for event, count in view.counts:
        family[TUNNEL_LOG_EVENTS].add_metric(labels + [event], float(count))
    for kind, at in view.last_event:
        family[TUNNEL_LOG_LAST_EVENT].add_metric(labels + [kind], at)
    negotiated = view.fact("selectors")
    if negotiated is not None:
        family[TUNNEL_SELECTOR_INFO].add_metric(labels + list(negotiated), 1.0)
        if check is not None:  # made for every tunnel with negotiated selectors (diagnosis.selectors)
            family[TUNNEL_SELECTOR_MISMATCH].add_metric(labels, flag(check.mismatch))
    for fact, name in (("nat_t", TUNNEL_NAT_T), ("dpd", TUNNEL_DPD)):
        if view.fact(fact) is not None:
            family[name].add_metric(labels, flag(view.fact(fact)))
    for phase in ("1", "2"):
        if view.fact(f"phase{phase}") is not None:
            current_state(family[TUNNEL_IKE_PHASE_STATE], labels + [phase], IKE_STATES, view.fact(f"phase{phase}"))
    if view.fact("bgp_state") is not None:
        current_state(family[TUNNEL_BGP_SESSION_STATE], labels, BGP_STATES, view.fact("bgp_state"))
    error, error_at = view.fact("bgp_error"), view.fact_time("bgp_error")
    if error is not None and error_at is not None:  # a fact has its time: the second test is the type checker's
        family[TUNNEL_BGP_LAST_ERROR].add_metric(labels + [error], error_at)


def _lag(snapshot: Snapshot) -> Family:
    lag = Family.of(LOG_INGESTION_LAG)
    behind: dict[tuple[str, str, str], float] = {}  # two regions' tunnels may log to one group: its furthest behind
    for group in snapshot.log_groups:
        key = (group.account_id, group.region, group.log_group)
        behind[key] = min(behind.get(key, group.read_until), group.read_until)
    for key, read_until in behind.items():
        lag.add_metric(list(key), max(0.0, snapshot.completed_at - read_until))
    return lag
