"""Chaos runs: the hub killed with SIGKILL again and again while faulty APIs answer, then checked."""
