"""lib0 binary encoding (the Yjs wire primitives): unsigned/signed varints, strings, byte arrays.

The reader is strict: it never reads past the end, refuses varints wider than 53 bits (the largest
integer a JavaScript peer can represent exactly) and refuses invalid UTF-8.
"""

from __future__ import annotations

import struct

from core.errors import MalformedFrame

MAX_SAFE_BITS = 53
MAX_SAFE_INTEGER = (1 << MAX_SAFE_BITS) - 1


class Lib0Reader:
    """Cursor over a bytes object with bounded lib0 reads; every failure is a `MalformedFrame`."""

    __slots__ = ("_data", "pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self.pos

    def at_end(self) -> bool:
        return self.pos >= len(self._data)

    def read_u8(self) -> int:
        try:
            value = self._data[self.pos]
        except IndexError:
            raise MalformedFrame("truncated: expected a byte") from None
        self.pos += 1
        return value

    def read_var_uint(self) -> int:
        """Read an unsigned LEB128 varint of at most 53 bits."""
        pos = self.pos
        if pos < len(self._data) and self._data[pos] < 0x80:  # fast path: one byte
            self.pos = pos + 1
            return self._data[pos]
        value = 0
        shift = 0
        while True:
            byte = self.read_u8()
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
            if shift >= MAX_SAFE_BITS + 7:
                raise MalformedFrame("varint longer than 53 bits")
        if value > MAX_SAFE_INTEGER:
            raise MalformedFrame("varint exceeds 53 bits")
        return value

    def read_var_int(self) -> int:
        """Read lib0's signed varint (sign bit in the first byte's bit 6)."""
        first = self.read_u8()
        negative = bool(first & 0x40)
        value = first & 0x3F
        shift = 6
        byte = first
        while byte & 0x80:
            byte = self.read_u8()
            value |= (byte & 0x7F) << shift
            shift += 7
            if shift > MAX_SAFE_BITS + 7:
                raise MalformedFrame("signed varint longer than 53 bits")
        if value > MAX_SAFE_INTEGER:
            raise MalformedFrame("signed varint exceeds 53 bits")
        return -value if negative else value

    def read_bytes(self, length: int) -> bytes:
        if length < 0 or length > self.remaining:
            raise MalformedFrame(f"truncated: expected {length} bytes, {self.remaining} left")
        chunk = self._data[self.pos : self.pos + length]
        self.pos += length
        return chunk

    def read_var_bytes(self, limit: int | None = None) -> bytes:
        length = self.read_var_uint()
        if limit is not None and length > limit:
            raise MalformedFrame(f"byte array of {length} bytes exceeds limit {limit}")
        return self.read_bytes(length)

    def read_var_string(self, limit: int | None = None) -> str:
        length = self.read_var_uint()
        if limit is not None and length > limit:
            raise MalformedFrame(f"byte array of {length} bytes exceeds limit {limit}")
        end = self.pos + length
        if end > len(self._data):
            raise MalformedFrame(f"truncated: expected {length} bytes, {self.remaining} left")
        raw = self._data[self.pos : end]
        self.pos = end
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedFrame("invalid UTF-8 in string") from exc

    def read_f32(self) -> float:
        return float(struct.unpack(">f", self.read_bytes(4))[0])

    def read_f64(self) -> float:
        return float(struct.unpack(">d", self.read_bytes(8))[0])

    def read_i64(self) -> int:
        return int(struct.unpack(">q", self.read_bytes(8))[0])


class Lib0Writer:
    """Append-only lib0 encoder."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts = bytearray()

    def write_u8(self, value: int) -> None:
        self._parts.append(value & 0xFF)

    def write_var_uint(self, value: int) -> None:
        if value < 0 or value > MAX_SAFE_INTEGER:
            raise ValueError(f"varuint out of range: {value}")
        while value > 0x7F:
            self._parts.append(0x80 | (value & 0x7F))
            value >>= 7
        self._parts.append(value)

    def write_var_int(self, value: int) -> None:
        negative = value < 0
        magnitude = -value if negative else value
        if magnitude > MAX_SAFE_INTEGER:
            raise ValueError(f"varint out of range: {value}")
        first = (magnitude & 0x3F) | (0x40 if negative else 0)
        magnitude >>= 6
        if magnitude:
            first |= 0x80
        self._parts.append(first)
        while magnitude:
            byte = magnitude & 0x7F
            magnitude >>= 7
            self._parts.append(byte | (0x80 if magnitude else 0))

    def write_bytes(self, data: bytes) -> None:
        self._parts += data

    def write_var_bytes(self, data: bytes) -> None:
        self.write_var_uint(len(data))
        self._parts += data

    def write_var_string(self, text: str) -> None:
        self.write_var_bytes(text.encode("utf-8"))

    def write_f64(self, value: float) -> None:
        self._parts += struct.pack(">d", value)

    def to_bytes(self) -> bytes:
        return bytes(self._parts)
