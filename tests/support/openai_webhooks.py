"""OpenAI webhook deliveries as they reach a Lambda Function URL: signed bodies and the 2.0 event around them.

OpenAI signs per Standard Webhooks: ``webhook-signature: v1,<base64 HMAC-SHA256>`` over
``f"{webhook_id}.{timestamp}.{body}"``, keyed with the base64-decoded part of the ``whsec_``
secret. :func:`signed_headers` signs with the ``standardwebhooks`` library's own signer;
:func:`hand_signed_headers` builds the same signature from the spec with ``hmac``, so a test can
show that the two agree (and that neither is only the code under test talking to itself).

:func:`function_url_event` wraps a request the way a Lambda Function URL delivers it (payload
format 2.0: headers lower-cased, ``requestContext.http``, the body as text or base64).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook

__all__ = [
    "batch_event_body",
    "function_url_event",
    "hand_signed_headers",
    "new_secret",
    "signed_headers",
]


def new_secret() -> str:
    """A fresh ``whsec_`` secret, shaped like the one OpenAI's dashboard shows once."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def batch_event_body(batch_id: str, event_type: str = "batch.completed") -> bytes:
    """The body OpenAI posts for a batch event."""
    event = {
        "id": f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "created_at": int(time.time()),
        "type": event_type,
        "data": {"id": batch_id},
    }
    return json.dumps(event).encode()


def signed_headers(
    secret: str, body: bytes, *, webhook_id: str | None = None, at: float | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers, signed by the ``standardwebhooks`` library."""
    webhook_id = webhook_id or f"wh_{uuid.uuid4().hex}"
    moment = datetime.fromtimestamp(time.time() if at is None else at, tz=UTC)
    signature = Webhook(secret).sign(webhook_id, moment, body.decode())
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
    }


def hand_signed_headers(
    secret: str, body: bytes, *, webhook_id: str | None = None, at: float | None = None
) -> dict[str, str]:
    """The same headers, signed from the spec with ``hmac`` alone."""
    webhook_id = webhook_id or f"wh_{uuid.uuid4().hex}"
    timestamp = str(int(time.time() if at is None else at))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def function_url_event(
    body: bytes, headers: dict[str, str], *, method: str = "POST", base64_body: bool = False
) -> dict[str, Any]:
    """A Lambda Function URL event (payload format 2.0) for a request to the URL's root."""
    now = time.time()
    all_headers = {
        "content-type": "application/json",
        "user-agent": "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)",
        "host": "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws",
        "x-forwarded-proto": "https",
        **{name.lower(): value for name, value in headers.items()},
    }
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": all_headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghijklmnopqrstuvwxyz012345",
            "domainName": all_headers["host"],
            "domainPrefix": "abcdefghijklmnopqrstuvwxyz012345",
            "http": {
                "method": method,
                "path": "/",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": all_headers["user-agent"],
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": datetime.fromtimestamp(now, tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000),
        },
        "body": base64.b64encode(body).decode() if base64_body else body.decode(),
        "isBase64Encoded": base64_body,
    }
