"""Comparison reports as files: the self-contained HTML page and the CSV/Parquet exports.

A shell over the report JSON that `oriole.comparison.report` builds; it draws (matplotlib)
and writes files, and decides nothing about the statistics.
"""
