"""The policy: what a defect does when it is found (raise, warn, collect)."""

from __future__ import annotations

from ..exceptions import SEVERITIES, Finding, TvipsFormatError, warn


class Report:
    """Collect the defects of one recording and apply the policy to them.

    Parameters
    ----------
    permissive : bool, default False
        Warn about ``error`` defects instead of raising them.
    quiet : bool, default False
        Collect only: warn nothing (the validator, ``tvips info``).

    Attributes
    ----------
    findings : list of Finding
        Every defect added, in order (including ``info`` remarks).
    """

    def __init__(self, permissive: bool = False, quiet: bool = False):
        self.permissive = permissive
        self.quiet = quiet
        self.findings: list[Finding] = []

    def add(self, defects) -> None:
        """Record defects in order; raise or warn each as the policy says.

        Raises
        ------
        TvipsFormatError
            For the first ``fatal`` defect, or ``error`` when strict; its
            ``findings`` are those collected so far.
        """
        defects = list(defects)
        # every defect of one check is listed, even past the one raised: the
        # validator shows all the bad fields of a main header at once
        self.findings.extend(d.finding for d in defects)
        for defect in defects:
            severity = defect.finding.severity
            if severity == "fatal" or (severity == "error" and not self.permissive):
                raise TvipsFormatError(defect.message, findings=self.findings)
            if self.quiet or severity == "info":
                continue
            text = defect.message
            if severity == "error" and defect.workaround:
                text = f"{text}; {defect.workaround}"
            warn(text)

    @property
    def problems(self) -> list[Finding]:
        """The findings that are defects (everything but ``info``)."""
        return [f for f in self.findings if f.severity != "info"]


def worst_first(findings) -> list[Finding]:
    """Return findings sorted by severity (``fatal`` first), stable otherwise."""
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(findings, key=lambda f: order[f.severity])
