#!/usr/bin/python3
"""Writes the scanner's fixtures into internal/scan/testdata/{benign,malicious}.

Run with Debian's interpreter (python3-torch, python3-sklearn, python3-numpy,
python3-joblib, python3-xgboost, python3-h5py, python3-sentencepiece):

    /usr/bin/python3 internal/scan/testdata/make_fixtures.py [malicious]

Benign fixtures are written by the real libraries. Malicious fixtures are
built byte by byte from pickle opcodes: nothing here ever unpickles, and no
malicious object is ever pickled by the pickle module.

Outputs are deterministic where the libraries allow (fixed seeds); torch and
joblib embed nothing time-dependent in these formats except zip timestamps,
which do not matter to the tests.
"""

import bz2
import gzip
import io
import json
import lzma
import os
import pickle
import struct
import sys
import tarfile
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
BENIGN = os.path.join(HERE, "benign")
EVIL = os.path.join(HERE, "malicious")


def write(d, name, data):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- benign


def benign():
    import numpy as np
    import torch
    import joblib
    from sklearn.linear_model import LogisticRegression

    torch.manual_seed(0)
    np.random.seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    sd = model.state_dict()

    buf = io.BytesIO()
    torch.save(sd, buf)
    write(BENIGN, "torch_state_dict.pt", buf.getvalue())

    buf = io.BytesIO()
    torch.save(sd, buf, _use_new_zipfile_serialization=False)
    write(BENIGN, "torch_legacy.pt", buf.getvalue())

    buf = io.BytesIO()
    torch.save({"step": 3, "weights": sd, "lr": 0.1, "half": torch.ones(3, dtype=torch.float16)}, buf, pickle_protocol=4)
    write(BENIGN, "torch_checkpoint_p4.pt", buf.getvalue())

    # TorchScript: code the scanner does not analyse, hence unknown.
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 2)), buf)
    write(BENIGN, "torchscript_linear.pt", buf.getvalue())

    X = np.random.RandomState(0).randn(40, 3)
    y = (X[:, 0] > 0).astype(int)
    clf = LogisticRegression().fit(X, y)
    write(BENIGN, "sklearn_logreg.pkl", pickle.dumps(clf, protocol=4))
    for proto in (0, 2):
        write(BENIGN, "sklearn_logreg_p%d.pkl" % proto, pickle.dumps(clf, protocol=proto))

    def jdump(name, **kw):
        p = os.path.join(BENIGN, name)
        joblib.dump(clf, p, **kw)

    jdump("sklearn_logreg.joblib")
    jdump("sklearn_logreg.joblib.gz", compress=("gzip", 3))
    jdump("sklearn_logreg.joblib.bz2", compress=("bz2", 3))
    jdump("sklearn_logreg.joblib.xz", compress=("xz", 3))
    jdump("sklearn_logreg.joblib.lzma", compress=("lzma", 3))
    jdump("sklearn_logreg.joblib.z", compress=("zlib", 3))

    # joblib inline arrays of every layout joblib.load reads back: aligned
    # and compressed numeric arrays, structured, subarray, unicode, datetime
    # and object arrays (a nested pickle).
    mixed = {
        "f": np.linspace(0, 1, 50).reshape(5, 10), "fortran": np.asfortranarray(np.ones((3, 4), dtype=np.int16)),
        "rec": np.zeros(3, dtype=[("a", "f8"), ("b", "i4")]), "sub": np.zeros(2, dtype=("f4", (3,))),
        "u": np.array(["ab", "cde"]), "t": np.array(["2020-01-01"], dtype="M8[s]"), "b": np.array([True, False]),
        "obj": np.array([1, "x", None], dtype=object), "scalar": np.float32(1.5), "empty": np.zeros((0, 3)),
    }
    joblib.dump(mixed, os.path.join(BENIGN, "joblib_arrays.joblib"))
    joblib.dump(mixed, os.path.join(BENIGN, "joblib_arrays.joblib.gz"), compress=("gzip", 1))

    arr = np.arange(24, dtype=np.float32).reshape(4, 6)
    b = io.BytesIO()
    np.save(b, arr)
    write(BENIGN, "array.npy", b.getvalue())
    b = io.BytesIO()
    np.save(b, np.array([1, "two", 3.0, None], dtype=object), allow_pickle=True)
    write(BENIGN, "object_array.npy", b.getvalue())
    b = io.BytesIO()
    np.savez(b, a=arr, b=np.ones(3))
    write(BENIGN, "arrays.npz", b.getvalue())
    b = io.BytesIO()
    np.savez_compressed(b, a=arr, b=np.zeros((10, 10)))
    write(BENIGN, "arrays_compressed.npz", b.getvalue())

    # Plain numpy / container pickles.
    write(BENIGN, "numpy_arrays.pkl", pickle.dumps({"w": arr, "b": np.float64(2.5), "i": np.int64(3)}, protocol=2))
    write(BENIGN, "numpy_arrays_p5.pkl", pickle.dumps({"w": arr, "t": arr.T, "o": np.array([1, "x"], dtype=object), "i": np.int32(3)}, protocol=5))
    write(BENIGN, "containers_p5.pkl", pickle.dumps({"a": [1, 2.5, "x", b"raw", None, True], "s": {1, 2}, "t": (1,), "f": frozenset([3])}, protocol=5))

    try:
        import xgboost

        Xb = np.random.RandomState(1).randn(30, 3)
        yb = (Xb[:, 1] > 0).astype(int)
        xgbc = xgboost.XGBClassifier(n_estimators=2, max_depth=2, use_label_encoder=False).fit(Xb, yb)
        write(BENIGN, "xgboost_classifier.pkl", pickle.dumps(xgbc, protocol=4))
    except Exception as e:  # noqa: BLE001
        print("xgboost fixture skipped:", e, file=sys.stderr)

    # safetensors, written per the format spec (no safetensors package in
    # Debian bookworm): header JSON padded with spaces to 8 bytes.
    tensors = {"a": ("F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)), "b": ("I64", [1], struct.pack("<q", 7))}
    write(BENIGN, "model.safetensors", safetensors(tensors, {"format": "pt"}))

    write(BENIGN, "model.gguf", gguf_file())
    try:
        import sentencepiece as spm

        corpus = io.StringIO("\n".join("the quick brown fox jumps over the lazy dog %d times" % i for i in range(200)))
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus.getvalue().splitlines()), model_writer=model,
                                       vocab_size=40, minloglevel=2,
                                       normalization_rule_name="identity")
        write(BENIGN, "tokenizer.model", model.getvalue())
    except ImportError:
        print("sentencepiece missing: tokenizer fixture skipped", file=sys.stderr)
    # A model card image (1x1 PNG).
    write(BENIGN, "card.png", bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                                            "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"))
    write(BENIGN, "config.json", json.dumps({"hidden_size": 8, "architectures": ["Tiny"]}).encode())
    write(BENIGN, "model.onnx", onnx_model("weights.bin"))
    write(BENIGN, "dense.keras", keras_zip(keras_config(lambda_layer=False)))
    try:
        import h5py

        p = os.path.join(BENIGN, "dense.h5")
        with h5py.File(p, "w") as f:
            f.attrs["model_config"] = json.dumps(keras_config(lambda_layer=False))
            f.attrs["keras_version"] = "2.11.0"
            f.create_dataset("model_weights/dense/kernel", data=np.ones((4, 2), dtype=np.float32))
        p = os.path.join(EVIL, "lambda.h5")
        os.makedirs(EVIL, exist_ok=True)
        with h5py.File(p, "w") as f:
            f.attrs["model_config"] = json.dumps(keras_config(lambda_layer=True))
            f.attrs["keras_version"] = "2.11.0"
            f.create_dataset("model_weights/dense/kernel", data=np.ones((4, 2), dtype=np.float32))
    except ImportError:
        print("h5py missing: .h5 fixtures skipped", file=sys.stderr)


def safetensors(tensors, metadata=None, raw_header=None):
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    data = b""
    for name, (dt, shape, blob) in tensors.items():
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    h = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_file(version=3, bad_type=False, truncate=None):
    kv = gguf_str("general.architecture") + struct.pack("<I", 8) + gguf_str("llama")
    kv += gguf_str("general.alignment") + struct.pack("<I", 4) + struct.pack("<I", 32)
    kv += gguf_str("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + gguf_str("a") + gguf_str("b")
    ti = gguf_str("w") + struct.pack("<I", 2) + struct.pack("<QQ", 4, 2) + struct.pack("<I", 99 if bad_type else 0) + struct.pack("<Q", 0)
    head = b"GGUF" + struct.pack("<I", version) + struct.pack("<QQ", 1, 3) + kv + ti
    head += b"\0" * ((32 - len(head) % 32) % 32)
    out = head + struct.pack("<8f", *range(8))
    return out[:truncate] if truncate else out


def pb_varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def pb_field(num, wt, payload):
    tag = pb_varint(num << 3 | wt)
    if wt == 0:
        return tag + pb_varint(payload)
    return tag + pb_varint(len(payload)) + payload


def onnx_model(location):
    entry = pb_field(1, 2, b"location") + pb_field(2, 2, location.encode())
    tensor = pb_field(1, 0, 4) + pb_field(2, 0, 1) + pb_field(8, 2, b"w") + pb_field(13, 2, entry) + pb_field(14, 0, 1)
    graph = pb_field(2, 2, b"g") + pb_field(5, 2, tensor)
    return pb_field(1, 0, 8) + pb_field(2, 2, b"custody-fixture") + pb_field(7, 2, graph)


def keras_config(lambda_layer):
    layers = [{"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "name": "in"}},
              {"class_name": "Dense", "config": {"name": "dense", "units": 2}}]
    if lambda_layer:
        # The marshalled bytecode is a placeholder string: what matters is
        # that Keras would unmarshal and run whatever is there.
        layers.append({"class_name": "Lambda", "config": {"name": "evil", "function": ["4wEAAAAAAAAA", None, None], "function_type": "lambda"}})
    return {"class_name": "Sequential", "config": {"name": "seq", "layers": layers}}


def keras_zip(cfg):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        for name, data in (("metadata.json", json.dumps({"keras_version": "3.0.0"})),
                           ("config.json", json.dumps(cfg)), ("model.weights.h5", b"")):
            z.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)
    return b.getvalue()


# ---------------------------------------------------------------- malicious
# Raw opcodes only. Helper encoders for the few opcodes used.


def su(s):  # SHORT_BINUNICODE
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def evil_reduce_p4(module="os", name="system", arg="id"):
    return b"\x80\x04\x95" + struct.pack("<Q", 0) + su(module) + su(name) + b"\x93" + su(arg) + b"\x85R."


EVIL_P2 = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."


def malicious():
    os.makedirs(EVIL, exist_ok=True)
    w = lambda n, d: write(EVIL, n, d)  # noqa: E731
    w("global_os_system.pkl", b"cos\nsystem\n(S'id'\ntR.")
    # STACK_GLOBAL operands memoised early, popped, fetched back by BINGET.
    w("stack_global_memo.pkl", b"\x80\x04" + su("os") + b"\x94" + su("system") + b"\x940" + b"0" +
      b"N0" + b"h\x00h\x01\x93" + su("id") + b"\x85R.")
    # Same, through LONG_BINPUT / LONG_BINGET and PUT/GET (protocol 0 memo).
    w("stack_global_longmemo.pkl", b"\x80\x04" + su("subprocess") + b"r\x10\x00\x00\x000" + su("getoutput") +
      b"p7\n0" + b"j\x10\x00\x00\x00g7\n\x93" + su("id") + b"\x85R.")
    w("inst.pkl", b"(S'id'\nios\nsystem\n.")
    w("obj.pkl", b"(cos\nsystem\nS'id'\no.")
    w("newobj_ex.pkl", b"\x80\x04" + su("subprocess") + su("Popen") + b"\x93" + su("id") + b"\x85\x85}\x92.")
    w("newobj.pkl", b"\x80\x02csubprocess\nPopen\n" + b"X\x02\x00\x00\x00id\x85\x85\x81.")
    # EXT: the extension registry is outside the file; not safe.
    w("ext1.pkl", b"\x80\x02\x82\x01X\x02\x00\x00\x00id\x85R.")
    w("ext2.pkl", b"\x80\x02\x83\x01\x01X\x02\x00\x00\x00id\x85R.")
    w("ext4.pkl", b"\x80\x02\x84\x01\x00\x01\x00X\x02\x00\x00\x00id\x85R.")
    # Dotted qualnames: attribute traversal from an innocuous module.
    w("dotted_pathlib_os_system.pkl", evil_reduce_p4("pathlib", "os.system"))
    w("dotted_collections_os.pkl", evil_reduce_p4("collections", "_sys.modules.os.system"))
    # builtins.getattr chain: getattr(__import__('os'), 'system')('id').
    w("getattr_chain.pkl", b"\x80\x04" + su("builtins") + su("getattr") + b"\x93\x94" +
      su("builtins") + su("__import__") + b"\x93" + su("os") + b"\x85R" + su("system") + b"\x86R" +
      su("id") + b"\x85R.")
    # Computed import: STACK_GLOBAL on the result of a call.
    w("computed_import.pkl", b"\x80\x04" + su("builtins") + su("str") + b"\x93" + su("os") + b"\x85R" + su("system") + b"\x93)R.")
    # BUILD on an imported object (monkeypatching a module attribute).
    w("build_global.pkl", b"\x80\x04" + su("torch._utils") + su("_rebuild_tensor") + b"\x93N}" + su("__code__") + b"Ns\x86b.")
    # Two pickles stacked: benign first, evil second.
    w("stacked_second_evil.pkl", pickle.dumps([1, 2, 3], protocol=2) + EVIL_P2)
    # Evil call, then the stream is cut before STOP.
    w("truncated_after_reduce.pkl", EVIL_P2[:-1] + b"X\xff\x00")
    # FRAME claiming more bytes than remain: CPython's C unpickler would
    # prefetch and fail; the evil call is still reported.
    w("frame_overlong.pkl", b"\x80\x04\x95" + struct.pack("<Q", 1 << 20) + su("os") + su("system") + b"\x93" + su("id") + b"\x85R.")
    # Legacy torch layout: magic, protocol, sys info, evil data pickle.
    magic = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little") + b"."
    proto = b"\x80\x02M\xe9\x03."
    sysinfo = b"\x80\x02}q\x00X\x0d\x00\x00\x00little_endianq\x01\x88s."
    w("torch_legacy_evil.pt", magic + proto + sysinfo + EVIL_P2 + b"\x80\x02]q\x00.")

    # Containers.
    w("zip_renamed_member.zip", zbytes([("weights.bin", EVIL_P2)]))
    torchlike = [("archive/data.pkl", EVIL_P2), ("archive/version", b"3\n")]
    w("zip_bad_crc.pt", zbytes(torchlike, bad_crc=True))
    w("zip_name_mismatch.pt", zbytes([("archive/data.pkl", pickle.dumps({}, protocol=2)),
                                      ("archive/data/0", EVIL_P2)], local_names={"archive/data/0": "archive/evil.pkl"}))
    # Evil pickle stored as a tensor storage record of a torch archive.
    w("zip_storage_record.pt", zbytes([("archive/data.pkl", pickle.dumps({}, protocol=2)),
                                       ("archive/data/0", EVIL_P2)]))
    w("zip_prepended.pt", b"JUNK" * 16 + zbytes(torchlike, prepended=64))
    w("zip_nested.zip", zbytes([("inner.zip", zbytes([("deep/model.bin", EVIL_P2)]))]))
    w("zip_hidden_member.zip", zbytes([("ok.txt", b"hello\n")], hidden=[("hidden.pkl", EVIL_P2)]))
    w("zip_flags_deflate.pt", zbytes(torchlike, deflate=True, flags=0x0806))
    w("zip64_evil.pt", zbytes(torchlike, zip64=True))

    hdr = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    hdr += " " * ((64 - (10 + len(hdr) + 1) % 64) % 64) + "\n"
    w("object_array_evil.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + EVIL_P2)
    # numpy accepts any dtype spelling: 'object' is an object array too.
    hdr2 = "{'descr': 'object', 'fortran_order': False, 'shape': (1,), }"
    hdr2 += " " * ((64 - (10 + len(hdr2) + 1) % 64) % 64) + "\n"
    w("object_array_spelled_evil.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr2)) + hdr2.encode() + EVIL_P2)
    w("npz_evil.npz", zbytes([("arr_0.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + EVIL_P2)]))
    # joblib object array: the nested pickle after the wrapper's BUILD.
    wrapper = (b"\x80\x04" + su("joblib.numpy_pickle") + su("NumpyArrayWrapper") + b"\x93)\x81}(" +
               su("subclass") + su("numpy") + su("ndarray") + b"\x93" + su("shape") + b"K\x01\x85" +
               su("order") + su("C") + su("dtype") + su("numpy") + su("dtype") + b"\x93" + su("O8") +
               b"\x89\x88\x87R" + su("allow_mmap") + b"\x89ub")
    w("joblib_object_array_evil.joblib", wrapper + EVIL_P2 + b".")
    w("joblib_evil.joblib.gz", gzip.compress(EVIL_P2, mtime=0))
    w("joblib_evil.joblib.bz2", bz2.compress(EVIL_P2))
    w("joblib_evil.joblib.xz", lzma.compress(EVIL_P2, format=lzma.FORMAT_XZ))
    w("joblib_evil.joblib.lzma", lzma.compress(EVIL_P2, format=lzma.FORMAT_ALONE))
    w("joblib_evil.joblib.z", zlib.compress(EVIL_P2))
    tb = io.BytesIO()
    with tarfile.open(fileobj=tb, mode="w", format=tarfile.USTAR_FORMAT) as t:
        ti = tarfile.TarInfo("model/weights.dat")
        ti.size = len(EVIL_P2)
        ti.mtime = 0
        t.addfile(ti, io.BytesIO(EVIL_P2))
    w("tar_evil.tar", tb.getvalue())
    w("tar_evil.tar.gz", gzip.compress(tb.getvalue(), mtime=0))
    # Pre-1.0 torch.save tar: in "storages", raw storage bytes separate the
    # record pickles; the second record's pickle calls posix.system.
    rec1 = b"\x80\x02X\x01\x00\x00\x000X\x03\x00\x00\x00cpuctorch\nFloatStorage\n\x87."
    rec2 = b"\x80\x02X\x01\x00\x00\x001X\x03\x00\x00\x00cpucposix\nsystem\nX\x02\x00\x00\x00id\x85R\x87."
    storages = b"\x80\x02K\x02." + rec1 + struct.pack("<q", 2) + b"\0" * 8 + rec2 + struct.pack("<q", 0)
    tb = io.BytesIO()
    with tarfile.open(fileobj=tb, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in (("sys_info", b"\x80\x02}."), ("pickle", b"\x80\x02}."), ("storages", storages)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 0
            t.addfile(ti, io.BytesIO(data))
    w("torch_legacy_tar_evil.tar", tb.getvalue())

    w("keras_lambda.keras", keras_zip(keras_config(lambda_layer=True)))
    w("onnx_escape.onnx", onnx_model("../../../../etc/passwd"))
    w("onnx_absolute.onnx", onnx_model("/etc/shadow"))

    # Malformed non-pickle formats: not safe.
    ok = {"a": ("F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4))}
    w("safetensors_overlap.safetensors", safetensors({}, raw_header=json.dumps({
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}).encode()) + b"\0" * 12)
    w("safetensors_gap.safetensors", safetensors(ok) + b"\0" * 4)
    w("safetensors_bad_dtype.safetensors", safetensors({"a": ("F99", [1], b"\0" * 4)}))
    w("safetensors_header_too_big.safetensors", struct.pack("<Q", 200_000_000) + b"{}")
    w("safetensors_metadata_not_str.safetensors", safetensors(ok, metadata={"n": 1}))
    w("gguf_bad_version.gguf", gguf_file(version=9))
    w("gguf_truncated.gguf", gguf_file(truncate=60))
    w("gguf_bad_type.gguf", gguf_file(bad_type=True))


def zbytes(members, bad_crc=False, local_names=None, prepended=0, hidden=(), deflate=False, flags=0, zip64=False):
    """A zip archive written by hand, with the irregularities asked for."""
    local_names = local_names or {}
    out = b""
    central = b""
    entries = [(n, d, False) for n, d in members] + [(n, d, True) for n, d in hidden]
    for name, data, is_hidden in entries:
        lname = local_names.get(name, name).encode()
        cname = name.encode()
        crc = zlib.crc32(data) ^ (0xDEADBEEF if bad_crc else 0)
        method = 8 if deflate else 0
        body = zlib.compress(data)[2:-4] if deflate else data
        off = prepended + len(out)
        extra_l = b""
        extra_c = b""
        csize, usize, hoff = len(body), len(data), off
        if zip64:
            extra_l = struct.pack("<HHQQ", 1, 16, len(data), len(body))
            extra_c = struct.pack("<HHQQQ", 1, 24, len(data), len(body), off)
            csize = usize = hoff = 0xFFFFFFFF
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45 if zip64 else 20, flags, method, 0, 0, crc,
                           csize, usize, len(lname), len(extra_l)) + lname + extra_l + body
        if is_hidden:
            continue
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45 if zip64 else 20, 45 if zip64 else 20, flags, method, 0, 0,
                               crc, csize, usize, len(cname), len(extra_c), 0, 0, 0, 0, hoff) + cname + extra_c
    n = len(members)
    cd_off = prepended + len(out)
    tail = b""
    if zip64:
        z64_off = cd_off + len(central)
        tail += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, len(central), cd_off)
        tail += struct.pack("<IIQI", 0x07064B50, 0, z64_off, 1)
        tail += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    else:
        # Offsets written as if the archive started at 0, as zip tools do
        # when bytes are prepended afterwards (cat stub.bin archive.zip).
        tail += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), cd_off - prepended, 0)
    if prepended and not zip64:
        # Rewrite local header offsets relative to the archive start.
        fixed = b""
        i = 0
        while i < len(central):
            name_len, extra_len, comment_len = struct.unpack_from("<HHH", central, i + 28)
            entry = bytearray(central[i:i + 46 + name_len + extra_len + comment_len])
            struct.pack_into("<I", entry, 42, struct.unpack_from("<I", entry, 42)[0] - prepended)
            fixed += bytes(entry)
            i += len(entry)
        central = fixed
    return out + central + tail


if __name__ == "__main__":
    # "malicious" alone rewrites only the raw-opcode fixtures (stdlib only).
    malicious()
    if sys.argv[1:] != ["malicious"]:
        benign()
    big = [p for d in (BENIGN, EVIL) for p in (os.path.join(d, f) for f in os.listdir(d)) if os.path.getsize(p) > 100_000]
    if big:
        sys.exit("fixtures over 100 KB: %s" % big)
