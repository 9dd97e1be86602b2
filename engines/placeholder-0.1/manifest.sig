{
  "algorithm": "ed25519",
  "key": "20d3f6e931839f36",
  "signature": "kB4YTfNi7jOPkLmI7DLVnZu05m8/WQjL2yIYhk+KeN7h2Uvv+HSI60ZGLtkHR8/RKU3YxyMUXy+lQMzBdB0BCg=="
}
