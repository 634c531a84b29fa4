"""The contract with the native iPad app: exported schemas, golden vectors, Swift models,
pairing payloads, iPad perception summaries and a reference client (see docs/ios.md)."""
