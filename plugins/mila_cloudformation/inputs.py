"""What a service's packaging reads: every local file its template names, for the checksum.

:func:`packaged_files` is the ``inputs`` of the ``sam`` and ``cloudformation`` deployers
(:class:`mila.protocols.DeployerType`). It walks the same properties, with the same file
walker and exclusions, as :mod:`.packaging`: the template itself, each ``CodeUri``,
``ContentUri``, ``DefinitionUri``, Lambda ``Code``…, nested templates (``TemplateURL``,
``Location``) and what *they* name, and ``AWS::Include`` locations — so the core hashes exactly
the files that are zipped and uploaded, wherever they lie in the repository. A path outside the
project root is refused here, naming the template property.
"""

from __future__ import annotations

import os
from pathlib import Path

from mila.errors import ConfigError, DeployError
from mila.model import Workspace

from .build import build_targets
from .packaging import MAX_NESTING, _entries, _includes, _top_level_includes, local_artifacts
from .templates import find_template, load_template


def packaged_files(ws: Workspace, root: Path) -> list[Path]:
    """Absolute paths of every file the service's packaging reads (its template included)."""
    template = find_template(root / ws.path, ws.template)
    if template is None:
        return []
    found: list[Path] = []
    _template_files(template, root, found, depth=0)
    return found


def _template_files(path: Path, root: Path, found: list[Path], depth: int) -> None:
    try:
        template = load_template(path, root)
    except DeployError:
        return  # an unreadable template fails the deploy with its own message
    found.append(path)
    folder = path.parent
    body = template.body
    # an npm build installs node_modules itself (npm pack leaves a local one out): not an input
    npm_sources = {os.path.normpath(t.source) for t in build_targets(body, folder)
                   if not t.python}
    for artifact in local_artifacts(body):
        source = _checked(folder / artifact.value, root, template.shown, artifact.where)
        if artifact.rule.form == "template":
            if source.is_file() and depth < MAX_NESTING:
                _template_files(source, root, found, depth + 1)
        else:
            found.extend(_files(source, skip_node_modules=str(source) in npm_sources))
    for params in [*_includes(body), *_top_level_includes(body)]:
        source = _checked(folder / params["Location"], root, template.shown,
                          "AWS::Include Location")
        found.extend(_files(source))


def _files(source: Path, skip_node_modules: bool = False) -> list[Path]:
    if source.is_dir():
        return [path for name, path in _entries(source)
                if not (skip_node_modules and name.startswith("node_modules/"))]
    return [source] if source.is_file() else []


def _checked(path: Path, root: Path, shown: str, where: str) -> Path:
    normal = Path(os.path.normpath(path))
    try:
        normal.relative_to(os.path.normpath(root))
    except ValueError:
        raise ConfigError(f"{shown}: {where} refers to {normal}, outside the project ({root})",
                          hint="move it into the repository (mila hashes only what the repository "
                               "holds, and ships only what it hashed), or use an s3:// "
                               "location") from None
    return normal
