/* EntryBase: C storage of one cached data key, the base of crypto._cache.Entry
 * (included by _fastpath.c; one translation unit).
 *
 * Python code uses it like the pure-Python _PyEntryBase (same attribute names); setting
 * ``keyring`` or ``keys`` also caches what the fast path reads on every call (the
 * tenant, the minimum version, the AES-GCM methods and the key commitment), so the fast
 * path reads struct fields instead of looking attributes up.
 */
#ifndef FLOWTRACE_KEY_ENTRY_H
#define FLOWTRACE_KEY_ENTRY_H

enum { ENTRY_COMMITMENT = 16 };


typedef struct {
    PyObject_HEAD
    PyObject *keyring;    /* KeyringRecord */
    PyObject *keys;       /* DerivedKeys */
    PyObject *prefixes;   /* tuple of 4 bytes: header bytes 0..11 per flags value */
    PyObject *tails;      /* dict: field -> field tag || lp(tenant) || lp(field) || 0x0000 */
    PyObject *tenant;     /* keyring.tenant */
    PyObject *seal;       /* keys.gcm.encrypt */
    PyObject *open;       /* keys.gcm.decrypt */
    PyObject *commitment; /* keys.commitment (16 bytes) */
    long long uses;
    double loaded_at;
    long min_version;     /* keyring.min_version */
    int version;
} EntryObject;

static int
entry_traverse(EntryObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->keyring);
    Py_VISIT(self->keys);
    Py_VISIT(self->prefixes);
    Py_VISIT(self->tails);
    Py_VISIT(self->tenant);
    Py_VISIT(self->seal);
    Py_VISIT(self->open);
    Py_VISIT(self->commitment);
    return 0;
}

static int
entry_clear(EntryObject *self)
{
    Py_CLEAR(self->keyring);
    Py_CLEAR(self->keys);
    Py_CLEAR(self->prefixes);
    Py_CLEAR(self->tails);
    Py_CLEAR(self->tenant);
    Py_CLEAR(self->seal);
    Py_CLEAR(self->open);
    Py_CLEAR(self->commitment);
    return 0;
}

static void
entry_dealloc(EntryObject *self)
{
    PyObject_GC_UnTrack(self);
    entry_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
get_or_raise(PyObject *value, const char *name)
{
    if (value == NULL) {
        PyErr_Format(PyExc_AttributeError, "entry has no %s yet", name);
        return NULL;
    }
    return Py_NewRef(value);
}

static PyObject *
entry_get_keyring(EntryObject *self, void *Py_UNUSED(closure))
{
    return get_or_raise(self->keyring, "keyring");
}

static int
entry_set_keyring(EntryObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete an entry's keyring");
        return -1;
    }
    PyObject *tenant = PyObject_GetAttrString(value, "tenant");
    if (tenant == NULL) {
        return -1;
    }
    PyObject *min_version = PyObject_GetAttrString(value, "min_version");
    if (min_version == NULL) {
        Py_DECREF(tenant);
        return -1;
    }
    long min = PyLong_AsLong(min_version);
    Py_DECREF(min_version);
    if (min == -1 && PyErr_Occurred()) {
        Py_DECREF(tenant);
        return -1;
    }
    Py_XSETREF(self->tenant, tenant);
    Py_XSETREF(self->keyring, Py_NewRef(value));
    self->min_version = min;
    return 0;
}

static PyObject *
entry_get_keys(EntryObject *self, void *Py_UNUSED(closure))
{
    return get_or_raise(self->keys, "keys");
}

static int
entry_set_keys(EntryObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete an entry's keys");
        return -1;
    }
    PyObject *gcm = PyObject_GetAttrString(value, "gcm");
    if (gcm == NULL) {
        return -1;
    }
    PyObject *seal = PyObject_GetAttrString(gcm, "encrypt");
    PyObject *open = seal ? PyObject_GetAttrString(gcm, "decrypt") : NULL;
    PyObject *commitment = open ? PyObject_GetAttrString(value, "commitment") : NULL;
    Py_DECREF(gcm);
    if (commitment == NULL || !PyBytes_CheckExact(commitment) ||
        PyBytes_GET_SIZE(commitment) != ENTRY_COMMITMENT) {
        if (commitment != NULL) {
            PyErr_SetString(PyExc_TypeError, "keys.commitment must be 16 bytes");
        }
        Py_XDECREF(seal);
        Py_XDECREF(open);
        Py_XDECREF(commitment);
        return -1;
    }
    Py_XSETREF(self->seal, seal);
    Py_XSETREF(self->open, open);
    Py_XSETREF(self->commitment, commitment);
    Py_XSETREF(self->keys, Py_NewRef(value));
    return 0;
}

static PyGetSetDef entry_getset[] = {
    {"keyring", (getter)entry_get_keyring, (setter)entry_set_keyring,
     PyDoc_STR("The KeyringRecord this DEK version belongs to."), NULL},
    {"keys", (getter)entry_get_keys, (setter)entry_set_keys,
     PyDoc_STR("The DerivedKeys of this DEK version."), NULL},
    {NULL},
};

static PyMemberDef entry_members[] = {
    {"prefixes", T_OBJECT_EX, offsetof(EntryObject, prefixes), 0,
     PyDoc_STR("Header bytes 0..11 for each flags value.")},
    {"tails", T_OBJECT_EX, offsetof(EntryObject, tails), 0,
     PyDoc_STR("field -> field tag || the AAD after the header (no context).")},
    {"uses", T_LONGLONG, offsetof(EntryObject, uses), 0,
     PyDoc_STR("Encryptions and decryptions served from the cache.")},
    {"loaded_at", T_DOUBLE, offsetof(EntryObject, loaded_at), 0,
     PyDoc_STR("Vault clock time the DEK was unwrapped.")},
    {"version", T_INT, offsetof(EntryObject, version), 0, PyDoc_STR("The DEK version.")},
    {NULL},
};

static PyTypeObject EntryBase_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "flowtrace.crypto._fastpath.EntryBase",
    .tp_doc = PyDoc_STR("C storage of a cached data key (the base of _cache.Entry)."),
    .tp_basicsize = sizeof(EntryObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_traverse = (traverseproc)entry_traverse,
    .tp_clear = (inquiry)entry_clear,
    .tp_dealloc = (destructor)entry_dealloc,
    .tp_getset = entry_getset,
    .tp_members = entry_members,
};

#endif /* FLOWTRACE_KEY_ENTRY_H */
