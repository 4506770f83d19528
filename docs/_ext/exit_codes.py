"""The ``exit-codes`` directive: the table of :data:`brelax.errors.EXIT_CODES`, the one place they are written."""

from __future__ import annotations

from docutils import nodes
from docutils.parsers.rst import Directive


class ExitCodes(Directive):
    """``.. exit-codes::`` (reST) or ```` ```{exit-codes} ```` (MyST): a two-column table, code and meaning."""

    has_content = False

    def run(self):
        from brelax.errors import EXIT_CODES

        table = nodes.table(classes=["exit-codes"])
        group = nodes.tgroup(cols=2)
        table += group
        group += nodes.colspec(colwidth=1)
        group += nodes.colspec(colwidth=9)
        head = nodes.thead()
        group += head
        head += self._row("exit code", "meaning")
        body = nodes.tbody()
        group += body
        for code, what in EXIT_CODES:
            body += self._row(str(code), what)
        return [table]

    @staticmethod
    def _row(*cells):
        row = nodes.row()
        for text in cells:
            entry = nodes.entry()
            entry += nodes.paragraph(text=text)
            row += entry
        return row


def setup(app):
    app.add_directive("exit-codes", ExitCodes)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
