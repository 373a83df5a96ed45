"""How state is stored: small typed records behind a schema version.

Every value the worker keeps in its changelog (a user's state, a team's, a reorder
buffer) is a tree of :class:`Record` s: msgspec Structs, whose fields are declared
once, with their types. A record is encoded as MessagePack ``[version, record]``, each
record as the array of its fields in declared order: about two thirds of the bytes
field names would cost, and msgspec decodes it into the declared fields, by name in
the code, with their types checked (a float is a float, a count an int, exactly as
stored). msgspec is used rather than a hand-written codec: it is a small, well-kept C
library, and it is many times faster than ``json`` at both ends.

Changing a stored record: a new field goes last, with a default (a state stored
before it loads with the default); any other change (a field removed, moved, or
given another type) is a new schema version, and the old version's states keep
loading, as :mod:`tokenradar.detectors.legacy` loads release ae4055c's JSON.
``tests/unit/detectors/test_state_upgrade.py`` keeps each version's layout, and fails
when a layout changes under the same version.
"""

from __future__ import annotations

import threading
from typing import Any, TypeVar

import msgspec

_encoder = msgspec.msgpack.Encoder()
_thread = threading.local()
_versioned = msgspec.msgpack.Decoder(tuple[int, msgspec.Raw])

RecordT = TypeVar("RecordT", bound="Record")


class Record(msgspec.Struct, array_like=True, gc=False):
    """A stored record: its fields, in declared order, are what is stored.

    Not tracked by Python's garbage collector (``gc=False``): a record holds only
    numbers, strings, bytes, containers of them and other records, never itself or an
    owner, so it can be in no reference cycle; untracked, a decoded user's ~50 records
    weigh 16 bytes less each, and the collector no longer walks them."""


def encode(version: int, record: Record) -> bytes:
    """``[version, record]`` as MessagePack.

    Encoded into this thread's buffer, then copied at its exact size: ``Encoder.encode``
    grows its bytes and then shrinks them, and the pieces the heap gets back are left
    between the states held for long, a third more memory per user held as bytes
    (``bench/bench_user_memory.py``); reusing the buffer is also as fast."""
    buffer = getattr(_thread, "buffer", None)
    if buffer is None:
        buffer = _thread.buffer = bytearray()
    _encoder.encode_into((version, record), buffer)
    return bytes(buffer)


def stored_version(raw: bytes) -> int | None:
    """The schema version a record was stored under; None for bytes that are no
    ``[version, record]``."""
    try:
        return _versioned.decode(raw)[0]
    except msgspec.DecodeError:
        return None


def body(raw: bytes) -> Any:
    """A stored record's fields as plain values (lists, numbers, strings, bytes)."""
    return msgspec.msgpack.decode(_versioned.decode(raw)[1])


def decode(raw: bytes, version: int, decoder: msgspec.msgpack.Decoder[RecordT],
           what: str) -> RecordT:
    """The record stored as ``[version, record]``; a clear error for another version
    (a state written by a newer worker) or for bytes that are no such record."""
    try:
        stored, body = _versioned.decode(raw)
        if stored != version:
            raise ValueError(f"{what} schema version {stored} is not {version}: this worker "
                             "is older than the state it reads; upgrade it")
        return decoder.decode(body)
    except msgspec.DecodeError as error:
        raise ValueError(f"{what} is not a stored {what} ({error})") from None


def convert(stored: Any, record: type[RecordT]) -> RecordT:
    """A record from its stored fields decoded as plain values (a detector's slot, read
    only when a detector asks for it)."""
    return msgspec.convert(stored, record)
