"""The engine store: signed bundles installed as transactions, switched atomically, rolled
back in one step. See :mod:`appliance.store.store` for the layout and the crash rules."""

from appliance.store.signing import SignatureError, generate_keypair, sign_manifest
from appliance.store.store import Entry, Outcome, Policy, Store, StoreError, device_id
from appliance.store.unpack import UnpackError, pack

__all__ = ["Entry", "Outcome", "Policy", "SignatureError", "Store", "StoreError", "UnpackError",
           "device_id", "generate_keypair", "pack", "sign_manifest"]
