"""Makes the simulated AWS as strict as the real one where moto is lenient and the exporter depends on it.

moto 5.2's ``FilterLogEvents`` differs from CloudWatch Logs in three ways that hide real failures:

- It ignores names in ``logStreamNames`` that do not exist. AWS fails the whole request with
  ``ResourceNotFoundException: The specified log stream does not exist.`` (percona/rds_exporter works
  around exactly this in ``enhanced/scraper.go``, issue #81; AWS's FilterLogEvents API reference). A stream exists
  only after its first event, so a tunnel that has not logged yet has none.
- It accepts ``logStreamNames`` together with ``logStreamNamePrefix``; AWS rejects that with
  ``InvalidParameterException`` (the API reference: "you cannot specify both"). It also ignores the prefix.
- It concatenates streams unless asked to interleave; AWS has ignored ``interleaved`` since 2019 and always
  interleaves the events of all streams by time (the API reference's note on ``interleaved``).

``install()`` replaces moto's response handler in the moto process, so boto3 still talks real HTTP and
the demo, the tests and the benchmarks all meet the strict behaviour.
"""

from __future__ import annotations

import json
import threading

_lock = threading.Lock()
_installed = False
rejected_missing_streams = 0  # requests refused for naming a missing stream; tests assert on it


def install() -> None:
    """Make moto's CloudWatch Logs ``FilterLogEvents`` behave as AWS does (idempotent, process-wide)."""
    global _installed
    with _lock:
        if _installed:
            return
        from moto.logs.exceptions import InvalidParameterException, ResourceNotFoundException
        from moto.logs.responses import LogsResponse

        def filter_log_events(self) -> str:
            global rejected_missing_streams
            group_name = self._get_param("logGroupName")
            names = self._get_param("logStreamNames") or []
            prefix = self._get_param("logStreamNamePrefix")
            if names and prefix:
                raise InvalidParameterException("logStreamNames and logStreamNamePrefix are mutually exclusive")
            group = self.logs_backend.groups.get(group_name)
            if group is None:
                raise ResourceNotFoundException()
            if any(name not in group.streams for name in names):
                with _lock:
                    rejected_missing_streams += 1
                raise ResourceNotFoundException("The specified log stream does not exist.")
            if prefix:
                names = [name for name in group.streams if name.startswith(prefix)]
                if not names:
                    return json.dumps({"events": [], "searchedLogStreams": []})
            events, next_token, searched = self.logs_backend.filter_log_events(
                group_name, names, self._get_param("startTime"), self._get_param("endTime"),
                self._get_param("limit"), self._get_param("nextToken"), self._get_param("filterPattern"),
                True)
            return json.dumps({"events": events, "nextToken": next_token, "searchedLogStreams": searched})

        LogsResponse.filter_log_events = filter_log_events
        _installed = True
