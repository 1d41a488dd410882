"""Unit tests of bench/bench.py's pure parts (run by bench/smoke.sh)."""

import tempfile
import unittest
from pathlib import Path

import bench

# A callgrind dump in the shapes valgrind 3.19 writes for Envoy: blank
# lines in the header, an object first named by a call's `cob=`, names
# compressed to `(N)`, relative positions, trailing zero counts left off,
# and each `calls=` line followed by the call's inclusive cost.
DUMP = """# callgrind format
version: 1
creator: callgrind-3.19.0
part: 1


desc: I1 cache: 32768 B, 64 B, 8-way associative
positions: line
events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
summary: 1000 100 10 5 4 3 2 1 0

ob=(3) /usr/lib/x86_64-linux-gnu/libc.so.6
fl=(1) ???
fn=(10) 0x10
0 7 1 0 1
cob=(2) ???
cfi=(1)
cfn=(11) 0x20
calls=1 0
0 500 50 5 2 2 2 1 1
+2 3

ob=(1) /opt/envoy/bin/envoy
fl=(1)
fn=(12) 0x30
* 90 9 1 1 0 0 1
-1 10

ob=(2)
fn=(11)
0 400 40 4 1 2 3 1 1 0

totals: 510 50 5 3 2 3 2 1 0
"""


class CallgrindCosts(unittest.TestCase):
    def costs(self):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "callgrind.1.1"
            path.write_text(DUMP)
            return bench.callgrind_costs(path)

    def test_self_costs_by_object(self):
        events, per = self.costs()
        self.assertEqual(events, ["Ir", "Dr", "Dw", "I1mr", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw"])
        # libc's own 7 + 3; the call's 500 is JIT code's, counted there.
        self.assertEqual(per["/usr/lib/x86_64-linux-gnu/libc.so.6"], [10, 1, 0, 1, 0, 0, 0, 0, 0])
        self.assertEqual(per["/opt/envoy/bin/envoy"], [100, 9, 1, 1, 0, 0, 1, 0, 0])
        # `ob=(2)` was named by the earlier `cob=(2) ???`.
        self.assertEqual(per["???"], [400, 40, 4, 1, 2, 3, 1, 1, 0])

    def test_costs_must_add_up_to_the_dumps_totals(self):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "callgrind.1.1"
            path.write_text(DUMP.replace("totals: 510", "totals: 511"))
            with self.assertRaises(RuntimeError):
                bench.callgrind_costs(path)

    def test_parts(self):
        _, per = self.costs()
        parts = {bench.callgrind_part(ob) for ob in per}
        self.assertEqual(parts, {"jit", "envoy", "other"})


if __name__ == "__main__":
    unittest.main()
