"""Remote hosts over the system OpenSSH client: targets, one multiplexed session, remote engines."""

from .session import SshSession
from .target import SshTarget

__all__ = ["SshSession", "SshTarget"]
