"""A TLS peer on Python's ssl module, for the unitls `peers` suite.

    peer.py server --listen-fd 3 --certs DIR --version 1.3 --then wait-close
    peer.py client --port PORT   --certs DIR --version 1.2 --then close

The payload is read from stdin (until end of file). A server accepts one
connection on the inherited listening socket, reads the payload from it
(the bytes must be exactly stdin's) and echoes it back. A client connects to
127.0.0.1:PORT (verifying "localhost" against DIR/ca.pem), sends the payload
and reads the echo (which must be exactly the payload). Then, after "--then":

  wait-close  the next recv() must return b'' (the peer's close_notify, not a
              bare EOF: suppress_ragged_eofs is off), then unwrap() sends our
              close_notify; prints "clean close".
  close       unwrap() sends our close_notify and waits for the peer's;
              prints "unwrap ok".
  hold        prints "READY" and waits to be killed.

Exit status: 0 done, 1 a check failed or TLS failed (the reason on stderr),
2 bad usage, 3 "hold" was never killed. Every socket has a timeout, so the
script cannot hang.
"""

import argparse
import os
import socket
import ssl
import sys
import time

TIMEOUT = 10.0


def fail(message):
    print("peer.py: " + message, file=sys.stderr, flush=True)
    sys.exit(1)


def recv_exact(tls, size):
    data = bytearray()
    while len(data) < size:
        chunk = tls.recv(size - len(data))
        if not chunk:
            fail("close_notify after %d of %d bytes" % (len(data), size))
        data += chunk
    return bytes(data)


def context(args):
    version = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[args.version]
    if args.role == "server":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(args.certs, "server.pem"), os.path.join(args.certs, "server.key"))
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the chain and the name
        ctx.load_verify_locations(os.path.join(args.certs, "ca.pem"))
    ctx.minimum_version = version
    ctx.maximum_version = version
    return ctx


def connect(args, ctx):
    if args.role == "server":
        listener = socket.socket(fileno=args.listen_fd)
        listener.settimeout(TIMEOUT)
        raw, _ = listener.accept()
        listener.close()
        raw.settimeout(TIMEOUT)
        return ctx.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
    raw = socket.create_connection(("127.0.0.1", args.port), timeout=TIMEOUT)
    return ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["client", "server"])
    parser.add_argument("--listen-fd", type=int)
    parser.add_argument("--port", type=int)
    parser.add_argument("--certs", required=True)
    parser.add_argument("--version", choices=["1.2", "1.3"], required=True)
    parser.add_argument("--then", choices=["wait-close", "close", "hold"], required=True)
    args = parser.parse_args()
    if (args.role == "server") != (args.listen_fd is not None) or (args.role == "client") != (args.port is not None):
        parser.error("a server needs --listen-fd, a client --port")

    payload = sys.stdin.buffer.read()
    try:
        tls = connect(args, context(args))
        print("connected: " + tls.version(), flush=True)
        if args.role == "server":
            if recv_exact(tls, len(payload)) != payload:
                fail("the data received differs from the payload")
            tls.sendall(payload)
        else:
            tls.sendall(payload)
            if recv_exact(tls, len(payload)) != payload:
                fail("the echo differs from the payload")
        print("echo ok", flush=True)

        if args.then == "wait-close":
            rest = tls.recv(1)
            if rest:
                fail("data after the echo: %r" % rest)
            tls.unwrap()
            print("clean close", flush=True)
        elif args.then == "close":
            tls.unwrap()
            print("unwrap ok", flush=True)
        else:
            print("READY", flush=True)
            time.sleep(TIMEOUT * 3)
            sys.exit(3)
    except (ssl.SSLError, OSError) as e:
        fail("%s: %s" % (type(e).__name__, e))


if __name__ == "__main__":
    main()
