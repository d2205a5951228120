"""YAML parsing that remembers where each value came from.

PyYAML's plain `safe_load` forgets line numbers and silently keeps the last of two duplicate keys;
composing the node tree ourselves gives both the data and a path → line index in one pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml

from switchyard.config.errors import ConfigProblem

Path = tuple[str | int, ...]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def render_path(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class LocatedYaml:
    """Parsed data plus, for every path, the line a reader would look at.

    For a mapping entry that is the line of its key (an unknown `limits:` key is on that line, not on the
    block below it); for a sequence item, the line of the item.
    """

    def __init__(self, text: str) -> None:
        self.lines: dict[Path, int] = {}
        self.problems: list[ConfigProblem] = []
        self.env_problem_paths: set[Path] = set()
        self.data: Any = None
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as error:
            self.problems.append(_syntax_problem(error))
            return
        except yaml.YAMLError as error:
            self.problems.append(ConfigProblem(None, "", f"invalid YAML: {error}"))
            return
        if node is None:
            self.problems.append(ConfigProblem(1, "", "the file is empty"))
            return
        self.data = self._build(node, (), node.start_mark.line + 1)

    def _build(self, node: yaml.Node, path: Path, line: int) -> Any:
        self.lines[path] = line
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
                key_line = key_node.start_mark.line + 1
                if key in result:
                    self.problems.append(
                        ConfigProblem(
                            key_line,
                            render_path((*path, str(key))),
                            "duplicate key (YAML would silently keep only the last one)",
                        )
                    )
                result[key] = self._build(value_node, (*path, str(key)), key_line)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self._build(item, (*path, i), item.start_mark.line + 1) for i, item in enumerate(node.value)]
        return _scalar(node)

    def line_of(self, path: Path) -> int | None:
        """The line of the deepest existing node on `path`: a missing field points at its parent."""
        for end in range(len(path), -1, -1):
            if (found := self.lines.get(path[:end])) is not None:
                return found
        return None

    def substitute_env(self, lookup: Callable[[str], str | None]) -> None:
        """Replace ${VAR} / ${VAR:-default} in every string, reporting unset variables where they are used."""
        self.data = self._substitute(self.data, (), lookup)

    def _substitute(self, value: Any, path: Path, lookup: Callable[[str], str | None]) -> Any:
        if isinstance(value, dict):
            return {k: self._substitute(v, (*path, str(k)), lookup) for k, v in value.items()}
        if isinstance(value, list):
            return [self._substitute(v, (*path, i), lookup) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            found = lookup(name)
            if default is not None and not found:
                return default  # as in shells and compose: `:-` also replaces a variable set but empty
            if found is not None:
                return found
            self.env_problem_paths.add(path)
            self.problems.append(
                ConfigProblem(
                    self.line_of(path),
                    render_path(path),
                    f"environment variable {name} is not set (export it, or write ${{{name}:-default}})",
                )
            )
            return ""

        return _ENV_REF.sub(replace, value)


def _syntax_problem(error: yaml.MarkedYAMLError) -> ConfigProblem:
    """Where PyYAML gave up, unless it gave up at the end of the file: then the mistake is where the unfinished
    construct began (an unclosed quote or bracket), which is the context mark."""
    problem = error.problem or "cannot be parsed"
    context = (
        f" ({error.context} on line {error.context_mark.line + 1})" if error.context and error.context_mark else ""
    )
    at_end = error.problem_mark is None or "end of stream" in problem
    if at_end and error.context_mark is not None:
        return ConfigProblem(error.context_mark.line + 1, "", f"invalid YAML: {problem}{context}")
    line = error.problem_mark.line + 1 if error.problem_mark is not None else None
    return ConfigProblem(line, "", f"invalid YAML: {problem}{context}")


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node)
    finally:
        loader.dispose()
