#!/usr/bin/env python3
"""make_corpus.py DUMP_FLIGHT OUTDIR — seed corpora for the fuzz targets.

Writes OUTDIR/<target>/<name> for every target in fuzz/meson.build: real
flights captured from the compiled-in backends (DUMP_FLIGHT is the path of
build-fuzz/fuzz/dump_flight), wrapped in each target's input format, and
hand-made peer bytes (alerts, HTTP, an SSLv2-style hello, odd record
headers). Nothing here is committed as a binary: the seeds are made from
the stacks at hand, each time. Python 3 standard library only.

The input formats are those of fuzz/fuzz_support.hpp (run_raw_peer,
RelayWorld::step) and fuzz/fuzz_divergence.cpp; the opcodes below must
follow them.
"""
import os
import random
import struct
import subprocess
import sys
import tempfile

# ---- run_raw_peer (fuzz_client, fuzz_server): op % 12 ----
RAW_INJECT, RAW_HANDSHAKE, RAW_READ, RAW_WRITE = 0, 4, 5, 6
RAW_SHUTDOWN, RAW_SEND_CLOSE_NOTIFY, RAW_FAULT, RAW_SET_SHUTDOWN, RAW_SET_QUIET = 7, 8, 9, 10, 11

# Variant bits (variant_from): 1 TLS 1.2 only, 2 no verification, 4 client
# certificates, 8 ALPN, 16 require_close_notify = false.
TLS12, NO_VERIFY, CLIENT_AUTH, ALPN, LENIENT = 1, 2, 4, 8, 16

# pick_size indexes.
SIZE_1, SIZE_100, SIZE_16384, SIZE_40000 = 0, 4, 8, 11


def raw_inject(data):
    return bytes([RAW_INJECT]) + struct.pack(">H", len(data)) + data


# ---- RelayWorld::step (fuzz_handshake, fuzz_shutdown): op = kind * 2 + side ----
# side 0 = client (or the client-to-server direction), 1 = server (server-to-client).
K_HANDSHAKE, K_READ, K_WRITE, K_SHUTDOWN, K_SCN, K_SET_SHUTDOWN, K_SET_QUIET = range(7)
K_DELIVER, K_DELIVER_PART, K_FLIP, K_DROP, K_INSERT, K_DUP, K_FAULT, K_DRIVE, K_BOTH = range(7, 16)


def op(kind, side=0, *args):
    return bytes([kind * 2 + side]) + b"".join(args)


def u16(n):
    return struct.pack(">H", n)


def u8(n):
    return bytes([n])


# ---- fuzz_divergence: op = kind * 2 + side ----
D_HANDSHAKE, D_READ, D_WRITE, D_SHUTDOWN, D_SCN, D_SET_SHUTDOWN, D_SET_QUIET, D_FAULT, D_DRIVE, D_DRAIN = range(10)
# fault kinds (on the pipe the side writes to)
F_HOLD, F_RELEASE, F_BUDGET0, F_UNLIMITED, F_EOF, F_RESET, F_CORRUPT = range(7)


def record(content_type, body, version=b"\x03\x03"):
    return bytes([content_type]) + version + struct.pack(">H", len(body)) + body


def handmade():
    """Peer bytes that are not a genuine flight, by name."""
    rnd = random.Random(8)
    challenge = bytes(rnd.randrange(256) for _ in range(16))
    specs = bytes.fromhex("010080 0700c0 030080 060040 020080 040080 000005".replace(" ", ""))
    sslv2_body = b"\x01\x03\x01" + u16(len(specs)) + u16(0) + u16(len(challenge)) + specs + challenge
    sslv2 = struct.pack(">H", 0x8000 | len(sslv2_body)) + sslv2_body
    return {
        "alert-fatal": record(21, b"\x02\x28"),
        "alert-close-notify": record(21, b"\x01\x00"),
        "alert-warning-no-renegotiation": record(21, b"\x01\x64"),
        "alert-in-two-records": record(21, b"\x02") + record(21, b"\x28"),
        "http-request": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "http-response": b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        "sslv2-hello": sslv2,
        "zero-length-handshake": record(22, b""),
        "huge-record-length": b"\x16\x03\x03\xff\xff" + bytes(64),
        "bad-record-version": record(22, b"\x01\x00\x00\x00", version=b"\x09\x09"),
        "handshake-0xffffff": record(22, b"\x01\xff\xff\xff"),
        "hello-request": record(22, b"\x00\x00\x00\x00"),
        "application-data-first": record(23, bytes(rnd.randrange(256) for _ in range(32))),
        "change-cipher-spec-first": record(20, b"\x01"),
        "heartbeat": record(24, b"\x01\x40\x00"),
        "one-byte-records": record(22, b"\x01") * 1000,
        "random": bytes(rnd.randrange(256) for _ in range(600)),
    }


def flights(dump_flight):
    """{(client, server, version): {"c": [bytes...], "s": [bytes...]}} from dump_flight."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([dump_flight, tmp], check=True, stdout=subprocess.DEVNULL)
        out = {}
        for name in sorted(os.listdir(tmp)):
            client, server, version, rest = name.split("-")
            side, k = rest[0], int(rest[1:])
            entry = out.setdefault((client, server, version), {"c": [], "s": []})
            with open(os.path.join(tmp, name), "rb") as f:
                entry[side].append((k, f.read()))
        for entry in out.values():
            for side in "cs":
                entry[side] = [data for _, data in sorted(entry[side])]
        return out


def backends(captured):
    return sorted({c for c, _, _ in captured})


def raw_peer_seeds(captured, side):
    """fuzz_client (side "s": the server's flights reach it) / fuzz_server ("c")."""
    seeds = {"empty": b"", "variant-only": b"\x00"}
    for (client, server, version), entry in captured.items():
        variant = TLS12 if version == "12" else 0
        body = b"".join(raw_inject(f) for f in entry[side])
        tail = bytes([RAW_READ, SIZE_16384, RAW_SHUTDOWN, RAW_SEND_CLOSE_NOTIFY, RAW_WRITE, SIZE_100])
        seeds["flights-%s-%s-%s" % (client, server, version)] = bytes([variant]) + body + tail
        # The first flight alone, cut in the middle of a record: the rest
        # arrives in a second injection.
        first = entry[side][0]
        seeds["split-%s-%s-%s" % (client, server, version)] = (
            bytes([variant]) + raw_inject(first[:7]) + raw_inject(first[7:]) + bytes([RAW_HANDSHAKE]))
        # With faults: the reply cannot be written at first, then the EOF.
        seeds["faults-%s-%s-%s" % (client, server, version)] = (
            bytes([variant | LENIENT, RAW_FAULT, 3]) + raw_inject(first)
            + bytes([RAW_FAULT, 4, RAW_HANDSHAKE, RAW_FAULT, 0, RAW_HANDSHAKE, RAW_READ, SIZE_1]))
    for name, data in handmade().items():
        for variant, label in ((0, ""), (TLS12 | ALPN | CLIENT_AUTH, "-tls12")):
            seeds["handmade-%s%s" % (name, label)] = (
                bytes([variant]) + raw_inject(data)
                + bytes([RAW_HANDSHAKE, RAW_READ, SIZE_16384, RAW_SHUTDOWN]))
    # Calls before any byte came: not_connected everywhere.
    seeds["calls-before-handshake"] = bytes([
        0, RAW_READ, SIZE_100, RAW_WRITE, SIZE_100, RAW_SHUTDOWN, RAW_SEND_CLOSE_NOTIFY,
        RAW_SET_SHUTDOWN, 3, RAW_SET_QUIET, 1, RAW_SHUTDOWN, RAW_HANDSHAKE])
    return seeds


def handshake_seeds(n_backends):
    seeds = {}
    step_by_step = (op(K_HANDSHAKE, 0) + op(K_DELIVER, 0) + op(K_HANDSHAKE, 1) + op(K_DELIVER, 1)) * 4
    data = op(K_WRITE, 1, u8(SIZE_100)) + op(K_BOTH) + op(K_WRITE, 0, u8(SIZE_100)) + op(K_BOTH)
    close = (op(K_SHUTDOWN, 0) + op(K_DELIVER, 0) + op(K_READ, 1, u8(SIZE_100)) + op(K_SHUTDOWN, 1)
             + op(K_DELIVER, 1) + op(K_SHUTDOWN, 0))
    # Every backend pair and role once per protocol version; the other
    # variants (client certificates, ALPN) reached by mutating the first byte.
    for variant, vname in ((0, "tls13"), (TLS12 | CLIENT_AUTH | ALPN | LENIENT, "tls12-auth-alpn-lenient")):
        for other in range(n_backends):
            for server in (0, 1):
                head = bytes([variant, (other << 1) | server])
                tag = "%s-other%d-%s" % (vname, other, "server" if server else "client")
                seeds["drive-" + tag] = head + op(K_DRIVE) + data + close
                seeds["steps-" + tag] = head + step_by_step + data + close
        head = bytes([variant, 0])
        # Damage in the middle of each flight, before it is delivered.
        for at in (5, 100, 700):
            for direction in (0, 1):
                seeds["flip-%s-%s-%d" % (vname, "s2c" if direction else "c2s", at)] = (
                    head + op(K_HANDSHAKE, 0)
                    + (op(K_FLIP, 0, u16(at), u8(0x40)) if direction == 0 else b"")
                    + op(K_DELIVER, 0) + op(K_HANDSHAKE, 1)
                    + (op(K_FLIP, 1, u16(at), u8(0x40)) if direction == 1 else b"")
                    + op(K_DELIVER, 1) + op(K_DRIVE) + data)
        seeds["trickle-" + vname] = head + (op(K_HANDSHAKE, 0) + op(K_DELIVER_PART, 0, u16(1))
                                            + op(K_HANDSHAKE, 1) + op(K_DELIVER_PART, 1, u16(1))) * 40
        seeds["replay-" + vname] = head + op(K_HANDSHAKE, 0) + op(K_DUP, 0, u16(0), u16(4095)) + op(K_DRIVE)
        seeds["forged-alert-" + vname] = (head + op(K_HANDSHAKE, 0) + op(K_DELIVER, 0) + op(K_HANDSHAKE, 1)
                                          + op(K_INSERT, 1, u16(0), u16(7), record(21, b"\x02\x28"))
                                          + op(K_DRIVE))
        seeds["eof-mid-handshake-" + vname] = (head + op(K_HANDSHAKE, 0) + op(K_DELIVER, 0)
                                               + op(K_HANDSHAKE, 1) + op(K_FAULT, 1, u8(0)) + op(K_DRIVE))
    return seeds


def shutdown_seeds(n_backends):
    seeds = {}
    for variant, vname in ((0, "tls13"), (TLS12 | LENIENT, "tls12-lenient")):
        for other in range(n_backends):
            for closer in (0, 1):
                peer = 1 - closer
                to_peer, to_closer = closer, peer  # directions: the side's bit names what it sends
                head = bytes([variant, (other << 1) | closer])
                tag = "%s-other%d-%s-closes" % (vname, other, "server" if closer else "client")
                seeds["bidirectional-" + tag] = head + (
                    op(K_DELIVER, to_peer) + op(K_READ, peer, u8(SIZE_100)) + op(K_SHUTDOWN, peer)
                    + op(K_DELIVER, to_closer) + op(K_SHUTDOWN, closer) + op(K_SHUTDOWN, closer)
                    + op(K_READ, closer, u8(SIZE_1)))
                seeds["data-pending-" + tag] = head + (
                    op(K_WRITE, peer, u8(SIZE_40000)) + op(K_WRITE, peer, u8(SIZE_100))
                    + op(K_DELIVER, to_closer) + op(K_SHUTDOWN, closer) + op(K_READ, closer, u8(SIZE_1))
                    + op(K_SHUTDOWN, closer) + op(K_READ, closer, u8(SIZE_16384)) + op(K_SHUTDOWN, closer)
                    + op(K_READ, closer, u8(SIZE_16384)) + op(K_DELIVER, to_peer)
                    + op(K_READ, peer, u8(SIZE_100)) + op(K_SHUTDOWN, peer) + op(K_DELIVER, to_closer)
                    + op(K_SHUTDOWN, closer))
                seeds["one-step-peer-" + tag] = head + (
                    op(K_SCN, peer) + op(K_SCN, peer) + op(K_DELIVER, to_closer) + op(K_SHUTDOWN, closer)
                    + op(K_READ, closer, u8(SIZE_100)) + op(K_WRITE, closer, u8(SIZE_100)))
        # The client closes; the peer's backend turns with each scenario.
        scenarios = {
            "truncated": op(K_FAULT, 1, u8(0)) + op(K_SHUTDOWN, 0) + op(K_READ, 0, u8(SIZE_1)),
            "reset": op(K_FAULT, 1, u8(1)) + op(K_SHUTDOWN, 0) + op(K_SCN, 0),
            "damaged-close-notify": op(K_DELIVER, 0) + op(K_READ, 1, u8(SIZE_100)) + op(K_SHUTDOWN, 1)
            + op(K_FLIP, 1, u16(10), u8(0x01)) + op(K_DELIVER, 1) + op(K_SHUTDOWN, 0),
            "forged-alert": op(K_INSERT, 1, u16(0), u16(7), record(21, b"\x02\x28"))
            + op(K_DELIVER, 1) + op(K_SHUTDOWN, 0) + op(K_READ, 0, u8(SIZE_1)),
            "replayed-record": op(K_WRITE, 1, u8(SIZE_100)) + op(K_DUP, 1, u16(0), u16(4095)) + op(K_DELIVER, 1)
            + op(K_SHUTDOWN, 0) + op(K_READ, 0, u8(SIZE_16384)) + op(K_READ, 0, u8(SIZE_16384)),
            "cut-record": op(K_WRITE, 1, u8(SIZE_100)) + op(K_DELIVER_PART, 1, u16(30)) + op(K_SHUTDOWN, 0)
            + op(K_FAULT, 1, u8(0)) + op(K_SHUTDOWN, 0),
            "stuck-peer-write": op(K_FAULT, 1, u8(3)) + op(K_WRITE, 1, u8(SIZE_40000)) + op(K_SHUTDOWN, 1)
            + op(K_SCN, 1) + op(K_FAULT, 1, u8(4)) + op(K_WRITE, 1, u8(SIZE_40000)) + op(K_SHUTDOWN, 1)
            + op(K_BOTH) + op(K_SHUTDOWN, 0),
            "quiet": op(K_SET_QUIET, 0, u8(1)) + op(K_SHUTDOWN, 0) + op(K_READ, 0, u8(SIZE_1)),
        }
        for i, (name, ops) in enumerate(scenarios.items()):
            seeds["%s-%s" % (name, vname)] = bytes([variant, (i % n_backends) << 1]) + ops
    return seeds


def divergence_seeds():
    def d(kind, side=0, *args):
        return bytes([kind * 2 + side]) + b"".join(args)

    drive = d(D_DRIVE)
    drain = d(D_DRAIN)
    seeds = {
        "plain-close": drive + d(D_WRITE, 0, u8(SIZE_100)) + drain + d(D_WRITE, 1, u8(SIZE_100)) + drain
        + d(D_SHUTDOWN, 0) + d(D_READ, 1, u8(SIZE_100)) + d(D_SHUTDOWN, 1) + d(D_SHUTDOWN, 0)
        + d(D_READ, 0, u8(SIZE_1)) + d(D_WRITE, 0, u8(SIZE_1)),
        "server-closes-half-close": drive + d(D_SHUTDOWN, 1) + d(D_WRITE, 0, u8(SIZE_16384))
        + d(D_READ, 0, u8(SIZE_100)) + d(D_READ, 1, u8(SIZE_16384)) + d(D_SHUTDOWN, 0) + d(D_SHUTDOWN, 1) + drain,
        "write-pending": drive + d(D_FAULT, 0, u8(F_BUDGET0)) + d(D_WRITE, 0, u8(SIZE_40000))
        + d(D_SHUTDOWN, 0) + d(D_SCN, 0) + d(D_FAULT, 0, u8(F_UNLIMITED)) + d(D_WRITE, 0, u8(SIZE_1))
        + drain + d(D_SHUTDOWN, 0) + d(D_SHUTDOWN, 0),
        "close-notify-stuck": drive + d(D_FAULT, 0, u8(F_BUDGET0)) + d(D_SHUTDOWN, 0) + d(D_SHUTDOWN, 0)
        + d(D_WRITE, 0, u8(SIZE_1)) + d(D_FAULT, 0, u8(F_UNLIMITED)) + d(D_SCN, 0) + d(D_SHUTDOWN, 0)
        + d(D_READ, 1, u8(SIZE_1)),
        "truncation": drive + d(D_FAULT, 1, u8(F_EOF)) + d(D_READ, 0, u8(SIZE_100)) + d(D_READ, 0, u8(SIZE_100))
        + d(D_SHUTDOWN, 0) + d(D_WRITE, 0, u8(SIZE_1)),
        "reset": drive + d(D_FAULT, 1, u8(F_RESET)) + d(D_READ, 0, u8(SIZE_100)) + d(D_WRITE, 1, u8(SIZE_1))
        + d(D_SHUTDOWN, 1),
        "corrupt-record": drive + d(D_WRITE, 1, u8(SIZE_100)) + d(D_FAULT, 1, u8(F_CORRUPT))
        + d(D_READ, 0, u8(SIZE_100)) + d(D_READ, 1, u8(SIZE_100)) + d(D_SHUTDOWN, 1),
        "corrupt-handshake": d(D_HANDSHAKE, 0) + d(D_HANDSHAKE, 1) + d(D_FAULT, 1, u8(F_CORRUPT)) + drive + drain,
        "quiet": drive + d(D_SET_QUIET, 0, u8(1)) + d(D_SHUTDOWN, 0) + d(D_READ, 1, u8(SIZE_1))
        + d(D_SCN, 0) + d(D_READ, 1, u8(SIZE_1)),
        "set-shutdown": drive + d(D_SET_SHUTDOWN, 0, u8(1)) + d(D_SHUTDOWN, 0) + d(D_SET_SHUTDOWN, 1, u8(2))
        + d(D_SHUTDOWN, 1) + d(D_READ, 1, u8(SIZE_1)) + drain,
        "held-handshake": d(D_HANDSHAKE, 0) + d(D_FAULT, 0, u8(F_HOLD)) + d(D_HANDSHAKE, 1)
        + d(D_FAULT, 0, u8(F_RELEASE)) + drive + d(D_WRITE, 1, u8(SIZE_40000)) + drain,
        "data-pending": drive + d(D_SHUTDOWN, 0) + d(D_WRITE, 1, u8(SIZE_40000)) + d(D_SHUTDOWN, 0)
        + d(D_READ, 0, u8(SIZE_1)) + d(D_SHUTDOWN, 0) + d(D_READ, 0, u8(SIZE_16384)) + d(D_SHUTDOWN, 0)
        + d(D_READ, 1, u8(SIZE_1)) + d(D_SHUTDOWN, 1) + d(D_SHUTDOWN, 0),
        "before-handshake": d(D_READ, 0, u8(SIZE_1)) + d(D_WRITE, 1, u8(SIZE_1)) + d(D_SHUTDOWN, 0)
        + d(D_SCN, 1) + drive,
    }
    # The variant byte comes first: 1 is require_close_notify = false, 2
    # client certificates, 4 ALPN.
    out = {name: b"\x00" + data for name, data in seeds.items()}
    out["truncation-lenient"] = b"\x01" + seeds["truncation"]
    out["plain-close-auth-alpn"] = b"\x06" + seeds["plain-close"]
    return out


def write(outdir, target, seeds):
    path = os.path.join(outdir, target)
    os.makedirs(path, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(path, name), "wb") as f:
            f.write(data)
    return len(seeds)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: make_corpus.py DUMP_FLIGHT OUTDIR")
    dump_flight, outdir = sys.argv[1], sys.argv[2]
    captured = flights(dump_flight)
    n = len(backends(captured))
    counts = {
        "fuzz_client": write(outdir, "fuzz_client", raw_peer_seeds(captured, "s")),
        "fuzz_server": write(outdir, "fuzz_server", raw_peer_seeds(captured, "c")),
        "fuzz_handshake": write(outdir, "fuzz_handshake", handshake_seeds(n)),
        "fuzz_shutdown": write(outdir, "fuzz_shutdown", shutdown_seeds(n)),
        "fuzz_divergence": write(outdir, "fuzz_divergence", divergence_seeds()),
    }
    print("make_corpus: " + ", ".join("%s %d" % kv for kv in counts.items()) + " seeds in " + outdir)


if __name__ == "__main__":
    main()
