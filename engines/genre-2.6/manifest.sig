{
  "algorithm": "ed25519",
  "key": "cb44bcdb511be182",
  "signature": "7hG/Gr+LFR5UnXPu4GjdafTg7dnn9FrhwiSbKF2lRYJAoLSAUrKwUHDr+dVr/ucBeozAplKEEz3Dw/ogHSrHAA=="
}
