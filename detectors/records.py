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
from array import array
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import msgspec

RecordT = TypeVar("RecordT", bound="Record")


if TYPE_CHECKING:
    IntArray = array[int]
else:  # not subscriptable before Python 3.12
    IntArray = array


class Ints(IntArray):
    """A stored list of integers, held unboxed: 8 bytes each, where a list holds a
    pointer to an int object (32 bytes with the heap's rounding) for each beyond 256.
    Stored exactly as a list (a MessagePack array of integers); indexed, iterated,
    appended to and popped from as one; use it for lists read that way only (an array
    compares unequal to a list, and adds only to an array).

    >>> Ints([3, 1_700_000_000]), sum(Ints([3, 4]))
    (Ints('q', [3, 1700000000]), 7)
    """

    __slots__ = ()

    def __new__(cls, values: Iterable[int] = ()) -> Ints:
        return cast(Ints, super().__new__(cls, "q", values))


def _enc_hook(value: Any) -> Any:
    if isinstance(value, array):  # an Ints, or a copy of one (deepcopy gives an array)
        return value.tolist()
    raise NotImplementedError(f"cannot store a {type(value).__name__}")


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is Ints:
        return Ints(value)
    raise NotImplementedError(f"cannot read a {kind.__name__}")


_encoder = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
_thread = threading.local()
_versioned = msgspec.msgpack.Decoder(tuple[int, msgspec.Raw])


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


def decoder(record: type[RecordT]) -> msgspec.msgpack.Decoder[RecordT]:
    """A decoder of ``record`` s (stored with :func:`encode`; :class:`Ints` read as such)."""
    return msgspec.msgpack.Decoder(record, dec_hook=_dec_hook)


def record_bytes(record: Any) -> bytes:
    """``record`` (or any part of one) alone, without a version, as MessagePack: the
    bytes it adds to a stored state."""
    return msgspec.msgpack.encode(record, enc_hook=_enc_hook)


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
    return msgspec.convert(stored, record, dec_hook=_dec_hook)
