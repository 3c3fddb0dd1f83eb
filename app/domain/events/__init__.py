"""Events of emails: recording, Postfix log and DSN/ARF ingestion."""
