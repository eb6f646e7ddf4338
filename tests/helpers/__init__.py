"""Code the tests share that is not a test: synthetic results, fakes of the environments."""
