"""Comparing arms of runs: metrics per arm, paired and independent tests, planning,
sequential stopping, and the report that carries them. Pure: no I/O, no asyncio."""
