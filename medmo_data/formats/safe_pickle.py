"""Read plain-data pickles without unpickling: a whitelist interpreter over `pickletools.genops`.

Some releases ship their annotations only as pickles (PathVQA `qas/{split}/{split}_qa.pkl`: a list of
`{'image', 'question', 'answer'}` dicts). `pickle.load` runs whatever the file asks for (any importable
callable via GLOBAL/STACK_GLOBAL + REDUCE), so a downloaded pickle is code, not data. This module never
calls `pickle.load`: `pickletools.genops` only *parses* the opcode stream, and a tiny stack machine here
builds the value from a whitelist of data opcodes — None, bools, ints, floats, str, bytes, list, tuple,
dict, set/frozenset, the memo, marks, framing. Any other opcode (GLOBAL, STACK_GLOBAL, REDUCE, BUILD,
INST, OBJ, NEWOBJ(_EX), EXT*, PERSID, BINPERSID, out-of-band buffers) raises `UnsafePickle`, a
`SourceError` naming the opcode and its byte offset, before anything is constructed from it.

Python 2 byte strings (STRING, BINSTRING, SHORT_BINSTRING) become `str` decoded as UTF-8, as
`pickle.load(encoding="utf-8")` would.

`np.save` writes an object array (DeepCell's `meta` table) as numpy's own pickle of the array:
`_reconstruct(ndarray, (0,), b'b')`, a `dtype('O8')`, then BUILD with `(1, shape, dtype, fortran, items)`;
numpy scalars among the items are `scalar(dtype, raw bytes)`. `loads(..., numpy_arrays=True)` (what
`load_npy_objects` uses) accepts exactly these names, as stand-ins that are never imported or called: the
items must be plain data, a dtype must be a plain type code (`f8`, `<U5`, ...), and the result is an object
array built from the items.

One-off conversion (explicit, still without unpickling):
    python -m medmo_data.formats.safe_pickle pvqa/qas/train/train_qa.pkl pvqa/qas/train/train_qa.json
"""

from __future__ import annotations

import io
import json
import pickletools
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from medmo_data.formats.tables import MAX_METADATA_BYTES, read_small
from medmo_data.recipe import SourceError


class UnsafePickle(SourceError):
    """The pickle holds something other than plain data (or is malformed); nothing was executed."""


class _Mark:
    pass


_MARK = _Mark()

# The only globals `numpy_arrays=True` admits (numpy 1.x and 2.x module names), as stand-in names.
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): "reconstruct", ("numpy._core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy.core.multiarray", "scalar"): "scalar", ("numpy._core.multiarray", "scalar"): "scalar",
    ("numpy", "ndarray"): "ndarray", ("numpy", "dtype"): "dtype",
    ("_codecs", "encode"): "encode",  # protocol 2 writes bytes as encode(str, "latin1")
}
_TYPE_CODE = re.compile(r"^(?:O[48]|[biuf][1248]|f16|c(?:8|16|32)|[US]\d{1,6}|b1|\?)$")


class _Global:
    def __init__(self, name: str) -> None:
        self.name = name


class _DType:
    def __init__(self, code: str) -> None:
        self.code, self.order = code, "|"

    def numpy(self) -> np.dtype:
        return np.dtype((self.order if self.order in "<>" else "") + self.code)


class _Array:
    def __init__(self) -> None:
        self.value: np.ndarray | None = None


def _numpy_reduce(fn: _Global, args: Any, at: str) -> Any:
    """The stand-in for a call of an admitted numpy name: nothing is imported or called."""
    if fn.name == "reconstruct" and isinstance(args, tuple) and len(args) == 3 and isinstance(args[0], _Global) \
            and args[0].name == "ndarray":
        return _Array()
    if fn.name == "dtype" and isinstance(args, tuple) and args and isinstance(args[0], str) \
            and _TYPE_CODE.match(args[0]):
        return _DType(args[0])
    if fn.name == "scalar" and isinstance(args, tuple) and len(args) == 2 and isinstance(args[0], _DType) \
            and isinstance(args[1], bytes) and not args[0].code.startswith("O"):
        return np.frombuffer(args[1], dtype=args[0].numpy(), count=1)[0].item()
    if fn.name == "encode" and isinstance(args, tuple) and len(args) == 2 and isinstance(args[0], str) \
            and args[1] == "latin1":
        return args[0].encode("latin-1")
    raise UnsafePickle(f"{at}: {fn.name}{type(args).__name__} is not numpy's own pickle of an array")


def _numpy_build(target: Any, state: Any, at: str) -> None:
    if isinstance(target, _DType) and isinstance(state, tuple) and len(state) > 1:
        target.order = state[1]
        return
    if isinstance(target, _Array) and isinstance(state, tuple) and len(state) == 5:
        _, shape, dtype, fortran, items = state
        if isinstance(dtype, _DType) and dtype.code.startswith("O") and isinstance(items, list) and not fortran \
                and isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape) \
                and int(np.prod(shape, dtype=np.int64)) == len(items) \
                and not any(isinstance(v, (_Global, _DType, _Array)) for v in items):
            out = np.empty(len(items), dtype=object)
            out[:] = items
            target.value = out.reshape(shape)
            return
    raise UnsafePickle(f"{at}: BUILD of {type(target).__name__} is not numpy's own pickle of an object array")

# Opcodes that push one decoded argument as it is.
_PUSH_ARG = {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
    "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
}
_PY2_STR = {"STRING", "BINSTRING", "SHORT_BINSTRING"}  # genops decodes these as latin-1
_CONST = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_EMPTY = {"EMPTY_LIST": list, "EMPTY_DICT": dict, "EMPTY_TUPLE": tuple, "EMPTY_SET": set}
_IGNORED = {"PROTO", "FRAME"}
_PUT = {"PUT", "BINPUT", "LONG_BINPUT"}
_GET = {"GET", "BINGET", "LONG_BINGET"}


def _pop_mark(stack: list[Any], where: str) -> list[Any]:
    for i in range(len(stack) - 1, -1, -1):
        if stack[i] is _MARK:
            items = stack[i + 1:]
            del stack[i:]
            return items
    raise UnsafePickle(f"{where}: no MARK on the stack")


def loads(data: bytes, where: str = "<pickle>", numpy_arrays: bool = False) -> Any:
    """The plain-data value of a pickle, built without unpickling; raises UnsafePickle otherwise.
    `numpy_arrays`: also numpy's own pickle of an object array (see the module docstring)."""
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    try:
        for op, arg, pos in pickletools.genops(io.BytesIO(data)):
            name = op.name
            at = f"{where}: opcode {name} at byte {pos}"
            if name in _IGNORED:
                continue
            if name == "STOP":
                if len(stack) != 1:
                    raise UnsafePickle(f"{at}: {len(stack)} values on the stack at STOP")
                if isinstance(stack[0], _Array) and stack[0].value is not None:
                    return stack[0].value
                if isinstance(stack[0], (_Global, _DType, _Array)):
                    raise UnsafePickle(f"{at}: an unfinished numpy stand-in at STOP")
                return stack[0]
            if name in _PUSH_ARG:
                stack.append(arg)
            elif name in _PY2_STR:
                stack.append(arg.encode("latin-1").decode("utf-8"))
            elif name in _CONST:
                stack.append(_CONST[name])
            elif name in _EMPTY:
                stack.append(_EMPTY[name]())
            elif name == "MARK":
                stack.append(_MARK)
            elif name == "POP":
                stack.pop()
            elif name == "POP_MARK":
                _pop_mark(stack, at)
            elif name == "DUP":
                stack.append(stack[-1])
            elif name in _PUT:
                memo[arg] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name in _GET:
                if arg not in memo:
                    raise UnsafePickle(f"{at}: memo key {arg} was never stored")
                stack.append(memo[arg])
            elif name == "LIST":
                stack.append(_pop_mark(stack, at))
            elif name == "TUPLE":
                stack.append(tuple(_pop_mark(stack, at)))
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                n = int(name[-1])
                items = stack[-n:]
                del stack[-n:]
                stack.append(tuple(items))
            elif name == "DICT":
                items = _pop_mark(stack, at)
                stack.append(dict(zip(items[::2], items[1::2], strict=True)))
            elif name == "APPEND":
                value = stack.pop()
                _typed(stack[-1], list, at).append(value)
            elif name == "APPENDS":
                items = _pop_mark(stack, at)
                _typed(stack[-1], list, at).extend(items)
            elif name == "SETITEM":
                value = stack.pop()
                key = stack.pop()
                _typed(stack[-1], dict, at)[key] = value
            elif name == "SETITEMS":
                items = _pop_mark(stack, at)
                _typed(stack[-1], dict, at).update(zip(items[::2], items[1::2], strict=True))
            elif name == "ADDITEMS":
                items = _pop_mark(stack, at)
                _typed(stack[-1], set, at).update(items)
            elif name == "FROZENSET":
                stack.append(frozenset(_pop_mark(stack, at)))
            elif numpy_arrays and name in ("GLOBAL", "STACK_GLOBAL"):
                if name == "GLOBAL":
                    module, _, attr = str(arg).partition(" ")
                else:
                    attr, module = stack.pop(), stack.pop()
                key = (module, attr)
                if key not in _NUMPY_GLOBALS:
                    raise UnsafePickle(f"{at}: refused global {module}.{attr}")
                stack.append(_Global(_NUMPY_GLOBALS[key]))
            elif numpy_arrays and name == "REDUCE":
                args = stack.pop()
                fn = stack.pop()
                if not isinstance(fn, _Global):
                    raise UnsafePickle(f"{at}: REDUCE of a {type(fn).__name__}")
                stack.append(_numpy_reduce(fn, args, at))
            elif numpy_arrays and name == "BUILD":
                state = stack.pop()
                _numpy_build(stack[-1], state, at)
            else:
                raise UnsafePickle(f"{at}: refused (only plain data is read; this opcode would import, call "
                                   f"or build an object)")
    except UnsafePickle:
        raise
    except (ValueError, TypeError, IndexError, UnicodeDecodeError) as exc:
        raise UnsafePickle(f"{where}: malformed pickle ({type(exc).__name__}: {exc})") from exc
    raise UnsafePickle(f"{where}: no STOP opcode (truncated file)")


def _typed(obj: Any, kind: type, at: str) -> Any:
    if not isinstance(obj, kind):
        raise UnsafePickle(f"{at}: target is {type(obj).__name__}, expected {kind.__name__}")
    return obj


def load_npy_objects(data: bytes, where: str) -> np.ndarray:
    """An object array from the bytes of an `.npy` file (header, then numpy's pickle), never unpickled."""
    f = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(f)
        _, _, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                       else np.lib.format.read_array_header_2_0(f))
    except ValueError as exc:
        raise UnsafePickle(f"{where}: not an .npy file ({exc})") from exc
    if not dtype.hasobject:
        raise UnsafePickle(f"{where}: dtype {dtype} is not an object array")
    value = loads(data[f.tell():], where, numpy_arrays=True)
    if not isinstance(value, np.ndarray):
        raise UnsafePickle(f"{where}: the pickle holds a {type(value).__name__}, not an array")
    return value


def load_path(path: Path) -> Any:
    return loads(read_small(Path(path), MAX_METADATA_BYTES), str(path))  # regular files only, capped


def main(argv: list[str]) -> int:
    """`python -m medmo_data.formats.safe_pickle IN.pkl [OUT.json]`: the pickle's plain data as JSON."""
    if len(argv) not in (1, 2):
        print("usage: python -m medmo_data.formats.safe_pickle IN.pkl [OUT.json]", file=sys.stderr)
        return 2
    try:
        value = load_path(Path(argv[0]))
        out = json.dumps(value, ensure_ascii=False)
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TypeError as exc:  # bytes, sets, non-string keys have no JSON form
        print(f"error: {argv[0]}: value has no JSON form ({exc})", file=sys.stderr)
        return 2
    if len(argv) == 2:
        Path(argv[1]).write_text(out, encoding="utf-8")
    else:
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
