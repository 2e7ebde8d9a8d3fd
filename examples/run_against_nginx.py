#!/usr/bin/env python3
"""Real servers and clients (issue 10): nginx against examples/https_get, and
curl against a `unitls server` of every backend.

usage: run_against_nginx.py HTTPS_GET UNITLS CERTS_DIR BACKEND...
  env RUNS: https_get runs against nginx (default 20); curl runs per backend (RUNS // 4)

nginx (Debian's, found on PATH or in /usr/sbin) is started on a free loopback
port with the test PKI's server certificate and stopped afterwards; https_get
(built with this build's default backend) must print the page and close
cleanly every time. curl must fetch a canned page from each unitls server. A
program that is not installed is a skip (exit 77) with the reason.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

PAGE = b"hello from nginx\n" * 64
SKIP = 77


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, process, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


NGINX_CONF = """daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {certs}/server.pem;
    ssl_certificate_key {certs}/server.key;
    root {dir}/www;
  }}
}}
"""


def nginx_runs(nginx, https_get, certs, runs):
    failures = 0
    with tempfile.TemporaryDirectory(prefix="unitls-nginx-") as d:
        os.makedirs(os.path.join(d, "www"))
        with open(os.path.join(d, "www", "index.html"), "wb") as f:
            f.write(PAGE)
        port = free_port()
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=d, port=port, certs=os.path.abspath(certs)))
        server = subprocess.Popen([nginx, "-c", conf, "-p", d, "-e", os.path.join(d, "error.log")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            if not wait_listening(port, server):
                err = server.stderr.read().decode() if server.poll() is not None else ""
                print(f"nginx did not start on port {port}: {err.strip()}")
                return 1
            for i in range(runs):
                client = subprocess.run([https_get, "127.0.0.1", str(port), os.path.join(certs, "ca.pem")],
                                        capture_output=True, timeout=30)
                problem = None
                if client.returncode != 0:
                    problem = f"exit {client.returncode}: {client.stderr.decode().strip()}"
                elif not client.stdout.endswith(PAGE):
                    problem = f"page not received whole ({len(client.stdout)} bytes)"
                print(f"https_get against nginx, run {i + 1}/{runs}: {'ok' if problem is None else 'FAILED: ' + problem}")
                failures += problem is not None
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    return failures


CANNED = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello from unitls\n"


def curl_runs(curl, unitls, certs, backend, runs):
    failures = 0
    for i in range(runs):
        server = subprocess.Popen(
            [unitls, "server", "0", "--backend", backend, "--timeout", "10000",
             "--cert", os.path.join(certs, "server.pem"), "--key", os.path.join(certs, "server.key")],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        problem = None
        try:
            match = re.search(r"listening on 127\.0\.0\.1:(\d+)", server.stderr.readline().decode())
            if not match:
                problem = "server did not listen"
            else:
                server.stdin.write(CANNED)
                server.stdin.close()
                client = subprocess.run(
                    [curl, "--silent", "--show-error", "--http1.0", "--max-time", "20",
                     "--cacert", os.path.join(certs, "ca.pem"),
                     f"https://localhost:{match.group(1)}/"],
                    capture_output=True, timeout=30)
                if client.returncode != 0:
                    problem = f"curl exit {client.returncode}: {client.stderr.decode().strip()}"
                elif client.stdout != b"hello from unitls\n":
                    problem = f"curl printed {client.stdout!r}"
                else:
                    rest = server.stderr.read().decode().strip()
                    if server.wait(timeout=20) != 0:
                        problem = f"unitls server exit {server.returncode}: {rest}"
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        print(f"curl against a {backend} unitls server, run {i + 1}/{runs}: {'ok' if problem is None else 'FAILED: ' + problem}")
        failures += problem is not None
    return failures


def main():
    https_get, unitls, certs, *backends = sys.argv[1:]
    runs = int(os.environ.get("RUNS", "20"))
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    curl = shutil.which("curl")
    missing = [name for name, path in (("nginx", nginx), ("curl", curl)) if path is None]
    if missing:
        print(f"skipped: not installed: {', '.join(missing)} (script/bootstrap installs them)")
        return SKIP
    failures = nginx_runs(nginx, https_get, certs, runs)
    for backend in backends:
        failures += curl_runs(curl, unitls, certs, backend, max(1, runs // 4))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
