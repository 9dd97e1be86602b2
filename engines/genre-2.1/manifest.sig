{
  "algorithm": "ed25519",
  "key": "20d3f6e931839f36",
  "signature": "xLtQdW/gtpPZFQZiBPrgn1nTtva7/8Um49gN3Q6aohiNUSEAcOPuuiyyjCIkl4gwpV+rGaJB2I58j994HsSSCA=="
}
