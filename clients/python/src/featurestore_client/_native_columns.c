/* GetOnlineFeaturesResponse bytes to column buffers in one pass (the SDK's fast decoder).
 *
 * _columns.py describes the wire layout. This walks it once, field by field, as protobuf's own
 * parsers do, and writes each column's values, whether each is set, statuses and event times
 * into buffers of their final width; Python wraps them as NumPy arrays without a copy. A
 * column is left to protobuf (None in its place) where its values are not numbers of one kind
 * (strings, bytes, kinds that differ between rows), a Value or Timestamp holds a field this
 * does not know, or it does not have one value, status and event time per entity row: protobuf
 * then parses it, or names what is wrong. Bytes that are not protobuf raise ValueError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define NAT INT64_MIN

enum kind { K_NONE, K_DOUBLE, K_FLOAT, K_INT32, K_INT64, K_BOOL, K_UNIX };
/* The width of each kind's element in the values buffer. */
static const Py_ssize_t WIDTH[] = {8, 8, 4, 4, 8, 1, 8};

typedef struct {
    const uint8_t *p, *end;
} cursor;

/* 0: read; -1: past the end or longer than 10 bytes (malformed). */
static int read_varint(cursor *c, uint64_t *out) {
    uint64_t value = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (c->p >= c->end) return -1;
        uint8_t byte = *c->p++;
        value |= (uint64_t)(byte & 0x7F) << shift;
        if (byte < 0x80) {
            *out = value;
            return 0;
        }
    }
    return -1;
}

/* Skips a field of ``wire`` type after its key. 0: skipped; -1: malformed. */
static int skip_field(cursor *c, unsigned wire) {
    uint64_t size;
    switch (wire) {
        case 0: return read_varint(c, &size);
        case 1: size = 8; break;
        case 2:
            if (read_varint(c, &size)) return -1;
            break;
        case 5: size = 4; break;
        default: return -1;
    }
    if (size > (uint64_t)(c->end - c->p)) return -1;
    c->p += size;
    return 0;
}

/* A length-delimited field's body. 0: read; -1: runs past the end. */
static int read_body(cursor *c, cursor *body) {
    uint64_t size;
    if (read_varint(c, &size) || size > (uint64_t)(c->end - c->p)) return -1;
    body->p = c->p;
    body->end = c->p + size;
    c->p += size;
    return 0;
}

typedef enum { OK, IRREGULAR, MALFORMED } outcome;

/* One Value: its kind (K_NONE when unset) and its bits, 8 bytes wide. */
static outcome read_value(cursor v, enum kind *kind, uint64_t *bits) {
    *kind = K_NONE;
    if (v.p == v.end) return OK;
    uint64_t key;
    if (read_varint(&v, &key)) return MALFORMED;
    switch (key) {
        case 0x29: /* double_value */
            if (v.end - v.p != 8) return IRREGULAR;
            memcpy(bits, v.p, 8);
            *kind = K_DOUBLE;
            return OK;
        case 0x35: /* float_value */
            if (v.end - v.p != 4) return IRREGULAR;
            *bits = 0;
            memcpy(bits, v.p, 4);
            *kind = K_FLOAT;
            return OK;
        case 0x18: *kind = K_INT32; break;
        case 0x20: *kind = K_INT64; break;
        case 0x38: *kind = K_BOOL; break;
        case 0x40: *kind = K_UNIX; break;
        default: return IRREGULAR; /* strings, bytes, or a field of a newer Value */
    }
    if (read_varint(&v, bits)) return MALFORMED;
    return v.p == v.end ? OK : IRREGULAR; /* a second field: protobuf's rules decide */
}

/* One Timestamp as microseconds (NaT at the epoch, which is how "none" is sent). */
static outcome read_stamp(cursor t, int64_t *micros) {
    int64_t seconds = 0, nanos = 0;
    while (t.p < t.end) {
        uint64_t key, number;
        if (read_varint(&t, &key)) return MALFORMED;
        if (key != 0x08 && key != 0x10) return IRREGULAR;
        if (read_varint(&t, &number)) return MALFORMED;
        if (key == 0x08)
            seconds = (int64_t)number;
        else
            nanos = (int32_t)number;
    }
    if (seconds == 0 && nanos == 0) {
        *micros = NAT;
        return OK;
    }
    int64_t whole, part = nanos >= 0 ? nanos / 1000 : -((999 - nanos) / 1000); /* floor */
    if (__builtin_mul_overflow(seconds, (int64_t)1000000, &whole) ||
        __builtin_add_overflow(whole, part, micros) || *micros == NAT)
        return IRREGULAR; /* out of range: protobuf's path names it */
    return OK;
}

/* The outputs of one column, filled by read_column. */
typedef struct {
    enum kind kind;
    uint64_t *bits;    /* rows x 8 bytes */
    uint8_t *is_set;   /* rows */
    uint8_t *statuses; /* rows */
    int64_t *micros;   /* rows */
} column;

static void put_status(column *col, Py_ssize_t at, uint64_t status) {
    col->statuses[at] = (status == 0 || status > 4) ? 3 : (uint8_t)status; /* unknown: NOT_FOUND */
}

static outcome read_column(cursor c, Py_ssize_t rows, column *col) {
    Py_ssize_t values = 0, statuses = 0, stamps = 0;
    col->kind = K_NONE;
    while (c.p < c.end) {
        uint64_t key, number;
        cursor body;
        if (read_varint(&c, &key)) return MALFORMED;
        if (key == 0x0A) { /* values */
            enum kind kind;
            uint64_t bits = 0;
            outcome got;
            if (read_body(&c, &body)) return MALFORMED;
            if (values >= rows) return IRREGULAR;
            if ((got = read_value(body, &kind, &bits)) != OK) return got;
            col->is_set[values] = kind != K_NONE;
            col->bits[values++] = bits;
            if (kind != K_NONE) {
                if (col->kind == K_NONE) col->kind = kind;
                if (col->kind != kind) return IRREGULAR; /* kinds that differ between rows */
            }
        } else if (key == 0x12) { /* statuses, packed */
            if (read_body(&c, &body)) return MALFORMED;
            while (body.p < body.end) {
                if (read_varint(&body, &number)) return MALFORMED;
                if (statuses >= rows) return IRREGULAR;
                put_status(col, statuses++, number);
            }
        } else if (key == 0x10) { /* a status, unpacked */
            if (read_varint(&c, &number)) return MALFORMED;
            if (statuses >= rows) return IRREGULAR;
            put_status(col, statuses++, number);
        } else if (key == 0x1A) { /* event_timestamps */
            outcome got;
            if (read_body(&c, &body)) return MALFORMED;
            if (stamps >= rows) return IRREGULAR;
            if ((got = read_stamp(body, &col->micros[stamps++])) != OK) return got;
        } else if (skip_field(&c, (unsigned)(key & 7))) {
            return MALFORMED;
        }
    }
    return values == rows && statuses == rows && stamps == rows ? OK : IRREGULAR;
}

/* The column's values at their kind's width; unset entries NaN, 0 or False. */
static PyObject *values_bytes(const column *col, Py_ssize_t rows) {
    enum kind kind = col->kind == K_NONE ? K_DOUBLE : col->kind;
    PyObject *out = PyBytes_FromStringAndSize(NULL, rows * WIDTH[kind]);
    if (out == NULL) return NULL;
    char *at = PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < rows; i++) {
        uint64_t bits = col->bits[i];
        int set = col->is_set[i];
        switch (kind) {
            case K_DOUBLE: {
                double value;
                if (set)
                    memcpy(&value, &bits, 8);
                else
                    value = Py_NAN;
                memcpy(at + 8 * i, &value, 8);
                break;
            }
            case K_FLOAT: {
                float value;
                uint32_t low = (uint32_t)bits;
                if (set)
                    memcpy(&value, &low, 4);
                else
                    value = (float)Py_NAN;
                memcpy(at + 4 * i, &value, 4);
                break;
            }
            case K_INT32: {
                int32_t value = set ? (int32_t)bits : 0;
                memcpy(at + 4 * i, &value, 4);
                break;
            }
            case K_BOOL: at[i] = set && bits != 0; break;
            default: { /* int64, unix timestamp */
                int64_t value = set ? (int64_t)bits : 0;
                memcpy(at + 8 * i, &value, 8);
            }
        }
    }
    return out;
}

/* ``bytes`` of ``size`` from ``data``, the same object as an earlier one of equal contents. */
static PyObject *shared_bytes(PyObject *seen, const void *data, Py_ssize_t size) {
    Py_ssize_t n = PyList_GET_SIZE(seen);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *earlier = PyList_GET_ITEM(seen, i);
        if (PyBytes_GET_SIZE(earlier) == size && memcmp(PyBytes_AS_STRING(earlier), data, size) == 0) {
            Py_INCREF(earlier);
            return earlier;
        }
    }
    PyObject *made = PyBytes_FromStringAndSize(data, size);
    if (made != NULL && PyList_Append(seen, made)) Py_CLEAR(made);
    return made;
}

static PyObject *malformed(const char *why, Py_ssize_t at) {
    PyErr_Format(PyExc_ValueError, "%s at byte %zd", why, at);
    return NULL;
}

/* The column's entry of the result: (kind, values, is_set, statuses, micros). */
static PyObject *column_entry(const column *col, Py_ssize_t rows, PyObject *seen) {
    PyObject *values = values_bytes(col, rows);
    PyObject *is_set = shared_bytes(seen, col->is_set, rows);
    PyObject *statuses = shared_bytes(seen, col->statuses, rows);
    PyObject *micros = shared_bytes(seen, col->micros, rows * 8);
    PyObject *entry = NULL;
    if (values && is_set && statuses && micros)
        entry = Py_BuildValue("(iOOOO)", col->kind == K_NONE ? K_DOUBLE : col->kind, values,
                              is_set, statuses, micros);
    Py_XDECREF(values);
    Py_XDECREF(is_set);
    Py_XDECREF(statuses);
    Py_XDECREF(micros);
    return entry;
}

static PyObject *decode(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer data;
    Py_ssize_t rows;
    if (!PyArg_ParseTuple(args, "y*n", &data, &rows)) return NULL;
    PyObject *names = PyList_New(0), *columns = PyList_New(0), *seen = PyList_New(0);
    PyObject *result = NULL;
    column col = {0};
    if (rows < 0) rows = 0;
    col.bits = PyMem_Malloc((size_t)rows * 8 + 1);
    col.micros = PyMem_Malloc((size_t)rows * 8 + 1);
    col.is_set = PyMem_Malloc((size_t)rows + 1);
    col.statuses = PyMem_Malloc((size_t)rows + 1);
    if (!names || !columns || !seen || !col.bits || !col.micros || !col.is_set || !col.statuses) {
        PyErr_NoMemory();
        goto done;
    }
    const uint8_t *start = data.buf;
    cursor c = {start, start + data.len};
    while (c.p < c.end) {
        uint64_t key;
        cursor body;
        const uint8_t *at = c.p;
        if (read_varint(&c, &key)) {
            malformed("a field key past the end", at - start);
            goto done;
        }
        unsigned wire = (unsigned)(key & 7);
        if (key == 0x0A || key == 0x12) {
            if (read_body(&c, &body)) {
                malformed("the last field runs past the end", at - start);
                goto done;
            }
            PyObject *item;
            if (key == 0x0A) {
                item = PyUnicode_DecodeUTF8((const char *)body.p, body.end - body.p, "strict");
                if (item == NULL) {
                    PyErr_Clear();
                    malformed("a feature name that is not UTF-8", at - start);
                    goto done;
                }
            } else {
                outcome got = rows ? read_column(body, rows, &col) : IRREGULAR;
                if (got == MALFORMED) {
                    /* protobuf names what is wrong with the column */
                    got = IRREGULAR;
                }
                if (got == OK) {
                    item = column_entry(&col, rows, seen);
                    if (item == NULL) goto done;
                } else {
                    item = Py_BuildValue("(nn)", (Py_ssize_t)(body.p - start),
                                         (Py_ssize_t)(body.end - start));
                    if (item == NULL) goto done;
                }
            }
            int failed = PyList_Append(key == 0x0A ? names : columns, item);
            Py_DECREF(item);
            if (failed) goto done;
        } else if (wire == 3 || wire == 4 || wire > 5) {
            PyErr_Format(PyExc_ValueError, "wire type %u at byte %zd", wire, at - start);
            goto done;
        } else if (skip_field(&c, wire)) {
            malformed("the last field runs past the end", at - start);
            goto done;
        }
    }
    result = PyTuple_Pack(2, names, columns);
done:
    PyMem_Free(col.bits);
    PyMem_Free(col.micros);
    PyMem_Free(col.is_set);
    PyMem_Free(col.statuses);
    Py_XDECREF(names);
    Py_XDECREF(columns);
    Py_XDECREF(seen);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS,
     "decode(data, rows) -> (names, columns): each column (kind, values, is_set, statuses, "
     "micros) as bytes, or (start, stop) of its FeatureColumn for protobuf to parse."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native_columns",
    "GetOnlineFeaturesResponse bytes to column buffers in one pass (see _native_columns.c).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native_columns(void) { return PyModule_Create(&module); }
