"""Message queues: POSIX and System V queues, datagram sockets, multiprocessing queues.
See ``protocol`` for the contract; ``checks``, ``limit_checks``, ``liveness_checks`` for the invariants,
``linearize`` for the history judge, ``machine`` for the model-based state machine,
``roles`` for what workers run."""

from . import checks, lateness_checks, limit_checks, liveness_checks  # noqa: F401  (register the invariants)
from .protocol import QUEUE, QueueChannel, QueueEndpoint, QueueLimits

__all__ = ["QUEUE", "QueueChannel", "QueueEndpoint", "QueueLimits"]
