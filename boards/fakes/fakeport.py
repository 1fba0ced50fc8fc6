"""Which port the fakes stand for (tests only): mpcheck.use() sets NAME before
a board imports `machine`, so each fake offers only that port's names and
keywords (boards/tests/fakecheck.py checks them against its stubs)."""
NAME = "rp2"
