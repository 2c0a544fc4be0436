"""Copy the latest benchmark tables (bench/results/<name>.md) into README.md and the
docs, between the markers <!-- bench:NAME --> and <!-- /bench:NAME -->.

    .venv/bin/python bench/update_readme.py
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    for page in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))):
        update(page)


def update(readme: Path) -> None:
    text = readme.read_text()
    for match in re.finditer(r"<!-- bench:([\w-]+) -->", text):
        name = match.group(1)
        table = ROOT / "bench" / "results" / f"{name}.md"
        body = table.read_text().strip() if table.is_file() else f"(no results yet: run bench/{name}.py)"
        text = re.sub(
            rf"(<!-- bench:{name} -->)\n.*?(<!-- /bench:{name} -->)",
            lambda m, body=body: f"{m.group(1)}\n{body}\n{m.group(2)}",
            text,
            flags=re.S,
        )
    readme.write_text(text)
    print(f"updated {readme}")


if __name__ == "__main__":
    main()
