"""TaskFlow benchmark suite: wrk scenarios against pinned uvicorn services, a bare-Falcon
control, a 1M-task seed mode and a 100-client load test (``bench/run.py``, ``bench/load.py``)."""
