"""The toolchain's errors (a module of their own, so ``python -m floe_build.toolchain`` and the build
helpers raise and catch the same classes)."""

from __future__ import annotations


class ToolchainError(Exception):
    """A tool could not be installed; the message names the tool, what was tried and what to do."""


class DownloadUnavailable(ToolchainError):
    """The release download cannot be used here (unreachable, or no pinned checksum): try source."""


class ChecksumMismatch(ToolchainError):
    """The downloaded file is not the pinned artifact. Never installed, never a reason to fall back."""
