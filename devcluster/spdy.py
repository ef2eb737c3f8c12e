"""Just enough SPDY/3.1 for the kubelet's exec endpoint (remotecommand over SPDY).

kube-apiserver 1.37 reaches a kubelet's `/exec/...` over SPDY (it translates a client's
WebSocket into SPDY towards the node), so the node agent answers the upgrade and plays
the server side of the remote-command protocol (channel.k8s.io v4): the client opens one
stream per channel ("error", "stdout", "stderr"), the server replies to each, writes the
output, the v1 Status on the error stream, and ends every stream.

Only what that exchange needs: SYN_STREAM / SYN_REPLY with zlib-compressed headers, DATA,
PING, GOAWAY; flow control is ignored (the output is far below the 64 KiB window).
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from dataclasses import dataclass

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = (
    1, 2, 3, 4, 6, 7, 8, 9,
)  # fmt: skip
FLAG_FIN = 0x01

# The SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00, 2.6.10.1):
# length-prefixed header words, then a run of common values.
_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding "
    "accept-language accept-ranges age allow authorization cache-control connection "
    "content-base content-encoding content-language content-length content-location "
    "content-md5 content-range content-type date etag expect expires from host if-match "
    "if-modified-since if-none-match if-range if-unmodified-since last-modified location "
    "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after "
    "server te trailer transfer-encoding upgrade user-agent vary via warning "
    "www-authenticate method get status|200 OK|version|HTTP/1.1|url|public|set-cookie|"
    "keep-alive|origin"
)
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502"
    "504505203 Non-Authoritative Information204 No Content301 Moved Permanently"
    "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
    "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct "
    "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,"
    "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,"
    "publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)


def _dictionary() -> bytes:
    head, _, rest = _WORDS.partition(" status|")
    words = [*head.split(" "), "status", *rest.split("|")]
    return b"".join(struct.pack(">I", len(w)) + w.encode() for w in words) + _TAIL.encode()


DICTIONARY = _dictionary()
assert len(DICTIONARY) == 1423, len(DICTIONARY)


@dataclass
class Frame:
    control: bool
    kind: int  # control frame type; 0 for data
    flags: int
    stream_id: int
    payload: bytes


class Codec:
    """Frames in and out of one SPDY connection, with its two header zlib streams."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zdict=DICTIONARY)

    async def read(self, reader: asyncio.StreamReader) -> Frame:
        head = await reader.readexactly(8)
        first, second = struct.unpack(">II", head)
        flags, length = second >> 24, second & 0xFFFFFF
        payload = await reader.readexactly(length) if length else b""
        if first & 0x80000000:
            kind = first & 0xFFFF
            stream_id = 0
            if kind in (SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS, WINDOW_UPDATE):
                stream_id = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
            return Frame(True, kind, flags, stream_id, payload)
        return Frame(False, 0, flags, first & 0x7FFFFFFF, payload)

    def headers(self, frame: Frame) -> dict[str, str]:
        """The header block of a SYN_STREAM (names lower-case)."""
        block = frame.payload[10:] if frame.kind == SYN_STREAM else frame.payload[4:]
        raw = self._inflate.decompress(block)
        (count,) = struct.unpack(">I", raw[:4])
        offset, out = 4, {}
        for _ in range(count):
            (n,) = struct.unpack(">I", raw[offset : offset + 4])
            name = raw[offset + 4 : offset + 4 + n].decode().lower()
            offset += 4 + n
            (n,) = struct.unpack(">I", raw[offset : offset + 4])
            out[name] = raw[offset + 4 : offset + 4 + n].decode()
            offset += 4 + n
        return out

    @staticmethod
    def _control(kind: int, flags: int, payload: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None) -> bytes:
        pairs = list((headers or {}).items())
        block = struct.pack(">I", len(pairs)) + b"".join(
            struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
            for k, v in pairs
        )
        packed = self._deflate.compress(block) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        return self._control(SYN_REPLY, 0, struct.pack(">I", stream_id) + packed)

    @staticmethod
    def data(stream_id: int, data: bytes, fin: bool = False) -> bytes:
        flags = FLAG_FIN if fin else 0
        return struct.pack(">II", stream_id, (flags << 24) | len(data)) + data

    @classmethod
    def ping(cls, payload: bytes) -> bytes:
        return cls._control(PING, 0, payload)

    @classmethod
    def goaway(cls, last_stream: int) -> bytes:
        return cls._control(GOAWAY, 0, struct.pack(">II", last_stream, 0))
