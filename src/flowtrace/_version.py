__version__ = "0.1.0"
"""The version of flowtrace installed (the ``flowtrace-sdk`` distribution).

Example::

    import flowtrace

    print(flowtrace.__version__)        # e.g. "0.1.0"
"""
