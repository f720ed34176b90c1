"""Docs are tests: every command in src/main.c's table answers `--help` with
exit 0 and has a section in docs/cli.md that mentions every long option its
--help lists, an example and its exit codes; the walkthroughs (English and
Korean) use only commands and options that exist.
"""
import os
import re
import shlex

import pytest

from test_client_common import ROOT, berth

DOCS = os.path.join(ROOT, "docs")


def command_table():
    with open(os.path.join(ROOT, "src", "main.c")) as f:
        src = f.read()
    table = re.search(r"commands\[\]\s*=\s*\{(.*?)\n\};", src, re.S)
    assert table, "no commands[] table in src/main.c"
    cmds = re.findall(r'\{\s*"([a-z][a-z0-9-]*)"\s*,\s*cmd_\w+\s*,\s*"((?:[^"\\]|\\.)*)"\s*\}',
                      table.group(1))
    assert len(cmds) >= 10, cmds
    return cmds


COMMANDS = [c for c, _ in command_table()]


def read(path):
    with open(os.path.join(DOCS, path), encoding="utf-8") as f:
        return f.read()


def cli_sections():
    """{command: text of its section} from docs/cli.md (`## berth CMD` headings),
    or docs/cli/CMD.md pages."""
    out = {}
    p = os.path.join(DOCS, "cli.md")
    if os.path.exists(p):
        text = read("cli.md")
        parts = re.split(r"^##\s+`?berth\s+([a-z][a-z0-9-]*)`?[^\n]*$", text, flags=re.M)
        for i in range(1, len(parts) - 1, 2):
            out.setdefault(parts[i], "")
            out[parts[i]] += parts[i + 1]
    d = os.path.join(DOCS, "cli")
    if os.path.isdir(d):
        for name in os.listdir(d):
            if name.endswith(".md"):
                with open(os.path.join(d, name), encoding="utf-8") as f:
                    out.setdefault(name[:-3], "")
                    out[name[:-3]] += f.read()
    return out


def long_options(help_text):
    return sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", help_text)) - {"--help"})


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_exits_0(cmd):
    r = berth(cmd, "--help")
    assert r.stdout.strip(), "berth %s --help printed nothing" % cmd
    if cmd != "version":
        assert r.stdout.startswith("usage: berth %s" % cmd), r.stdout[:200]
    r2 = berth(cmd, "-h")
    assert r2.stdout == r.stdout


def test_top_level_help_lists_every_command():
    out = berth("--help").stdout
    for cmd, desc in command_table():
        assert re.search(r"^\s+%s\s+" % re.escape(cmd), out, re.M), cmd


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_documented(cmd):
    sections = cli_sections()
    assert cmd in sections, "docs/cli.md has no '## berth %s' section" % cmd
    sec = sections[cmd]
    if cmd == "version":
        return
    # usage line, an example, exit codes
    assert "berth %s" % cmd in sec
    assert "```" in sec, "no example block for berth %s" % cmd
    assert re.search(r"[Ee]xit", sec), "no exit codes for berth %s" % cmd
    # every long option of --help is documented
    missing = [o for o in long_options(berth(cmd, "--help").stdout) if o not in sec]
    assert not missing, "docs/cli.md, berth %s: options not documented: %s" % (cmd, missing)


def test_cli_documents_no_unknown_command():
    extra = set(cli_sections()) - set(COMMANDS)
    assert not extra, "docs/cli.md documents commands berth does not have: %s" % extra


def code_lines(text):
    """Shell lines of ``` blocks that run berth (comments and prompts removed)."""
    out = []
    for lang, block in re.findall(r"```([a-z]*)\n(.*?)```", text, re.S):
        if lang not in ("", "sh", "bash", "shell", "console"):
            continue  # text (program output), yaml ...
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split(" #", 1)[0].strip()
            line = re.sub(r"^\$\s+", "", line)
            for part in re.split(r"\s*(?:&&|\|\||;|\|)\s*", line):
                part = part.strip()
                if re.match(r"^(\w+=\S+\s+)*(\./build/|build/)?berth\s", part):
                    out.append(part)
    return out


DOC_PAGES = ["cli.md", "walkthrough.md", "ko/walkthrough.md"] + (
    ["ko/cli.md"] if os.path.exists(os.path.join(DOCS, "ko", "cli.md")) else [])


@pytest.mark.parametrize("page", DOC_PAGES)
def test_examples_use_real_commands_and_options(page):
    text = read(page)
    lines = code_lines(text)
    assert lines, "%s shows no berth command" % page
    helps = {}
    bad = []
    for line in lines:
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            words = line.split()
        while words and "=" in words[0] and not words[0].startswith("-"):
            words.pop(0)  # VAR=value prefix
        if len(words) < 2 or words[1].startswith("-"):
            continue
        cmd = words[1]
        if cmd not in COMMANDS:
            bad.append("%s: unknown command in %r" % (page, line))
            continue
        if cmd not in helps:
            helps[cmd] = berth(cmd, "--help").stdout
        for w in words[2:]:
            if w.startswith("--") and len(w) > 2:
                opt = w.split("=", 1)[0]
                if opt != "--help" and not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt),
                                                     helps[cmd]):
                    bad.append("%s: berth %s has no option %s (%r)" % (page, cmd, opt, line))
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("page", ["walkthrough.md", "ko/walkthrough.md"])
def test_walkthrough_covers_the_chapter(page):
    text = read(page)
    used = {l.split()[1] for l in code_lines(text) if len(l.split()) > 1}
    # the chapter's steps: references, login, tag, push, own registry, version
    # tags, the exercise (push every tag, list, delete)
    for cmd in ("ref", "login", "tag", "push", "serve", "tags", "rm", "ls", "pull"):
        assert cmd in used, "%s never runs berth %s" % (page, cmd)
    assert "--semver" in text and "--all-tags" in text
    assert "gallery/ui" in text and "image-gallery" in text
    assert "make run" in text


def test_korean_walkthrough_is_korean():
    text = read("ko/walkthrough.md")
    hangul = len(re.findall(r"[\uac00-\ud7a3]", text))
    assert hangul > 500, "docs/ko/walkthrough.md has only %d Hangul syllables" % hangul
    # same commands as the English one
    en = {" ".join(l.split()[:2]) for l in code_lines(read("walkthrough.md"))}
    ko = {" ".join(l.split()[:2]) for l in code_lines(text)}
    assert en - ko == set(), "commands in the English walkthrough only: %s" % (en - ko)


@pytest.mark.parametrize("page", DOC_PAGES)
def test_links_resolve(page):
    text = read(page)
    base = os.path.dirname(os.path.join(DOCS, page))
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"^[a-z]+:", target):
            continue
        resolved = os.path.normpath(os.path.join(base, target))
        # a link must stay inside the repository: readers of a clone have nothing else
        assert os.path.commonpath([resolved, ROOT]) == ROOT, \
            "%s links outside the repository: %s" % (page, target)
        assert os.path.exists(os.path.normpath(os.path.join(base, target))), \
            "%s links to missing %s" % (page, target)
