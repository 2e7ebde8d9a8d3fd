#!/usr/bin/env python3
"""The README's option table is `unitls --help-markdown`, verbatim (issue 14).

usage: cli_readme.py README.md UNITLS [--write]
The table sits between the markers below; --write puts the program's table
there (run it after changing tools/options.cpp), without it a difference fails.
"""
import subprocess
import sys

BEGIN = "<!-- begin: unitls --help-markdown (tests/cli_readme.py --write) -->\n"
END = "<!-- end: unitls --help-markdown -->\n"


def main():
    readme, unitls, *flags = sys.argv[1:]
    text = open(readme, encoding="utf-8").read()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        print(f"{readme}: no {BEGIN.strip()} ... {END.strip()} markers")
        return 1
    table = subprocess.run([unitls, "--help-markdown"], capture_output=True, check=True,
                           text=True).stdout
    current = text[start + len(BEGIN):end]
    if current == table:
        print(f"{readme}: the option table is `unitls --help-markdown`")
        return 0
    if flags == ["--write"]:
        with open(readme, "w", encoding="utf-8") as f:
            f.write(text[:start + len(BEGIN)] + table + text[end:])
        print(f"{readme}: option table rewritten")
        return 0
    print(f"{readme}: the option table differs from `unitls --help-markdown`; "
          f"run tests/cli_readme.py {readme} {unitls} --write")
    return 1


if __name__ == "__main__":
    sys.exit(main())
