"""`tuijin audit verify` over every event of the dataset (the same function the command runs)."""

from __future__ import annotations

from . import BenchError, scenario


@scenario("audit.verify", title="tuijin audit verify (whole change trail)", heavy=True, group="jobs")
def audit_verify(ctx, role):
    from tuijin.core.audit import verify

    def run():
        result = verify()
        if not result.ok:
            raise BenchError(f"audit chain broken: {result.reason}")
        return result.checked

    return run
