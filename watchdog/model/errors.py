"""The documented error tree. Library exceptions are translated into these at the edges.

    WatchdogError
    ├── ConfigError        daemon config file invalid (message: ``FILE:LINE: …``)
    ├── RuleError          rule file invalid (message: ``FILE:LINE: rule ID: FIELD: …``)
    ├── SourceError        a data source failed (HTTP, timeout, malformed payload)
    ├── StoreError         the event log cannot be read or written
    │   ├── StoreUnavailable   disk full, read-only, locked: retry later
    │   ├── StoreReplaced      the log file was deleted or replaced under a running writer
    │   ├── LeaseLost          another replica leads now: this one appends nothing (exit 75)
    │   └── ChainBroken        the hash chain does not verify
    ├── ImportFailed       a history file could not be imported
    └── NotifyError        a receiver failed (``retryable`` says whether to try again)

The CLI prints ``str(error)`` as one line and exits 1 (``exit_code`` where an error has its own:
a deposed leader exits 75, EX_TEMPFAIL, for systemd to restart it as a follower); nothing here
carries secrets.
"""


class WatchdogError(Exception):
    """Base of every error watchdog raises on purpose."""


class ConfigError(WatchdogError):
    pass


class RuleError(WatchdogError):
    """One or more rule problems; ``problems`` lists each ``FILE:LINE: …`` line."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class SourceError(WatchdogError):
    pass


class StoreError(WatchdogError):
    pass


class StoreUnavailable(StoreError):
    pass


class StoreReplaced(StoreError):
    """The file the writer opened is gone or is another file now: appending would write to an
    unlinked inode and be lost at close, so nothing more is appended or acknowledged."""


class LeaseLost(StoreError):
    """A replica that no longer holds the leader lease (another took over: it was paused,
    partitioned or slow past the lease) tried to append: nothing was appended. The daemon exits
    with EX_TEMPFAIL, as Kubernetes' leader-elected controllers exit on a lost lease, and comes
    back as a follower."""
    exit_code = 75


class ChainBroken(StoreError):
    def __init__(self, seq: int, reason: str):
        self.seq = seq
        self.reason = reason
        super().__init__(f"seq {seq}: {reason}")


class ImportFailed(WatchdogError):
    pass


class NotifyError(WatchdogError):
    def __init__(self, message: str, retryable: bool):
        self.retryable = retryable
        super().__init__(message)
