"""Where a span came from in the batch: ids, endpoint, HTTP status and the flags of odd pairs.

Not a dialect of anyone else's: ``batchtrace.*`` names, plus the provider-specific attributes
the adapter named itself (``Record.extra``), which are copied as they are.
"""

from __future__ import annotations

from batchtrace import semconv as sc
from batchtrace.record import AttributeValue, Record

Attributes = dict[str, AttributeValue]


def write_identity(record: Record, attrs: Attributes, batch_id: str | None) -> None:
    attrs[sc.CUSTOM_ID] = record.custom_id
    tools = record.tool_definitions
    for key, value in (
        (sc.BATCH_ID, batch_id),
        (sc.ENDPOINT, record.endpoint),
        (sc.BATCH_REQUEST_ID, record.line_id),
        (sc.PROVIDER_REQUEST_ID, record.request_id),
        (sc.HTTP_RESPONSE_STATUS_CODE, record.http_status),
        (sc.TOOL_COUNT, len(tools) if tools is not None else None),
        (sc.CREATED, int(record.created_s) if record.created_s is not None else None),
    ):
        if value is not None and value != "":
            attrs[key] = value
    flags = (
        (sc.NO_RESULT, record.no_result),
        (sc.ORPHAN_RESULT, record.orphan),
        (sc.DUPLICATE_CUSTOM_ID, record.occurrence > 0),
    )
    for key, flag in flags:
        if flag:
            attrs[key] = True
    attrs.update(record.extra)
