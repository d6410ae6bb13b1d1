"""The reference sections of ``docs/`` generated from the code, written into the markdown.

The generated text lives in the pages themselves, so ``docs/`` reads the same on GitHub, in an
editor and in the built site. A page holds a generated block between two HTML comments, each
on a line of its own (``<!-- mila:NAME -->`` … ``<!-- /mila:NAME -->``):

``<!-- mila:cli -->``          every command, group and option of ``mila`` (``mila.cli.cli``),
                               plugin commands included (those of the installed plugins)
``<!-- mila:hooks -->``        every hook of ``mila.hookspecs``: signature, kind, docstring
``<!-- mila:exit-codes -->``   the exit code table of ``mila.errors``
``<!-- mila:iam-policy -->``   the policy ``mila init --print-policy`` prints for the example
                               project ``shop`` (state backend ``aws``)

Rewrite every block after changing a command, a hook, an exit code or the IAM policy::

    python docs/hooks/references.py            # writes the pages
    python docs/hooks/references.py --check    # exit 1 and name the stale pages (the test suite)
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import click

DOCS = Path(__file__).resolve().parents[1]
#: an opening marker, then (once generated) the block and its closing marker
BLOCK = re.compile(r"^<!-- mila:([a-z-]+) -->\n(?:(.*?)^<!-- /mila:\1 -->$)?", re.MULTILINE | re.DOTALL)


def regenerate(markdown: str, where: str = "?") -> str:
    """``markdown`` with every generated block rendered anew (closing markers added)."""

    def render(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in RENDERERS:
            raise ValueError(f"unknown generated block '{name}' in {where}")
        body = RENDERERS[name]().rstrip("\n")
        return f"<!-- mila:{name} -->\n{body}\n<!-- /mila:{name} -->"

    return BLOCK.sub(render, markdown)


def stale_pages() -> dict[Path, str]:
    """Each page whose generated blocks differ from the code, with its new text."""
    stale = {}
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        if "<!-- mila:" in text and (new := regenerate(text, page.name)) != text:
            stale[page] = new
    return stale


# --------------------------------------------------------------------------- text helpers


def rst_to_markdown(text: str) -> str:
    """The few reStructuredText forms mila's docstrings use → Markdown."""
    text = re.sub(r":(?:class|func|meth|data|mod|attr|exc):`~?([^`]+)`", r"`\1`", text)
    text = re.sub(r"``([^`]+)``", r"`\1`", text)
    return text


def escape(text: str) -> str:
    """Plain text (click help, which may hold ``code``) for a Markdown table cell: outside code
    spans, ``<`` cannot open an HTML tag and ``|`` cannot end the cell."""
    text = rst_to_markdown(text)
    parts = re.split(r"(`[^`]*`)", text)
    for i in range(0, len(parts), 2):  # the even parts are outside code spans
        parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace("|", "\\|") \
            .replace("*", "\\*")
    return "".join(parts)


# --------------------------------------------------------------------------- CLI


def render_cli() -> str:
    from mila.cli import cli
    from mila.cli.main import CliContext

    root = click.Context(cli, info_name="mila", obj=CliContext(), **cli.context_settings)
    out: list[str] = []
    _command(cli, root, out, level=2)
    return "\n".join(out)


def _command(cmd: click.Command, ctx: click.Context, out: list[str], level: int,
             aliases: tuple[str, ...] = ()) -> None:
    path = ctx.command_path
    out.append(f"{'#' * min(level, 6)} `{path}` {{ #{_anchor(path)} }}\n")
    usage = " ".join(cmd.collect_usage_pieces(ctx))
    out.append(f"```\n{path} {usage}\n```\n")
    if cmd.help:
        out.append(escape(inspect.cleandoc(cmd.help).split("\f")[0]) + "\n")
    if aliases:
        prefix = f"{ctx.parent.command_path} " if ctx.parent else ""
        out.append("Also available as " + ", ".join(f"`{prefix}{n}`" for n in aliases) + ".\n")
    arguments = [p for p in cmd.params if isinstance(p, click.Argument)]
    if arguments:
        out.append("**Arguments:** " + ", ".join(
            f"`{(a.name or '').upper()}`" + ("" if a.required else " (optional)")
            for a in arguments) + "\n")
    options = [p.get_help_record(ctx) for p in cmd.get_params(ctx)
               if isinstance(p, click.Option) and not p.hidden]
    rows = [r for r in options if r]
    if rows:
        out.append("| option | description |\n|---|---|")
        for names, help_text in rows:
            out.append(f"| `{names}` | {escape(help_text)} |")
        out.append("")
    if isinstance(cmd, click.Group):
        by_command: dict[int, list[str]] = {}
        commands = {}
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                sub = getattr(sub, "alias_of", sub)  # an alias is documented with its command
                by_command.setdefault(id(sub), []).append(name)
                commands[id(sub)] = sub
        primary = {key: sub.name if sub.name in by_command[key] else by_command[key][0]
                   for key, sub in commands.items()}
        links = sorted((name, primary[key]) for key, names in by_command.items() for name in names)
        if links:
            out.append("**Commands:** " + ", ".join(
                f"[`{name}`](#{_anchor(f'{path} {target}')})" for name, target in links) + "\n")
        for key, sub in commands.items():
            # a command registered under two names (remove/destroy) is documented once, under
            # the name its function gave it
            sub_ctx = click.Context(sub, info_name=primary[key], parent=ctx)
            _command(sub, sub_ctx, out, min(level + 1, 3),
                     tuple(n for n in by_command[key] if n != primary[key]))


def _anchor(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")


# --------------------------------------------------------------------------- hooks


def render_hooks() -> str:
    from mila import hookspecs

    out: list[str] = []
    for name, fn in vars(hookspecs).items():
        if not (name.startswith("mila_") and callable(fn)):
            continue
        opts = getattr(fn, "mila_spec", {}) or {}
        signature = str(inspect.signature(fn)).replace("'", "")
        kind = "first result wins" if opts.get("firstresult") else "every result is used"
        out.append(f"### `{name}` {{ #{name} }}\n")
        out.append(f"```python\ndef {name}{signature}\n```\n")
        out.append(f"*{kind}*\n")
        out.append(rst_to_markdown(inspect.getdoc(fn) or "") + "\n")
    return "\n".join(out)


# --------------------------------------------------------------------------- exit codes


def render_exit_codes() -> str:
    from mila import errors

    rows = []
    for line in (errors.__doc__ or "").splitlines():
        m = re.match(r"^(\d+)\s{2,}(.+)$", line)
        if m:
            rows.append(f"| `{m.group(1)}` | {rst_to_markdown(m.group(2))} |")
    if not rows:
        raise ValueError("no exit code table in mila.errors' docstring")
    return "| code | meaning |\n|---|---|\n" + "\n".join(rows) + "\n"


# --------------------------------------------------------------------------- IAM policy


def render_iam_policy() -> str:
    """What ``mila init --print-policy`` prints for ``examples/shop`` (aws state, SAM and
    CloudFormation services)."""
    from mila.policy import project_policy
    from mila.project import load_project

    shop = Path(__file__).resolve().parents[2] / "examples" / "shop"
    policy = project_policy(load_project(shop))
    return "```json\n" + json.dumps(policy, indent=2) + "\n```\n"


RENDERERS = {
    "cli": render_cli,
    "hooks": render_hooks,
    "exit-codes": render_exit_codes,
    "iam-policy": render_iam_policy,
}


def main(argv: list[str]) -> int:
    stale = stale_pages()
    if "--check" in argv:
        for page in stale:
            print(f"{page.relative_to(DOCS.parent)} is stale: run `python docs/hooks/references.py`")
        return 1 if stale else 0
    for page, text in stale.items():
        page.write_text(text, encoding="utf-8")
        print(f"wrote {page.relative_to(DOCS.parent)}")
    return 0


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(DOCS.parent))
    raise SystemExit(main(sys.argv[1:]))
