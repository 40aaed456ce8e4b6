"""The multi-process harness: placements, watchdog, histories and resource cleanup."""
