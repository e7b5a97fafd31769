/* Native helpers of OTLP ingest's hottest loops: a decoder of ExportTraceServiceRequest protobuf bodies, and the
 * redaction pre-check's search for trigger strings (contains_any, at the end).
 *
 * decode(body: bytes, max_value_chars: int) -> list | None
 *
 * Returns [(resource_attributes: dict, [(scope_name, scope_version, [span, ...]), ...]), ...] where each span is
 * (trace_id_hex, span_id_hex, parent_span_id_hex, name, kind, start_ns, end_ns, status_code, status_message,
 *  attributes: dict, events: list | None, links: list | None),
 * the same values llmops.tracing._otlp reads through the protobuf (upb) message objects, built without them.
 *
 * It returns None (the caller then decodes with upb, which gives the exact answer and error) for anything outside
 * the plain encoding every OTLP exporter writes: malformed or truncated wire data, invalid UTF-8, group wire
 * types, a known field with an unexpected wire type, a singular string or message field or a second AnyValue
 * member occurring twice (protobuf keeps the last or merges, and upb checks each occurrence, which this decoder
 * would not), attribute values nested deeper than MAX_DEPTH or longer than max_value_chars. So it never has
 * to reproduce protobuf's rarer rules or ingest's rejection messages; it only makes the common case cheap.
 *
 * Every read is bounds-checked against the end of its enclosing message; nesting is bounded by MAX_DEPTH. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 32 /* _otlp.MAX_DEPTH */

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} Reader;

typedef struct {
    Py_ssize_t max_chars;
    PyObject *keys; /* attribute key bytes -> interned str, for this call */
} Ctx;

/* --- wire ------------------------------------------------------------------------------------------------ */

static int read_varint(Reader *r, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return -1;
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1) return -1; /* bits beyond 64 */
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1; /* more than 10 bytes */
}

static int read_fixed64(Reader *r, uint64_t *out) {
    if (r->end - r->p < 8) return -1;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | r->p[i];
    r->p += 8;
    *out = v;
    return 0;
}

/* A length-delimited field: *sub covers its bytes, r moves past them. */
static int read_len(Reader *r, Reader *sub) {
    uint64_t n;
    if (read_varint(r, &n) < 0) return -1;
    if (n > (uint64_t)(r->end - r->p)) return -1;
    sub->p = r->p;
    sub->end = r->p + n;
    r->p += n;
    return 0;
}

/* A singular string field: a second occurrence falls back, since this decoder would check only the last one
 * while upb checks (UTF-8) every one. ``str`` starts as {NULL, NULL} (absent: the empty string). */
static int read_string_once(Reader *r, uint32_t wire, Reader *str) {
    if (wire != 2 || str->p != NULL) return -1;
    return read_len(r, str);
}

static int read_tag(Reader *r, uint32_t *field, uint32_t *wire) {
    uint64_t tag;
    if (read_varint(r, &tag) < 0) return -1;
    *field = (uint32_t)(tag >> 3);
    *wire = (uint32_t)(tag & 7);
    if (*field == 0 || tag >> 32) return -1;
    return 0;
}

/* Skip an unknown field; groups (wire types 3 and 4) are not supported here. */
static int skip_field(Reader *r, uint32_t wire) {
    uint64_t v;
    Reader sub;
    switch (wire) {
        case 0: return read_varint(r, &v);
        case 1: return read_fixed64(r, &v);
        case 2: return read_len(r, &sub);
        case 5:
            if (r->end - r->p < 4) return -1;
            r->p += 4;
            return 0;
        default: return -1;
    }
}

static PyObject *utf8(const Reader *s) {
    PyObject *o = PyUnicode_DecodeUTF8((const char *)s->p, s->end - s->p, NULL);
    if (o == NULL) PyErr_Clear(); /* invalid UTF-8: fall back (upb reports it) */
    return o;
}

/* A string field this decoder does not keep: still checked, as upb checks it. */
static int skip_string(Reader *r, uint32_t wire) {
    Reader s;
    if (wire != 2 || read_len(r, &s) < 0) return -1;
    PyObject *o = utf8(&s);
    if (o == NULL) return -1;
    Py_DECREF(o);
    return 0;
}

static PyObject *hex(const Reader *s) {
    static const char digits[] = "0123456789abcdef";
    Py_ssize_t n = s->end - s->p;
    PyObject *o = PyUnicode_New(2 * n, 127);
    if (o == NULL) return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(o);
    for (Py_ssize_t i = 0; i < n; i++) {
        out[2 * i] = (Py_UCS1)digits[s->p[i] >> 4];
        out[2 * i + 1] = (Py_UCS1)digits[s->p[i] & 15];
    }
    return o;
}

/* --- attributes ---------------------------------------------------------------------------------------- */

static PyObject *any_value(Ctx *c, Reader r, int depth);
static int key_values(Ctx *c, Reader r, PyObject *into, int depth);

/* Attributes this decoder does not keep (scope and link attributes): still decoded, so that what upb would
 * reject (invalid UTF-8, ...) falls back. */
static int skip_attributes(Ctx *c, Reader *r, uint32_t wire) {
    Reader s;
    if (wire != 2 || read_len(r, &s) < 0) return -1;
    PyObject *scratch = PyDict_New();
    if (scratch == NULL) return -1;
    int rc = key_values(c, s, scratch, 0);
    Py_DECREF(scratch);
    return rc;
}

/* Append a new reference (NULL: the call that made it failed) to *list, creating the list when NULL. */
static int append_to(PyObject **list, PyObject *item) {
    if (item == NULL) return -1;
    if (*list == NULL && (*list = PyList_New(0)) == NULL) {
        Py_DECREF(item);
        return -1;
    }
    int rc = PyList_Append(*list, item);
    Py_DECREF(item);
    return rc;
}

static PyObject *array_value(Ctx *c, Reader r, int depth) {
    PyObject *list = PyList_New(0);
    if (list == NULL) return NULL;
    while (r.p < r.end) {
        uint32_t field, wire;
        if (read_tag(&r, &field, &wire) < 0) goto fail;
        if (field == 1) {
            Reader sub;
            if (wire != 2 || read_len(&r, &sub) < 0 || append_to(&list, any_value(c, sub, depth + 1)) < 0) goto fail;
        } else if (skip_field(&r, wire) < 0) {
            goto fail;
        }
    }
    return list;
fail:
    Py_DECREF(list);
    return NULL;
}

/* An AnyValue as _otlp._pb_value returns it (None when no member is set). NULL: fall back. */
static PyObject *any_value(Ctx *c, Reader r, int depth) {
    uint32_t which = 0;
    Reader last = {NULL, NULL};
    uint64_t scalar = 0;
    while (r.p < r.end) {
        uint32_t field, wire;
        if (read_tag(&r, &field, &wire) < 0) return NULL;
        switch (field) {
            /* A second member (protobuf: the last one wins, a repeated message merges) falls back: this decoder
             * would check only the one it keeps, while upb checks every one. */
            case 1: case 5: case 6: case 7:
                if (wire != 2 || which != 0 || read_len(&r, &last) < 0) return NULL;
                which = field;
                break;
            case 2: case 3:
                if (wire != 0 || which != 0 || read_varint(&r, &scalar) < 0) return NULL;
                which = field;
                break;
            case 4:
                if (wire != 1 || which != 0 || read_fixed64(&r, &scalar) < 0) return NULL;
                which = field;
                break;
            case 8: /* string_value_strindex (profiles' string table): not read by ingest */
                return NULL;
            default:
                if (skip_field(&r, wire) < 0) return NULL;
        }
    }
    /* Past MAX_DEPTH _otlp._pb_value rejects every member but the scalars: let it (fall back). */
    if (depth > MAX_DEPTH && (which == 0 || which >= 5)) return NULL;
    switch (which) {
        case 0: Py_RETURN_NONE;
        case 1: {
            PyObject *s = utf8(&last);
            if (s != NULL && PyUnicode_GET_LENGTH(s) > c->max_chars) Py_CLEAR(s);
            return s;
        }
        case 2: return PyBool_FromLong(scalar != 0);
        case 3: return PyLong_FromLongLong((long long)scalar);
        case 4: {
            double d;
            memcpy(&d, &scalar, sizeof d);
            return PyFloat_FromDouble(d);
        }
        case 5:
            return array_value(c, last, depth);
        case 6: {
            PyObject *d = PyDict_New();
            if (d == NULL) return NULL;
            Reader list = last;
            while (list.p < list.end) { /* KeyValueList: field 1, repeated KeyValue */
                uint32_t field, wire;
                Reader sub;
                if (read_tag(&list, &field, &wire) < 0) goto kv_fail;
                if (field == 1) {
                    if (wire != 2 || read_len(&list, &sub) < 0 || key_values(c, sub, d, depth + 1) < 0) goto kv_fail;
                } else if (skip_field(&list, wire) < 0) {
                    goto kv_fail;
                }
            }
            return d;
        kv_fail:
            Py_DECREF(d);
            return NULL;
        }
        case 7: {
            Py_ssize_t n = last.end - last.p;
            if (n > c->max_chars) return NULL;
            PyObject *raw = PyBytes_FromStringAndSize((const char *)last.p, n);
            if (raw == NULL) return NULL;
            PyObject *out = NULL;
            PyObject *mod = PyImport_ImportModule("base64");
            if (mod != NULL) {
                PyObject *enc = PyObject_CallMethod(mod, "b64encode", "O", raw);
                if (enc != NULL) {
                    out = PyUnicode_FromEncodedObject(enc, "ascii", "strict");
                    Py_DECREF(enc);
                }
                Py_DECREF(mod);
            }
            Py_DECREF(raw);
            if (out == NULL) PyErr_Clear();
            return out;
        }
    }
    return NULL;
}

static PyObject *key_str(Ctx *c, const Reader *s) {
    PyObject *raw = PyBytes_FromStringAndSize((const char *)s->p, s->end - s->p);
    if (raw == NULL) return NULL;
    PyObject *key = PyDict_GetItemWithError(c->keys, raw); /* borrowed */
    if (key != NULL) {
        Py_DECREF(raw);
        Py_INCREF(key);
        return key;
    }
    if (PyErr_Occurred()) {
        Py_DECREF(raw);
        return NULL;
    }
    key = utf8(s);
    if (key != NULL) {
        PyUnicode_InternInPlace(&key);
        if (PyDict_SetItem(c->keys, raw, key) < 0) Py_CLEAR(key);
    }
    Py_DECREF(raw);
    return key;
}

/* One KeyValue into a dict (a later duplicate key replaces an earlier one, as in _pb_attrs). */
static int key_values(Ctx *c, Reader r, PyObject *into, int depth) {
    Reader key = {NULL, NULL}, value = {NULL, NULL};
    int has_value = 0;
    while (r.p < r.end) {
        uint32_t field, wire;
        if (read_tag(&r, &field, &wire) < 0) return -1;
        if (field == 1) {
            if (read_string_once(&r, wire, &key) < 0) return -1;
        } else if (field == 2) {
            if (wire != 2 || has_value || read_len(&r, &value) < 0) return -1;
            has_value = 1;
        } else if (skip_field(&r, wire) < 0) {
            return -1;
        }
    }
    PyObject *k = key_str(c, &key);
    if (k == NULL) return -1;
    Reader unset = {r.end, r.end}; /* no value: an empty AnyValue, as upb reads it */
    PyObject *v = any_value(c, has_value ? value : unset, depth);
    if (v == NULL) {
        Py_DECREF(k);
        return -1;
    }
    int rc = PyDict_SetItem(into, k, v);
    Py_DECREF(k);
    Py_DECREF(v);
    return rc;
}

/* --- spans --------------------------------------------------------------------------------------------- */

/* An event as _otlp._pb_span builds it: {"name", "time_ns", "attributes"}. */
static PyObject *event(Ctx *c, Reader r) {
    Reader name = {NULL, NULL};
    uint64_t time = 0;
    PyObject *attrs = PyDict_New();
    if (attrs == NULL) return NULL;
    while (r.p < r.end) {
        uint32_t field, wire;
        Reader sub;
        if (read_tag(&r, &field, &wire) < 0) goto fail;
        if (field == 1) {
            if (wire != 1 || read_fixed64(&r, &time) < 0) goto fail;
        } else if (field == 2) {
            if (read_string_once(&r, wire, &name) < 0) goto fail;
        } else if (field == 3) {
            if (wire != 2 || read_len(&r, &sub) < 0 || key_values(c, sub, attrs, 0) < 0) goto fail;
        } else if (skip_field(&r, wire) < 0) {
            goto fail;
        }
    }
    PyObject *n = utf8(&name);
    if (n == NULL) goto fail;
    PyObject *out = Py_BuildValue("{s:N,s:K,s:O}", "name", n, "time_ns", (unsigned long long)time, "attributes", attrs);
    Py_DECREF(attrs);
    return out;
fail:
    Py_DECREF(attrs);
    return NULL;
}

static PyObject *span_link(Ctx *c, Reader r) {
    Reader trace = {r.p, r.p}, span = {r.p, r.p};
    while (r.p < r.end) {
        uint32_t field, wire;
        if (read_tag(&r, &field, &wire) < 0) return NULL;
        if (field == 1) {
            if (wire != 2 || read_len(&r, &trace) < 0) return NULL;
        } else if (field == 2) {
            if (wire != 2 || read_len(&r, &span) < 0) return NULL;
        } else if (field == 3) {
            if (skip_string(&r, wire) < 0) return NULL;
        } else if (field == 4) {
            if (skip_attributes(c, &r, wire) < 0) return NULL;
        } else if (skip_field(&r, wire) < 0) {
            return NULL;
        }
    }
    return Py_BuildValue("{s:N,s:N}", "trace_id", hex(&trace), "span_id", hex(&span));
}


static PyObject *span(Ctx *c, Reader r) {
    Reader trace = {r.p, r.p}, id = {r.p, r.p}, parent = {r.p, r.p}, name = {NULL, NULL};
    Reader status_msg = {NULL, NULL};
    uint64_t kind = 0, start = 0, end = 0, code = 0;
    int has_status = 0;
    PyObject *attrs = PyDict_New(), *events = NULL, *links = NULL;
    if (attrs == NULL) return NULL;
    while (r.p < r.end) {
        uint32_t field, wire;
        Reader sub;
        if (read_tag(&r, &field, &wire) < 0) goto fail;
        switch (field) {
            case 1: if (wire != 2 || read_len(&r, &trace) < 0) goto fail; break;
            case 2: if (wire != 2 || read_len(&r, &id) < 0) goto fail; break;
            case 3: if (skip_string(&r, wire) < 0) goto fail; break;
            case 4: if (wire != 2 || read_len(&r, &parent) < 0) goto fail; break;
            case 5: if (read_string_once(&r, wire, &name) < 0) goto fail; break;
            case 6: if (wire != 0 || read_varint(&r, &kind) < 0) goto fail; break;
            case 7: if (wire != 1 || read_fixed64(&r, &start) < 0) goto fail; break;
            case 8: if (wire != 1 || read_fixed64(&r, &end) < 0) goto fail; break;
            case 9:
                if (wire != 2 || read_len(&r, &sub) < 0 || key_values(c, sub, attrs, 0) < 0) goto fail;
                break;
            case 11:
                if (wire != 2 || read_len(&r, &sub) < 0 || append_to(&events, event(c, sub)) < 0) goto fail;
                break;
            case 13:
                if (wire != 2 || read_len(&r, &sub) < 0 || append_to(&links, span_link(c, sub)) < 0) goto fail;
                break;
            case 15: /* Status: 2 message, 3 code */
                if (wire != 2 || has_status || read_len(&r, &sub) < 0) goto fail;
                has_status = 1;
                while (sub.p < sub.end) {
                    uint32_t f, w;
                    if (read_tag(&sub, &f, &w) < 0) goto fail;
                    if (f == 2) {
                        if (read_string_once(&sub, w, &status_msg) < 0) goto fail;
                    } else if (f == 3) {
                        if (w != 0 || read_varint(&sub, &code) < 0) goto fail;
                    } else if (skip_field(&sub, w) < 0) {
                        goto fail;
                    }
                }
                break;
            default: /* trace_state, flags, dropped counts, fields of newer versions */
                if (skip_field(&r, wire) < 0) goto fail;
        }
    }
    PyObject *n = utf8(&name), *msg = utf8(&status_msg);
    if (n == NULL || msg == NULL) {
        Py_XDECREF(n);
        Py_XDECREF(msg);
        goto fail;
    }
    PyObject *out = Py_BuildValue(
        "(NNNNiKKiNNNN)", hex(&trace), hex(&id), hex(&parent), n, (int)(int32_t)kind, (unsigned long long)start,
        (unsigned long long)end, (int)(int32_t)code, msg, attrs, events ? events : Py_NewRef(Py_None),
        links ? links : Py_NewRef(Py_None));
    return out; /* N: the references were handed over, also on failure */
fail:
    Py_DECREF(attrs);
    Py_XDECREF(events);
    Py_XDECREF(links);
    return NULL;
}

static PyObject *scope_spans(Ctx *c, Reader r) {
    Reader name = {NULL, NULL}, version = {NULL, NULL};
    int has_scope = 0;
    PyObject *spans = PyList_New(0);
    if (spans == NULL) return NULL;
    while (r.p < r.end) {
        uint32_t field, wire;
        Reader sub;
        if (read_tag(&r, &field, &wire) < 0) goto fail;
        if (field == 1) { /* InstrumentationScope: 1 name, 2 version */
            if (wire != 2 || has_scope || read_len(&r, &sub) < 0) goto fail;
            has_scope = 1;
            while (sub.p < sub.end) {
                uint32_t f, w;
                if (read_tag(&sub, &f, &w) < 0) goto fail;
                if (f == 1) {
                    if (read_string_once(&sub, w, &name) < 0) goto fail;
                } else if (f == 2) {
                    if (read_string_once(&sub, w, &version) < 0) goto fail;
                } else if (f == 3) {
                    if (skip_attributes(c, &sub, w) < 0) goto fail;
                } else if (skip_field(&sub, w) < 0) {
                    goto fail;
                }
            }
        } else if (field == 2) {
            if (wire != 2 || read_len(&r, &sub) < 0 || append_to(&spans, span(c, sub)) < 0) goto fail;
        } else if (field == 3) {
            if (skip_string(&r, wire) < 0) goto fail;
        } else if (skip_field(&r, wire) < 0) {
            goto fail;
        }
    }
    PyObject *n = utf8(&name), *v = utf8(&version);
    if (n == NULL || v == NULL) {
        Py_XDECREF(n);
        Py_XDECREF(v);
        goto fail;
    }
    return Py_BuildValue("(NNN)", n, v, spans);
fail:
    Py_DECREF(spans);
    return NULL;
}

static PyObject *resource_spans(Ctx *c, Reader r) {
    int has_resource = 0;
    PyObject *resource = PyDict_New(), *scopes = PyList_New(0);
    if (resource == NULL || scopes == NULL) goto fail;
    while (r.p < r.end) {
        uint32_t field, wire;
        Reader sub;
        if (read_tag(&r, &field, &wire) < 0) goto fail;
        if (field == 1) { /* Resource: 1 attributes */
            if (wire != 2 || has_resource || read_len(&r, &sub) < 0) goto fail;
            has_resource = 1;
            while (sub.p < sub.end) {
                uint32_t f, w;
                Reader kv;
                if (read_tag(&sub, &f, &w) < 0) goto fail;
                if (f == 1) {
                    if (w != 2 || read_len(&sub, &kv) < 0 || key_values(c, kv, resource, 0) < 0) goto fail;
                } else if (f == 3) { /* entity_refs: left to upb */
                    goto fail;
                } else if (skip_field(&sub, w) < 0) {
                    goto fail;
                }
            }
        } else if (field == 2) {
            if (wire != 2 || read_len(&r, &sub) < 0 || append_to(&scopes, scope_spans(c, sub)) < 0) goto fail;
        } else if (field == 3) {
            if (skip_string(&r, wire) < 0) goto fail;
        } else if (skip_field(&r, wire) < 0) {
            goto fail;
        }
    }
    return Py_BuildValue("(NN)", resource, scopes);
fail:
    Py_XDECREF(resource);
    Py_XDECREF(scopes);
    return NULL;
}

static PyObject *decode(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer body;
    Py_ssize_t max_chars;
    if (!PyArg_ParseTuple(args, "y*n", &body, &max_chars)) return NULL;
    Ctx c = {max_chars, PyDict_New()};
    PyObject *out = c.keys ? PyList_New(0) : NULL;
    Reader r = {(const uint8_t *)body.buf, (const uint8_t *)body.buf + body.len};
    while (out != NULL && r.p < r.end) {
        uint32_t field, wire;
        Reader sub;
        if (read_tag(&r, &field, &wire) < 0) goto fallback;
        if (field == 1) {
            if (wire != 2 || read_len(&r, &sub) < 0 || append_to(&out, resource_spans(&c, sub)) < 0) goto fallback;
        } else if (skip_field(&r, wire) < 0) {
            goto fallback;
        }
    }
    PyBuffer_Release(&body);
    Py_XDECREF(c.keys);
    return out;
fallback:
    PyBuffer_Release(&body);
    Py_XDECREF(c.keys);
    Py_XDECREF(out);
    if (PyErr_ExceptionMatches(PyExc_MemoryError)) return NULL;
    PyErr_Clear();
    Py_RETURN_NONE;
}

/* --- redaction pre-check --------------------------------------------------------------------------------- */

/* contains_any(body: bytes, needles: tuple[bytes, ...]) -> bool: whether any needle occurs in body. One pass over
 * the body for all needles of two bytes or more (a bitmap of their first two bytes, then a compare), memchr for
 * one-byte needles; the Python fallback runs one substring search per needle. */
static PyObject *contains_any(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer body;
    PyObject *needles;
    if (!PyArg_ParseTuple(args, "y*O!", &body, &PyTuple_Type, &needles)) return NULL;
    const uint8_t *b = (const uint8_t *)body.buf;
    Py_ssize_t n = body.len, count = PyTuple_GET_SIZE(needles);
    uint8_t first_two[65536 / 8];
    memset(first_two, 0, sizeof first_two);
    int found = 0, multi = 0;
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *needle = PyTuple_GET_ITEM(needles, k);
        if (!PyBytes_Check(needle)) {
            PyBuffer_Release(&body);
            PyErr_SetString(PyExc_TypeError, "needles must be bytes");
            return NULL;
        }
        Py_ssize_t len = PyBytes_GET_SIZE(needle);
        const uint8_t *t = (const uint8_t *)PyBytes_AS_STRING(needle);
        if (len == 0) {
            found = 1; /* b"" in body */
        } else if (len == 1) {
            found |= memchr(b, t[0], n) != NULL;
        } else {
            unsigned idx = t[0] | (unsigned)t[1] << 8;
            first_two[idx >> 3] |= (uint8_t)(1u << (idx & 7));
            multi = 1;
        }
    }
    for (Py_ssize_t i = 0; multi && !found && i + 1 < n; i++) {
        unsigned idx = b[i] | (unsigned)b[i + 1] << 8;
        if (!(first_two[idx >> 3] & (1u << (idx & 7)))) continue;
        for (Py_ssize_t k = 0; k < count; k++) {
            PyObject *needle = PyTuple_GET_ITEM(needles, k);
            Py_ssize_t len = PyBytes_GET_SIZE(needle);
            if (len >= 2 && len <= n - i && memcmp(b + i, PyBytes_AS_STRING(needle), len) == 0) {
                found = 1;
                break;
            }
        }
    }
    PyBuffer_Release(&body);
    return PyBool_FromLong(found);
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS, "Decode an OTLP ExportTraceServiceRequest body (None: use upb)."},
    {"contains_any", contains_any, METH_VARARGS, "Whether any of the needles (bytes) occurs in the body."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_otlpc", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__otlpc(void) { return PyModule_Create(&module); }
