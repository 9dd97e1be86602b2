{
  "algorithm": "ed25519",
  "key": "20d3f6e931839f36",
  "signature": "S2nk6dUGpzI4R5KYan19xRkzQfRr/sDiJxoapzb486qqMs2gZojoyoBjmzm4ZYNA3mBOcJvYPYjb9tAwq/0PAg=="
}
