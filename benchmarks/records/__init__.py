"""One module per chapter that records a larger run (``benchmarks/record_chapters.py``)."""
