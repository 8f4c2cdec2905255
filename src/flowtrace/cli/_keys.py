"""``flowtrace keys``: development key material and token inspection.

* ``flowtrace keys new-master-key`` prints a fresh master key for a local keyring
  (put it in ``FLOWTRACE_MASTER_KEY`` or a secret file; never in the repository).
* ``flowtrace keys init-keyring PATH --kek ID`` creates or extends a keyring file.
* ``flowtrace keys inspect TOKEN...`` prints each token's key id, version and mode as JSON
  lines without decrypting (the header is not authenticated; use it for rotation inventories).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("keys", help="field-encryption keys and tokens")
    commands = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    new = commands.add_parser("new-master-key", help="print a new random master key")
    new.set_defaults(func=_new_master_key)
    init = commands.add_parser("init-keyring", help="create or extend a local keyring file")
    init.add_argument("path", help="keyring file (created with mode 0600)")
    init.add_argument("--kek", action="append", required=True, help="KEK id to ensure")
    init.add_argument("--master-key-file", help="file holding the master key")
    init.set_defaults(func=_init_keyring)
    inspect = commands.add_parser("inspect", help="show token headers (no decryption)")
    inspect.add_argument("tokens", nargs="+", metavar="TOKEN")
    inspect.set_defaults(func=_inspect)


def _new_master_key(args: argparse.Namespace) -> int:
    from ..crypto import LocalKeyProvider

    print(LocalKeyProvider.new_master_key())
    return 0


def _init_keyring(args: argparse.Namespace) -> int:
    from ..crypto import LocalKeyProvider
    from ..errors import ConfigError

    try:
        provider = LocalKeyProvider.open_keyring(
            args.path, master_key_file=args.master_key_file, create=args.kek
        )
    except ConfigError as exc:
        print(f"flowtrace keys: {exc}", file=sys.stderr)
        return 1
    print(f"{args.path}: KEKs {', '.join(provider.kek_ids)}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from ..crypto import FieldEncryptor
    from ..errors import TokenError

    status = 0
    for token in args.tokens:
        try:
            info = FieldEncryptor.inspect(token)
        except TokenError as exc:
            print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
            status = 1
            continue
        print(
            json.dumps(
                {
                    "key_id": info.key_id,
                    "key_version": info.key_version,
                    "deterministic": info.deterministic,
                    "json": info.json,
                }
            )
        )
    return status
