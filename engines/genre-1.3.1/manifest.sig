{
  "algorithm": "ed25519",
  "key": "20d3f6e931839f36",
  "signature": "rz+jW8DqjWF9qZkC1Yp3jwQV3S47u9ZfhMMF6fLWpZLw8oXysi1TEiRcpXyfbA4stEh2/fZbror0YRsy1EH8Cw=="
}
