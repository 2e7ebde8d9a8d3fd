#!/usr/bin/env python3
"""unitls demo makes its certificates in-process: with no openssl program on
PATH (an empty PATH) it still makes a throwaway CA, every backend pair closes
per contract, and the temporary directory is gone afterwards.

    cli_demo.py UNITLS_PROGRAM
"""
import os
import re
import subprocess
import sys


def main() -> int:
    program = sys.argv[1]
    env = dict(os.environ, PATH="/nonexistent")
    run = subprocess.run([program, "demo"], env=env, capture_output=True, text=True, timeout=120)
    out = run.stdout + run.stderr
    failures = []
    if run.returncode != 0:
        failures.append(f"exit {run.returncode}")
    made = re.search(r"certificates: throwaway CA in (\S+) \(made in-process with (\w+)\)", out)
    if not made:
        failures.append("no 'throwaway CA ... made in-process' line")
    elif os.path.exists(made.group(1)):
        failures.append(f"{made.group(1)} was left behind")
    if not re.search(r"^contract: all \d+ pairs closed the same way", out, re.M):
        failures.append("the pairs did not all close per contract")
    if failures:
        print(out)
        print("cli_demo: FAILED: " + "; ".join(failures))
        return 1
    print(f"cli_demo: ok (certificates made by {made.group(2)}, no openssl on PATH)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
