"""The docs page of issue codes (docs/reference/issue-codes.md), written from the one table.

The page is generated, not written by hand, so it can never disagree with what the gate
emits: ``tests/unit/docs/test_docs_site.py`` fails when the committed page differs from
this output. Regenerate it with
``python -m tdm_dagster.records.issue_codes_page > docs/reference/issue-codes.md``.
"""

from __future__ import annotations

from itertools import groupby

from tdm_dagster.records.issue_codes import ISSUE_CODES

_INTRO = """# Issue codes

Every issue the gate can emit has a stable code, a severity (ERROR rejects the record,
WARNING keeps it and costs a tier, INFO is a note) and a suggestion, which a report and
`tdm validate` show beside it. This page is generated from
`tdm_dagster/records/issue_codes.py` (`python -m tdm_dagster.records.issue_codes_page`);
a code ending in `_` is a family (`content.gopher_top_` covers `content.gopher_top_2gram`,
`content.gopher_top_3gram`, ...). What each check measures: [the gate](../concepts/gate.md).
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def issue_codes_page() -> str:
    """The whole page: one table per code family (the part before the first dot)."""
    parts = [_INTRO]
    for family, codes in groupby(sorted(ISSUE_CODES), key=lambda code: code.split(".", 1)[0]):
        parts.append(f"\n## `{family}`\n\n| code | severity | suggestion |\n|---|---|---|")
        for code in codes:
            entry = ISSUE_CODES[code]
            parts.append(f"| `{code}` | {entry.severity} | {_cell(entry.suggestion)} |")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(issue_codes_page(), end="")
