"""The whitelist pickle reader: plain data round-trips for every protocol; code-running pickles are refused
before anything runs."""

import io
import os
import pickle
import pickletools

import numpy as np
import pytest

from medmo_data.formats.safe_pickle import UnsafePickle, load_npy_objects, load_path, loads, main
from medmo_data.recipe import SourceError

DATA = [
    {"image": "val_0261", "question": "what is present?", "answer": "yes"},
    {"image": "val_0262", "question": "wie groß ist — das?", "answer": "größer", "n": 3, "f": 0.5,
     "big": 2**70, "neg": -40000, "none": None, "flag": True, "t": (1, 2), "t3": (1, 2, 3, 4),
     "empty": [], "d": {}},
]
# Protocols < 4 pickle sets (and < 3 bytes) through a global + REDUCE: those are refused, so these
# types only round-trip from protocol 4 on.
MODERN = [{"b": b"\x00\x01", "s": {1, 2}, "fs": frozenset({"a"})}]


@pytest.mark.parametrize("proto", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_plain_data_round_trips(proto):
    data = pickle.dumps(DATA, protocol=proto)
    assert loads(data) == DATA
    if proto >= 4:
        assert loads(pickle.dumps(MODERN, protocol=proto)) == MODERN
    else:
        with pytest.raises(UnsafePickle, match="GLOBAL"):
            loads(pickle.dumps(MODERN, protocol=proto))


def test_shared_references_use_the_memo():
    shared = {"x": 1}
    value = loads(pickle.dumps([shared, shared], protocol=4))
    assert value == [{"x": 1}, {"x": 1}]
    assert value[0] is value[1]
    assert "BINGET" in {op.name for op, _, _ in pickletools.genops(pickle.dumps([shared, shared], protocol=2))}


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/medmo_safe_pickle_pwned",))


@pytest.mark.parametrize("proto", [0, 2, 4, 5])
def test_code_running_pickle_is_refused(proto, tmp_path):
    marker = "/tmp/medmo_safe_pickle_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    data = pickle.dumps([{"image": "x", "question": "q", "answer": _Evil()}], protocol=proto)
    with pytest.raises(UnsafePickle, match=r"opcode (GLOBAL|STACK_GLOBAL) at byte \d+: refused"):
        loads(data, "evil.pkl")
    assert not os.path.exists(marker)
    # It is a SourceError: the build stops with exit 2 instead of running the file.
    assert issubclass(UnsafePickle, SourceError)


class Point:  # instances pickle via a global, NEWOBJ and BUILD
    def __init__(self):
        self.x = 1


def test_object_opcodes_are_refused():
    with pytest.raises(UnsafePickle, match="refused"):
        loads(pickle.dumps(Point(), protocol=2))
    # Hand-written REDUCE without a global is refused by name, too.
    with pytest.raises(UnsafePickle, match="opcode REDUCE"):
        loads(b"\x80\x02N)R.")


def test_truncated_and_malformed():
    data = pickle.dumps(DATA, protocol=4)
    with pytest.raises(UnsafePickle, match="malformed|STOP"):
        loads(data[:-10])
    with pytest.raises(UnsafePickle, match="values on the stack"):
        loads(b"NN.")
    with pytest.raises(UnsafePickle, match="unhashable|malformed"):
        loads(b"(]]d.")  # a list used as a dict key


def test_python2_byte_strings_decode_as_utf8():
    # Protocol 2 as written by Python 2: SHORT_BINSTRING 'caf\xc3\xa9' (UTF-8 bytes of 'café').
    data = b"\x80\x02]q\x00U\x05caf\xc3\xa9q\x01a."
    assert loads(data) == ["café"]


def test_cli_converts_to_json(tmp_path, capsys):
    src = tmp_path / "train_qa.pkl"
    src.write_bytes(pickle.dumps(DATA[:1], protocol=3))
    out = tmp_path / "train_qa.json"
    assert main([str(src), str(out)]) == 0
    assert out.read_text() == '[{"image": "val_0261", "question": "what is present?", "answer": "yes"}]'
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(_Evil()))
    assert main([str(evil)]) == 2
    assert "refused" in capsys.readouterr().err
    with pytest.raises(SourceError, match="missing"):
        load_path(tmp_path / "nope.pkl")


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def _meta_table() -> np.ndarray:
    return np.array([["filename", "experiment", "pixel_size", "count"],
                     ["a.tif", np.str_("exp0"), np.float64(0.5), np.int64(-3)],
                     ["b.tif", "exp1", 0.25, 7]], dtype=object)


def test_npy_object_array_read_without_unpickling():
    table = _meta_table()
    got = load_npy_objects(_npy(table), "meta.npy")
    assert got.dtype == object and got.shape == (3, 4)
    assert got.tolist() == [["filename", "experiment", "pixel_size", "count"],
                            ["a.tif", "exp0", 0.5, -3], ["b.tif", "exp1", 0.25, 7]]
    assert [type(v) for v in got[1]] == [str, str, float, int]  # numpy scalars become plain values


@pytest.mark.parametrize("proto", [2, 3, 4, 5])
def test_numpy_array_pickle_every_protocol(proto):
    table = _meta_table()
    assert loads(pickle.dumps(table, protocol=proto), "t", numpy_arrays=True).tolist() == table.tolist()
    with pytest.raises(UnsafePickle, match="GLOBAL"):  # off unless asked for
        loads(pickle.dumps(table, protocol=proto), "t")


@pytest.mark.parametrize("proto", [2, 4])
def test_numpy_mode_still_refuses_code(proto):
    marker = "/tmp/medmo_safe_pickle_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    table = np.array([["filename"], [_Evil()]], dtype=object)
    with pytest.raises(UnsafePickle, match=r"refused global (posix|os|nt)\.system"):
        loads(pickle.dumps(table, protocol=proto), "evil.npy", numpy_arrays=True)
    assert not os.path.exists(marker)
    # An admitted name called with anything but numpy's own arguments is refused, too.
    fake = pickle.dumps(np.dtype("f8"), protocol=2).replace(b"f8", b"V9")
    with pytest.raises(UnsafePickle, match="not numpy's own pickle"):
        loads(fake, "fake", numpy_arrays=True)


def test_npy_must_hold_an_object_array():
    with pytest.raises(UnsafePickle, match="not an object array"):
        load_npy_objects(_npy(np.zeros(3)), "x.npy")
    with pytest.raises(UnsafePickle, match="not an .npy file"):
        load_npy_objects(b"PK\x03\x04 not npy", "x.npy")
