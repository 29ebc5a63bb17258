"""`make audit`: pip-audit over requirements.lock, telling "database unreachable" apart from "findings".

Exit 0: no known vulnerabilities, or the vulnerability database could not be reached (said plainly:
an offline machine must not fail the build for it). Exit 1: a reachable database reported findings,
or pip-audit failed for another reason.

pip-audit's default service answers "Dependency not found ... could not be audited" for every package
when only a package mirror is reachable (no vulnerability data), and exits 0 with "No known
vulnerabilities found" — so a run where nothing could be looked up counts as unreachable, not clean.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

UNREACHABLE_MARKERS = ("ConnectionError", "NameResolutionError", "Max retries exceeded", "timed out",
                       "Temporary failure in name resolution", "Network is unreachable", "SSLError")


def evaluate(data: dict | None, stderr: str, returncode: int) -> tuple[int, list[str]]:
    """(exit code, lines to print) for pip-audit's JSON report (None when it wrote none) and its stderr."""
    if data is None:
        if any(m in stderr for m in UNREACHABLE_MARKERS):
            last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
            return 0, [f"make audit: SKIPPED — the vulnerability database is unreachable from this machine "
                       f"({last[:200]})"]
        return 1, [stderr.strip(), f"make audit: pip-audit failed (exit {returncode})"]
    deps = data.get("dependencies", [])
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if d.get("skip_reason")]
    if vulnerable:
        lines = []
        for d in vulnerable:
            for v in d["vulns"]:
                fixes = ", ".join(v.get("fix_versions") or []) or "no fixed version yet"
                lines.append(f"{d['name']} {d.get('version', '')}: {v.get('id')} (fixed in: {fixes})")
        lines.append(f"make audit: FAILED — {len(vulnerable)} locked packages have known vulnerabilities: "
                     "update them (README: updating the lock) and run make audit again")
        return 1, lines
    if deps and len(skipped) == len(deps):
        return 0, [f"make audit: SKIPPED — the vulnerability database is unreachable from this machine: none "
                   f"of the {len(deps)} locked packages could be looked up ({skipped[0]['skip_reason']})"]
    lines = [f"make audit: not audited: {d['name']}: {d['skip_reason']}" for d in skipped]
    lines.append(f"make audit: no known vulnerabilities in {len(deps) - len(skipped)} locked packages")
    return 0, lines


def main(argv: list[str]) -> int:
    lock = argv[0] if argv else "requirements.lock"
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        proc = subprocess.run(
            [sys.executable, "-m", "pip_audit", "-r", lock, "--require-hashes", "--disable-pip",
             "--progress-spinner", "off", "-f", "json", "-o", str(report), *argv[1:]],
            capture_output=True, text=True,
        )
        data = json.loads(report.read_text()) if report.exists() and report.stat().st_size else None
    code, lines = evaluate(data, proc.stderr, proc.returncode)
    print("\n".join(lines), file=sys.stderr if code else sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
