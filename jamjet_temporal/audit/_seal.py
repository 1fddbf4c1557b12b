"""Audited payloads under the payload codec (worker and client side: the codec may do I/O).

A team that encrypts Temporal payloads with a codec wants the same for what the audit trail
keeps: arguments, results and errors of tool and model calls, and the arguments approvers are
shown. With a codec configured, the audit sink stores each of those values *sealed*: the
payload converter's payload for it, encoded by the codec, serialized and base64-encoded::

    {"jamjet.sealed": "temporal-payload/v1", "data": "<base64 of the encoded Payload proto>"}

The hash chain covers the sealed form, so a bundle of sealed events verifies without the codec;
:func:`unseal` turns a sealed value back into JSON with it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Final

from pydantic import JsonValue
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, PayloadCodec, PayloadConverter

__all__ = ["SEALED", "SEALED_FIELDS", "is_sealed", "seal", "unseal"]

#: The marker key of a sealed value and its format.
SEALED: Final = "jamjet.sealed"
_FORMAT: Final = "temporal-payload/v1"
#: The ``data`` fields of an event that are sealed when a codec is configured.
SEALED_FIELDS: Final = ("args", "result", "error", "payload_excerpt")


def is_sealed(value: object) -> bool:
    """Whether ``value`` is a sealed value."""
    return isinstance(value, Mapping) and value.get(SEALED) == _FORMAT


async def seal(value: JsonValue, converter: PayloadConverter, codec: PayloadCodec) -> JsonValue:
    """``value`` as its payload, encoded by ``codec`` (see the module docstring)."""
    payload = converter.to_payloads([value])[0]
    encoded = (await codec.encode([payload]))[0]
    return {SEALED: _FORMAT, "data": base64.b64encode(encoded.SerializeToString()).decode()}


async def unseal(value: JsonValue, data_converter: DataConverter) -> JsonValue:
    """The JSON value a sealed value holds, decoded with the team's codec; other values as is.

    Args:
        value: A value from an audit event's ``data``.
        data_converter: A data converter with the codec the workers used.

    Returns:
        The original value.
    """
    if not is_sealed(value):
        return value
    assert isinstance(value, Mapping)
    payload = Payload.FromString(base64.b64decode(str(value["data"])))
    if data_converter.payload_codec is not None:
        payload = (await data_converter.payload_codec.decode([payload]))[0]
    decoded: JsonValue = data_converter.payload_converter.from_payloads([payload])[0]
    return decoded
