#!/usr/bin/env python3
"""The README's usage example is examples/https_get.cpp, verbatim.

usage: check_readme.py README.md examples/https_get.cpp
"""
import sys


def main():
    readme, example = sys.argv[1:]
    text = open(readme, encoding="utf-8").read()
    code = open(example, encoding="utf-8").read()
    start = text.find("## Usage")
    block = text.find("```cpp\n", start)
    if start < 0 or block < 0:
        print(f"{readme}: no ```cpp block under '## Usage'")
        return 1
    end = text.find("```", block + 7)
    if text[block + 7:end] != code:
        print(f"{readme}: the usage example differs from {example}; copy the file into the README")
        return 1
    print(f"{readme}: the usage example is {example}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
