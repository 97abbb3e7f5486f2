"""A job's arguments as one mapping, turned into its command line by one rule.

The job's own argparse parser is the only list of its options: the operators do not restate them.
A DAG gives a mapping such as ``{"date": "{{ ds }}", "store": "/data/store", "max_error_share": 0.1}``
(rendered natively, so values keep their types) and :func:`command_line` spells it:

* positional arguments (declared per job) come first, in the declared order, as their values;
* every other key ``some_key`` becomes ``--some-key VALUE``, in the mapping's order;
* ``True`` is a bare flag (``--allow-missing-labels``); ``False`` and ``None`` leave the option out
  (the job's default applies);
* a list or tuple repeats the option once per item (``--conf a=1 --conf b=2``);
* any other value is written with ``str()``; a dict or a set is refused.

Whether the result is valid is the job parser's call; a test renders every DAG's operators and
parses their arguments with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


def check_keys(job_args: Mapping[str, Any], positional: Sequence[str] = ()) -> None:
    """Refuse keys that cannot name an option, and missing positional ones (at declaration time)."""
    if not isinstance(job_args, Mapping):
        raise TypeError(f"job_args must be a mapping of argument name to value, got {type(job_args).__name__}")
    for key in job_args:
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(
                f"job argument name {key!r} is not an option name: use lower-case words joined by '_' "
                "(e.g. max_error_share for --max-error-share)"
            )
    missing = [name for name in positional if name not in job_args]
    if missing:
        raise ValueError(f"job argument {missing[0]!r} is required (a positional argument of the job)")


def command_line(job_args: Mapping[str, Any], positional: Sequence[str] = ()) -> list[str]:
    """The job's argv for ``job_args`` (see the module docstring for the rule)."""
    check_keys(job_args, positional)
    argv = []
    for name in positional:
        value = job_args[name]
        if value is None or isinstance(value, bool):
            raise ValueError(f"job argument {name!r} is positional: it needs a value, got {value!r}")
        argv.append(_text(name, value))
    for key, value in job_args.items():
        if key in positional or value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, list | tuple):
            for item in value:
                argv += [flag, _text(key, item)]
        else:
            argv += [flag, _text(key, value)]
    return argv


def _text(key: str, value: Any) -> str:
    if value is None or isinstance(value, bool | Mapping | set | frozenset | list | tuple):
        raise TypeError(f"job argument {key!r}: cannot write {type(value).__name__} {value!r} as one argument")
    return str(value)
