{
  "algorithm": "ed25519",
  "key": "cb44bcdb511be182",
  "signature": "+rfs/icjPWNglX+ZVmIquXzxuqDfgMq7pfffFKtqE4W4I5F1Ws+btuLDJe4HOQuM7rAClIOzPm56aXPD+r6dAg=="
}
