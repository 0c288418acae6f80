#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Adds up unit (cmocka), integration and e2e (pytest JUnit XML) results into one closing line."""
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

results = Path(sys.argv[1] if len(sys.argv) > 1 else "build/test-results")
passed = failed = skipped = 0

unit = results / "unit.counts"
if unit.exists():
    p, f = unit.read_text().split()
    passed += int(p)
    failed += int(f)
else:
    print("summary: no unit results", file=sys.stderr)
    failed += 1

# The integration suite always runs; the e2e suite (VMs) where make test runs it.
for name, required in (("integration", True), ("e2e", False)):
    junit = results / f"{name}.xml"
    if junit.exists():
        root = ET.parse(junit).getroot()
        for suite in root.iter("testsuite"):
            t = int(suite.get("tests", 0))
            f = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            s = int(suite.get("skipped", 0))
            passed += t - f - s
            failed += f
            skipped += s
    elif required:
        print(f"summary: no {name} results", file=sys.stderr)
        failed += 1

line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(0 if failed == 0 and passed > 0 else 1)
