# SPDX-License-Identifier: Apache-2.0
"""The key-derivation vectors in docs/key-derivation.md, recomputed with an implementation that
shares no code with Cloister (Python's cryptography package)."""
import hashlib
import hmac
import json
import re

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from conftest import ROOT


def hkdf(ikm: bytes, salt: bytes, info: str, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt,
                info=info.encode()).derive(ikm)


def doc_vectors():
    text = (ROOT / "docs" / "key-derivation.md").read_text()
    blocks = re.findall(r"```json\n(\[.*?)\n```", text, re.S)
    assert len(blocks) == 1, "docs/key-derivation.md must hold exactly one vector block"
    return json.loads(blocks[0])


def test_documented_vectors_match_independent_hkdf_implementation():
    vectors = doc_vectors()
    assert len(vectors) >= 2
    for v in vectors:
        master = bytes.fromhex(v["master_secret"])
        salt = bytes.fromhex(v["salt"])
        assert hkdf(master, salt, "cloister/v1/disk/" + v["luks_uuid"].lower()).hex() == v["disk_key"]
        msec = hkdf(master, salt, "cloister/v1/measurement-secret")
        assert msec.hex() == v["measurement_secret"]
        cid = hkdf(msec, bytes.fromhex(v["measurement_salt"]), "cloister/v1/cluster-id")
        assert cid.hex() == v["cluster_id"]
        pcr15 = hashlib.sha256(bytes(32) + hashlib.sha256(cid).digest()).digest()
        assert pcr15.hex() == v["pcr15"]
        name, not_after = v["cp_name"], v["cp_not_after"]
        tag = hkdf(master, salt, f"cloister/v1/control-plane-authorization/{name}/{not_after}")
        assert v["cp_authorization"] == f"cpa1.{name}.{not_after}.{tag.hex()}"
        # Policy updates (docs/policy-update.md): HMAC-SHA-256 with the policy-update key over
        # the cluster ID, the version and the document's SHA-256.
        key = hkdf(master, salt, "cloister/v1/policy-update")
        assert key.hex() == v["policy_update_key"]
        document = v["policy_update_document"].encode()
        msg = f"pu1.{cid.hex()}.{v['policy_update_version']}.{hashlib.sha256(document).hexdigest()}"
        assert hmac.new(key, msg.encode(), hashlib.sha256).hexdigest() == \
            v["policy_update_authenticator"]


def test_documented_vectors_are_distinct_per_purpose():
    # A vector block where two purposes collided would hide a wrong info string.
    for v in doc_vectors():
        values = [v["disk_key"], v["measurement_secret"], v["cluster_id"], v["pcr15"],
                  v["policy_update_key"]]
        assert len(set(values)) == len(values)
