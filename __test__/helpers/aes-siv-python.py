"""AES-SIV with several associated-data components, computed by Python's `cryptography` (OpenSSL):
the outside implementation that SifreDB's multi-component vectors are checked against.

  python3 aes-siv-python.py verify < cases.json   -> {"checked": n} after checking every case
  python3 aes-siv-python.py seal   < cases.json   -> the cases with "ciphertext" filled in

A case is {"key": hex, "ad": [hex, ...], "plaintext": hex, "ciphertext": hex}. Exits non-zero with
the failing case's index on a mismatch.
"""
import json
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV


def components(case):
    # cryptography treats an empty list as "no associated data" too, which is the same S2V input.
    return [bytes.fromhex(c) for c in case["ad"]]


def main():
    mode = sys.argv[1]
    cases = json.load(sys.stdin)
    if mode == "seal":
        for case in cases:
            sealed = AESSIV(bytes.fromhex(case["key"])).encrypt(
                bytes.fromhex(case["plaintext"]), components(case)
            )
            case["ciphertext"] = sealed.hex()
        json.dump(cases, sys.stdout)
        return
    if mode != "verify":
        sys.exit("mode must be seal or verify")
    for i, case in enumerate(cases):
        siv = AESSIV(bytes.fromhex(case["key"]))
        plaintext = bytes.fromhex(case["plaintext"])
        if siv.encrypt(plaintext, components(case)).hex() != case["ciphertext"]:
            sys.exit(f"case {i}: encryption differs")
        try:
            opened = siv.decrypt(bytes.fromhex(case["ciphertext"]), components(case))
        except InvalidTag:
            sys.exit(f"case {i}: does not authenticate")
        if opened != plaintext:
            sys.exit(f"case {i}: decryption differs")
    json.dump({"checked": len(cases)}, sys.stdout)


main()
