"""CI: what .ci/run and the README's second command fetch and check before the tests."""
