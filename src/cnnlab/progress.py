"""Progress bars (rich's) that print nothing when they are switched off.

Every long loop shows a bar on stderr, switched off for ``--json`` runs and short work. rich
before release 15 still printed an empty line when a switched-off bar stopped (its
``Progress.stop`` ends with a newline on a console that is no terminal), so each such loop left
a blank line on stderr; :class:`ProgressBar` stops only a bar it started."""

from __future__ import annotations

from rich.progress import Progress


class ProgressBar(Progress):
    """:class:`rich.progress.Progress` whose ``disable=True`` prints nothing at all."""

    def stop(self) -> None:
        if not self.disable:
            super().stop()
