/* Optional C fast path of FieldEncryptor.encrypt / decrypt (flowtrace.crypto._fastpath).
 *
 * The common call -- a str value, a field, an optional encryption context (a dict of
 * str to str), no explicit subject, randomized mode, a cached data key -- is done here in one C call; everything else
 * (and every failure) is handed, with the original arguments, to the pure-Python
 * methods in _encryptor.py, which validate, raise the typed error and report it.  So the
 * fast path never raises an error of its own and never decides what an error is: when
 * anything is unexpected it steps aside and Python does the whole call again.
 *
 * What the fast path does is exactly what the Python path does (docs/spec/token.md):
 *
 *   encrypt:  tenant (and subject, for per-subject encryptors) from the flow context;
 *             the vault's cached active key for that scope, honouring max_age,
 *             max_uses and the revalidation deadline; header = prefix || field tag;
 *             AAD = header || lp(tenant) || lp(field) || u16(n) || sorted context
 *             pairs; nonce from the OS;
 *             token = header || commitment || nonce || AES-GCM(...), as unpadded
 *             base64url text.
 *   decrypt:  the inverse, accepting only canonical base64url of a version-1,
 *             flags-0 token; checks tenant, minimum version, key commitment (in
 *             constant time) and field tag before AES-GCM; reports the decrypt to
 *             observers when any listens (an observer error propagates: fail closed).
 *
 * The AEAD itself is the vault's cryptography AESGCM object (its bound encrypt and
 * decrypt methods); this module only removes the Python glue around it.  Cached data
 * keys are EntryBase objects (the base of _cache.Entry) so their counters and keys are
 * read from C structs.  Only the public C API is used.
 *
 * The token format pieces (_token_format.h: sizes, canonical base64url, the associated
 * data) and the cached-key type (_key_entry.h) live in headers included below, so the
 * build hook still compiles one file per extension.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>
#if defined(__linux__) && defined(__GLIBC__)
#include <sys/random.h>
#define HAVE_GETRANDOM 1
#endif

/* Set by configure(). */
static PyObject *g_var = NULL;        /* flowtrace.context's ContextVar (node tuples) */
static PyObject *g_py_encrypt = NULL; /* _PyEncryptorBase.encrypt */
static PyObject *g_py_decrypt = NULL; /* _PyEncryptorBase.decrypt */
static PyObject *g_make_tail = NULL;  /* Entry.aad_tail(entry, field) -> bytes */
static PyObject *g_report = NULL;     /* report(entry, tenant, field, reason) */
static PyObject *g_listening = NULL;  /* _observe.listening() -> bool */
static PyObject *g_urandom = NULL;    /* os.urandom */

/* Interned names. */
static PyObject *s_field, *s_context, *s_subject, *s_deterministic, *s_reason;
static PyObject *s_active, *s_next_check;

#include "_token_format.h"
#include "_key_entry.h"

/* ---------------------------------------------------------------------------------- */
/* EncryptorBase: FieldEncryptor's encrypt and decrypt                                   */

typedef struct {
    PyObject_HEAD
    PyObject *vault;   /* KeyVault: its _next_check is read on every call */
    PyObject *entries; /* the vault's cache dict: key -> Entry */
    PyObject *clock;   /* the vault's monotonic clock */
    double max_age;
    long long max_uses;
    int subject_keys;
} EncryptorObject;

static int
encryptor_traverse(EncryptorObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->vault);
    Py_VISIT(self->entries);
    Py_VISIT(self->clock);
    return 0;
}

static int
encryptor_clear(EncryptorObject *self)
{
    Py_CLEAR(self->vault);
    Py_CLEAR(self->entries);
    Py_CLEAR(self->clock);
    return 0;
}

static void
encryptor_dealloc(EncryptorObject *self)
{
    PyObject_GC_UnTrack(self);
    encryptor_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Hand the whole call to the pure-Python method ``func(self, *args, **kwargs)``. */
static PyObject *
call_python(PyObject *func, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
            PyObject *kwnames)
{
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    Py_ssize_t total = 1 + nargs + nkw;
    PyObject *small[8];
    PyObject **stack = small;
    if (func == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "flowtrace.crypto._fastpath is not configured (import flowtrace.crypto)");
        return NULL;
    }
    if (total > 8) {
        stack = PyMem_Malloc(total * sizeof(PyObject *));
        if (stack == NULL) {
            return PyErr_NoMemory();
        }
    }
    stack[0] = self;
    memcpy(stack + 1, args, (nargs + nkw) * sizeof(PyObject *));
    PyObject *result = PyObject_Vectorcall(func, stack, 1 + nargs, kwnames);
    if (stack != small) {
        PyMem_Free(stack);
    }
    return result;
}

/* After a failed step of the fast path: 0 to step aside (an ordinary Exception, which
 * the Python path will meet and report again), -1 to propagate anything else. */
static int
step_aside(void)
{
    if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_Exception)) {
        return -1;
    }
    PyErr_Clear();
    return 0;
}

static int
kw_is(PyObject *name, PyObject *interned)
{
    return name == interned || PyUnicode_Compare(name, interned) == 0;
}

/* The current FlowContext (new reference) if it has a str tenant; NULL otherwise. */
static PyObject *
current_context(void)
{
    PyObject *node = NULL;
    if (g_var == NULL || PyContextVar_Get(g_var, NULL, &node) < 0) {
        return NULL;
    }
    PyObject *ctx = NULL;
    if (node != NULL && PyTuple_CheckExact(node) && PyTuple_GET_SIZE(node) == 3) {
        PyObject *candidate = PyTuple_GET_ITEM(node, 0);
        if (PyTuple_Check(candidate) && PyTuple_GET_SIZE(candidate) >= 3 &&
            PyUnicode_CheckExact(PyTuple_GET_ITEM(candidate, 0))) {
            ctx = Py_NewRef(candidate);
        }
    }
    Py_XDECREF(node);
    return ctx;
}

/* 1 if the vault's cache may be used now (writing the time to *now), 0 if a
 * revalidation is due (the Python path polls the change log), -1 on error. */
static int
cache_is_current(EncryptorObject *self, double *now)
{
    PyObject *t = PyObject_CallNoArgs(self->clock);
    if (t == NULL) {
        return -1;
    }
    *now = PyFloat_AsDouble(t);
    Py_DECREF(t);
    if (*now == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    PyObject *deadline = PyObject_GetAttr(self->vault, s_next_check);
    if (deadline == NULL) {
        return -1;
    }
    double next_check = PyFloat_AsDouble(deadline);
    Py_DECREF(deadline);
    if (next_check == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    return *now < next_check;
}

/* The usable cached entry for ``key`` (new reference, one use counted), or NULL: a miss
 * (no error set) or an error. Mirrors KeyCache.get without stale_ok. */
static EntryObject *
cached_entry(EncryptorObject *self, PyObject *key, double now)
{
    PyObject *found = PyDict_GetItemWithError(self->entries, key);
    if (found == NULL || !PyObject_TypeCheck(found, &EntryBase_Type)) {
        return NULL;
    }
    EntryObject *entry = (EntryObject *)found;
    if (entry->tenant == NULL || entry->seal == NULL || entry->tails == NULL ||
        !PyDict_CheckExact(entry->tails) || entry->prefixes == NULL ||
        !PyTuple_CheckExact(entry->prefixes) || PyTuple_GET_SIZE(entry->prefixes) < 1) {
        return NULL;
    }
    if (now - entry->loaded_at >= self->max_age || entry->uses >= self->max_uses) {
        return NULL;
    }
    entry->uses++;
    return (EntryObject *)Py_NewRef(found);
}

/* The cache key of a DEK version: (dek_id bytes, version int). */
static PyObject *
dek_key(const unsigned char *dek_id, long version)
{
    PyObject *id = PyBytes_FromStringAndSize((const char *)dek_id, 8);
    PyObject *number = id ? PyLong_FromLong(version) : NULL;
    PyObject *key = number ? PyTuple_Pack(2, id, number) : NULL;
    Py_XDECREF(id);
    Py_XDECREF(number);
    return key;
}

/* field tag || AAD tail for ``field`` (new reference), or NULL on error. */
static PyObject *
field_tail(EntryObject *entry, PyObject *field)
{
    PyObject *tail = PyDict_GetItemWithError(entry->tails, field);
    if (tail != NULL) {
        Py_INCREF(tail);
    }
    else if (PyErr_Occurred()) {
        return NULL;
    }
    else {
        PyObject *stack[2] = {(PyObject *)entry, field};
        tail = PyObject_Vectorcall(g_make_tail, stack, 2, NULL);
        if (tail == NULL) {
            return NULL;
        }
    }
    if (!PyBytes_CheckExact(tail) || PyBytes_GET_SIZE(tail) < TAIL_MIN) {
        Py_DECREF(tail);
        PyErr_SetString(PyExc_TypeError, "aad_tail() must return bytes");
        return NULL;
    }
    return tail;
}

/* The ``context`` argument as associated_data() takes it: NULL for None or an empty
 * dict (no context is the same as an empty one); -1 when only Python takes it. */
static int
context_argument(PyObject *value, PyObject **context)
{
    if (value == Py_None || (PyDict_CheckExact(value) && PyDict_GET_SIZE(value) == 0)) {
        *context = NULL;
        return 0;
    }
    if (PyDict_CheckExact(value)) {
        *context = value;
        return 0;
    }
    return -1;
}

static PyObject *
random_nonce(void)
{
#ifdef HAVE_GETRANDOM
    PyObject *nonce = PyBytes_FromStringAndSize(NULL, NONCE);
    if (nonce == NULL) {
        return NULL;
    }
    if (getrandom(PyBytes_AS_STRING(nonce), NONCE, 0) == NONCE) {
        return nonce;
    }
    Py_DECREF(nonce); /* interrupted or unavailable: let os.urandom handle it */
#endif
    PyObject *size = PyLong_FromLong(NONCE);
    if (size == NULL) {
        return NULL;
    }
    PyObject *nonce_or_null = PyObject_CallOneArg(g_urandom, size);
    Py_DECREF(size);
    return nonce_or_null;
}

/* The fast encrypt; NULL with no error set means "step aside". */
static PyObject *
fast_encrypt(EncryptorObject *self, PyObject *value, PyObject *field, PyObject *context)
{
    PyObject *ctx = NULL, *key = NULL, *tail = NULL, *plaintext = NULL, *nonce = NULL;
    PyObject *aad = NULL, *sealed = NULL, *token = NULL;
    EntryObject *entry = NULL;
    double now;

    if ((ctx = current_context()) == NULL) {
        goto done;
    }
    PyObject *subject = Py_None;
    if (self->subject_keys) {
        subject = PyTuple_GET_ITEM(ctx, 2);
        if (!PyUnicode_CheckExact(subject)) {
            goto done; /* MissingSubjectError is Python's to raise */
        }
    }
    int current = cache_is_current(self, &now);
    if (current <= 0) {
        goto done;
    }
    key = PyTuple_Pack(3, s_active, PyTuple_GET_ITEM(ctx, 0), subject);
    if (key == NULL || (entry = cached_entry(self, key, now)) == NULL) {
        goto done;
    }
    PyObject *prefix = PyTuple_GET_ITEM(entry->prefixes, 0);
    if (!PyBytes_CheckExact(prefix) || PyBytes_GET_SIZE(prefix) != PREFIX) {
        goto done;
    }
    if ((tail = field_tail(entry, field)) == NULL ||
        (plaintext = PyUnicode_AsUTF8String(value)) == NULL ||
        (nonce = random_nonce()) == NULL) {
        goto done;
    }
    unsigned char head[HEAD];
    memcpy(head, PyBytes_AS_STRING(prefix), PREFIX);
    memcpy(head + PREFIX, PyBytes_AS_STRING(tail), 2);
    memcpy(head + HEADER, PyBytes_AS_STRING(entry->commitment), COMMITMENT);
    memcpy(head + HEADER + COMMITMENT, PyBytes_AS_STRING(nonce), NONCE);
    if ((aad = associated_data(head, tail, context)) == NULL) {
        goto done;
    }
    PyObject *args[3] = {nonce, plaintext, aad};
    sealed = PyObject_Vectorcall(entry->seal, args, 3, NULL);
    if (sealed == NULL || !PyBytes_CheckExact(sealed)) {
        goto done;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(sealed);
    token = PyUnicode_New(HEAD_CHARS + b64_encoded_size(size), 127);
    if (token != NULL) {
        Py_UCS1 *out = PyUnicode_1BYTE_DATA(token);
        b64_encode(head, HEAD, out);
        b64_encode((const unsigned char *)PyBytes_AS_STRING(sealed), size, out + HEAD_CHARS);
    }
done:
    Py_XDECREF(ctx);
    Py_XDECREF(key);
    Py_XDECREF((PyObject *)entry);
    Py_XDECREF(tail);
    Py_XDECREF(plaintext);
    Py_XDECREF(nonce);
    Py_XDECREF(aad);
    Py_XDECREF(sealed);
    return token;
}

/* The arguments of encrypt(value, *, field, context=None, subject=None,
 * deterministic=False) or decrypt(token, *, field, context=None, reason=None). */
typedef struct {
    PyObject *field, *context, *reason; /* borrowed; context NULL for none */
} CallArgs;

/* 1 if the call has the shape the fast path takes (filling *call), else 0: then Python
 * takes the original arguments (and raises the TypeError for a wrong shape). */
static int
usual_call(EncryptorObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
           int decrypting, CallArgs *call)
{
    *call = (CallArgs){NULL, NULL, Py_None};
    if (self->entries == NULL || nargs != 1 || !PyUnicode_CheckExact(args[0])) {
        return 0;
    }
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i), *value = args[nargs + i];
        int fine;
        if (kw_is(name, s_field)) {
            call->field = value;
            fine = PyUnicode_CheckExact(value) && PyUnicode_GET_LENGTH(value) > 0;
        }
        else if (kw_is(name, s_context)) {
            fine = context_argument(value, &call->context) == 0;
        }
        else if (decrypting) {
            call->reason = value;
            fine = kw_is(name, s_reason);
        }
        else if (kw_is(name, s_subject)) {
            fine = value == Py_None;
        }
        else {
            fine = kw_is(name, s_deterministic) && value == Py_False;
        }
        if (!fine) {
            return 0;
        }
    }
    return call->field != NULL;
}

static PyObject *
encryptor_encrypt(EncryptorObject *self, PyObject *const *args, Py_ssize_t nargs,
                  PyObject *kwnames)
{
    CallArgs call;
    if (usual_call(self, args, nargs, kwnames, 0, &call)) {
        PyObject *token = fast_encrypt(self, args[0], call.field, call.context);
        if (token != NULL || step_aside() < 0) {
            return token;
        }
    }
    return call_python(g_py_encrypt, (PyObject *)self, args, nargs, kwnames);
}

/* Report a successful decrypt if any observer listens; -1 if an observer refused. */
static int
report(EntryObject *entry, PyObject *tenant, PyObject *field, PyObject *reason)
{
    PyObject *listening = PyObject_CallNoArgs(g_listening);
    if (listening == NULL) {
        return -1;
    }
    int yes = PyObject_IsTrue(listening);
    Py_DECREF(listening);
    if (yes <= 0) {
        return yes;
    }
    PyObject *args[4] = {(PyObject *)entry, tenant, field, reason};
    PyObject *done = PyObject_Vectorcall(g_report, args, 4, NULL);
    Py_XDECREF(done);
    return done == NULL ? -1 : 0;
}

/* The fast decrypt. Returns the plaintext; NULL with no error set means "step aside";
 * NULL with *refused set means an observer refused the decrypt (propagate). */
static PyObject *
fast_decrypt(EncryptorObject *self, PyObject *token, PyObject *field, PyObject *context,
             PyObject *reason, int *refused)
{
    PyObject *ctx = NULL, *key = NULL, *tail = NULL, *body = NULL, *nonce = NULL;
    PyObject *aad = NULL, *opened = NULL, *text = NULL;
    EntryObject *entry = NULL;
    unsigned char head[HEAD];
    double now;

    Py_ssize_t chars = PyUnicode_GET_LENGTH(token);
    Py_ssize_t body_size = b64_decoded_size(chars - HEAD_CHARS);
    if (!PyUnicode_IS_ASCII(token) || chars > MAX_TOKEN_CHARS || body_size < TAG) {
        goto done;
    }
    const Py_UCS1 *text_in = PyUnicode_1BYTE_DATA(token);
    if (b64_decode(text_in, HEAD_CHARS, head) < 0 || head[0] != VERSION || head[1] != 0) {
        goto done; /* other versions and flags (JSON, deterministic) go the Python way */
    }
    long version = (long)head[10] << 8 | head[11];
    if (version == 0 || (body = PyBytes_FromStringAndSize(NULL, body_size)) == NULL) {
        goto done;
    }
    if (b64_decode(text_in + HEAD_CHARS, chars - HEAD_CHARS,
                   (unsigned char *)PyBytes_AS_STRING(body)) < 0) {
        goto done;
    }
    if ((ctx = current_context()) == NULL) {
        goto done;
    }
    PyObject *tenant = PyTuple_GET_ITEM(ctx, 0);
    if (cache_is_current(self, &now) <= 0) {
        goto done;
    }
    if ((key = dek_key(head + 2, version)) == NULL ||
        (entry = cached_entry(self, key, now)) == NULL) {
        goto done;
    }
    if (version < entry->min_version || entry->open == NULL ||
        (entry->tenant != tenant && PyUnicode_Compare(entry->tenant, tenant) != 0)) {
        goto done; /* retired or another tenant's: Python raises and reports */
    }
    if (!same_bytes(head + HEADER, (const unsigned char *)PyBytes_AS_STRING(entry->commitment),
                    COMMITMENT)) {
        goto done;
    }
    if ((tail = field_tail(entry, field)) == NULL ||
        memcmp(head + PREFIX, PyBytes_AS_STRING(tail), 2) != 0) {
        goto done;
    }
    if ((aad = associated_data(head, tail, context)) == NULL ||
        (nonce = PyBytes_FromStringAndSize((const char *)head + HEADER + COMMITMENT, NONCE)) ==
            NULL) {
        goto done;
    }
    PyObject *args[3] = {nonce, body, aad};
    opened = PyObject_Vectorcall(entry->open, args, 3, NULL);
    if (opened == NULL || !PyBytes_CheckExact(opened)) {
        goto done;
    }
    text = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(opened), PyBytes_GET_SIZE(opened),
                                "surrogatepass");
    if (text != NULL && report(entry, tenant, field, reason) < 0) {
        Py_CLEAR(text);
        *refused = 1;
    }
done:
    Py_XDECREF(ctx);
    Py_XDECREF(key);
    Py_XDECREF((PyObject *)entry);
    Py_XDECREF(tail);
    Py_XDECREF(body);
    Py_XDECREF(nonce);
    Py_XDECREF(aad);
    Py_XDECREF(opened);
    return text;
}

static PyObject *
encryptor_decrypt(EncryptorObject *self, PyObject *const *args, Py_ssize_t nargs,
                  PyObject *kwnames)
{
    CallArgs call;
    if (usual_call(self, args, nargs, kwnames, 1, &call)) {
        int refused = 0;
        PyObject *text =
            fast_decrypt(self, args[0], call.field, call.context, call.reason, &refused);
        if (text != NULL || refused || step_aside() < 0) {
            return text;
        }
    }
    return call_python(g_py_decrypt, (PyObject *)self, args, nargs, kwnames);
}

static PyObject *
encryptor_bind(EncryptorObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "_bind_fast_path(vault, entries, clock, max_age, max_uses, "
                        "subject_keys) takes 6 arguments");
        return NULL;
    }
    if (!PyDict_Check(args[1]) || !PyCallable_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "_bind_fast_path(): entries must be a dict and "
                                         "clock callable");
        return NULL;
    }
    double max_age = PyFloat_AsDouble(args[3]);
    if (max_age == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    long long max_uses = PyLong_AsLongLong(args[4]);
    if (max_uses == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int subject_keys = PyObject_IsTrue(args[5]);
    if (subject_keys < 0) {
        return NULL;
    }
    Py_XSETREF(self->vault, Py_NewRef(args[0]));
    Py_XSETREF(self->entries, Py_NewRef(args[1]));
    Py_XSETREF(self->clock, Py_NewRef(args[2]));
    self->max_age = max_age;
    self->max_uses = max_uses;
    self->subject_keys = subject_keys;
    Py_RETURN_NONE;
}

static PyMethodDef encryptor_methods[] = {
    {"encrypt", (PyCFunction)(void (*)(void))encryptor_encrypt,
     METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("encrypt($self, value, /, *, field, context=None, subject=None, "
               "deterministic=False)\n--\n\n"
               "Encrypt ``value`` for ``field`` of the current tenant; returns the text "
               "token.\n\n``deterministic=True`` uses AES-SIV: equal inputs give equal "
               "tokens (enables equality lookups, leaks equality; see docs/encryption.md).")},
    {"decrypt", (PyCFunction)(void (*)(void))encryptor_decrypt,
     METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("decrypt($self, token, /, *, field, context=None, reason=None)\n--\n\n"
               "The plaintext of ``token``; raises a typed error if it cannot be "
               "trusted.\n\nChecks the current tenant, the field and ``context``; reports "
               "the decrypt (``reason`` says why the value is read). A JSON token decrypts "
               "to its JSON text.")},
    {"_bind_fast_path", (PyCFunction)(void (*)(void))encryptor_bind, METH_FASTCALL,
     PyDoc_STR("Wire this encryptor to its vault's key cache (internal).")},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EncryptorBase_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "flowtrace.crypto._fastpath.EncryptorBase",
    .tp_doc = PyDoc_STR("C encrypt/decrypt of FieldEncryptor (falls back to Python)."),
    .tp_basicsize = sizeof(EncryptorObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_traverse = (traverseproc)encryptor_traverse,
    .tp_clear = (inquiry)encryptor_clear,
    .tp_dealloc = (destructor)encryptor_dealloc,
    .tp_methods = encryptor_methods,
};

/* ---------------------------------------------------------------------------------- */
/* module                                                                                */

static PyObject *
configure(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError,
                        "configure(var, py_encrypt, py_decrypt, make_tail, report, "
                        "listening, urandom) takes 7 arguments");
        return NULL;
    }
    if (!PyContextVar_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "configure(): var must be a ContextVar");
        return NULL;
    }
    for (int i = 1; i < 7; i++) {
        if (!PyCallable_Check(args[i])) {
            PyErr_SetString(PyExc_TypeError, "configure(): arguments 2-7 must be callable");
            return NULL;
        }
    }
    PyObject **slots[7] = {&g_var,  &g_py_encrypt, &g_py_decrypt, &g_make_tail,
                           &g_report, &g_listening, &g_urandom};
    for (int i = 0; i < 7; i++) {
        Py_XSETREF(*slots[i], Py_NewRef(args[i]));
    }
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL,
     PyDoc_STR("configure(var, py_encrypt, py_decrypt, make_tail, report, listening, "
               "urandom): wire the fast path to flowtrace.")},
    {"b64url_encode", (PyCFunction)py_b64url_encode, METH_O,
     PyDoc_STR("Unpadded base64url text of bytes (the token text codec; for tests).")},
    {"b64url_decode", (PyCFunction)py_b64url_decode, METH_O,
     PyDoc_STR("Bytes of canonical unpadded base64url text, or None (for tests).")},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fastpath_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "flowtrace.crypto._fastpath",
    .m_doc = PyDoc_STR("Optional C fast path of FieldEncryptor.encrypt and decrypt."),
    .m_size = -1,
    .m_methods = module_methods,
};

static int
intern_names(void)
{
    struct {
        PyObject **slot;
        const char *text;
    } names[] = {
        {&s_field, "field"},     {&s_context, "context"},       {&s_subject, "subject"},
        {&s_deterministic, "deterministic"}, {&s_reason, "reason"}, {&s_active, "active"},
        {&s_next_check, "_next_check"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if ((*names[i].slot = PyUnicode_InternFromString(names[i].text)) == NULL) {
            return -1;
        }
    }
    return 0;
}

static int
add_type(PyObject *module, PyTypeObject *type, const char *name)
{
    if (PyType_Ready(type) < 0) {
        return -1;
    }
    Py_INCREF(type);
    if (PyModule_AddObject(module, name, (PyObject *)type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC
PyInit__fastpath(void)
{
    b64_init();
    if (intern_names() < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&fastpath_module);
    if (module == NULL) {
        return NULL;
    }
    if (add_type(module, &EntryBase_Type, "EntryBase") < 0 ||
        add_type(module, &EncryptorBase_Type, "EncryptorBase") < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
