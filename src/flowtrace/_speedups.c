/* Optional C accelerator for the hot path of ``flowtrace.context`` scopes.
 *
 * ``ScopeBase`` is a ``dict`` subclass whose ``__enter__`` and ``__exit__`` do exactly
 * what the pure-Python versions in ``context.py`` do, for the common case only:
 *
 *   enter: read the node ``(FlowContext, parent node, scope)`` from the context
 *          variable, look the derived context up in the shared memo dict keyed by
 *          ``(id(current), key1, value1, key2, value2, ...)``; on a hit whose entry
 *          holds the very same current context, push ``(new, node, self)``.
 *          Anything else (a miss, unhashable values, an unexpected node) is handed
 *          to the Python ``slow_enter(scope, node, key_or_None)``, which validates,
 *          checks and reports tenant switches, memoizes and pushes.
 *   exit:  refuse an out-of-order exit (the node must have been pushed by ``self``)
 *          and set the parent node back.
 *
 * Only the public C API is used.  ``configure()`` hands the module the context
 * variable, the memo dict and the Python fallbacks; until then the methods raise.
 * Import failure (or FLOWTRACE_PURE_PYTHON=1) leaves the pure-Python scope in use.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *g_var = NULL;        /* ContextVar holding the current node */
static PyObject *g_memo = NULL;       /* dict: key -> (current, derived) */
static PyObject *g_slow_enter = NULL; /* slow_enter(scope, node, key or None) */
static PyObject *g_py_enter = NULL;   /* pure-Python __enter__(scope) */
static PyObject *g_py_exit = NULL;    /* pure-Python __exit__(scope, t, v, tb) */

static const char OUT_OF_ORDER[] =
    "flowtrace scopes exited out of order: this scope is not the innermost one "
    "(a scope entered by hand was not exited, or exited in another task)";

static int
check_configured(void)
{
    if (g_var == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "flowtrace._speedups is not configured (import flowtrace.context)");
        return -1;
    }
    return 0;
}

/* Build (id(cur), k1, v1, k2, v2, ...) from the scope's items. New reference. */
static PyObject *
memo_key(PyObject *self, PyObject *cur)
{
    Py_ssize_t n = PyDict_Size(self);
    Py_ssize_t size = 1 + 2 * n;
    Py_ssize_t pos = 0, i = 1;
    PyObject *k, *v;
    PyObject *key = PyTuple_New(size);
    if (key == NULL) {
        return NULL;
    }
    PyObject *ident = PyLong_FromVoidPtr(cur);
    if (ident == NULL) {
        Py_DECREF(key);
        return NULL;
    }
    PyTuple_SET_ITEM(key, 0, ident);
    while (i < size && PyDict_Next(self, &pos, &k, &v)) {
        Py_INCREF(k);
        PyTuple_SET_ITEM(key, i, k);
        Py_INCREF(v);
        PyTuple_SET_ITEM(key, i + 1, v);
        i += 2;
    }
    if (i != size) { /* cannot happen: PyDict_Next runs no Python code */
        Py_DECREF(key);
        PyErr_SetString(PyExc_RuntimeError, "flowtrace scope changed size during enter");
        return NULL;
    }
    return key;
}

static PyObject *
scope_enter(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *node = NULL, *key = NULL, *hit = NULL, *result = NULL;

    if (check_configured() < 0) {
        return NULL;
    }
    /* Own what we use: hashing a value may run Python code (even configure()). */
    PyObject *var = Py_NewRef(g_var), *memo = Py_NewRef(g_memo);
    PyObject *slow_enter = Py_NewRef(g_slow_enter), *py_enter = Py_NewRef(g_py_enter);

    if (PyContextVar_Get(var, NULL, &node) < 0) {
        goto done;
    }
    if (node == NULL || !PyTuple_CheckExact(node) || PyTuple_GET_SIZE(node) != 3) {
        /* Not a node this module understands: let Python do everything. */
        result = PyObject_CallOneArg(py_enter, self);
        goto done;
    }
    PyObject *cur = PyTuple_GET_ITEM(node, 0); /* borrowed; node keeps it alive */

    key = memo_key(self, cur);
    if (key == NULL) {
        goto done;
    }
    hit = PyDict_GetItemWithError(memo, key); /* borrowed */
    if (hit == NULL) {
        if (PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_TypeError)) {
                goto done; /* hashing failed for another reason: propagate */
            }
            PyErr_Clear(); /* unhashable values (lists, dicts): no memo */
            Py_CLEAR(key);
        }
    }
    else {
        Py_INCREF(hit);
        if (PyTuple_CheckExact(hit) && PyTuple_GET_SIZE(hit) == 2 &&
            PyTuple_GET_ITEM(hit, 0) == cur) {
            PyObject *new = PyTuple_GET_ITEM(hit, 1);
            PyObject *pushed = PyTuple_Pack(3, new, node, self);
            if (pushed == NULL) {
                goto done;
            }
            PyObject *token = PyContextVar_Set(var, pushed);
            Py_DECREF(pushed);
            if (token == NULL) {
                goto done;
            }
            Py_DECREF(token);
            result = Py_NewRef(new);
            goto done;
        }
    }
    /* Miss (or stale entry, or no key): validate, check, report, memoize, push. */
    result = PyObject_CallFunctionObjArgs(slow_enter, self, node, key ? key : Py_None, NULL);

done:
    Py_XDECREF(hit);
    Py_XDECREF(key);
    Py_XDECREF(node);
    Py_DECREF(var);
    Py_DECREF(memo);
    Py_DECREF(slow_enter);
    Py_DECREF(py_enter);
    return result;
}

static PyObject *
scope_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *node = NULL;

    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError,
                     "__exit__() takes exactly 3 arguments (%zd given)", nargs);
        return NULL;
    }
    if (check_configured() < 0) {
        return NULL;
    }
    if (PyContextVar_Get(g_var, NULL, &node) < 0) {
        return NULL;
    }
    if (node == NULL || !PyTuple_CheckExact(node) || PyTuple_GET_SIZE(node) != 3) {
        Py_XDECREF(node);
        PyObject *stack[4] = {self, args[0], args[1], args[2]};
        return PyObject_Vectorcall(g_py_exit, stack, 4, NULL);
    }
    if (PyTuple_GET_ITEM(node, 2) != self) {
        Py_DECREF(node);
        PyErr_SetString(PyExc_RuntimeError, OUT_OF_ORDER);
        return NULL;
    }
    PyObject *token = PyContextVar_Set(g_var, PyTuple_GET_ITEM(node, 1));
    Py_DECREF(node);
    if (token == NULL) {
        return NULL;
    }
    Py_DECREF(token);
    Py_RETURN_NONE;
}

static PyMethodDef scope_methods[] = {
    {"__enter__", (PyCFunction)scope_enter, METH_NOARGS,
     PyDoc_STR("Enter the scope: push the derived flow context and return it.")},
    {"__exit__", (PyCFunction)(void (*)(void))scope_exit, METH_FASTCALL,
     PyDoc_STR("Leave the scope: check it is the innermost one and restore its parent.")},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScopeBase_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "flowtrace._speedups.ScopeBase",
    .tp_doc = PyDoc_STR("dict subclass with C __enter__/__exit__ for flowtrace.context."),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_methods = scope_methods,
};

static PyObject *
configure(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "configure(var, memo, slow_enter, py_enter, py_exit) takes 5 arguments");
        return NULL;
    }
    if (!PyContextVar_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "configure(): var must be a ContextVar");
        return NULL;
    }
    if (!PyDict_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "configure(): memo must be a dict");
        return NULL;
    }
    for (int i = 2; i < 5; i++) {
        if (!PyCallable_Check(args[i])) {
            PyErr_SetString(PyExc_TypeError, "configure(): fallbacks must be callable");
            return NULL;
        }
    }
    Py_INCREF(args[0]);
    Py_XSETREF(g_var, args[0]);
    Py_INCREF(args[1]);
    Py_XSETREF(g_memo, args[1]);
    Py_INCREF(args[2]);
    Py_XSETREF(g_slow_enter, args[2]);
    Py_INCREF(args[3]);
    Py_XSETREF(g_py_enter, args[3]);
    Py_INCREF(args[4]);
    Py_XSETREF(g_py_exit, args[4]);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL,
     PyDoc_STR("configure(var, memo, slow_enter, py_enter, py_exit): wire the hot path.")},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "flowtrace._speedups",
    .m_doc = PyDoc_STR("Optional C accelerator for flowtrace.context scopes."),
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    ScopeBase_Type.tp_base = &PyDict_Type;
    if (PyType_Ready(&ScopeBase_Type) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&ScopeBase_Type);
    if (PyModule_AddObject(module, "ScopeBase", (PyObject *)&ScopeBase_Type) < 0) {
        Py_DECREF(&ScopeBase_Type);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
