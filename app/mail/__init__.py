"""Mail: rendering in the sandbox, MIME building, signed links and the outbox."""
