"""The DIS dump-task API: AK/SK signing, typed calls, error classification and retries."""
