"""The README's one-line set-up works on a fresh Debian/Ubuntu image (issue #20): apt's package lists are empty there."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _setup_section() -> str:
    text = README.read_text()
    return text.split("## Set up", 1)[1].split("\n## ", 1)[0]


def test_setup_line_refreshes_apt_lists_before_installing():
    section = _setup_section()
    command = re.search(r"```bash\n(.+?)\n```", section, re.S).group(1)
    assert "\n" not in command.strip(), "the set-up is one line"
    steps = [step.strip() for step in command.split("&&")]
    update = next(i for i, step in enumerate(steps) if step.startswith("apt-get update"))
    install = next(i for i, step in enumerate(steps) if step.startswith("apt-get install"))
    assert update < install, command
    assert re.search(r"\bapt-get install -y\b.*\bffmpeg\b", steps[install])
    assert "python3-venv" in steps[install]  # Debian/Ubuntu's python3 has no venv module without it
    assert steps[install + 1].startswith("python3 -m venv .venv")


def test_setup_section_covers_non_root_and_other_platforms():
    section = _setup_section()
    assert "sudo apt-get update && sudo apt-get install -y ffmpeg" in section
    assert "brew install ffmpeg" in section and "conda install" in section
    assert re.search(r"FFmpeg 4 to 9", section)
