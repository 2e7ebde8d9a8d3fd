#!/usr/bin/env python3
"""Runs examples/epoll_echo_server with many Python ssl clients at once.

usage: run_echo.py EPOLL_ECHO_SERVER CERTS_DIR BACKEND...   (env CLIENTS, default 40)
Every client sends 64 KiB in pieces, reads it all back, closes with
close_notify and waits for the server's; the server must serve them all
concurrently and exit 0.
"""
import os
import re
import ssl
import socket
import subprocess
import sys
import threading


def client(port, ca, index, errors):
    try:
        ctx = ssl.create_default_context(cafile=ca)
        data = bytes((index + i) % 251 for i in range(64 * 1024))
        with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                got = bytearray()
                for off in range(0, len(data), 5000):
                    tls.sendall(data[off:off + 5000])
                while len(got) < len(data):
                    chunk = tls.recv(65536)
                    if not chunk:
                        raise RuntimeError(f"EOF after {len(got)} bytes")
                    got += chunk
                if bytes(got) != data:
                    raise RuntimeError("echo differs")
                tls.unwrap()  # our close_notify, then the server's
    except Exception as e:  # noqa: BLE001 - every failure is reported
        errors.append(f"client {index}: {e!r}")


def main():
    server_exe, certs, *backends = sys.argv[1:]
    return 1 if any(serve(server_exe, certs, b) for b in backends) else 0


def serve(server_exe, certs, backend):
    clients = int(os.environ.get("CLIENTS", "40"))
    print(f"{backend}:")
    server = subprocess.Popen(
        [server_exe, os.path.join(certs, "server.pem"), os.path.join(certs, "server.key"), str(clients), backend],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        match = re.search(r"127\.0\.0\.1:(\d+)", server.stdout.readline().decode())
        if not match:
            print("the server did not listen")
            return 1
        port = int(match.group(1))
        errors = []
        threads = [threading.Thread(target=client, args=(port, os.path.join(certs, "ca.pem"), i, errors))
                   for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out, err = server.communicate(timeout=60)
        print(out.decode().strip())
        for e in errors:
            print(e)
        if err:
            print(err.decode().strip())
        return 0 if not errors and server.returncode == 0 else 1
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


if __name__ == "__main__":
    sys.exit(main())
