"""Lints many certificates with PyPI's pkilint (CA/B Forum S/MIME BR) in one process.

Usage: python pkilint_batch.py CERT.pem...
Prints one JSON object: {path: [[severity, code], ...]} with pkilint's findings for each file,
as `lint_cabf_smime_cert lint -g -f JSON` reports them (the type is read from the policy OID,
else guessed, so certificates without a CA/B Forum policy are linted too).
"""

import contextlib
import io
import json
import sys

from pkilint.bin.lint_cabf_smime_cert import main


def findings(path):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        main(["lint", "-g", "-f", "JSON", path])
    report = json.loads(out.getvalue())
    return [
        [finding["severity"], finding["code"]]
        for result in report["results"]
        for finding in result["finding_descriptions"]
    ]


print(json.dumps({path: findings(path) for path in sys.argv[1:]}))
