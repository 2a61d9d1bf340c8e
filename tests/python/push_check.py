"""Web Push as a browser and a push service see it, judged by implementations nobody here wrote:
http_ece (RFC 8188/8291 decryption) and cryptography (P-256, ECDSA) from PyPI.

    push_check.py keygen   -> {"private", "p256dh", "auth"}: a browser's subscription keys
    push_check.py check    <- {"private", "auth", "body" (base64), "authorization"}
                           -> {"plaintext", "header", "claims", "k", "signature_valid"}
"""
import base64
import json
import os
import sys

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64u_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64u_encode(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def keygen():
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return {
        "private": b64u_encode(key.private_numbers().private_value.to_bytes(32, "big")),
        "p256dh": b64u_encode(public),
        "auth": b64u_encode(os.urandom(16)),
    }


def check(request):
    key = ec.derive_private_key(
        int.from_bytes(b64u_decode(request["private"]), "big"), ec.SECP256R1()
    )
    plaintext = http_ece.decrypt(
        base64.b64decode(request["body"]),
        private_key=key,
        auth_secret=b64u_decode(request["auth"]),
        version="aes128gcm",
    )
    scheme, _, params = request["authorization"].partition(" ")
    assert scheme == "vapid", scheme
    fields = dict(p.strip().split("=", 1) for p in params.split(","))
    token, k = fields["t"], fields["k"]
    header_b64, claims_b64, signature_b64 = token.split(".")
    signature = b64u_decode(signature_b64)
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64u_decode(k))
    try:
        public.verify(
            der, (header_b64 + "." + claims_b64).encode(), ec.ECDSA(hashes.SHA256())
        )
        valid = len(signature) == 64
    except InvalidSignature:
        valid = False
    return {
        "plaintext": plaintext.decode("utf-8"),
        "header": json.loads(b64u_decode(header_b64)),
        "claims": json.loads(b64u_decode(claims_b64)),
        "k": k,
        "signature_valid": valid,
    }


if __name__ == "__main__":
    if sys.argv[1] == "keygen":
        print(json.dumps(keygen()))
    elif sys.argv[1] == "check":
        print(json.dumps(check(json.load(sys.stdin))))
    else:
        sys.exit("usage: push_check.py keygen|check")
