"""Framework-free domain and use cases of sentry-jira (SPEC §2)."""
