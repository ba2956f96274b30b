/* _fastspan: the canonical OTLP JSON span -> SpanRecord conversion in C.
 *
 * An optional accelerator for tg_bridge.traces.otlp_json (the readers' per-span step). It
 * converts only what the OTel Collector and every SDK write — exact dicts, lists and strs
 * from a JSON parser, lowercase hex ids, digit-string or int timestamps, no events — and
 * gives up (returns the index of the span) on anything else, so the Python code converts
 * that span and owns every other spelling and every error message. Attribute values other
 * than a plain {"stringValue": str} are decoded by the Python decode_any_value, and a
 * non-list attributes value by the Python _attributes: the records are EQUAL to the pure
 * Python ones, which tests/traces/test_fastspan.py checks on generated and hostile spans.
 *
 * Safety: input is hostile data. Only the concrete API on exact types is used (no buffer
 * parsing beyond reading the characters of an exact, ASCII, length-checked str); every
 * reference is owned or borrowed as the comments say; any error from a callback propagates.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *record_type;      /* SpanRecord */
static PyObject *decode_any_value; /* otlp_json.decode_any_value */
static PyObject *general_attrs;    /* otlp_json._attributes */

/* interned keys and constants */
static PyObject *k_traceId, *k_spanId, *k_parentSpanId, *k_parent_span_id, *k_parent_id, *k_name,
    *k_start, *k_end, *k_status, *k_code, *k_events, *k_attributes, *k_key, *k_value, *k_stringValue;
static PyObject *f_trace_id, *f_span_id, *f_parent_id, *f_name, *f_start_ns, *f_end_ns, *f_attributes,
    *f_status, *f_events, *f_resource;
static PyObject *s_unset, *s_ok, *s_error, *s_empty, *empty_tuple;

/* Strings are always "ready" from 3.12 on, where PyUnicode_READY is deprecated. */
#if PY_VERSION_HEX >= 0x030C0000
#define STR_READY(s) 0
#else
#define STR_READY(s) PyUnicode_READY(s)
#endif

/* 1 when `value` is an exact str of `length` lowercase hex digits, not all zero. */
static int
is_hex_id(PyObject *value, Py_ssize_t length)
{
    if (!PyUnicode_CheckExact(value) || STR_READY(value) < 0) {
        PyErr_Clear();
        return 0;
    }
    if (PyUnicode_GET_LENGTH(value) != length || !PyUnicode_IS_ASCII(value))
        return 0;
    const Py_UCS1 *chars = PyUnicode_1BYTE_DATA(value);
    int nonzero = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS1 c = chars[i];
        if (c >= '0' && c <= '9') {
            nonzero |= (c != '0');
        } else if (c >= 'a' && c <= 'f') {
            nonzero = 1;
        } else {
            return 0;
        }
    }
    return nonzero;
}

/* A timestamp as a new int reference; NULL without an exception when it is not canonical
 * (a str of 1..19 ASCII digits, or an exact int within 0..2**64-1). */
static PyObject *
timestamp(PyObject *value)
{
    if (value == NULL)
        return NULL;
    if (PyUnicode_CheckExact(value)) {
        if (STR_READY(value) < 0) {
            PyErr_Clear();
            return NULL;
        }
        Py_ssize_t n = PyUnicode_GET_LENGTH(value);
        if (n < 1 || n > 19 || !PyUnicode_IS_ASCII(value))
            return NULL;
        const Py_UCS1 *chars = PyUnicode_1BYTE_DATA(value);
        unsigned long long number = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (chars[i] < '0' || chars[i] > '9')
                return NULL;
            number = number * 10 + (unsigned long long)(chars[i] - '0'); /* 19 digits < 2**64 */
        }
        return PyLong_FromUnsignedLongLong(number);
    }
    if (PyLong_CheckExact(value)) {
        unsigned long long number = PyLong_AsUnsignedLongLong(value);
        if (number == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear(); /* negative or beyond 64 bits: the Python code raises the typed error */
            return NULL;
        }
        Py_INCREF(value);
        return value;
    }
    return NULL;
}

/* The attributes of an exact list as a new dict (the loop of otlp_json._attributes), or
 * NULL with `*give_up` set when an entry is a Mapping that is not a dict (the Python code
 * reads the whole list then), or NULL with an exception. */
static PyObject *
attributes_of_list(PyObject *raw, int *give_up)
{
    PyObject *attrs = PyDict_New();
    if (attrs == NULL)
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(raw);
    for (Py_ssize_t i = 0; i < n && i < PyList_GET_SIZE(raw); i++) {
        PyObject *entry = PyList_GET_ITEM(raw, i); /* borrowed; the list is not changed below */
        if (!PyDict_CheckExact(entry)) {
            if (PyList_CheckExact(entry) || PyUnicode_CheckExact(entry) || PyLong_CheckExact(entry) ||
                PyFloat_CheckExact(entry) || entry == Py_None || PyBool_Check(entry))
                continue; /* JSON values that are not objects: skipped, as in Python */
            *give_up = 1;  /* anything else may be a Mapping: the Python loop decides */
            Py_DECREF(attrs);
            return NULL;
        }
        PyObject *key = PyDict_GetItemWithError(entry, k_key);
        if (key == NULL) {
            if (PyErr_Occurred())
                goto fail;
            continue;
        }
        if (!PyUnicode_CheckExact(key))
            continue;
        Py_INCREF(key); /* the entry is ours only while the list holds it: keep what we use */
        PyObject *value = PyDict_GetItemWithError(entry, k_value);
        if (value == NULL && PyErr_Occurred()) {
            Py_DECREF(key);
            goto fail;
        }
        if (value != NULL && PyDict_CheckExact(value) && PyDict_GET_SIZE(value) == 1) {
            PyObject *text = PyDict_GetItemWithError(value, k_stringValue);
            if (text == NULL && PyErr_Occurred()) {
                Py_DECREF(key);
                goto fail;
            }
            if (text != NULL && PyUnicode_CheckExact(text)) {
                int rc = PyDict_SetItem(attrs, key, text);
                Py_DECREF(key);
                if (rc < 0)
                    goto fail;
                continue;
            }
        }
        PyObject *decoded = PyObject_CallOneArg(decode_any_value, value != NULL ? value : Py_None);
        if (decoded == NULL) {
            Py_DECREF(key);
            goto fail;
        }
        int rc = decoded == Py_None ? 0 : PyDict_SetItem(attrs, key, decoded);
        Py_DECREF(decoded);
        Py_DECREF(key);
        if (rc < 0)
            goto fail;
    }
    return attrs;
fail:
    Py_DECREF(attrs);
    return NULL;
}

/* Set the ten fields of a new record (steals nothing). */
static PyObject *
make_record(PyObject *trace_id, PyObject *span_id, PyObject *parent, PyObject *name, PyObject *start,
            PyObject *end, PyObject *attrs, PyObject *status, PyObject *resource)
{
    PyObject *record = PyBaseObject_Type.tp_new((PyTypeObject *)record_type, empty_tuple, NULL);
    if (record == NULL)
        return NULL;
    PyObject *dict = PyObject_GenericGetDict(record, NULL);
    if (dict == NULL) {
        Py_DECREF(record);
        return NULL;
    }
    if (PyDict_SetItem(dict, f_trace_id, trace_id) < 0 || PyDict_SetItem(dict, f_span_id, span_id) < 0 ||
        PyDict_SetItem(dict, f_parent_id, parent) < 0 || PyDict_SetItem(dict, f_name, name) < 0 ||
        PyDict_SetItem(dict, f_start_ns, start) < 0 || PyDict_SetItem(dict, f_end_ns, end) < 0 ||
        PyDict_SetItem(dict, f_attributes, attrs) < 0 || PyDict_SetItem(dict, f_status, status) < 0 ||
        PyDict_SetItem(dict, f_events, empty_tuple) < 0 || PyDict_SetItem(dict, f_resource, resource) < 0) {
        Py_DECREF(dict);
        Py_DECREF(record);
        return NULL;
    }
    Py_DECREF(dict);
    return record;
}

/* One span to a new record; NULL without an exception when it is not canonical. */
static PyObject *
convert(PyObject *span, PyObject *resource)
{
    if (!PyDict_CheckExact(span))
        return NULL;
    /* Borrowed references from `span`; the callbacks below (decode_any_value, _attributes)
     * get only values nested in attributes, which cannot reach `span` to change it. */
    PyObject *trace_id = PyDict_GetItemWithError(span, k_traceId);
    PyObject *span_id = trace_id ? PyDict_GetItemWithError(span, k_spanId) : NULL;
    if (span_id == NULL || !is_hex_id(trace_id, 32) || !is_hex_id(span_id, 16))
        return NULL;
    PyObject *parent = PyDict_GetItemWithError(span, k_parentSpanId);
    if (parent == NULL) {
        if (PyErr_Occurred())
            return NULL;
        /* other spellings of the parent: the Python code reads them */
        if (PyDict_GetItemWithError(span, k_parent_span_id) || PyDict_GetItemWithError(span, k_parent_id) ||
            PyErr_Occurred())
            return NULL;
        parent = Py_None;
    } else if (parent != Py_None) {
        if (PyUnicode_CheckExact(parent) && PyUnicode_GET_LENGTH(parent) == 0)
            parent = Py_None;
        else if (!is_hex_id(parent, 16))
            return NULL;
    }
    PyObject *name = PyDict_GetItemWithError(span, k_name);
    if (name == NULL || name == Py_None) {
        if (PyErr_Occurred())
            return NULL;
        name = s_empty;
    } else if (!PyUnicode_CheckExact(name)) {
        return NULL;
    }
    PyObject *events = PyDict_GetItemWithError(span, k_events);
    if (events != NULL && events != Py_None && !(PyList_CheckExact(events) && PyList_GET_SIZE(events) == 0))
        return NULL;
    PyObject *raw_status = PyDict_GetItemWithError(span, k_status);
    PyObject *status = s_unset;
    if (raw_status != NULL && raw_status != Py_None) {
        if (!PyDict_CheckExact(raw_status))
            return NULL;
        PyObject *code = PyDict_GetItemWithError(raw_status, k_code);
        if (code == NULL || !PyLong_CheckExact(code))
            return NULL;
        int overflow = 0;
        long number = PyLong_AsLongAndOverflow(code, &overflow);
        if (number == -1 && PyErr_Occurred())
            return NULL;
        status = overflow ? s_unset : number == 1 ? s_ok : number == 2 ? s_error : s_unset;
    }
    if (PyErr_Occurred())
        return NULL;
    PyObject *start = timestamp(PyDict_GetItemWithError(span, k_start));
    if (start == NULL)
        return NULL;
    PyObject *end = timestamp(PyDict_GetItemWithError(span, k_end));
    if (end == NULL) {
        Py_DECREF(start);
        return NULL;
    }
    PyObject *raw_attrs = PyDict_GetItemWithError(span, k_attributes);
    if (raw_attrs == NULL && PyErr_Occurred()) {
        Py_DECREF(start);
        Py_DECREF(end);
        return NULL;
    }
    /* The attribute callbacks run Python code: hold what the record takes from `span`. */
    Py_INCREF(trace_id);
    Py_INCREF(span_id);
    Py_INCREF(parent);
    Py_INCREF(name);
    Py_XINCREF(raw_attrs);
    PyObject *attrs;
    if (raw_attrs == NULL || raw_attrs == Py_None) {
        attrs = PyDict_New();
    } else {
        int give_up = !PyList_CheckExact(raw_attrs);
        attrs = give_up ? NULL : attributes_of_list(raw_attrs, &give_up);
        if (give_up)
            attrs = PyObject_CallOneArg(general_attrs, raw_attrs);
    }
    PyObject *record = NULL;
    if (attrs != NULL) {
        record = make_record(trace_id, span_id, parent, name, start, end, attrs, status, resource);
        Py_DECREF(attrs);
    }
    Py_XDECREF(raw_attrs);
    Py_DECREF(name);
    Py_DECREF(parent);
    Py_DECREF(span_id);
    Py_DECREF(trace_id);
    Py_DECREF(start);
    Py_DECREF(end);
    return record;
}

PyDoc_STRVAR(convert_spans_doc,
"convert_spans(spans, start, resource, out) -> int\n\n"
"Append to list `out` the records of the canonical spans of list `spans` from index `start`;\n"
"return the index of the first span it did not convert (len(spans) when all were).");

static PyObject *
convert_spans(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyList_CheckExact(args[0]) || !PyLong_CheckExact(args[1]) || !PyList_CheckExact(args[3])) {
        PyErr_SetString(PyExc_TypeError, "convert_spans(list, int, resource, list)");
        return NULL;
    }
    if (record_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_fastspan.configure was not called");
        return NULL;
    }
    PyObject *spans = args[0], *resource = args[2], *out = args[3];
    Py_ssize_t i = PyLong_AsSsize_t(args[1]);
    if (i == -1 && PyErr_Occurred())
        return NULL;
    if (i < 0)
        i = 0;
    for (; i < PyList_GET_SIZE(spans); i++) {
        PyObject *span = PyList_GET_ITEM(spans, i);
        Py_INCREF(span);
        PyObject *record = convert(span, resource);
        Py_DECREF(span);
        if (record == NULL) {
            if (PyErr_Occurred())
                return NULL;
            break;
        }
        int rc = PyList_Append(out, record);
        Py_DECREF(record);
        if (rc < 0)
            return NULL;
    }
    return PyLong_FromSsize_t(i);
}

PyDoc_STRVAR(convert_span_doc,
"convert_span(span, resource) -> SpanRecord | None\n\n"
"The record of one canonical span, or None when the Python code must convert it.");

static PyObject *
convert_span(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "convert_span(span, resource)");
        return NULL;
    }
    if (record_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_fastspan.configure was not called");
        return NULL;
    }
    PyObject *record = convert(args[0], args[1]);
    if (record == NULL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return record;
}

PyDoc_STRVAR(text_length_doc,
"text_length(mapping) -> int\n\n"
"The summed length of the str values of an exact dict (0 for anything else): the bulk of\n"
"a record's memory, for grouping.estimated_bytes.");

static PyObject *
text_length(PyObject *module, PyObject *mapping)
{
    Py_ssize_t total = 0, pos = 0;
    PyObject *key, *value;
    if (PyDict_CheckExact(mapping)) {
        while (PyDict_Next(mapping, &pos, &key, &value)) {
            if (PyUnicode_CheckExact(value))
                total += PyUnicode_GET_LENGTH(value);
        }
    }
    return PyLong_FromSsize_t(total);
}

PyDoc_STRVAR(configure_doc,
"configure(record_type, decode_any_value, attributes) -> None\n\n"
"Set the record class and the Python fallbacks (called once by otlp_json).");

static PyObject *
configure(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyType_Check(args[0]) || !PyCallable_Check(args[1]) || !PyCallable_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "configure(type, callable, callable)");
        return NULL;
    }
    Py_XSETREF(record_type, Py_NewRef(args[0]));
    Py_XSETREF(decode_any_value, Py_NewRef(args[1]));
    Py_XSETREF(general_attrs, Py_NewRef(args[2]));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"convert_spans", (PyCFunction)(void (*)(void))convert_spans, METH_FASTCALL, convert_spans_doc},
    {"convert_span", (PyCFunction)(void (*)(void))convert_span, METH_FASTCALL, convert_span_doc},
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL, configure_doc},
    {"text_length", text_length, METH_O, text_length_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_fastspan",
    "Canonical OTLP JSON spans to SpanRecords in C (optional accelerator of otlp_json).", -1, methods,
    NULL, NULL, NULL, NULL,
};

static int
intern(PyObject **slot, const char *text)
{
    *slot = PyUnicode_InternFromString(text);
    return *slot == NULL ? -1 : 0;
}

PyMODINIT_FUNC
PyInit__fastspan(void)
{
    if (intern(&k_traceId, "traceId") || intern(&k_spanId, "spanId") || intern(&k_parentSpanId, "parentSpanId") ||
        intern(&k_parent_span_id, "parent_span_id") || intern(&k_parent_id, "parent_id") ||
        intern(&k_name, "name") || intern(&k_start, "startTimeUnixNano") || intern(&k_end, "endTimeUnixNano") ||
        intern(&k_status, "status") || intern(&k_code, "code") || intern(&k_events, "events") ||
        intern(&k_attributes, "attributes") || intern(&k_key, "key") || intern(&k_value, "value") ||
        intern(&k_stringValue, "stringValue") || intern(&f_trace_id, "trace_id") ||
        intern(&f_span_id, "span_id") || intern(&f_parent_id, "parent_id") || intern(&f_name, "name") ||
        intern(&f_start_ns, "start_ns") || intern(&f_end_ns, "end_ns") || intern(&f_attributes, "attributes") ||
        intern(&f_status, "status") || intern(&f_events, "events") || intern(&f_resource, "resource") ||
        intern(&s_unset, "UNSET") || intern(&s_ok, "OK") || intern(&s_error, "ERROR") || intern(&s_empty, ""))
        return NULL;
    empty_tuple = PyTuple_New(0);
    if (empty_tuple == NULL)
        return NULL;
    return PyModule_Create(&module_def);
}
