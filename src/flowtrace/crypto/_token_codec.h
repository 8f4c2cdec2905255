/* The token text codec of the C fast path (included by _fastpath.c; one translation unit).
 *
 * Unpadded base64url (RFC 4648 section 5) in canonical form only, as docs/spec/token.md
 * requires and _token.encode_text / decode_text implement: no '=', no '+' or '/', and
 * the unused low bits of the last character must be zero.
 */
#ifndef FLOWTRACE_TOKEN_CODEC_H
#define FLOWTRACE_TOKEN_CODEC_H


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

#endif /* FLOWTRACE_TOKEN_CODEC_H */
