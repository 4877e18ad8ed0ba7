"""Starts moto's server mode (the `moto[server]` PyPI package) for the SifreDB KMS tests.

Usage: python3 __test__/helpers/moto_server.py -H 127.0.0.1 -p PORT

Same as `python3 -m moto.server`, plus one fidelity fix: moto (checked 5.2.1 and 5.2.5) does not
enforce KMS key states on cryptographic operations, while AWS KMS rejects Encrypt, Decrypt,
GenerateDataKey and ReEncrypt with `DisabledException` for a disabled key and with
`KMSInvalidStateException` for a key pending deletion (HTTP 409,
https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html). The tests for disabled keys
and crypto-shredding depend on that rule, so it is added here, in the server, where the SDK sees the
same wire-level error AWS sends. Nothing else is changed: every request reaches moto's own code.
"""

import sys

from moto.core.exceptions import JsonRESTError
import moto.kms.models as kms_models


class _KeyStateError(JsonRESTError):
    code = 409


def _check_state(key):
    state = getattr(key, "key_state", "Enabled")
    if state == "Disabled":
        raise _KeyStateError("DisabledException", f"{key.arn} is disabled.")
    if state != "Enabled":
        raise _KeyStateError("KMSInvalidStateException", f"{key.arn} is {state.lower()}.")


_encrypt = kms_models.encrypt
_decrypt = kms_models.decrypt


def _encrypt_checked(master_keys, key_id, plaintext, encryption_context):
    key = master_keys.get(key_id)
    if key is not None:
        _check_state(key)
    return _encrypt(
        master_keys=master_keys,
        key_id=key_id,
        plaintext=plaintext,
        encryption_context=encryption_context,
    )


def _decrypt_checked(master_keys, ciphertext_blob, encryption_context):
    plaintext, key_id = _decrypt(
        master_keys=master_keys,
        ciphertext_blob=ciphertext_blob,
        encryption_context=encryption_context,
    )
    _check_state(master_keys[key_id])
    return plaintext, key_id


# KmsBackend.encrypt/decrypt (and through them GenerateDataKey and ReEncrypt) call these names.
kms_models.encrypt = _encrypt_checked
kms_models.decrypt = _decrypt_checked

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
