"""The first wall of the secrets boundary: every AWS session strips ``customerGatewayConfiguration`` and
``preSharedKey`` out of DescribeVpnConnections' raw response before botocore parses it, so the keys never become
Python objects (nor debug-logged bodies), and most of the response's bytes (the configuration is ~85 % of them) are
never parsed. The second wall is ``sources/ec2/telemetry.py``, which copies only named, non-secret fields.
"""

from __future__ import annotations

import re
from typing import Any

_SECRET_ELEMENTS = re.compile(
    rb"<(customerGatewayConfiguration|preSharedKey)>.*?</\1>|<(?:customerGatewayConfiguration|preSharedKey)\s*/>",
    re.DOTALL,
)
SECRETS_EVENT = "before-parse.ec2.DescribeVpnConnections"  # botocore event the stripper is registered on


def strip_secrets(body: bytes) -> bytes:
    """The raw DescribeVpnConnections XML without its secret-bearing elements."""
    return _SECRET_ELEMENTS.sub(b"", body)


def strip_secrets_before_parse(response_dict: dict, **_: Any) -> None:
    """botocore ``before-parse`` handler: strip the secrets from the body it is about to parse."""
    body = response_dict.get("body")
    if isinstance(body, (bytes, bytearray)):
        response_dict["body"] = strip_secrets(bytes(body))
