"""The command line of every script: one flag convention, --help that lists every option with its
default and meaning, and one-line errors.

    --key value  or  --key=value;  --key_name  or  --key-name;  booleans: --flag, --flag=false, --no-flag

Options come from a script's config dataclass: each field is a flag, its default the default,
the comment after it the help text. Scripts parse their flags before importing torch, so --help
and a mistyped flag answer at once. Bad input anywhere is a UserError, which the scripts print as
one line naming the problem and the fix; any other exception is a bug and keeps its traceback.
This module imports nothing but the standard library.
"""
import argparse
import dataclasses
import difflib
import inspect
import re
import sys


class UserError(Exception):
    """Bad input (a flag, a path, a file, a message list): the message names the problem and the fix."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + error
        raise UserError(f"{message} (see --help)")

    def parse_args(self, argv=None, namespace=None):
        # --key-name means --key_name (only the name: a value may have dashes)
        argv = [re.sub(r"^--([\w-]+)", lambda m: "--" + m.group(1).replace("-", "_"), a) if a.startswith("--")
                else a for a in (sys.argv[1:] if argv is None else argv)]
        known = {s for action in self._actions for s in action.option_strings}
        for a in argv:  # named here, before a positional argument can swallow its value
            flag = a.split("=", 1)[0]
            if flag.startswith("--") and flag not in known:
                close = difflib.get_close_matches(flag, known, n=1)
                raise UserError(f"unknown option {flag}{f'; did you mean {close[0]}?' if close else ''} (see --help)")
        return super().parse_args(argv, namespace)


def field_help(cls) -> dict:
    """{field: the comment after it in the class source (continued on comment-only lines below)}."""
    out, last = {}, None
    for line in inspect.getsource(cls).splitlines():
        m = re.match(r"\s+(\w+)\s*:[^=]*=.*?#\s?(.*)$", line)
        if m:
            last, out[m.group(1)] = m.group(1), m.group(2).strip()
        elif last and re.match(r"\s+#", line):
            out[last] += " " + line.strip().lstrip("#").strip()
        else:
            last = None
    return out


def to_bool(s):
    if isinstance(s, bool):
        return s
    if s.lower() in ("true", "1", "yes"):
        return True
    if s.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {s!r}")


def parser(cls, prog, doc, choices=None) -> Parser:
    """An argument parser with one flag per field of the dataclass `cls`. Only the flags a user
    gives end up in the namespace (config() fills in the rest), so a caller can tell them apart."""
    p = Parser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter,
               allow_abbrev=False, argument_default=argparse.SUPPRESS)
    helps, choices = field_help(cls), choices or {}
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        text = f"{helps.get(f.name, '')} (default: {default!r})".strip()
        if isinstance(default, bool):
            p.add_argument(f"--{f.name}", nargs="?", const=True, type=to_bool, metavar="true|false", help=text)
            p.add_argument(f"--no_{f.name}", dest=f.name, action="store_false", help=argparse.SUPPRESS)
        else:
            p.add_argument(f"--{f.name}", type=type(default), choices=choices.get(f.name), help=text,
                           metavar=f.name.upper() if f.name not in choices else None)
    return p


def config(cls, namespace, base=None):
    """(config, given): `cls` from the flags given in `namespace` over `base` (default: cls()), and
    the set of field names the user gave."""
    names = {f.name for f in dataclasses.fields(cls)}
    given = {k: v for k, v in vars(namespace).items() if k in names}
    return dataclasses.replace(base or cls(), **given), set(given)


def run(main, *args):
    """main(*args), with a UserError printed as one line (the script's name first) and exit status 1;
    Ctrl-C outside a training loop exits quietly (status 130)."""
    try:
        return main(*args)
    except UserError as e:
        sys.exit(f"{prog_name()}: {e}")
    except KeyboardInterrupt:
        sys.exit(130)


def prog_name():
    name = sys.argv[0].rsplit("/", 1)[-1]
    return "python -m tasks" if name == "__main__.py" else name
