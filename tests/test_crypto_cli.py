"""The ``flowtrace keys`` subcommand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import flowtrace
from flowtrace.cli import main
from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider


def test_new_master_key_opens_a_keyring_made_by_init(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """new-master-key output, saved to a file, lets init-keyring create a usable keyring."""
    assert main(["keys", "new-master-key"]) == 0
    secret = tmp_path / "master.key"
    secret.write_text(capsys.readouterr().out)
    path = tmp_path / "ring.json"
    assert (
        main(
            [
                "keys",
                "init-keyring",
                str(path),
                "--kek",
                "a",
                "--kek",
                "b",
                "--master-key-file",
                str(secret),
            ]
        )
        == 0
    )
    assert LocalKeyProvider.open_keyring(path, master_key_file=secret).kek_ids == ("a", "b")


def test_init_keyring_without_master_key_fails_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No master key: exit 1 and a message naming FLOWTRACE_MASTER_KEY."""
    monkeypatch.delenv("FLOWTRACE_MASTER_KEY", raising=False)
    assert main(["keys", "init-keyring", str(tmp_path / "r.json"), "--kek", "a"]) == 1
    assert "FLOWTRACE_MASTER_KEY" in capsys.readouterr().err


def test_inspect_prints_headers_and_flags_garbage(capsys: pytest.CaptureFixture[str]) -> None:
    """inspect shows key id/version per token and exits 1 when one is malformed."""
    enc = FieldEncryptor(KeyVault(LocalKeyProvider.generate("k"), kek_id="k"))
    with flowtrace.context(tenant="acme"):
        token = enc.encrypt("v", field="f", deterministic=True)
    assert main(["keys", "inspect", token, "garbage!"]) == 1
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first == {
        "key_id": enc.inspect(token).key_id,
        "key_version": 1,
        "deterministic": True,
        "json": False,
    }
    assert second["error"] == "MalformedTokenError"
