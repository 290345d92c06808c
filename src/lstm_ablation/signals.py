"""SIGTERM (timeout, SLURM, submitit) and SIGINT become one exception, JobInterrupted, so a job
writes an `interrupted` record with the steps it reached instead of vanishing.

Plain Python, no torch: the entry point imports it before it knows whether the command line is good,
and a typo should be answered without loading Lightning.
"""
from __future__ import annotations

import signal
import threading


class JobInterrupted(BaseException):
    """SIGTERM or SIGINT arrived. A BaseException, so neither Lightning nor `except Exception` swallows it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SignalGuard:
    """While started, SIGTERM and SIGINT raise JobInterrupted; after hold() they are only noted
    (the record is being written), and stop() restores the previous handlers."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.previous: dict = {}
        self.holding, self.pending = False, None

    def handle(self, signum, frame) -> None:
        if self.holding:
            self.pending = signum
            return
        raise JobInterrupted(signum)

    def start(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread():  # Python allows handlers only there
            self.previous = {s: signal.signal(s, self.handle) for s in self.SIGNALS}
        return self

    def hold(self) -> None:
        self.holding = True

    def stop(self) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        self.previous = {}
