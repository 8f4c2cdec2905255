/* The token format for the C fast path (included by _fastpath.c; one translation unit).
 *
 * docs/spec/token.md is normative; _token.py is the Python twin of everything here:
 * - sizes and offsets of a version-1 token;
 * - the text form: unpadded base64url (RFC 4648 section 5) in canonical form only: no
 *   '=', no '+' or '/', and the unused low bits of the last character must be zero;
 * - the associated data, with an encryption context (pairs sorted by UTF-8 key bytes).
 */
#ifndef FLOWTRACE_TOKEN_FORMAT_H
#define FLOWTRACE_TOKEN_FORMAT_H

enum {
    VERSION = 1,
    HEADER = 14,             /* version, flags, DEK id (8), DEK version (2), field tag (2) */
    PREFIX = 12,             /* the header without the field tag */
    COMMITMENT = 16,
    NONCE = 12,
    TAG = 16,
    HEAD = HEADER + COMMITMENT + NONCE, /* 42 bytes = 56 base64 characters, no padding */
    HEAD_CHARS = 56,
    MIN_TOKEN = HEAD + TAG,  /* 58 bytes */
    TAIL_MIN = 2 + 2 + 2 + 2 /* tag, lp(tenant), lp(field), u16(0) */
};
static const Py_ssize_t MAX_TOKEN_CHARS = 16 * 1024 * 1024; /* as _token.MAX_TOKEN_CHARS */
enum { MAX_FAST_CONTEXT = 16 }; /* larger encryption contexts go the Python way */

/* ---------------------------------------------------------------------------------- */
/* text form: base64url, unpadded, canonical                                            */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static signed char B64_VALUE[256];

static void
b64_init(void)
{
    memset(B64_VALUE, -1, sizeof(B64_VALUE));
    for (int i = 0; i < 64; i++) {
        B64_VALUE[(unsigned char)B64[i]] = (signed char)i;
    }
}

static Py_ssize_t
b64_encoded_size(Py_ssize_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

static void
b64_encode(const unsigned char *in, Py_ssize_t n, Py_UCS1 *out)
{
    Py_ssize_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        *out++ = B64[v >> 18];
        *out++ = B64[v >> 12 & 63];
        *out++ = B64[v >> 6 & 63];
        *out++ = B64[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        *out++ = B64[v >> 18];
        *out++ = B64[v >> 12 & 63];
    }
    else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        *out++ = B64[v >> 18];
        *out++ = B64[v >> 12 & 63];
        *out++ = B64[v >> 6 & 63];
    }
}

/* Bytes encoded by n characters, or -1 if no unpadded base64 text has that length. */
static Py_ssize_t
b64_decoded_size(Py_ssize_t n)
{
    return n % 4 == 1 ? -1 : n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
}

/* Decode n characters into out (b64_decoded_size(n) bytes). 0 on success, -1 for any
 * character outside the url-safe alphabet or non-zero unused bits in the last one. */
static int
b64_decode(const Py_UCS1 *in, Py_ssize_t n, unsigned char *out)
{
    Py_ssize_t i = 0;
    int bad = 0;
    for (; i + 4 <= n; i += 4) {
        int a = B64_VALUE[in[i]], b = B64_VALUE[in[i + 1]], c = B64_VALUE[in[i + 2]],
            d = B64_VALUE[in[i + 3]];
        bad |= a | b | c | d;
        unsigned v = (unsigned)a << 18 | (unsigned)b << 12 | (unsigned)c << 6 | (unsigned)d;
        *out++ = (unsigned char)(v >> 16);
        *out++ = (unsigned char)(v >> 8);
        *out++ = (unsigned char)v;
    }
    if (n - i == 2) {
        int a = B64_VALUE[in[i]], b = B64_VALUE[in[i + 1]];
        bad |= a | b | (b >= 0 ? b & 15 ? -1 : 0 : 0);
        *out++ = (unsigned char)((unsigned)a << 2 | (unsigned)b >> 4);
    }
    else if (n - i == 3) {
        int a = B64_VALUE[in[i]], b = B64_VALUE[in[i + 1]], c = B64_VALUE[in[i + 2]];
        bad |= a | b | c | (c >= 0 ? c & 3 ? -1 : 0 : 0);
        unsigned v = (unsigned)a << 10 | (unsigned)b << 4 | (unsigned)c >> 2;
        *out++ = (unsigned char)(v >> 8);
        *out++ = (unsigned char)v;
    }
    else if (n - i == 1) {
        return -1;
    }
    return bad < 0 ? -1 : 0;
}

/* Constant-time equality of n bytes. */
static int
same_bytes(const unsigned char *a, const unsigned char *b, Py_ssize_t n)
{
    unsigned char diff = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        diff |= a[i] ^ b[i];
    }
    return diff == 0;
}

/* Python-visible codec functions, for the differential tests against _token. */

static PyObject *
py_b64url_encode(PyObject *Py_UNUSED(module), PyObject *data)
{
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "b64url_encode() takes bytes");
        return NULL;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    PyObject *out = PyUnicode_New(b64_encoded_size(n), 127);
    if (out != NULL) {
        b64_encode((const unsigned char *)PyBytes_AS_STRING(data), n, PyUnicode_1BYTE_DATA(out));
    }
    return out;
}

static PyObject *
py_b64url_decode(PyObject *Py_UNUSED(module), PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "b64url_decode() takes str");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), size = b64_decoded_size(n);
    if (!PyUnicode_IS_ASCII(text) || size < 0) {
        Py_RETURN_NONE;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    if (out != NULL &&
        b64_decode(PyUnicode_1BYTE_DATA(text), n, (unsigned char *)PyBytes_AS_STRING(out)) < 0) {
        Py_DECREF(out);
        Py_RETURN_NONE;
    }
    return out;
}

/* ---------------------------------------------------------------------------------- */
/* associated data                                                                      */

typedef struct {
    const char *key, *value;
    Py_ssize_t key_size, value_size;
} ContextPair;

/* Python sorts the pairs by the UTF-8 bytes of their keys (unique in a dict). */
static int
key_before(const ContextPair *a, const ContextPair *b)
{
    Py_ssize_t common = a->key_size < b->key_size ? a->key_size : b->key_size;
    int order = memcmp(a->key, b->key, common);
    return order < 0 || (order == 0 && a->key_size < b->key_size);
}

static unsigned char *
put_lp(unsigned char *out, const char *data, Py_ssize_t size)
{
    *out++ = (unsigned char)(size >> 8);
    *out++ = (unsigned char)size;
    memcpy(out, data, size);
    return out + size;
}

/* The AAD (docs/spec/token.md): header || lp(tenant) || lp(field) || u16(n) || the n
 * pairs sorted by key, each lp(key) || lp(value). ``tail`` holds the field tag, then the
 * AAD after the header for an empty context (ending in u16(0)). ``context`` is NULL or a
 * non-empty dict. NULL without an error set: a context the fast path leaves to Python
 * (not str to str, more than MAX_FAST_CONTEXT pairs, a part longer than 65535 bytes). */
static PyObject *
associated_data(const unsigned char *header, PyObject *tail, PyObject *context)
{
    const char *names = PyBytes_AS_STRING(tail) + 2; /* lp(tenant) || lp(field) || 0x0000 */
    Py_ssize_t names_size = PyBytes_GET_SIZE(tail) - 4, size = HEADER + names_size + 2;
    ContextPair pairs[MAX_FAST_CONTEXT];
    Py_ssize_t count = 0, pos = 0;
    PyObject *key, *value;

    if (context != NULL && PyDict_GET_SIZE(context) > MAX_FAST_CONTEXT) {
        return NULL;
    }
    while (context != NULL && PyDict_Next(context, &pos, &key, &value)) {
        ContextPair pair;
        if (count == MAX_FAST_CONTEXT || !PyUnicode_CheckExact(key) ||
            !PyUnicode_CheckExact(value) ||
            (pair.key = PyUnicode_AsUTF8AndSize(key, &pair.key_size)) == NULL ||
            (pair.value = PyUnicode_AsUTF8AndSize(value, &pair.value_size)) == NULL ||
            pair.key_size > 0xFFFF || pair.value_size > 0xFFFF) {
            return NULL; /* lone surrogates raise here: Python encodes them (surrogatepass) */
        }
        Py_ssize_t at = count++;
        for (; at > 0 && key_before(&pair, &pairs[at - 1]); at--) {
            pairs[at] = pairs[at - 1];
        }
        pairs[at] = pair;
        size += 4 + pair.key_size + pair.value_size;
    }
    PyObject *aad = PyBytes_FromStringAndSize(NULL, size);
    if (aad == NULL) {
        return NULL;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(aad);
    memcpy(out, header, HEADER);
    memcpy(out + HEADER, names, names_size);
    out += HEADER + names_size;
    *out++ = (unsigned char)(count >> 8);
    *out++ = (unsigned char)count;
    for (Py_ssize_t i = 0; i < count; i++) {
        out = put_lp(out, pairs[i].key, pairs[i].key_size);
        out = put_lp(out, pairs[i].value, pairs[i].value_size);
    }
    return aad;
}

#endif /* FLOWTRACE_TOKEN_FORMAT_H */
