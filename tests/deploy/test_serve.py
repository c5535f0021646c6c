"""gridgov.serve: Daphne answering 414 / 431 to oversized requests instead of dropping them.

Through a real server process started as deployed (tests/realtime/daphne.py runs
`python -m gridgov.serve`), and in-process on Twisted's string transport for the library
internals the module relies on."""

import http.client
import socket

import pytest
from daphne.http_protocol import HTTPFactory
from twisted.internet.testing import StringTransport
from twisted.web import http as twisted_http

from gridgov import serve
from tests.realtime.daphne import DaphneUnavailable, daphne_servers

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def port(django_db_setup, django_db_blocker):
    cm = daphne_servers(1, {"DJANGO_DEBUG": "1", "REQUEST_LINE_MAX_BYTES": "8192"})
    try:
        ports = cm.__enter__()
    except DaphneUnavailable as exc:
        pytest.skip(f"daphne cannot start at all: {exc}")
    try:
        yield ports[0]
    finally:
        cm.__exit__(None, None, None)


def get(port, path, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace"), r.getheader("Connection")
    finally:
        conn.close()


def raw(port, data):
    """Send bytes, read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_100_kb_query_string_gets_414_and_the_server_still_serves(port):
    assert get(port, "/accounts/login/")[0] == 200
    status, body, connection = get(port, "/accounts/login/?q=" + "x" * 100_000)
    assert status == 414 and "请求地址过长" in body and "8192" in body and connection == "close"
    # Between the setting and Twisted's own 16 KiB line limit: the setting decides.
    assert get(port, "/accounts/login/?q=" + "x" * 9_000)[0] == 414
    assert get(port, "/accounts/login/?q=" + "x" * 7_000)[0] == 200
    for _ in range(3):
        assert get(port, "/accounts/login/")[0] == 200


def test_long_query_on_a_protected_api_says_414_and_nothing_else(port):
    # The refusal comes before Django: it must not leak anything, and a short query still meets
    # the API's own access check (an anonymous outsider is refused).
    status, body, _ = get(port, "/api/v1/appeals?search=" + "x" * 100_000)
    assert status == 414 and "{" not in body
    assert get(port, "/api/v1/appeals?search=x")[0] in (401, 403)


def test_oversized_headers_get_431(port):
    status, body, _ = get(port, "/accounts/login/", {"Cookie": "a=" + "b" * 20_000})  # one line over 16 KiB
    assert status == 431 and "请求头过大" in body
    many = {f"X-Filler-{i}": "y" * 900 for i in range(20)}  # each line fine, together over 16 KiB
    assert get(port, "/accounts/login/", many)[0] == 431
    assert get(port, "/accounts/login/", {"Cookie": "a=" + "b" * 4_000})[0] == 200


def test_a_client_still_sending_gets_the_whole_answer(port):
    # The server stops reading the request at its line limit but keeps draining the socket, so
    # the rest of a 1 MB request line does not turn into a reset that destroys the answer.
    answer = raw(port, b"GET /?" + b"q" * 1_000_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414 URI Too Long") and "请求地址过长" in body.decode()
    assert get(port, "/accounts/login/")[0] == 200


# --- the Twisted/Daphne internals gridgov.serve relies on ------------------------------------
# If one of these fails after an upgrade of Twisted or Daphne, gridgov/serve.py needs a look.


class HalfClosable(StringTransport):
    write_closed = False

    def loseWriteConnection(self):
        self.write_closed = True


class Ok(twisted_http.Request):
    def process(self):
        self.setHeader(b"content-length", b"2")
        self.write(b"ok")
        self.finish()


def channel(limit=100):
    """A LimitedHTTPChannel as Daphne's factory builds it once serve.install() ran, answering
    each request 'ok' in place of Daphne's ASGI request (which needs a running server)."""
    old = HTTPFactory.protocol
    try:
        serve.install()
        proto = HTTPFactory(server=None).buildProtocol(None)
    finally:
        HTTPFactory.protocol = old
    assert isinstance(proto._channel, serve.LimitedHTTPChannel)
    proto._channel.request_line_limit = limit
    proto.requestFactory = Ok
    transport = HalfClosable()
    proto.makeConnection(transport)
    return proto, transport


def test_the_library_is_as_serve_expects():
    # Our factory mirrors Twisted's (the same wrapper around one HTTPChannel)...
    assert twisted_http.HTTPFactory.protocol is twisted_http._genericHTTPChannelProtocolFactory
    generic = twisted_http._genericHTTPChannelProtocolFactory(None)
    assert type(generic) is twisted_http._GenericHTTPChannelProtocol
    assert type(generic._channel) is twisted_http.HTTPChannel
    # ... and Daphne builds its protocols from the factory's class attribute that install() sets.
    assert "protocol" not in vars(HTTPFactory) or HTTPFactory.protocol is serve.limited_protocol
    # The limits and counters LimitedHTTPChannel reads.
    assert serve.TWISTED_LINE_LIMIT == twisted_http.HTTPChannel.MAX_LENGTH == 16384
    assert twisted_http.HTTPChannel.totalHeadersSize == 16384
    assert twisted_http.HTTPChannel._receivedHeaderSize == 0


def test_channel_refuses_long_request_lines_and_headers_in_process():
    proto, transport = channel(limit=100)
    proto.dataReceived(b"GET /?" + b"x" * 200 + b" HTTP/1.1\r\n")
    assert transport.value().startswith(b"HTTP/1.1 414 URI Too Long\r\n")
    assert transport.write_closed and not transport.disconnecting  # lingers, reading, for a moment
    assert proto._channel.timeOut == serve.LINGER_SECONDS
    proto.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # the rest of the connection is discarded
    assert transport.value().count(b"HTTP/1.1 ") == 1

    proto, transport = channel(limit=100)
    proto.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"y" * 17_000)
    assert transport.value().startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


def test_each_request_line_on_a_keep_alive_connection_is_measured():
    # Twisted resets _receivedHeaderSize when a request is complete; serve reads 0 as "the next
    # line is a request line". Were the reset gone, the second request line would count as a header.
    proto, transport = channel(limit=100)
    proto.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.value().startswith(b"HTTP/1.1 200 OK") and transport.value().endswith(b"ok")
    assert proto._channel._receivedHeaderSize == 0
    proto.dataReceived(b"GET /?" + b"x" * 200 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"HTTP/1.1 414 URI Too Long" in transport.value()
