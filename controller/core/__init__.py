"""Pure decision code of the controller: plain dicts in, plain dicts out; no kopf, no HTTP."""
