#!/usr/bin/env python3
"""Issue 12's limits: no Rust file in bot/, runner/ or tests/ over 600 lines, no impl block over
300. Prints each offender and exits 1 when there is one. Run from the repository root."""
import pathlib
import re
import sys

MAX_FILE, MAX_IMPL = 600, 300
IMPL = re.compile(r"^(\s*)(unsafe\s+)?impl\b.*\{\s*$")

bad = []
for root in ("bot", "runner", "tests"):
    for path in sorted(pathlib.Path(root).rglob("*.rs")):
        if "target" in path.parts:
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > MAX_FILE:
            bad.append(f"{path}: {len(lines)} lines (file limit {MAX_FILE})")
        for i, line in enumerate(lines):
            m = IMPL.match(line)
            if not m:
                continue
            # rustfmt closes a block at the indentation that opened it.
            close = m.group(1) + "}"
            end = next((j for j in range(i + 1, len(lines)) if lines[j] == close), None)
            if end is not None and end - i + 1 > MAX_IMPL:
                bad.append(f"{path}:{i + 1}: impl block of {end - i + 1} lines (limit {MAX_IMPL})")

print("\n".join(bad) if bad else "sizes: every file and impl block is within the limits")
sys.exit(1 if bad else 0)
