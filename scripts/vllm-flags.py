#!/usr/bin/env python3
"""Extracts the CLI flags of `vllm serve` of one vLLM release into a JSON fixture.

    scripts/vllm-flags.py 0.23.0 > tests/fixtures/vllm-flags-0.23.0.json

Steps: `pip download vllm==VER --no-deps` (the wheel, no torch, no CUDA), unpack its Python
sources, then build vLLM's own argument parser (`make_arg_parser`, what `vllm serve` uses) with
every third-party module vLLM imports that is not installed replaced by a permissive stub
(torch, transformers, ...): only argparse definitions run, nothing is executed on a GPU. Each
option is written with its names, whether it takes a value (and how many: `nargs`), and its
choices. `--wheel PATH` uses an already downloaded wheel.

Needs: Python >= 3.10, pip, pydantic (vLLM's configs are pydantic dataclasses) and
typing_extensions; everything else is stubbed.
"""

import argparse
import enum
import glob
import importlib.abc
import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types
import typing
import zipfile


class _StubBase:
    """The base class a class deriving from a stub gets (subscriptable, like a generic)."""

    def __class_getitem__(cls, item):
        return cls

    @classmethod
    def __get_pydantic_core_schema__(cls, source, handler):
        from pydantic_core import core_schema

        return core_schema.any_schema()

    def __init_subclass__(cls, **kwargs):
        # `class S(msgspec.Struct, omit_defaults=True)`: class keywords of stubbed bases.
        super().__init_subclass__()

    def __init__(self, *a, **k):
        pass

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _Stub()


class _Stub:
    """Stands for any object of a module that is not installed."""

    def __init__(self, *a, **k):
        pass

    def __call__(self, *a, **k):
        # Used as a decorator: keep the decorated function.
        if len(a) == 1 and callable(a[0]) and not k and not isinstance(a[0], _Stub):
            return a[0]
        return _Stub()

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _Stub()

    def __get_pydantic_core_schema__(self, source, handler):
        from pydantic_core import core_schema

        return core_schema.any_schema()

    def __mro_entries__(self, bases):
        first = next(i for i, b in enumerate(bases) if isinstance(b, _Stub))
        return (_StubBase,) if bases[first] is self else ()

    def __getitem__(self, k):
        return _Stub()

    def __iter__(self):
        return iter(())

    def __or__(self, other):
        return typing.Any

    __ror__ = __or__

    def __bool__(self):
        return False

    def __int__(self):
        return 0

    def __index__(self):
        return 0

    def __float__(self):
        return 0.0

    def __len__(self):
        return 0

    def __eq__(self, other):
        return isinstance(other, _Stub)

    def __hash__(self):
        return id(self)

    def __lt__(self, other):
        return False

    __gt__ = __le__ = __ge__ = __lt__

    def __add__(self, other):
        return _Stub()

    __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __add__

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

    def __str__(self):
        return "stub"

    def __fspath__(self):
        return "/nonexistent"


class _StubModule(types.ModuleType):
    def __init__(self, name):
        super().__init__(name)
        self.__path__ = []
        self.__file__ = None

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _Stub()


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Last on `sys.meta_path`: whatever the real finders cannot import becomes a stub."""

    def __init__(self):
        self.stubbed = set()

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] == "vllm" and not fullname.startswith("vllm._"):
            # vLLM's own Python modules are real; its compiled extensions (vllm._C, ...) not.
            return None
        top = fullname.split(".")[0]
        if top in sys.stdlib_module_names or top.startswith("_"):
            # Platform modules (`_winapi`) must stay missing: stdlib code probes them.
            return None
        if "." in fullname and top not in self.stubbed:
            # A missing submodule of an installed package: a real ImportError.
            return None
        self.stubbed.add(top)
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec):
        return _StubModule(spec.name)

    def exec_module(self, module):
        pass


def download(version, dest):
    subprocess.run(
        [
            sys.executable, "-m", "pip", "download", f"vllm=={version}", "--no-deps",
            "--only-binary", ":all:", "--platform", "manylinux_2_28_x86_64",
            "--platform", "manylinux_2_31_x86_64", "--platform", "manylinux_2_35_x86_64",
            "--python-version", "3.12", "-d", dest, "-q",
        ],
        check=True,
        stdout=sys.stderr,
    )
    wheels = glob.glob(os.path.join(dest, f"vllm-{version}-*.whl"))
    if not wheels:
        sys.exit(f"no wheel of vllm {version} downloaded")
    return wheels[0]


def value_of(v):
    if isinstance(v, enum.Enum):
        return v.value
    return v if isinstance(v, (str, int, float, bool)) or v is None else str(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("version")
    ap.add_argument("--wheel", help="an already downloaded wheel")
    args = ap.parse_args()

    # vLLM logs to stdout: the JSON alone goes there.
    out_stream = sys.stdout
    sys.stdout = sys.stderr
    tmp = tempfile.mkdtemp(prefix="vllm-flags-")
    wheel = args.wheel or download(args.version, tmp)
    if f"vllm-{args.version}-" not in os.path.basename(wheel):
        sys.exit(f"{wheel} is not a wheel of vllm {args.version}")
    src = os.path.join(tmp, "src")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(src, [n for n in z.namelist() if n.startswith("vllm/") and n.endswith(".py")])
    # Defaults are not needed, and building a config class as a default runs its validators
    # on stubbed values: a failing default factory gives `None`.
    arg_utils = os.path.join(src, "vllm", "engine", "arg_utils.py")
    with open(arg_utils) as f:
        text = f.read()
    for obj in ("default", "field"):
        text = text.replace(
            f"default = {obj}.default_factory()",
            f"default = _vllm_flags_safe({obj}.default_factory)",
        )
    with open(arg_utils, "w") as f:
        f.write(text)

    def safe(factory):
        try:
            return factory()
        except Exception:
            return None

    import builtins

    builtins._vllm_flags_safe = safe
    sys.path.insert(0, src)
    finder = _StubFinder()
    sys.meta_path.append(finder)
    os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
    # Version checks of stubbed packages (`is_torch_equal_or_newer`) see a recent release.
    import importlib.metadata as md

    real_version = md.version

    def version(name):
        try:
            return real_version(name)
        except md.PackageNotFoundError:
            return "99.0.0"

    md.version = version

    from vllm.entrypoints.openai.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))
    flags = []
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        nargs = action.nargs
        takes_value = not (nargs == 0)
        entry = {
            "names": sorted(action.option_strings),
            "takes_value": takes_value,
        }
        if nargs not in (None, 0):
            entry["nargs"] = nargs
        # Values parsed as JSON (config dataclasses, dicts): `parse_dataclass`, `json.loads`.
        type_name = getattr(action.type, "__name__", "")
        if type_name in ("parse_dataclass", "loads", "parse_type_json") or action.type is json.loads:
            entry["json"] = True
        if action.choices is not None:
            try:
                entry["choices"] = sorted({str(value_of(c)) for c in action.choices})
            except TypeError:
                pass
        flags.append(entry)
    flags.sort(key=lambda f: f["names"])
    out = {
        "vllm": args.version,
        "source": f"vllm {args.version} wheel, make_arg_parser (vllm serve)",
        "positional": [a.dest for a in parser._actions if not a.option_strings],
        "flags": flags,
    }
    print("stubbed modules: " + ", ".join(sorted(finder.stubbed)), file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)
    json.dump(out, out_stream, indent=1, sort_keys=False)
    out_stream.write("\n")
    out_stream.flush()


if __name__ == "__main__":
    main()
