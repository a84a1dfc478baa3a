"""README and --help say what the tools do: process.py's task table, task 9, synthesis outputs, script paths."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def _readme_process_table() -> dict[int, str]:
    section = README[README.index("### 1. Preprocessing"):README.index("### 2. Training")]
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^\| (\d+) \| ([^|]+) \|", section, re.M)}


def test_readme_task_table_lists_every_task_and_step_of_process_py():
    from data_utils import process

    args = process.build_parser().parse_args(["x.mp4"])
    steps = process.build_steps(args, Path("x.mp4"))
    table = _readme_process_table()
    assert sorted(table) == sorted(process.NAMES) == sorted(steps)
    for task, row in table.items():
        for name, _ in steps[task]:
            assert name in row, (task, name, row)


def test_process_help_documents_every_task_including_debug():
    from data_utils import process

    text = process.build_parser().format_help()
    for task, name in process.NAMES.items():
        assert re.search(rf"^\s+{task} {name}\b", text, re.M), (task, name)
    assert "9 = the debug plots" in " ".join(text.split())


def test_synthesize_help_and_readme_name_the_output_flags():
    import synthesize_fuse

    text = synthesize_fuse.build_parser().format_help()
    for flag in ("--out", "--overwrite"):
        assert flag in text and f"`{flag}" in README, flag
    assert "<audio stem>.mp4" in text and "renders/speech.mp4" in README


SCRIPT_PATH = re.compile(r"(?<![\w/.-])scripts/[\w/.-]+?\.(?:py|sh|txt|md)\b")


def test_every_script_path_named_in_docs_and_scripts_exists():
    texts = [REPO / "README.md", *REPO.glob("docs/*.md"), *(p for p in REPO.glob("scripts/**/*") if p.is_file()),
             *REPO.glob("*.py"), *REPO.glob("*/**/*.py")]
    named = {(path.relative_to(REPO).as_posix(), m) for path in texts if ".venv" not in path.parts
             for m in SCRIPT_PATH.findall(path.read_text(errors="ignore"))}
    assert len(named) > 20, named  # the pattern still finds them
    missing = sorted((where, m) for where, m in named if not (REPO / m).is_file())
    assert not missing, missing
