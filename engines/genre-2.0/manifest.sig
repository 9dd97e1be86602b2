{
  "algorithm": "ed25519",
  "key": "20d3f6e931839f36",
  "signature": "stFA1BOqIlOxqN6yKszMCmsNRVO/iG0j3hRJeY9i3jfOcxOGag9rW/4SAIxilEuPWL8J3NgwHYAq3M38kZTGDg=="
}
