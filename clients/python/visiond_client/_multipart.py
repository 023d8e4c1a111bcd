"""multipart/form-data bodies (RFC 7578) with the standard library, streamed.

Files are read in chunks while the request is sent, never whole into memory;
the Content-Length is known beforehand from the files' sizes.
"""

from __future__ import annotations

import os
import secrets
from typing import IO, Iterator, Sequence, Tuple, Union

# A file to upload: a path on this machine, or (file name, bytes).
FileSource = Union[str, "os.PathLike[str]", Tuple[str, bytes]]

_CHUNK = 1 << 16


def _quote(s: str) -> str:
    """A header parameter value: quotes, backslashes and line breaks escaped (RFC 7578 4.2)."""
    return s.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class Multipart:
    """A multipart/form-data body: plain fields and file parts, in order.

    ``content_type`` is the header to send, ``len(body)`` its length, and
    iterating over it yields the bytes (usable as urllib's ``data``).
    """

    def __init__(self, fields: Sequence[Tuple[str, str]],
                 files: Sequence[Tuple[str, FileSource]]) -> None:
        self.boundary = "visiond-" + secrets.token_hex(16)
        self.content_type = "multipart/form-data; boundary=" + self.boundary
        self._parts: list[tuple[bytes, Union[bytes, str]]] = []
        for name, value in fields:
            head = (f'--{self.boundary}\r\nContent-Disposition: form-data; '
                    f'name="{_quote(name)}"\r\n\r\n')
            self._parts.append((head.encode(), value.encode()))
        for name, src in files:
            if isinstance(src, tuple):
                filename, data = src
                payload: Union[bytes, str] = bytes(data)
            else:
                payload = os.fspath(src)
                filename = os.path.basename(payload)
            head = (f'--{self.boundary}\r\nContent-Disposition: form-data; '
                    f'name="{_quote(name)}"; filename="{_quote(filename)}"\r\n'
                    f'Content-Type: application/octet-stream\r\n\r\n')
            self._parts.append((head.encode(), payload))
        self._tail = f"--{self.boundary}--\r\n".encode()

    def __len__(self) -> int:
        n = len(self._tail)
        for head, payload in self._parts:
            size = len(payload) if isinstance(payload, bytes) else os.path.getsize(payload)
            n += len(head) + size + 2
        return n

    def __iter__(self) -> Iterator[bytes]:
        for head, payload in self._parts:
            yield head
            if isinstance(payload, bytes):
                yield payload
            else:
                f: IO[bytes]
                with open(payload, "rb") as f:
                    while chunk := f.read(_CHUNK):
                        yield chunk
            yield b"\r\n"
        yield self._tail
