"""The platform's HTTP/WebSocket server: Daphne, with answers for oversized requests.

`python -m gridgov.serve [daphne options] gridgov.asgi:application` is `daphne` with one change:
Twisted's HTTPChannel, which Daphne uses, drops a request line longer than its 16 KiB line limit
without a word (a client sees the connection close) and answers a bare 400 when the request line
and headers together pass 16 KiB. Here a request line longer than settings.REQUEST_LINE_MAX_BYTES
gets 414 and oversized headers get 431, each with a short Chinese body, before Django or any
application instance is involved. scripts/run.sh, the Dockerfile and docker-compose.yml start the
server this way.

Every touch of Twisted/Daphne internals is in this module, and tests/deploy/test_serve.py checks
each one it relies on, so an upgrade that moves them fails there, loudly.
"""

import os
import sys

from daphne.http_protocol import HTTPFactory
from django.conf import settings
from twisted.web import http

# Twisted's own ceiling for one line (and for request line + headers); a longer request line
# cannot be read, so REQUEST_LINE_MAX_BYTES may not exceed it (settings.py checks).
TWISTED_LINE_LIMIT = http.HTTPChannel.MAX_LENGTH
# After the refusal the client may still be sending its request: reading and discarding it for a
# moment before closing keeps the kernel from answering the unread bytes with a reset, which
# would make the client lose the response it was sent.
LINGER_SECONDS = 2


def _response(status, reason, body):
    body = body.encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


class LimitedHTTPChannel(http.HTTPChannel):
    """HTTPChannel answering 414 / 431 where Twisted would close silently or say 400."""

    request_line_limit = 8192

    def _reading_request_line(self):
        # Twisted counts the bytes of the current request's lines here and resets it to 0 when a
        # request is complete (allContentReceived): 0 means no line of this request yet.
        return self._receivedHeaderSize == 0

    def lineReceived(self, line):
        if self._reading_request_line():
            if len(line) > self.request_line_limit:
                return self._refuse(414)
        elif self._receivedHeaderSize + len(line) > self.totalHeadersSize:
            return self._refuse(431)
        return super().lineReceived(line)

    def lineLengthExceeded(self, line):
        return self._refuse(414 if self._reading_request_line() else 431)

    def _refuse(self, status):
        if status == 414:
            reason = "URI Too Long"
            body = f"请求地址过长（超过 {self.request_line_limit} 字节），请缩短查询参数。\n"
        else:
            reason = "Request Header Fields Too Large"
            body = f"请求头过大（合计超过 {self.totalHeadersSize} 字节），请清除 Cookie 后重试。\n"
        self.clearLineBuffer()
        self.dataReceived = lambda data: None  # the rest of this connection is discarded
        self.transport.write(_response(status, reason, body))
        self._networkProducer.unregisterProducer()
        half_close = getattr(self.transport, "loseWriteConnection", None)
        if half_close is None:  # a transport that cannot half-close just closes
            self.transport.loseConnection()
            return
        half_close()
        # No read resets the timeout any more: it closes the connection after the linger.
        self.setTimeout(LINGER_SECONDS)


def limited_protocol(factory):
    """Twisted's HTTPFactory.protocol (_genericHTTPChannelProtocolFactory) with our channel."""
    return http._GenericHTTPChannelProtocol(LimitedHTTPChannel())


def install() -> None:
    """Make Daphne's HTTP factory build LimitedHTTPChannel, configured from the settings."""
    LimitedHTTPChannel.request_line_limit = settings.REQUEST_LINE_MAX_BYTES
    HTTPFactory.protocol = limited_protocol


def main(argv: list[str] | None = None) -> None:
    # Reading a setting loads (and checks) settings.py; Django itself is set up by gridgov.asgi.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gridgov.settings")
    install()
    # daphne.cli imports daphne.server, which installs Twisted's asyncio reactor on import: only
    # when serving, not whenever this module is imported (tests, install()).
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
