"""The one exception type for bad user input.

Anything the user can get wrong (a CLI value, a file, a checkpoint, a matrix typed on the command
line) raises :class:`CnnlabError` with a one-line message naming the problem and, where there is
one, the file. The CLI turns it into ``cnnlab: error: <message>`` on stderr and exit code 2.
"""

from __future__ import annotations


class CnnlabError(ValueError):
    """Bad input from the user: reported as one line, exit code 2, never a traceback."""
