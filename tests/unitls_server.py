"""A `unitls server 0` (any free port) for the Python test drivers.

    with UnitlsServer(unitls, backend, cert, key, stdin_bytes) as server:
        if server.problem: ...          # it did not listen
        ... connect to 127.0.0.1:server.port ...
        problem = server.finish()       # None, or why it did not exit 0
        server.stderr                   # after finish(): what it printed after listening

env: the server's environment (None: this one's).

What it is given for stdin goes out right after the handshake; then stdin
ends and the server closes (--close bidi: close_notify, then it waits for
the peer's). A server still running when the block ends is killed.
"""
import re
import subprocess
import sys


class UnitlsServer:
    def __init__(self, unitls, backend, cert, key, stdin_bytes, timeout_ms=10000, extra=(), env=None):
        self.process = subprocess.Popen(
            [unitls, "server", "0", "--backend", backend, "--cert", cert, "--key", key,
             "--timeout", str(timeout_ms), *extra],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        self._stdin_bytes = stdin_bytes
        self.port = None
        self.problem = None
        self.stderr = ""

    def __enter__(self):
        line = self.process.stderr.readline().decode()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if not match:
            self.problem = f"server did not listen: {line!r}"
            return self
        self.port = match.group(1)
        self.process.stdin.write(self._stdin_bytes)
        self.process.stdin.close()
        return self

    def finish(self, timeout=30, expect_exit=0):
        self.stderr = self.process.stderr.read().decode()
        if self.process.wait(timeout=timeout) != expect_exit:
            return f"server exit {self.process.returncode}: {self.stderr.strip()}"
        return None

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        return False


def main_per_backend(check, what):
    """The drivers' main: `check(unitls, certs, backend)` for each backend
    named on the command line (None or why it failed), one line each."""
    unitls, certs, *backends = sys.argv[1:]
    failures = 0
    for backend in backends:
        problem = check(unitls, certs, backend)
        print(f"{what}, {backend}: {'ok' if problem is None else 'FAILED: ' + problem}")
        failures += problem is not None
    return 1 if failures else 0
